using System.Numerics.Tensors;

namespace Gpt2Engine.Cpu;

/// <summary>LayerNorm over the last dimension (biased variance, eps 1e-5), forward and backward.</summary>
internal static unsafe class LayerNormKernels
{
    private const float Eps = Model.Gpt2Config.LayerNormEpsilon;

    public static void Forward(float* output, float* mean, float* rstd, float* input, float* weight, float* bias, int N, int C, int threads) =>
        CpuParallel.For(N, threads, new ForwardRows(output, mean, rstd, input, weight, bias, C));

    /// <summary>Rows [start, end) of <see cref="Forward"/>.</summary>
    private readonly struct ForwardRows(float* output, float* mean, float* rstd, float* input, float* weight, float* bias, int C) : IRangeBody
    {
        public void Run(int start, int end)
        {
            for (int n = start; n < end; n++)
            {
                var x = new ReadOnlySpan<float>(input + (long)n * C, C);
                var y = new Span<float>(output + (long)n * C, C);
                // Two passes, as llm.c: the mean, then the variance of x - m (kept in y), vectorised.
                float m = TensorPrimitives.Sum(x) / C;
                TensorPrimitives.Subtract(x, m, y);
                float s = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(y) / C + Eps);
                TensorPrimitives.Multiply(y, s, y);
                TensorPrimitives.MultiplyAdd(y, new ReadOnlySpan<float>(weight, C), new ReadOnlySpan<float>(bias, C), y);
                if (mean != null) mean[n] = m;
                if (rstd != null) rstd[n] = s;
            }
        }
    }

    public static void Backward(float* dinput, float* dweight, float* dbias, float* dout, float* input, float* weight, float* mean, float* rstd, int N, int C, int threads)
    {
        // Rows are independent for dinput; dweight and dbias sum over rows, so they are split by channel instead.
        CpuParallel.For(N, threads, new InputGradientRows(dinput, dout, input, weight, mean, rstd, C));
        CpuParallel.For(C, threads, new ParameterGradientChannels(dweight, dbias, dout, input, mean, rstd, N, C));
    }

    /// <summary>Rows [start, end) of dinput.</summary>
    private readonly struct InputGradientRows(float* dinput, float* dout, float* input, float* weight, float* mean, float* rstd, int C) : IRangeBody
    {
        public void Run(int start, int end)
        {
            for (int n = start; n < end; n++)
            {
                float* x = input + (long)n * C, d = dout + (long)n * C, dx = dinput + (long)n * C;
                float m = mean[n], s = rstd[n];
                float dnormMean = 0f, dnormNormMean = 0f;
                for (int i = 0; i < C; i++)
                {
                    float norm = (x[i] - m) * s;
                    float dnorm = weight[i] * d[i];
                    dnormMean += dnorm;
                    dnormNormMean += dnorm * norm;
                }
                dnormMean /= C;
                dnormNormMean /= C;
                for (int i = 0; i < C; i++)
                {
                    float norm = (x[i] - m) * s;
                    float dnorm = weight[i] * d[i];
                    dx[i] += (dnorm - dnormMean - norm * dnormNormMean) * s;
                }
            }
        }
    }

    /// <summary>Channels [start, end) of dweight and dbias, summed over all rows.</summary>
    private readonly struct ParameterGradientChannels(float* dweight, float* dbias, float* dout, float* input, float* mean, float* rstd, int N, int C) : IRangeBody
    {
        public void Run(int start, int end)
        {
            for (int n = 0; n < N; n++)
            {
                float* x = input + (long)n * C, d = dout + (long)n * C;
                float m = mean[n], s = rstd[n];
                for (int i = start; i < end; i++)
                {
                    dbias[i] += d[i];
                    dweight[i] += (x[i] - m) * s * d[i];
                }
            }
        }
    }
}
