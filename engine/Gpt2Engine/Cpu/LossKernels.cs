using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Gpt2Engine.Cpu;

/// <summary>Softmax + cross-entropy over the vocabulary, forward and backward (in place over the logits).</summary>
internal static unsafe class LossKernels
{
    /// <summary>Exponentials summed in a float vector this many at a time, each block's total added in float64.</summary>
    private const int SumBlock = 1024;

    public static void SoftmaxCrossEntropy(float* losses, float* probs, float* logits, int* targets, int N, int V, int threads, SimdLevel level) =>
        CpuParallel.For(N, threads, new ForwardRows(losses, probs, logits, targets, V, level));

    /// <summary>Rows [start, end) of <see cref="SoftmaxCrossEntropy"/>.</summary>
    private readonly struct ForwardRows(float* losses, float* probs, float* logits, int* targets, int V, SimdLevel level) : IRangeBody
    {
        public void Run(int start, int end)
        {
            for (int n = start; n < end; n++)
            {
                float* z = logits + (long)n * V, p = probs + (long)n * V;
                float target = losses != null ? z[targets[n]] : 0f; // read before p (which may be z) is written
                double logSumExp = level switch
                {
                    SimdLevel.V512 => Softmax<Ops512, Vector512<float>>(p, z, V),
                    SimdLevel.V256 => Softmax<Ops256, Vector256<float>>(p, z, V),
                    SimdLevel.V128 => Softmax<Ops128, Vector128<float>>(p, z, V),
                    _ => SoftmaxReference(p, z, V),
                };
                // -log p[target] from the logits: exact even where p[target] underflows.
                if (losses != null) losses[n] = (float)(logSumExp - target);
            }
        }
    }

    /// <summary>
    /// p = softmax(z) over one row (p may be z), returning log(sum(exp(z))): the exponentials in registers, their sum in
    /// float64 by blocks.
    /// </summary>
    private static double Softmax<TOps, TV>(float* p, float* z, int V) where TOps : IVectorOps<TV> where TV : unmanaged
    {
        float max = TensorPrimitives.Max(new ReadOnlySpan<float>(z, V));
        TV minusMax = TOps.Broadcast(-max);
        double sum = 0;
        int i = 0;
        while (i <= V - TOps.Count)
        {
            TV block = TOps.Zero;
            for (int blockEnd = Math.Min(V - TOps.Count, i + SumBlock); i <= blockEnd; i += TOps.Count)
            {
                TV e = VectorExp.Exp<TOps, TV>(TOps.Add(TOps.Load(z + i), minusMax));
                TOps.Store(p + i, e);
                block = TOps.Add(block, e);
            }
            sum += TOps.Sum(block);
        }
        for (; i < V; i++) sum += p[i] = MathF.Exp(z[i] - max);
        var row = new Span<float>(p, V);
        TensorPrimitives.Multiply(row, (float)(1.0 / sum), row);
        return max + Math.Log(sum);
    }

    /// <summary>The scalar reference of <see cref="Softmax{TOps, TV}"/>, and the <see cref="SimdLevel.Scalar"/> path.</summary>
    internal static double SoftmaxReference(float* p, float* z, int V)
    {
        float max = float.NegativeInfinity;
        for (int i = 0; i < V; i++) max = MathF.Max(max, z[i]);
        double sum = 0;
        for (int i = 0; i < V; i++)
        {
            float e = MathF.Exp(z[i] - max);
            p[i] = e;
            sum += e;
        }
        float inverse = (float)(1.0 / sum);
        for (int i = 0; i < V; i++) p[i] *= inverse;
        return max + Math.Log(sum);
    }

    public static void SoftmaxCrossEntropyBackward(float* dlogits, float* probs, int* targets, int N, int V, float scale, int threads) =>
        CpuParallel.For(N, threads, new BackwardRows(dlogits, probs, targets, V, scale));

    /// <summary>Rows [start, end) of <see cref="SoftmaxCrossEntropyBackward"/>: dlogits = (p - onehot(target)) * scale.</summary>
    private readonly struct BackwardRows(float* dlogits, float* probs, int* targets, int V, float scale) : IRangeBody
    {
        public void Run(int start, int end)
        {
            for (int n = start; n < end; n++)
            {
                float* p = probs + (long)n * V, d = dlogits + (long)n * V;
                int target = targets[n];
                float atTarget = (p[target] - 1f) * scale; // read before d (which may be p) is written
                TensorPrimitives.Multiply(new ReadOnlySpan<float>(p, V), scale, new Span<float>(d, V));
                d[target] = atTarget;
            }
        }
    }
}
