using System.Runtime.InteropServices;

namespace Gpt2Engine;

/// <summary>
/// Files written atomically (a temporary file, flushed, then renamed over the target): checkpoints, converted weights,
/// token shards, charts. A reader never sees a half-written file.
/// </summary>
internal static partial class AtomicFile
{
    /// <summary>
    /// Writes <paramref name="path"/> through <c>path.tmp-random</c>, flushed to disk and then renamed over the target,
    /// so a reader never sees a half-written file; the temporary file is removed if anything fails. The folder must
    /// exist, and the target must be missing or a regular file: the rename would replace a directory's entry, a FIFO
    /// or a device node (/dev/full, as root) with a plain file. A symbolic link to a regular file is replaced by the
    /// new file, like any rename does; the file it pointed to is left as it was.
    /// </summary>
    public static void Write(string path, Action<FileStream> write)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new Gpt2Exception("the output path is empty");
        if (NonRegularKind(path) is { } kind) throw new Gpt2Exception($"{path}: cannot write: it is {kind}, not a regular file");
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null && !Directory.Exists(directory)) throw new Gpt2Exception($"{path}: cannot write: the folder {directory} does not exist");
        string temporary = $"{path}.tmp-{Path.GetRandomFileName()}";
        // Tracked so that Ctrl-C, which skips the catch below, deletes it too (FileShare.Delete: on Windows while it is open).
        var inFlight = TemporaryPaths.Process;
        try
        {
            using (var stream = inFlight.Create(temporary, () => new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.Delete, 1 << 20)))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            inFlight.Keep(temporary, () => File.Move(temporary, path, overwrite: true));
        }
        catch (Exception e)
        {
            inFlight.Delete(temporary);
            if (e is IOException or UnauthorizedAccessException) throw new Gpt2Exception($"{path}: cannot write ({e.Message})", e);
            throw;
        }
    }

    public static void Write(string path, ReadOnlySpan<byte> contents)
    {
        byte[] copy = contents.ToArray();
        Write(path, stream => stream.Write(copy));
    }

    /// <summary>
    /// What <paramref name="path"/> is, following symbolic links, when it exists and is not a regular file ("a
    /// directory", "a FIFO", "a character device"...); null otherwise. .NET has no public API for Unix file types
    /// (dotnet/runtime#85148), so on Linux this asks statx(2); elsewhere, or with a C library that lacks statx (glibc
    /// before 2.28), only directories are recognised.
    /// </summary>
    internal static unsafe string? NonRegularKind(string path)
    {
        if (Directory.Exists(path)) return "a directory";
        if (!OperatingSystem.IsLinux()) return null;
        byte* status = stackalloc byte[StatxSize];
        try
        {
            if (Statx(AtCurrentDirectory, path, 0, StatxType, status) != 0) return null; // missing, or not ours to judge: the write reports it
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
        return (*(ushort*)(status + StatxModeOffset) & FileTypeMask) switch
        {
            RegularFile => null,
            0x1000 => "a FIFO",
            0x2000 => "a character device",
            0x6000 => "a block device",
            0xC000 => "a socket",
            _ => "not a regular file",
        };
    }

    // statx(2): struct statx is 256 bytes on every architecture, its u16 stx_mode at byte 28; S_IF* file types.
    private const int AtCurrentDirectory = -100, StatxSize = 256, StatxModeOffset = 28;
    private const uint StatxType = 1;
    private const int FileTypeMask = 0xF000, RegularFile = 0x8000;

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Statx(int directory, string path, int flags, uint mask, byte* status);
}
