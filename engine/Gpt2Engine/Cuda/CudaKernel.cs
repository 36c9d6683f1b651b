using System.Text;
using Gpt2Engine.Model;

namespace Gpt2Engine.Cuda;

/// <summary>
/// The kernels of one embedded PTX module (native/ptx/NAME.ptx, embedded as Gpt2Engine.Cuda.NAME.ptx), loaded with
/// cuModuleLoadData; the driver JIT-compiles the sm_80 PTX for the GPU at hand.
/// </summary>
internal sealed unsafe class CudaModule : IDisposable
{
    private readonly CudaContext _context;
    private readonly nint _module;

    public string Name { get; }
    /// <summary>The module's kernels, in the order of the PTX.</summary>
    public IReadOnlyList<string> KernelNames { get; }

    public CudaModule(CudaContext context, string name)
    {
        _context = context;
        Name = name;
        string ptx = ReadPtx(name);
        KernelNames = EntryNames(ptx);
        _module = context.LoadModule(ptx, name + ".ptx");
    }

    /// <summary>The names of a PTX module's kernels (its <c>.entry</c> lines).</summary>
    public static string[] EntryNames(string ptx) =>
        [.. ptx.Split('\n').Where(l => l.StartsWith(".visible .entry ", StringComparison.Ordinal)).Select(l => l[".visible .entry ".Length..].TrimEnd('(', '\r'))];

    /// <summary>The PTX text embedded in the library for module <paramref name="name"/>.</summary>
    public static string ReadPtx(string name)
    {
        using var stream = typeof(CudaModule).Assembly.GetManifestResourceStream($"Gpt2Engine.Cuda.{name}.ptx")
            ?? throw new InvalidOperationException($"the library has no embedded {name}.ptx (run native/build-ptx.sh)");
        using var reader = new StreamReader(stream, Encoding.ASCII);
        return reader.ReadToEnd();
    }

    public CudaKernel Kernel(string name)
    {
        _context.Bind();
        byte[] utf8 = Encoding.ASCII.GetBytes(name + "\0");
        nint function;
        fixed (byte* p = utf8) _context.Check(_context.Api.ModuleGetFunction(&function, _module, p), $"cuModuleGetFunction({Name}.{name})");
        return new CudaKernel(_context, function, name);
    }

    public void Dispose()
    {
        _context.Bind();
        _context.Check(_context.Api.ModuleUnload(_module), "cuModuleUnload");
    }
}

/// <summary>
/// A kernel entry point. Arguments are passed as 8-byte slots, one per kernel parameter in declaration order:
/// device pointers as their CUdeviceptr, ints and floats in the low 4 bytes (see <see cref="Arg(int)"/>); the
/// driver reads each parameter through the pointer to its slot, so this matches any mix of 4- and 8-byte parameters.
/// </summary>
internal sealed unsafe class CudaKernel(CudaContext context, nint function, string name)
{
    public string Name { get; } = name;

    public static ulong Arg(int value) => (uint)value;
    public static ulong Arg(long value) => (ulong)value;
    public static ulong Arg(float value) => BitConverter.SingleToUInt32Bits(value);
    public static ulong Arg(DeviceBuffer buffer) => (ulong)buffer.Address;

    /// <summary>A one-dimensional launch: <paramref name="blocks"/> blocks of <paramref name="threads"/> threads.</summary>
    public void Launch(long blocks, int threads, ReadOnlySpan<ulong> arguments)
    {
        if (blocks <= 0) return;   // nothing to do (a zero-sized grid is an error for the driver)
        context.Bind();
        void** pointers = stackalloc void*[arguments.Length];
        fixed (ulong* slots = arguments)
        {
            for (int i = 0; i < arguments.Length; i++) pointers[i] = slots + i;
            context.Check(context.Api.LaunchKernel(function, checked((uint)blocks), 1, 1, (uint)threads, 1, 1, 0, context.Stream, pointers, null), $"cuLaunchKernel({Name})");
        }
    }

    /// <summary>Blocks of <paramref name="threads"/> threads to cover <paramref name="count"/> items, one per thread.</summary>
    public static long BlocksFor(long count, int threads) => (count + threads - 1) / threads;
}
