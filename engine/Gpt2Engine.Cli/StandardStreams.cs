using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Gpt2Engine.Cli;

/// <summary>The process's standard input and output, for the commands that read or write them.</summary>
internal static partial class StandardStreams
{
    /// <summary>
    /// Throws a one-line error when standard output is closed (see <see cref="IsClosedForWriting"/>). Checked once, at
    /// the process's entry point (<see cref="CliApp.Run(string[])"/>), for every command; only for the console (tests
    /// run commands with their own writers).
    /// </summary>
    public static void EnsureOutputWritable(TextWriter output)
    {
        if (ReferenceEquals(output, Console.Out) && IsClosedForWriting(1)) throw new Gpt2Exception("standard output is closed");
    }

    /// <summary>
    /// Standard error as a writer whose writes never fail: nothing when it is closed (<c>2&gt;&amp;-</c>: the descriptor
    /// may be the runtime's own pipe), and the console's writer with its failures dropped when it cannot take more
    /// (<c>2&gt;/dev/full</c>). A diagnostic that cannot be written must not turn into the command's failure: a
    /// warning does not stop a command, a summary does not change its exit code, and an error line that is lost still
    /// leaves the exit code to tell.
    /// </summary>
    public static TextWriter Error() => IsClosedForWriting(2) ? TextWriter.Null : new DiagnosticWriter(Console.Error);

    /// <summary>Whether <paramref name="error"/> is the process's standard error (from <see cref="Error"/>) and a terminal: where progress bars can be drawn.</summary>
    public static bool IsErrorTerminal(TextWriter error) => error is DiagnosticWriter { Inner: var inner } && ReferenceEquals(inner, Console.Error) && !Console.IsErrorRedirected;

    /// <summary>A writer that passes text on and drops it where the destination fails.</summary>
    private sealed class DiagnosticWriter(TextWriter inner) : TextWriter
    {
        public TextWriter Inner => inner;
        public override System.Text.Encoding Encoding => inner.Encoding;
        public override void Write(char value) => Try(() => inner.Write(value));
        public override void Write(string? value) => Try(() => inner.Write(value));
        public override void Write(char[] buffer, int index, int count) => Try(() => inner.Write(buffer, index, count));
        public override void WriteLine(string? value) => Try(() => inner.WriteLine(value));
        public override void Flush() => Try(inner.Flush);

        private static void Try(Action write)
        {
            try { write(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // nowhere left to say it
        }
    }

    /// <summary>
    /// Whether <paramref name="descriptor"/> (1 or 2) was closed when the process started. A process started with
    /// <c>&gt;&amp;-</c> has no descriptor 1, and the runtime may reuse it for a file it reads (a write would fail with
    /// "Access to the path is denied") or for one end of a pipe of its own (the output would vanish into it).
    /// </summary>
    private static bool IsClosedForWriting(int descriptor)
    {
        if (OperatingSystem.IsWindows()) return false;
        int flags = Fcntl(descriptor, GetStatusFlags);
        return flags == -1 || (flags & AccessModeMask) == ReadOnly || IsOwnPipe(descriptor);
    }

    /// <summary>
    /// Standard output as a stream whose writes fail with an IOException once the reader has gone: .NET's console
    /// stream silently swallows EPIPE, so on Unix a pipe is written through file descriptor 1 directly. A regular
    /// file keeps the console stream: a FileStream would write at its own offset (pwrite) and the shell's next
    /// writes to the same file would land on top of ours. When the command runs with another writer (tests), the
    /// bytes go there.
    /// </summary>
    public static Stream OpenOutput(TextWriter output)
    {
        if (!ReferenceEquals(output, Console.Out)) return new TextWriterStream(output);
        if (OperatingSystem.IsWindows()) return Console.OpenStandardOutput();
        var descriptor = new FileStream(new SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);
        if (!descriptor.CanSeek) return descriptor;
        descriptor.Dispose();
        return Console.OpenStandardOutput();
    }

    /// <summary>
    /// Throws a one-line error when standard input is closed: a process started with <c>&lt;&amp;-</c> has no descriptor
    /// 0, the runtime reuses it for one end of a pipe of its own, and a read would wait forever on a writer that is
    /// the process itself.
    /// </summary>
    public static void EnsureInputReadable()
    {
        if (IsOwnPipe(0)) throw new Gpt2Exception("standard input is closed");
    }

    /// <summary>
    /// Whether <paramref name="descriptor"/> is one end of a pipe whose other end this process holds too: not a stream
    /// from or to anyone else, but the runtime's own pipe, put where a closed standard stream was. (Linux, through
    /// /proc/self/fd; elsewhere false.)
    /// </summary>
    private static bool IsOwnPipe(int descriptor)
    {
        if (!OperatingSystem.IsLinux()) return false;
        string? pipe = new FileInfo($"/proc/self/fd/{descriptor}").LinkTarget;
        if (pipe is null || !pipe.StartsWith("pipe:", StringComparison.Ordinal)) return false;
        int mode = Fcntl(descriptor, GetStatusFlags) & AccessModeMask;
        foreach (string path in Directory.GetFileSystemEntries("/proc/self/fd"))
            if (int.TryParse(Path.GetFileName(path), out int other) && other != descriptor && new FileInfo(path).LinkTarget == pipe
                && Fcntl(other, GetStatusFlags) is var flags && flags != -1 && (flags & AccessModeMask) != mode)
                return true;
        return false;
    }

    private const int GetStatusFlags = 3, AccessModeMask = 3, ReadOnly = 0; // F_GETFL, O_ACCMODE, O_RDONLY (Linux and macOS)

    [LibraryImport("libc", EntryPoint = "fcntl")]
    private static partial int Fcntl(int descriptor, int command);
}
