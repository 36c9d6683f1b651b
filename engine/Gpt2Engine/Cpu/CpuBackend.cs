using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;

namespace Gpt2Engine.Cpu;

/// <summary>
/// The CPU backend: buffers are 64-byte-aligned native memory, checkpoint weights are used in place from the
/// memory map, and each operation is a kernel in this folder, multi-threaded over <see cref="Threads"/> workers.
/// </summary>
public sealed unsafe class CpuBackend : Backend
{
    private readonly Dictionary<nint, long> _allocations = []; // address -> bytes
    private long _allocatedBytes;

    /// <summary>The most worker threads an operation may use.</summary>
    internal const int MaxThreads = 1024;

    /// <summary>Throws a <see cref="Gpt2Exception"/> unless <paramref name="threads"/> is 0 (one per processor) or 1..<see cref="MaxThreads"/>.</summary>
    internal static void CheckThreads(int threads)
    {
        if (threads is < 0 or > MaxThreads) throw new Gpt2Exception($"threads {threads} must be between 1 and {MaxThreads} (or 0: one per processor)");
    }

    /// <param name="threads">Worker threads per operation (0: one per processor).</param>
    /// <param name="level">The vector width of the kernels (default: <see cref="CpuSimd.Level"/>).</param>
    public CpuBackend(int threads = 0, SimdLevel? level = null) : this(threads, level ?? CpuSimd.Level, emulate: false) { }

    private CpuBackend(int threads, SimdLevel level, bool emulate)
    {
        CheckThreads(threads);
        Threads = threads > 0 ? threads : Environment.ProcessorCount;
        Level = level;
        if (!emulate && !CpuSimd.IsSupported(Level)) throw new Gpt2Exception($"this CPU does not accelerate {CpuSimd.Describe(Level)} vectors");
    }

    /// <summary>
    /// A backend at any level, accelerated here or not: .NET runs vectors the CPU lacks in software (the same kernels,
    /// slowly), so tests hold the 512-bit path to its references on a machine without AVX-512.
    /// </summary>
    internal static CpuBackend Emulating(int threads, SimdLevel level) => new(threads, level, emulate: true);

    /// <summary>
    /// Runs every operation of a prompt and a decoding step once, on small buffers and a one-thread backend of this level
    /// (so it needs no worker of the pool): the JIT compiles the kernels for this level and weight type here, not
    /// during the first prompt. Matmuls every way (a GEMM in groups of panels, one in slabs as for 512 rows or more, and
    /// the two matrix-vector products), attention through the cache query by query, in blocks of queries (a prompt of
    /// more than 128 tokens) and for one position.
    /// </summary>
    public override void WarmUp(TensorDType weightType)
    {
        const int T = 8, Blocked = AttentionKernels.BlockedFrom, Long = MatmulKernels.ManyRows, C = 64, NH = 2, V = 96;
        using var b = new CpuBackend(1, Level, emulate: true); // this level was checked when this backend was made
        DeviceBuffer F32(long count) => b.Allocate(count);
        DeviceBuffer tokens = b.Allocate(T, TensorDType.I32), wte = b.Allocate((long)V * C, weightType), wpe = F32(T * C);
        DeviceBuffer x = F32(T * C), ln = F32(Long * C), qkv = F32(Long * 3 * C), attY = F32(Long * C), fch = F32(Long * 4 * C), logits = F32(V);
        DeviceBuffer keys = F32(Long * C), values = F32(Long * C), ones = F32(4 * C), weights = b.Allocate(4L * C * C, weightType);
        b.Upload<float>(ones, Enumerable.Repeat(1f, 4 * C).ToArray());
        b.Encoder(x, tokens, wte, wpe, 1, T - 1, C, 0);
        b.LayerNorm(ln, default, default, x, ones, ones, T, C);
        b.Matmul(qkv, ln, weights, ones, T - 1, C, 3 * C);
        b.AttentionCached(attY, qkv, keys, values, 1, T - 1, 0, Long, C, NH);
        b.Matmul(fch, attY, weights, ones, 1, C, 4 * C);
        b.Gelu(fch, fch, 4 * C);
        b.Residual(x, x, ln, C);
        b.AttentionCached(attY, qkv, keys, values, 1, 1, T - 1, Long, C, NH);
        b.MatmulTransposed(logits, ln, wte, 1, C, V);
        b.AttentionCached(attY, qkv, keys, values, 1, Blocked, 0, Long, C, NH);
        b.Matmul(fch, ln, weights, ones, Long, C, 4 * C);
    }

    public int Threads { get; }
    public SimdLevel Level { get; }
    public override string Name => $"cpu ({Threads} threads, {CpuSimd.Describe(Level)})";

    /// <summary>
    /// Native memory, zeroed. A request beyond the memory the process can still take (<see cref="AvailableBytes"/>)
    /// fails at once with a clear error: Linux would grant it, and the zeroing would then thrash or wake the OOM killer.
    /// </summary>
    public override DeviceBuffer Allocate(long count, TensorDType dtype = TensorDType.F32)
    {
        int size = dtype.SizeOf();
        if (count < 0 || count > long.MaxValue / size) throw new Gpt2Exception($"out of memory: a buffer of {count} {dtype} elements");
        long bytes = Math.Max(1, count * size);
        long available = AvailableBytes();
        lock (_allocations)
        {
            if (bytes > available) throw OutOfMemory($"a buffer of {Gib(bytes)}", available);
            _allocatedBytes += bytes;
        }
        void* memory;
        try
        {
            memory = NativeMemory.AlignedAlloc((nuint)bytes, 64);
        }
        catch (OutOfMemoryException)
        {
            lock (_allocations) _allocatedBytes -= bytes;
            throw new Gpt2Exception($"out of memory: cannot allocate {Gib(bytes)} for a buffer");
        }
        NativeMemory.Clear(memory, (nuint)bytes);
        lock (_allocations) _allocations.Add((nint)memory, bytes);
        return new DeviceBuffer((nint)memory, count, dtype);
    }

    /// <summary>
    /// What a new buffer may take: the GC's limit for the process (the machine's memory, or a container's) less this
    /// backend's buffers, and on Linux no more than the kernel's MemAvailable now (other processes and the page cache
    /// of the mapped weights count there) less a reserve of 1/16 of the limit, at most 1 GiB, for everything else.
    /// </summary>
    private long AvailableBytes()
    {
        long limit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, reserve = Math.Min(1L << 30, limit / 16);
        long available = limit - Volatile.Read(ref _allocatedBytes);
        return ProcFile.KilobyteField("/proc/meminfo", "MemAvailable") is long now ? Math.Min(available, now - reserve) : available;
    }

    internal override bool BuffersAreHostMemory => true;

    internal override void RequireAvailable(long bytes, string purpose)
    {
        long available = AvailableBytes();
        if (bytes > available) throw OutOfMemory($"{purpose} needs {Gib(bytes)}", available);
    }

    /// <summary>The bytes of this backend's buffers, as <see cref="Allocate"/> counts them against the memory available.</summary>
    internal long AllocatedBytes => Volatile.Read(ref _allocatedBytes);

    private Gpt2Exception OutOfMemory(string request, long available) =>
        new($"out of memory: {request}, with {Gib(Math.Max(0, available))} available (this backend holds {Gib(AllocatedBytes)})");

    public override void Free(DeviceBuffer buffer)
    {
        lock (_allocations)
        {
            if (!_allocations.Remove(buffer.Address, out long bytes)) return; // a view of someone else's memory (a mapped checkpoint)
            _allocatedBytes -= bytes;
        }
        NativeMemory.AlignedFree((void*)buffer.Address);
    }

    public override DeviceBuffer UseWeights(TensorView view) => new(view.Address, view.ElementCount, view.DType);

    public override void Upload<T>(DeviceBuffer destination, ReadOnlySpan<T> source) =>
        source.CopyTo(new Span<T>((void*)destination.Address, checked((int)(destination.ByteLength / sizeof(T)))));

    public override void Download<T>(DeviceBuffer source, Span<T> destination) =>
        new ReadOnlySpan<T>((void*)source.Address, destination.Length).CopyTo(destination);

    public override void Copy(DeviceBuffer destination, DeviceBuffer source) =>
        Buffer.MemoryCopy((void*)source.Address, (void*)destination.Address, destination.ByteLength, source.ByteLength);

    public override void Zero(DeviceBuffer buffer) => NativeMemory.Clear((void*)buffer.Address, (nuint)buffer.ByteLength);

    private static float* F(DeviceBuffer b) => (float*)b.Address;
    private static int* I(DeviceBuffer b) => (int*)b.Address;

    private static float* F32Weights(DeviceBuffer b, string operation) => b.DType == TensorDType.F32
        ? (float*)b.Address
        : throw new NotSupportedException($"{operation}: {b.DType} weights are not supported by the CPU backend");

    public override void Encoder(DeviceBuffer output, DeviceBuffer tokens, DeviceBuffer wte, DeviceBuffer wpe, int B, int T, int C, int position0)
    {
        if (wte.DType == TensorDType.BF16) EncoderKernels.Forward(F(output), I(tokens), (ushort*)wte.Address, F(wpe), B, T, C, position0);
        else EncoderKernels.Forward(F(output), I(tokens), F32Weights(wte, "encoder"), F(wpe), B, T, C, position0);
    }

    public override void LayerNorm(DeviceBuffer output, DeviceBuffer mean, DeviceBuffer rstd, DeviceBuffer input, DeviceBuffer weight, DeviceBuffer bias, int N, int C) =>
        LayerNormKernels.Forward(F(output), F(mean), F(rstd), F(input), F(weight), F(bias), N, C, Threads);

    public override void Matmul(DeviceBuffer output, DeviceBuffer input, DeviceBuffer weight, DeviceBuffer bias, int N, int C, int OC) =>
        MatmulKernels.Forward(F(output), F(input), (void*)weight.Address, weight.DType, F(bias), N, C, OC, Threads, Level);

    public override void MatmulTransposed(DeviceBuffer output, DeviceBuffer input, DeviceBuffer weight, int N, int C, int OC) =>
        MatmulKernels.ForwardTransposed(F(output), F(input), (void*)weight.Address, weight.DType, N, C, OC, Threads, Level);

    public override void Attention(DeviceBuffer output, DeviceBuffer att, DeviceBuffer qkv, int B, int T, int C, int NH) =>
        AttentionKernels.Forward(F(output), F(att), F(qkv), B, T, C, NH, Threads, Level);

    public override void AttentionCached(DeviceBuffer output, DeviceBuffer qkv, DeviceBuffer keyCache, DeviceBuffer valueCache, int B, int T, int position0, int maxT, int C, int NH) =>
        AttentionKernels.ForwardCached(F(output), F(qkv), F(keyCache), F(valueCache), B, T, position0, maxT, C, NH, Threads, Level);

    public override void Gelu(DeviceBuffer output, DeviceBuffer input, int N) => GeluKernels.Forward(F(output), F(input), N, Threads, Level);

    public override void Residual(DeviceBuffer output, DeviceBuffer a, DeviceBuffer b, int N) =>
        TensorPrimitives.Add(new ReadOnlySpan<float>(F(a), N), new ReadOnlySpan<float>(F(b), N), new Span<float>(F(output), N));

    public override void SoftmaxCrossEntropy(DeviceBuffer losses, DeviceBuffer probs, DeviceBuffer logits, DeviceBuffer targets, int N, int V) =>
        LossKernels.SoftmaxCrossEntropy(F(losses), F(probs), F(logits), I(targets), N, V, Threads, Level);

    public override void EncoderBackward(DeviceBuffer dwte, DeviceBuffer dwpe, DeviceBuffer dout, DeviceBuffer tokens, int B, int T, int C) =>
        EncoderKernels.Backward(F(dwte), F(dwpe), F(dout), I(tokens), B, T, C);

    public override void LayerNormBackward(DeviceBuffer dinput, DeviceBuffer dweight, DeviceBuffer dbias, DeviceBuffer dout, DeviceBuffer input, DeviceBuffer weight, DeviceBuffer mean, DeviceBuffer rstd, int N, int C) =>
        LayerNormKernels.Backward(F(dinput), F(dweight), F(dbias), F(dout), F(input), F(weight), F(mean), F(rstd), N, C, Threads);

    public override void MatmulBackward(DeviceBuffer dinput, DeviceBuffer dweight, DeviceBuffer dbias, DeviceBuffer dout, DeviceBuffer input, DeviceBuffer weight, int N, int C, int OC) =>
        MatmulKernels.Backward(F(dinput), F(dweight), F(dbias), F(dout), F(input), F32Weights(weight, "matmul backward"), N, C, OC, Threads, Level);

    public override void MatmulTransposedBackward(DeviceBuffer dinput, DeviceBuffer dweight, DeviceBuffer dout, DeviceBuffer input, DeviceBuffer weight, int N, int C, int OC) =>
        MatmulKernels.BackwardTransposed(F(dinput), F(dweight), F(dout), F(input), F32Weights(weight, "matmul backward"), N, C, OC, Threads, Level);

    public override void AttentionBackward(DeviceBuffer dqkv, DeviceBuffer dout, DeviceBuffer qkv, DeviceBuffer att, int B, int T, int C, int NH) =>
        AttentionKernels.Backward(F(dqkv), F(dout), F(qkv), F(att), B, T, C, NH, Threads);

    public override void GeluBackward(DeviceBuffer dinput, DeviceBuffer input, DeviceBuffer dout, int N) =>
        GeluKernels.Backward(F(dinput), F(input), F(dout), N, Threads);

    public override void Accumulate(DeviceBuffer destination, DeviceBuffer source, int N)
    {
        var d = new Span<float>(F(destination), N);
        TensorPrimitives.Add(d, new ReadOnlySpan<float>(F(source), N), d);
    }

    public override void SoftmaxCrossEntropyBackward(DeviceBuffer dlogits, DeviceBuffer probs, DeviceBuffer targets, int N, int V, float scale) =>
        LossKernels.SoftmaxCrossEntropyBackward(F(dlogits), F(probs), I(targets), N, V, scale, Threads);

    public override void AdamW(DeviceBuffer parameters, DeviceBuffer gradients, DeviceBuffer m, DeviceBuffer v, float learningRate, float beta1, float beta2, float eps, float weightDecay, int t) =>
        AdamWKernel.Step(F(parameters), F(gradients), F(m), F(v), parameters.Count, learningRate, beta1, beta2, eps, weightDecay, t, Threads);

    public override double SumOfSquares(DeviceBuffer buffer)
    {
        double sum = 0;
        float* p = F(buffer);
        for (long i = 0; i < buffer.Count; i++) sum += (double)p[i] * p[i];
        return sum;
    }

    public override void Scale(DeviceBuffer buffer, float factor)
    {
        for (long offset = 0; offset < buffer.Count; offset += int.MaxValue / 2)
        {
            var span = new Span<float>(F(buffer) + offset, (int)Math.Min(int.MaxValue / 2, buffer.Count - offset));
            TensorPrimitives.Multiply(span, factor, span);
        }
    }

    public override void Dispose()
    {
        lock (_allocations)
        {
            foreach (nint memory in _allocations.Keys) NativeMemory.AlignedFree((void*)memory);
            _allocations.Clear();
            _allocatedBytes = 0;
        }
        base.Dispose();
    }
}
