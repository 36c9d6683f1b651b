using Gpt2Engine.Cpu;
using Xunit;

namespace Gpt2Engine.Tests.Cpu;

/// <summary>LayerNorm forward (vectorised with TensorPrimitives) against a float64 loop, on odd widths.</summary>
public sealed unsafe class LayerNormKernelTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(19)]
    [InlineData(768)]
    [InlineData(1001)]
    public void Forward_matches_float64_layernorm(int C)
    {
        const int N = 5;
        var random = new Random(C);
        float[] Random(int count, double scale, double shift) => Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * scale + shift)).ToArray();
        var input = Random(N * C, 6, -2); // not centred, so the mean matters
        var weight = Random(C, 2, -1);
        var bias = Random(C, 1, -0.5);
        var output = new float[N * C];
        var mean = new float[N];
        var rstd = new float[N];
        fixed (float* o = output, m = mean, r = rstd, x = input, w = weight, b = bias)
            LayerNormKernels.Forward(o, m, r, x, w, b, N, C, threads: 2);

        for (int n = 0; n < N; n++)
        {
            double mu = 0, variance = 0;
            for (int i = 0; i < C; i++) mu += input[n * C + i];
            mu /= C;
            for (int i = 0; i < C; i++) variance += (input[n * C + i] - mu) * (input[n * C + i] - mu);
            double s = 1 / Math.Sqrt(variance / C + 1e-5);
            Assert.True(Math.Abs(mean[n] - mu) <= 1e-5, $"C={C} row {n}: mean {mean[n]}, expected {mu}");
            Assert.True(Math.Abs(rstd[n] - s) <= 1e-5 * s, $"C={C} row {n}: rstd {rstd[n]}, expected {s}");
            for (int i = 0; i < C; i++)
            {
                double expected = (input[n * C + i] - mu) * s * weight[i] + bias[i];
                Assert.True(Math.Abs(output[n * C + i] - expected) <= 2e-5, $"C={C} row {n}: y[{i}] = {output[n * C + i]}, expected {expected}");
            }
        }
    }
}
