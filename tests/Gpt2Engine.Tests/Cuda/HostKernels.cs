using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Gpt2Engine.Tests.Cuda;

/// <summary>
/// native/kernels compiled for the host (native/host/host_kernels.cpp with g++, or $CXX), built once per source
/// version into a temporary folder and loaded. <see cref="SkipReason"/> is set when no C++ compiler exists.
/// </summary>
internal static unsafe class HostKernels
{
    private static readonly Lazy<(nint Library, string? Error)> Loaded = new(Build);

    public static string NativeDirectory { get; } = FindNativeDirectory();

    /// <summary>Null when the host kernels are available; otherwise why the tests that need them are skipped.</summary>
    public static string? SkipReason => FindCompiler() is null ? "no C++ compiler (g++, clang++ or $CXX) to build native/host/host_kernels.cpp" : null;

    public static delegate* unmanaged<byte*, uint, uint, uint, uint, uint, uint, uint, void**, int> Launch =>
        (delegate* unmanaged<byte*, uint, uint, uint, uint, uint, uint, uint, void**, int>)Export("host_launch");

    public static delegate* unmanaged<byte*, int*, int, int> Signature => (delegate* unmanaged<byte*, int*, int, int>)Export("host_kernel_signature");

    private static readonly Dictionary<string, nint> Exports = [];

    private static nint Export(string name)
    {
        lock (Exports)
        {
            if (!Exports.TryGetValue(name, out nint address)) Exports[name] = address = NativeLibrary.GetExport(Library, name);
            return address;
        }
    }

    private static nint Library => Loaded.Value.Error is { } error ? throw new InvalidOperationException(error) : Loaded.Value.Library;

    private static string FindNativeDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "native");
            if (File.Exists(Path.Combine(candidate, "host", "host_kernels.cpp"))) return candidate;
        }
        throw new InvalidOperationException($"no native/host/host_kernels.cpp above {AppContext.BaseDirectory}");
    }

    private static string? FindCompiler()
    {
        var candidates = new List<string>();
        if (Environment.GetEnvironmentVariable("CXX") is { Length: > 0 } cxx) candidates.Add(cxx);
        candidates.AddRange(["g++", "clang++", "clang++-14"]);
        string[] path = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator);
        return candidates.FirstOrDefault(c => Path.IsPathRooted(c) ? File.Exists(c) : path.Any(p => File.Exists(Path.Combine(p, c))));
    }

    private static (nint, string?) Build()
    {
        var sources = Directory.GetFiles(Path.Combine(NativeDirectory, "kernels")).Concat(Directory.GetFiles(Path.Combine(NativeDirectory, "host"))).Order(StringComparer.Ordinal);
        var (library, errors) = Compile(Path.Combine(NativeDirectory, "host", "host_kernels.cpp"), "libgpt2_host_kernels.so", sources);
        return library is null ? (0, errors) : (NativeLibrary.Load(library), null);
    }

    /// <summary>
    /// Compiles <paramref name="source"/> (C++) into a shared library (or, with <paramref name="executable"/>, a program)
    /// in a temporary folder named after the contents of <paramref name="inputs"/>, reusing an earlier build of the same
    /// inputs; returns its path, or null and the compiler's output.
    /// </summary>
    public static (string? Output, string Errors) Compile(string source, string fileName, IEnumerable<string> inputs, bool executable = false, params string[] defines)
    {
        string compiler = FindCompiler() ?? throw new InvalidOperationException(SkipReason);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes(string.Join(" ", defines)));
        foreach (string file in inputs) { hash.AppendData(Encoding.UTF8.GetBytes(Path.GetFileName(file))); hash.AppendData(File.ReadAllBytes(file)); }
        string dir = Path.Combine(Path.GetTempPath(), "gpt2-engine-host-kernels", Convert.ToHexString(hash.GetHashAndReset())[..16]);
        string library = Path.Combine(dir, fileName);
        if (File.Exists(library)) return (library, "");
        Directory.CreateDirectory(dir);
        string temporary = library + ".tmp-" + Guid.NewGuid().ToString("N");
        string[] arguments = ["-std=c++20", "-O1", "-Wall", "-Werror", .. defines.Select(d => "-D" + d), .. executable ? Array.Empty<string>() : ["-shared", "-fPIC"], "-o", temporary, source];
        var start = new ProcessStartInfo(compiler, arguments) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var process = Process.Start(start)!;
        string errors = process.StandardError.ReadToEnd() + process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) return (null, $"{compiler} failed on {Path.GetFileName(source)}:\n{errors}");
        File.Move(temporary, library, overwrite: true);
        return (library, "");
    }

    /// <summary>The host kernel's parameter sizes in bytes, or null if it has no such kernel.</summary>
    public static int[]? ParameterSizes(string kernel)
    {
        byte[] name = Encoding.ASCII.GetBytes(kernel + "\0");
        int* sizes = stackalloc int[32];
        int arity;
        fixed (byte* p = name) arity = Signature(p, sizes, 32);
        return arity < 0 ? null : new ReadOnlySpan<int>(sizes, arity).ToArray();
    }
}
