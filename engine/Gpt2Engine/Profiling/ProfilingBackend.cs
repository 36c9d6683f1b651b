using System.Diagnostics;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;

namespace Gpt2Engine.Profiling;

/// <summary>
/// A <see cref="Backend"/> that forwards every operation to another one and times it, synchronising before and after
/// so that asynchronous (GPU) work is charged to the operation that issued it. Times add up per category: the op kind,
/// and for matmuls the layer they belong to, recognised by shape (qkv, attn proj, fc, fc proj, lm head).
/// Buffer management (allocate, free, weights) is not timed.
/// </summary>
public sealed class ProfilingBackend(Backend inner) : Backend
{
    private readonly Dictionary<string, (double Milliseconds, int Calls)> _totals = [];

    public Backend Inner => inner;
    public override string Name => inner.Name;

    /// <summary>Milliseconds and call counts per category since the last <see cref="Reset"/>.</summary>
    public IReadOnlyDictionary<string, (double Milliseconds, int Calls)> Totals => _totals;

    public void Reset() => _totals.Clear();

    /// <summary>Charges work done outside the backend (tokenizer, sampling) to <paramref name="category"/>.</summary>
    public void Record(string category, TimeSpan elapsed)
    {
        var (ms, calls) = _totals.GetValueOrDefault(category);
        _totals[category] = (ms + elapsed.TotalMilliseconds, calls + 1);
    }

    private long Start()
    {
        inner.Synchronize();
        return Stopwatch.GetTimestamp();
    }

    private void Stop(string category, long start)
    {
        inner.Synchronize();
        Record(category, Stopwatch.GetElapsedTime(start));
    }

    /// <summary>The layer a matmul [N,C] x [C,OC] belongs to, from its shape (a GPT-2 block's four matmuls differ in C and OC).</summary>
    internal static string MatmulCategory(int C, int OC) =>
        OC == 3 * C ? ProfileCategories.MatmulQkv
        : OC == 4 * C ? ProfileCategories.MatmulFc
        : C == 4 * OC ? ProfileCategories.MatmulFcProj
        : ProfileCategories.MatmulAttnProj;

    private const string Backward = " backward";

    // ---- memory: transfers are timed as I/O; allocation is set-up and not timed ----

    public override DeviceBuffer Allocate(long count, TensorDType dtype = TensorDType.F32) => inner.Allocate(count, dtype);
    public override void Free(DeviceBuffer buffer) => inner.Free(buffer);
    public override DeviceBuffer UseWeights(TensorView view) => inner.UseWeights(view);
    internal override bool BuffersAreHostMemory => inner.BuffersAreHostMemory;
    internal override void RequireAvailable(long bytes, string purpose) => inner.RequireAvailable(bytes, purpose);
    internal override long TrainingScratchBytes(Gpt2Config config, int B, int T) => inner.TrainingScratchBytes(config, B, T);
    public override void WarmUp(TensorDType weightType) => inner.WarmUp(weightType);
    public override void Synchronize() => inner.Synchronize();

    public override void Upload<T>(DeviceBuffer destination, ReadOnlySpan<T> source)
    {
        long s = Start();
        inner.Upload(destination, source);
        Stop(ProfileCategories.Io, s);
    }

    public override void Download<T>(DeviceBuffer source, Span<T> destination)
    {
        long s = Start();
        inner.Download(source, destination);
        Stop(ProfileCategories.Io, s);
    }

    public override void Copy(DeviceBuffer destination, DeviceBuffer source)
    {
        long s = Start();
        inner.Copy(destination, source);
        Stop(ProfileCategories.Io, s);
    }

    public override void Zero(DeviceBuffer buffer)
    {
        long s = Start();
        inner.Zero(buffer);
        Stop(ProfileCategories.Zero, s);
    }

    // ---- forward ----

    public override void Encoder(DeviceBuffer output, DeviceBuffer tokens, DeviceBuffer wte, DeviceBuffer wpe, int B, int T, int C, int position0)
    {
        long s = Start();
        inner.Encoder(output, tokens, wte, wpe, B, T, C, position0);
        Stop(ProfileCategories.Embedding, s);
    }

    public override void LayerNorm(DeviceBuffer output, DeviceBuffer mean, DeviceBuffer rstd, DeviceBuffer input, DeviceBuffer weight, DeviceBuffer bias, int N, int C)
    {
        long s = Start();
        inner.LayerNorm(output, mean, rstd, input, weight, bias, N, C);
        Stop(ProfileCategories.LayerNorm, s);
    }

    public override void Matmul(DeviceBuffer output, DeviceBuffer input, DeviceBuffer weight, DeviceBuffer bias, int N, int C, int OC)
    {
        long s = Start();
        inner.Matmul(output, input, weight, bias, N, C, OC);
        Stop(MatmulCategory(C, OC), s);
    }

    public override void MatmulTransposed(DeviceBuffer output, DeviceBuffer input, DeviceBuffer weight, int N, int C, int OC)
    {
        long s = Start();
        inner.MatmulTransposed(output, input, weight, N, C, OC);
        Stop(ProfileCategories.MatmulLmHead, s);
    }

    public override void Attention(DeviceBuffer output, DeviceBuffer att, DeviceBuffer qkv, int B, int T, int C, int NH)
    {
        long s = Start();
        inner.Attention(output, att, qkv, B, T, C, NH);
        Stop(ProfileCategories.Attention, s);
    }

    public override void AttentionCached(DeviceBuffer output, DeviceBuffer qkv, DeviceBuffer keyCache, DeviceBuffer valueCache, int B, int T, int position0, int maxT, int C, int NH)
    {
        long s = Start();
        inner.AttentionCached(output, qkv, keyCache, valueCache, B, T, position0, maxT, C, NH);
        Stop(ProfileCategories.Attention, s);
    }

    public override void Gelu(DeviceBuffer output, DeviceBuffer input, int N)
    {
        long s = Start();
        inner.Gelu(output, input, N);
        Stop(ProfileCategories.Gelu, s);
    }

    public override void Residual(DeviceBuffer output, DeviceBuffer a, DeviceBuffer b, int N)
    {
        long s = Start();
        inner.Residual(output, a, b, N);
        Stop(ProfileCategories.Residual, s);
    }

    public override void SoftmaxCrossEntropy(DeviceBuffer losses, DeviceBuffer probs, DeviceBuffer logits, DeviceBuffer targets, int N, int V)
    {
        long s = Start();
        inner.SoftmaxCrossEntropy(losses, probs, logits, targets, N, V);
        Stop(ProfileCategories.CrossEntropy, s);
    }

    // ---- backward ----

    public override void EncoderBackward(DeviceBuffer dwte, DeviceBuffer dwpe, DeviceBuffer dout, DeviceBuffer tokens, int B, int T, int C)
    {
        long s = Start();
        inner.EncoderBackward(dwte, dwpe, dout, tokens, B, T, C);
        Stop(ProfileCategories.Embedding + Backward, s);
    }

    public override void LayerNormBackward(DeviceBuffer dinput, DeviceBuffer dweight, DeviceBuffer dbias, DeviceBuffer dout, DeviceBuffer input, DeviceBuffer weight, DeviceBuffer mean, DeviceBuffer rstd, int N, int C)
    {
        long s = Start();
        inner.LayerNormBackward(dinput, dweight, dbias, dout, input, weight, mean, rstd, N, C);
        Stop(ProfileCategories.LayerNorm + Backward, s);
    }

    public override void MatmulBackward(DeviceBuffer dinput, DeviceBuffer dweight, DeviceBuffer dbias, DeviceBuffer dout, DeviceBuffer input, DeviceBuffer weight, int N, int C, int OC)
    {
        long s = Start();
        inner.MatmulBackward(dinput, dweight, dbias, dout, input, weight, N, C, OC);
        Stop(MatmulCategory(C, OC) + Backward, s);
    }

    public override void MatmulTransposedBackward(DeviceBuffer dinput, DeviceBuffer dweight, DeviceBuffer dout, DeviceBuffer input, DeviceBuffer weight, int N, int C, int OC)
    {
        long s = Start();
        inner.MatmulTransposedBackward(dinput, dweight, dout, input, weight, N, C, OC);
        Stop(ProfileCategories.MatmulLmHead + Backward, s);
    }

    public override void AttentionBackward(DeviceBuffer dqkv, DeviceBuffer dout, DeviceBuffer qkv, DeviceBuffer att, int B, int T, int C, int NH)
    {
        long s = Start();
        inner.AttentionBackward(dqkv, dout, qkv, att, B, T, C, NH);
        Stop(ProfileCategories.Attention + Backward, s);
    }

    public override void GeluBackward(DeviceBuffer dinput, DeviceBuffer input, DeviceBuffer dout, int N)
    {
        long s = Start();
        inner.GeluBackward(dinput, input, dout, N);
        Stop(ProfileCategories.Gelu + Backward, s);
    }

    public override void Accumulate(DeviceBuffer destination, DeviceBuffer source, int N)
    {
        long s = Start();
        inner.Accumulate(destination, source, N);
        Stop(ProfileCategories.Residual + Backward, s);
    }

    public override void SoftmaxCrossEntropyBackward(DeviceBuffer dlogits, DeviceBuffer probs, DeviceBuffer targets, int N, int V, float scale)
    {
        long s = Start();
        inner.SoftmaxCrossEntropyBackward(dlogits, probs, targets, N, V, scale);
        Stop(ProfileCategories.CrossEntropy + Backward, s);
    }

    // ---- optimizer ----

    public override void AdamW(DeviceBuffer parameters, DeviceBuffer gradients, DeviceBuffer m, DeviceBuffer v, float learningRate, float beta1, float beta2, float eps, float weightDecay, int t)
    {
        long s = Start();
        inner.AdamW(parameters, gradients, m, v, learningRate, beta1, beta2, eps, weightDecay, t);
        Stop(ProfileCategories.AdamW, s);
    }

    public override double SumOfSquares(DeviceBuffer buffer)
    {
        long s = Start();
        double result = inner.SumOfSquares(buffer);
        Stop(ProfileCategories.GradientClipping, s);
        return result;
    }

    public override void Scale(DeviceBuffer buffer, float factor)
    {
        long s = Start();
        inner.Scale(buffer, factor);
        Stop(ProfileCategories.GradientClipping, s);
    }

    public override void Dispose()
    {
        inner.Dispose();
        base.Dispose();
    }
}

/// <summary>The names under which <see cref="ProfilingBackend"/> and the profiler group their times.</summary>
public static class ProfileCategories
{
    public const string MatmulQkv = "matmul qkv";
    public const string MatmulAttnProj = "matmul attn proj";
    public const string MatmulFc = "matmul fc";
    public const string MatmulFcProj = "matmul fc proj";
    public const string MatmulLmHead = "matmul lm head";
    public const string Attention = "attention";
    public const string LayerNorm = "layernorm";
    public const string Gelu = "gelu";
    public const string Residual = "residual";
    public const string Embedding = "embedding";
    public const string CrossEntropy = "softmax/cross-entropy";
    public const string AdamW = "adamw";
    public const string GradientClipping = "gradient norm";
    public const string Zero = "zero gradients";
    public const string Io = "I/O (host<->device)";
    public const string Sampling = "sampling";
    public const string Tokenizer = "tokenizer";
    /// <summary>Time in the step that no category accounts for (model code between operations).</summary>
    public const string Other = "other";
}
