using System.Numerics;

namespace Gpt2Engine.Cpu;

/// <summary>AdamW as torch.optim.AdamW: bias-corrected moments, decoupled weight decay. Memory-bound: one pass over four arrays.</summary>
internal static unsafe class AdamWKernel
{
    private const int Chunk = 1 << 16;

    public static void Step(float* parameters, float* gradients, float* m, float* v, long count, float lr, float beta1, float beta2, float eps, float weightDecay, int t, int threads)
    {
        float correction1 = 1f - MathF.Pow(beta1, t), correction2 = 1f - MathF.Pow(beta2, t);
        int chunks = (int)((count + Chunk - 1) / Chunk);
        CpuParallel.For(chunks, threads, new StepChunks(parameters, gradients, m, v, count, lr, beta1, beta2, eps, weightDecay, correction1, correction2));
    }

    /// <summary>Chunks [start, end) of <see cref="Step"/>.</summary>
    private readonly struct StepChunks(float* parameters, float* gradients, float* m, float* v, long count,
        float lr, float beta1, float beta2, float eps, float weightDecay, float correction1, float correction2) : IRangeBody
    {
        public void Run(int start, int end)
        {
            long from = (long)start * Chunk, to = Math.Min(count, (long)end * Chunk);
            long i = from;
            // The same operations in the same order as the scalar loop below (no fused multiply-add), lane by lane.
            for (; i + Vector<float>.Count <= to; i += Vector<float>.Count)
            {
                var g = Vector.Load(gradients + i);
                var mi = beta1 * Vector.Load(m + i) + (1f - beta1) * g;
                var vi = beta2 * Vector.Load(v + i) + (1f - beta2) * g * g;
                mi.Store(m + i);
                vi.Store(v + i);
                var p = Vector.Load(parameters + i);
                (p - lr * (mi / correction1 / (Vector.SquareRoot(vi / correction2) + new Vector<float>(eps)) + weightDecay * p)).Store(parameters + i);
            }
            for (; i < to; i++)
            {
                float g = gradients[i];
                float mi = m[i] = beta1 * m[i] + (1f - beta1) * g;
                float vi = v[i] = beta2 * v[i] + (1f - beta2) * g * g;
                float mHat = mi / correction1, vHat = vi / correction2;
                parameters[i] -= lr * (mHat / (MathF.Sqrt(vHat) + eps) + weightDecay * parameters[i]);
            }
        }
    }
}
