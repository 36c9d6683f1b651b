namespace Gpt2Engine.Cpu;

/// <summary>AdamW as torch.optim.AdamW: bias-corrected moments, decoupled weight decay.</summary>
internal static unsafe class AdamWKernel
{
    public static void Step(float* parameters, float* gradients, float* m, float* v, long count, float lr, float beta1, float beta2, float eps, float weightDecay, int t, int threads)
    {
        float correction1 = 1f - MathF.Pow(beta1, t), correction2 = 1f - MathF.Pow(beta2, t);
        const int Chunk = 1 << 16;
        int chunks = (int)((count + Chunk - 1) / Chunk);
        CpuParallel.For(chunks, threads, (start, end) =>
        {
            long from = (long)start * Chunk, to = Math.Min(count, (long)end * Chunk);
            for (long i = from; i < to; i++)
            {
                float g = gradients[i];
                float mi = m[i] = beta1 * m[i] + (1f - beta1) * g;
                float vi = v[i] = beta2 * v[i] + (1f - beta2) * g * g;
                float mHat = mi / correction1, vHat = vi / correction2;
                parameters[i] -= lr * (mHat / (MathF.Sqrt(vHat) + eps) + weightDecay * parameters[i]);
            }
        });
    }
}
