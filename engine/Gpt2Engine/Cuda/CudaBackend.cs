using System.Diagnostics.CodeAnalysis;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;
using static Gpt2Engine.Cuda.CudaKernel;

namespace Gpt2Engine.Cuda;

/// <summary>
/// <see cref="Backend"/> on an NVIDIA GPU: buffers are device memory, element-wise work and reductions are the
/// kernels of native/kernels (PTX embedded in this library), matmuls and the attention products are cuBLAS GEMMs.
/// Everything is queued on one stream; only <see cref="Download{T}"/>, <see cref="SumOfSquares"/> and
/// <see cref="Synchronize"/> wait for the GPU. Attention follows llm.c's CUDA trainer: permute qkv into q, k, v
/// [B,NH,T,d], strided-batched GEMMs for q k^T and att v, a causal softmax kernel in between.
/// </summary>
public sealed unsafe class CudaBackend : Backend
{
    private const int Threads = 256;
    private const int WarpsPerBlock = Threads / 32;
    /// <summary>Enough blocks to fill a large GPU; each adds its partial dweight/dbias to global memory once.</summary>
    private const int LayerNormBackwardBlocks = 256;
    /// <summary>Blocks of <see cref="SumOfSquares"/>, each leaving one partial sum.</summary>
    private const int SumBlocks = 256;

    private static readonly string[] Modules = ["attention", "crossentropy", "elementwise", "encoder", "layernorm", "optimizer"];

    private readonly CudaContext _context;
    private readonly List<CudaModule> _modules = [];
    private readonly Dictionary<string, CudaKernel> _kernels = [];
    private readonly CudaBlas _blas;
    private readonly HashSet<ulong> _allocations = [];
    private readonly ulong[] _scratch = new ulong[(int)Scratch.Count];
    private readonly long[] _scratchBytes = new long[(int)Scratch.Count];
    private PinnedStaging? _staging;
    private bool _disposed;

    private enum Scratch { Q, K, V, Y, DQ, DK, DV, Scores, Bf16Input, Partials, Count }

    public override string Name => $"cuda ({DeviceName})";

    /// <summary>The GPU's name as the driver reports it, e.g. "NVIDIA H100 80GB HBM3".</summary>
    public string DeviceName => _context.DeviceName;

    public long DeviceMemoryBytes => _context.TotalMemory;

    /// <summary>Lets fp32 matmuls use TF32 tensor cores (faster, about 1e-3 relative error). Off by default.</summary>
    public bool AllowTf32
    {
        get => _blas.AllowTf32;
        set => _blas.AllowTf32 = value;
    }

    internal CudaBackend(ICudaApi api, int device = 0)
    {
        _context = new CudaContext(api, device);
        try
        {
            foreach (string name in Modules)
            {
                var module = new CudaModule(_context, name);
                _modules.Add(module);
                foreach (string kernel in module.KernelNames) _kernels[kernel] = module.Kernel(kernel);
            }
            _blas = new CudaBlas(_context);
        }
        catch
        {
            foreach (var module in _modules) module.Dispose();
            _context.Dispose();
            throw;
        }
    }

    /// <summary>The backend on CUDA device <paramref name="device"/>; a Gpt2Exception says why there is none.</summary>
    public static CudaBackend Create(int device = 0)
    {
        if (!CudaDriverApi.TryLoad(out var api, out string reason)) throw new Gpt2Exception(reason);
        return new CudaBackend(api!, device);
    }

    public static bool TryCreate([NotNullWhen(true)] out CudaBackend? backend, out string reason, int device = 0)
    {
        try
        {
            backend = Create(device);
            reason = "";
            return true;
        }
        catch (Gpt2Exception e)
        {
            backend = null;
            reason = e.Message;
            return false;
        }
    }

    // ---- memory ----

    public override DeviceBuffer Allocate(long count, TensorDType dtype = TensorDType.F32)
    {
        var buffer = AllocateUninitialised(count, dtype);
        _context.Zero((ulong)buffer.Address, RoundUp4(buffer.ByteLength));
        return buffer;
    }

    /// <summary>
    /// What the driver reports free on the device (other processes' allocations count), less a reserve of 1/16 of the
    /// device, at most 256 MiB, for what cuBLAS allocates itself (its workspace).
    /// </summary>
    internal override void RequireAvailable(long bytes, string purpose)
    {
        var (free, total) = _context.MemoryInfo();
        long available = free - Math.Min(256L << 20, total / 16);
        if (bytes > available) throw new Gpt2Exception($"out of GPU memory: {purpose} needs {Gib(bytes)}, with {Gib(Math.Max(0, available))} free on {DeviceName}");
    }

    /// <summary>
    /// The scratch a training step allocates on first use: <see cref="AttentionBackward"/>'s q, k, v, dy, dq, dk, dv
    /// ([B, T, C] each) and the scores' gradient ([B, NH, T, T]), and <see cref="SumOfSquares"/>' partial sums.
    /// </summary>
    internal override long TrainingScratchBytes(Gpt2Config config, int B, int T)
    {
        try
        {
            return checked(7L * sizeof(float) * B * T * config.Channels + (long)sizeof(float) * B * config.Heads * T * T + SumBlocks * sizeof(double));
        }
        catch (OverflowException)
        {
            return long.MaxValue;
        }
    }

    private DeviceBuffer AllocateUninitialised(long count, TensorDType dtype)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count));
        ulong address = _context.Allocate(RoundUp4(count * dtype.SizeOf()));
        _allocations.Add(address);
        return new DeviceBuffer((nint)address, count, dtype);
    }

    private static long RoundUp4(long bytes) => Math.Max(4, (bytes + 3) & ~3L);

    public override void Free(DeviceBuffer buffer)
    {
        if (buffer.IsNone) return;
        if (!_allocations.Remove((ulong)buffer.Address)) throw new ArgumentException("the buffer was not allocated by this backend (or was freed already)", nameof(buffer));
        _context.Free((ulong)buffer.Address);
    }

    /// <summary>Uploads the tensor once, through page-locked staging memory, and returns its device copy.</summary>
    public override DeviceBuffer UseWeights(TensorView view)
    {
        var buffer = AllocateUninitialised(view.ElementCount, view.DType);
        _staging ??= new PinnedStaging(_context);
        _staging.Upload((ulong)buffer.Address, (byte*)view.Address, view.ByteLength);
        return buffer;
    }

    public override void Upload<T>(DeviceBuffer destination, ReadOnlySpan<T> source)
    {
        long bytes = (long)source.Length * sizeof(T);
        if (bytes > destination.ByteLength) throw new ArgumentException($"uploading {bytes} bytes into a {destination.ByteLength}-byte buffer", nameof(source));
        fixed (T* p = source) _context.CopyToDevice((ulong)destination.Address, p, bytes);
    }

    public override void Download<T>(DeviceBuffer source, Span<T> destination)
    {
        long bytes = (long)destination.Length * sizeof(T);
        if (bytes > source.ByteLength) throw new ArgumentException($"downloading {bytes} bytes from a {source.ByteLength}-byte buffer", nameof(destination));
        fixed (T* p = destination) _context.CopyToHost(p, (ulong)source.Address, bytes);
    }

    public override void Copy(DeviceBuffer destination, DeviceBuffer source)
    {
        if (source.ByteLength > destination.ByteLength) throw new ArgumentException($"copying {source.ByteLength} bytes into a {destination.ByteLength}-byte buffer", nameof(source));
        _context.CopyOnDevice((ulong)destination.Address, (ulong)source.Address, source.ByteLength);
    }

    public override void Zero(DeviceBuffer buffer)
    {
        if (buffer.ByteLength % 4 != 0) throw new ArgumentException("zeroing needs a whole number of 32-bit words", nameof(buffer));
        _context.Zero((ulong)buffer.Address, buffer.ByteLength);
    }

    public override void Synchronize() => _context.Synchronize();

    /// <summary>Backend-owned scratch memory, grown on demand and kept: attention's permuted copies, bf16 inputs...</summary>
    private ulong ScratchBuffer(Scratch slot, long bytes)
    {
        int i = (int)slot;
        if (_scratchBytes[i] < bytes)
        {
            if (_scratch[i] != 0) _context.Free(_scratch[i]);
            _scratch[i] = 0;
            _scratch[i] = _context.Allocate(bytes);
            _scratchBytes[i] = bytes;
        }
        return _scratch[i];
    }

    private void Launch(string kernel, long blocks, int threads, ReadOnlySpan<ulong> arguments) => _kernels[kernel].Launch(blocks, threads, arguments);

    private void LaunchElementwise(string kernel, long n, ReadOnlySpan<ulong> arguments) => Launch(kernel, BlocksFor(n, Threads), Threads, arguments);

    // ---- forward ----

    public override void Encoder(DeviceBuffer output, DeviceBuffer tokens, DeviceBuffer wte, DeviceBuffer wpe, int B, int T, int C, int position0)
    {
        static string Suffix(DeviceBuffer table) => table.DType == TensorDType.BF16 ? "bf16" : "f32";
        string kernel = $"encoder_forward_{Suffix(wte)}_{Suffix(wpe)}";
        LaunchElementwise(kernel, (long)B * T * C, [Arg(output), Arg(tokens), Arg(wte), Arg(wpe), Arg(B * T), Arg(T), Arg(C), Arg(position0)]);
    }

    public override void LayerNorm(DeviceBuffer output, DeviceBuffer mean, DeviceBuffer rstd, DeviceBuffer input, DeviceBuffer weight, DeviceBuffer bias, int N, int C) =>
        Launch("layernorm_forward", BlocksFor(N, WarpsPerBlock), Threads, [Arg(output), Arg(mean), Arg(rstd), Arg(input), Arg(weight), Arg(bias), Arg(N), Arg(C)]);

    public override void Matmul(DeviceBuffer output, DeviceBuffer input, DeviceBuffer weight, DeviceBuffer bias, int N, int C, int OC)
    {
        float beta = 0;
        if (!bias.IsNone)
        {
            LaunchElementwise("bias_broadcast", (long)N * OC, [Arg(output), Arg(bias), Arg(N), Arg(OC)]);
            beta = 1;
        }
        var x = InputFor(weight, input, (long)N * C);
        _blas.Gemm(false, false, N, OC, C, 1, x with { Ld = C }, Operand(weight, OC), beta, Operand(output, OC));
    }

    public override void MatmulTransposed(DeviceBuffer output, DeviceBuffer input, DeviceBuffer weight, int N, int C, int OC)
    {
        var x = InputFor(weight, input, (long)N * C);
        _blas.Gemm(false, true, N, OC, C, 1, x with { Ld = C }, Operand(weight, C), 0, Operand(output, OC));
    }

    /// <summary>The GEMM operand for an activation multiplied by <paramref name="weight"/>: cuBLAS wants both in the
    /// same type, so for bf16 weights the fp32 activation is rounded to bf16 into scratch (accumulation stays fp32).</summary>
    private GemmOperand InputFor(DeviceBuffer weight, DeviceBuffer input, long count)
    {
        if (weight.DType != TensorDType.BF16) return Operand(input, 0);
        ulong converted = ScratchBuffer(Scratch.Bf16Input, count * 2);
        LaunchElementwise("narrow_to_bf16", count, [converted, Arg(input), Arg(count)]);
        return new GemmOperand(converted, 0, 0, CudaConstants.DataTypeR16BF);
    }

    private static GemmOperand Operand(DeviceBuffer buffer, int ld, long stride = 0) =>
        new((ulong)buffer.Address, ld, stride, buffer.DType == TensorDType.BF16 ? CudaConstants.DataTypeR16BF : CudaConstants.DataTypeR32F);

    private static GemmOperand Operand(ulong address, int ld, long stride = 0) => new(address, ld, stride);

    public override void Attention(DeviceBuffer output, DeviceBuffer att, DeviceBuffer qkv, int B, int T, int C, int NH)
    {
        int d = C / NH, batch = B * NH;
        long n = (long)B * T * C, tt = (long)T * T;
        ulong q = ScratchBuffer(Scratch.Q, n * 4), k = ScratchBuffer(Scratch.K, n * 4), v = ScratchBuffer(Scratch.V, n * 4), y = ScratchBuffer(Scratch.Y, n * 4);
        LaunchElementwise("attention_permute", n, [q, k, v, Arg(qkv), Arg(B), Arg(T), Arg(NH), Arg(d)]);
        // att[b,h] = q k^T / sqrt(d), then the causal softmax in place
        _blas.Gemm(false, true, T, T, d, 1 / MathF.Sqrt(d), Operand(q, d, (long)T * d), Operand(k, d, (long)T * d), 0, Operand(att, T, tt), batch);
        Launch("attention_softmax", BlocksFor((long)batch * T, WarpsPerBlock), Threads, [Arg(att), Arg(batch * T), Arg(T)]);
        // y[b,h] = att v, then heads merged back into [B,T,C]
        _blas.Gemm(false, false, T, d, T, 1, Operand(att, T, tt), Operand(v, d, (long)T * d), 0, Operand(y, d, (long)T * d), batch);
        LaunchElementwise("attention_unpermute", n, [Arg(output), y, Arg(B), Arg(T), Arg(NH), Arg(d), Arg(0)]);
    }

    public override void AttentionCached(DeviceBuffer output, DeviceBuffer qkv, DeviceBuffer keyCache, DeviceBuffer valueCache, int B, int T, int position0, int maxT, int C, int NH)
    {
        if (position0 < 0 || position0 + T > maxT) throw new ArgumentOutOfRangeException(nameof(position0), $"positions {position0}..{position0 + T - 1} do not fit a cache of {maxT}");
        LaunchElementwise("kv_cache_write", (long)B * T * C, [Arg(keyCache), Arg(valueCache), Arg(qkv), Arg(B), Arg(T), Arg(position0), Arg(maxT), Arg(C)]);
        if (C / NH > Threads) throw new Gpt2Exception($"head size {C / NH} is larger than the CUDA backend supports ({Threads})");
        long rows = (long)B * T * NH;
        ulong scores = ScratchBuffer(Scratch.Scores, rows * maxT * 4);
        Launch("attention_cached", rows, Threads, [Arg(output), scores, Arg(qkv), Arg(keyCache), Arg(valueCache), Arg(B), Arg(T), Arg(position0), Arg(maxT), Arg(C), Arg(NH)]);
    }

    public override void Gelu(DeviceBuffer output, DeviceBuffer input, int N) => LaunchElementwise("gelu_forward", N, [Arg(output), Arg(input), Arg((long)N)]);

    public override void Residual(DeviceBuffer output, DeviceBuffer a, DeviceBuffer b, int N) => LaunchElementwise("residual_forward", N, [Arg(output), Arg(a), Arg(b), Arg((long)N)]);

    public override void SoftmaxCrossEntropy(DeviceBuffer losses, DeviceBuffer probs, DeviceBuffer logits, DeviceBuffer targets, int N, int V) =>
        Launch("softmax_cross_entropy", N, Threads, [Arg(losses), Arg(probs), Arg(logits), Arg(targets), Arg(N), Arg(V)]);

    // ---- backward ----

    public override void EncoderBackward(DeviceBuffer dwte, DeviceBuffer dwpe, DeviceBuffer dout, DeviceBuffer tokens, int B, int T, int C) =>
        LaunchElementwise("encoder_backward", (long)B * T * C, [Arg(dwte), Arg(dwpe), Arg(dout), Arg(tokens), Arg(B * T), Arg(T), Arg(C)]);

    public override void LayerNormBackward(DeviceBuffer dinput, DeviceBuffer dweight, DeviceBuffer dbias, DeviceBuffer dout, DeviceBuffer input, DeviceBuffer weight, DeviceBuffer mean, DeviceBuffer rstd, int N, int C) =>
        Launch("layernorm_backward", Math.Min(BlocksFor(N, WarpsPerBlock), LayerNormBackwardBlocks), Threads, [Arg(dinput), Arg(dweight), Arg(dbias), Arg(dout), Arg(input), Arg(weight), Arg(mean), Arg(rstd), Arg(N), Arg(C)]);

    public override void MatmulBackward(DeviceBuffer dinput, DeviceBuffer dweight, DeviceBuffer dbias, DeviceBuffer dout, DeviceBuffer input, DeviceBuffer weight, int N, int C, int OC)
    {
        RequireF32(weight);
        if (!dinput.IsNone) _blas.Gemm(false, true, N, C, OC, 1, Operand(dout, OC), Operand(weight, OC), 1, Operand(dinput, C));
        _blas.Gemm(true, false, C, OC, N, 1, Operand(input, C), Operand(dout, OC), 1, Operand(dweight, OC));
        if (!dbias.IsNone)
        {
            const int RowsPerBlock = 256;
            Launch("bias_backward", BlocksFor(OC, Threads) * BlocksFor(N, RowsPerBlock), Threads, [Arg(dbias), Arg(dout), Arg(N), Arg(OC), Arg(RowsPerBlock)]);
        }
    }

    public override void MatmulTransposedBackward(DeviceBuffer dinput, DeviceBuffer dweight, DeviceBuffer dout, DeviceBuffer input, DeviceBuffer weight, int N, int C, int OC)
    {
        RequireF32(weight);
        if (!dinput.IsNone) _blas.Gemm(false, false, N, C, OC, 1, Operand(dout, OC), Operand(weight, C), 1, Operand(dinput, C));
        _blas.Gemm(true, false, OC, C, N, 1, Operand(dout, OC), Operand(input, C), 1, Operand(dweight, C));
    }

    private static void RequireF32(DeviceBuffer weight)
    {
        if (weight.DType != TensorDType.F32) throw new Gpt2Exception($"training needs F32 weights; these are {weight.DType}");
    }

    public override void AttentionBackward(DeviceBuffer dqkv, DeviceBuffer dout, DeviceBuffer qkv, DeviceBuffer att, int B, int T, int C, int NH)
    {
        int d = C / NH, batch = B * NH;
        long n = (long)B * T * C, tt = (long)T * T, td = (long)T * d;
        ulong q = ScratchBuffer(Scratch.Q, n * 4), k = ScratchBuffer(Scratch.K, n * 4), v = ScratchBuffer(Scratch.V, n * 4), dy = ScratchBuffer(Scratch.Y, n * 4);
        ulong dq = ScratchBuffer(Scratch.DQ, n * 4), dk = ScratchBuffer(Scratch.DK, n * 4), dv = ScratchBuffer(Scratch.DV, n * 4);
        ulong datt = ScratchBuffer(Scratch.Scores, batch * tt * 4);
        LaunchElementwise("attention_permute", n, [q, k, v, Arg(qkv), Arg(B), Arg(T), Arg(NH), Arg(d)]);
        LaunchElementwise("attention_unpermute", n, [dy, Arg(dout), Arg(B), Arg(T), Arg(NH), Arg(d), Arg(1)]);
        _blas.Gemm(false, true, T, T, d, 1, Operand(dy, d, td), Operand(v, d, td), 0, Operand(datt, T, tt), batch);   // datt = dy v^T
        _blas.Gemm(true, false, T, d, T, 1, Operand(att, T, tt), Operand(dy, d, td), 0, Operand(dv, d, td), batch);   // dv = att^T dy
        Launch("attention_softmax_backward", BlocksFor((long)batch * T, WarpsPerBlock), Threads, [datt, Arg(att), Arg(batch * T), Arg(T), Arg(1 / MathF.Sqrt(d))]);
        _blas.Gemm(false, false, T, d, T, 1, Operand(datt, T, tt), Operand(k, d, td), 0, Operand(dq, d, td), batch);   // dq = dpre k
        _blas.Gemm(true, false, T, d, T, 1, Operand(datt, T, tt), Operand(q, d, td), 0, Operand(dk, d, td), batch);    // dk = dpre^T q
        LaunchElementwise("attention_permute_backward", n, [Arg(dqkv), dq, dk, dv, Arg(B), Arg(T), Arg(NH), Arg(d)]);
    }

    public override void GeluBackward(DeviceBuffer dinput, DeviceBuffer input, DeviceBuffer dout, int N) =>
        LaunchElementwise("gelu_backward", N, [Arg(dinput), Arg(input), Arg(dout), Arg((long)N)]);

    public override void Accumulate(DeviceBuffer destination, DeviceBuffer source, int N) =>
        LaunchElementwise("accumulate", N, [Arg(destination), Arg(source), Arg((long)N)]);

    public override void SoftmaxCrossEntropyBackward(DeviceBuffer dlogits, DeviceBuffer probs, DeviceBuffer targets, int N, int V, float scale) =>
        LaunchElementwise("softmax_cross_entropy_backward", (long)N * V, [Arg(dlogits), Arg(probs), Arg(targets), Arg(N), Arg(V), Arg(scale)]);

    // ---- optimizer ----

    public override void AdamW(DeviceBuffer parameters, DeviceBuffer gradients, DeviceBuffer m, DeviceBuffer v, float learningRate, float beta1, float beta2, float eps, float weightDecay, int t)
    {
        float correction1 = 1 - MathF.Pow(beta1, t), correction2 = 1 - MathF.Pow(beta2, t);
        LaunchElementwise("adamw", parameters.Count, [Arg(parameters), Arg(gradients), Arg(m), Arg(v), Arg(parameters.Count), Arg(learningRate), Arg(beta1), Arg(beta2), Arg(eps), Arg(weightDecay), Arg(correction1), Arg(correction2)]);
    }

    public override double SumOfSquares(DeviceBuffer buffer)
    {
        int blocks = (int)Math.Clamp(BlocksFor(buffer.Count, Threads), 1, SumBlocks);
        ulong partials = ScratchBuffer(Scratch.Partials, SumBlocks * sizeof(double));
        Launch("sum_of_squares", blocks, Threads, [partials, Arg(buffer), Arg(buffer.Count)]);
        Span<double> sums = stackalloc double[blocks];
        fixed (double* p = sums) _context.CopyToHost(p, partials, blocks * sizeof(double));
        double total = 0;
        foreach (double s in sums) total += s;
        return total;
    }

    public override void Scale(DeviceBuffer buffer, float factor) => LaunchElementwise("scale", buffer.Count, [Arg(buffer), Arg(factor), Arg(buffer.Count)]);

    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _context.Synchronize();
        foreach (ulong address in _allocations) _context.Free(address);
        _allocations.Clear();
        foreach (ulong address in _scratch.Where(a => a != 0)) _context.Free(address);
        _staging?.Dispose();
        _blas.Dispose();
        foreach (var module in _modules) module.Dispose();
        _context.Dispose();
        base.Dispose();
    }
}
