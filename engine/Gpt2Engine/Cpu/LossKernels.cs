namespace Gpt2Engine.Cpu;

/// <summary>Softmax + cross-entropy over the vocabulary, forward and backward (in place over the logits).</summary>
internal static unsafe class LossKernels
{
    public static void SoftmaxCrossEntropy(float* losses, float* probs, float* logits, int* targets, int N, int V, int threads) =>
        CpuParallel.For(N, threads, new ForwardRows(losses, probs, logits, targets, V));

    /// <summary>Rows [start, end) of <see cref="SoftmaxCrossEntropy"/>.</summary>
    private readonly struct ForwardRows(float* losses, float* probs, float* logits, int* targets, int V) : IRangeBody
    {
        public void Run(int start, int end)
        {
            for (int n = start; n < end; n++)
            {
                float* z = logits + (long)n * V, p = probs + (long)n * V;
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
                if (losses != null) losses[n] = -MathF.Log(p[targets[n]]);
            }
        }
    }

    public static void SoftmaxCrossEntropyBackward(float* dlogits, float* probs, int* targets, int N, int V, float scale, int threads) =>
        CpuParallel.For(N, threads, new BackwardRows(dlogits, probs, targets, V, scale));

    /// <summary>Rows [start, end) of <see cref="SoftmaxCrossEntropyBackward"/>.</summary>
    private readonly struct BackwardRows(float* dlogits, float* probs, int* targets, int V, float scale) : IRangeBody
    {
        public void Run(int start, int end)
        {
            for (int n = start; n < end; n++)
            {
                float* p = probs + (long)n * V, d = dlogits + (long)n * V;
                int target = targets[n];
                for (int i = 0; i < V; i++) d[i] = (p[i] - (i == target ? 1f : 0f)) * scale;
            }
        }
    }
}
