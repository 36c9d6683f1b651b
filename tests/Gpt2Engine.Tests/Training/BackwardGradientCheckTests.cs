using Xunit;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cpu;
using Gpt2Engine.Model;

namespace Gpt2Engine.Tests.Training;

/// <summary>
/// Each backward kernel of the CPU backend against central finite differences of an independent float64 forward
/// written here. The objective is L = sum(output * R) for a fixed random R, so the upstream gradient is R. Gradient
/// outputs start at 0.25 to check that backward kernels accumulate. Shapes are small and odd-sized.
/// </summary>
public sealed class BackwardGradientCheckTests : IDisposable
{
    private const float Preset = 0.25f;
    private const double Step = 1e-5, Tolerance = 2e-4; // relative to the largest gradient component
    private readonly CpuBackend _cpu = new(2);
    private readonly Random _random = new(7);

    public void Dispose() => _cpu.Dispose();

    private double[] RandomValues(int n, double scale = 1) => Enumerable.Range(0, n).Select(_ => scale * (2 * _random.NextDouble() - 1)).ToArray();

    private DeviceBuffer Upload(double[] values)
    {
        var buffer = _cpu.Allocate(values.Length);
        _cpu.Upload<float>(buffer, values.Select(v => (float)v).ToArray());
        return buffer;
    }

    private DeviceBuffer Gradient(int n)
    {
        var buffer = _cpu.Allocate(n);
        _cpu.Upload<float>(buffer, Enumerable.Repeat(Preset, n).ToArray());
        return buffer;
    }

    private DeviceBuffer Ints(int[] values)
    {
        var buffer = _cpu.Allocate(values.Length, TensorDType.I32);
        _cpu.Upload<int>(buffer, values);
        return buffer;
    }

    private float[] Download(DeviceBuffer buffer)
    {
        var values = new float[buffer.Count];
        _cpu.Download<float>(buffer, values);
        return values;
    }

    /// <summary>The analytic gradient (less the preset) against central differences of <paramref name="objective"/> in <paramref name="x"/>.</summary>
    private static void AssertMatchesFiniteDifferences(DeviceBuffer analyticBuffer, CpuBackend cpu, double[] x, Func<double> objective, string what, float preset = Preset)
    {
        var analytic = new float[analyticBuffer.Count];
        cpu.Download<float>(analyticBuffer, analytic);
        var numeric = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double saved = x[i];
            x[i] = saved + Step;
            double plus = objective();
            x[i] = saved - Step;
            double minus = objective();
            x[i] = saved;
            numeric[i] = (plus - minus) / (2 * Step);
        }
        double largest = numeric.Max(Math.Abs);
        Assert.True(largest > 1e-3, $"{what}: the gradient is too small to test");
        for (int i = 0; i < x.Length; i++)
            Assert.True(Math.Abs(analytic[i] - preset - numeric[i]) <= Tolerance * largest, $"{what}[{i}]: analytic {analytic[i] - preset} vs numeric {numeric[i]}");
    }

    private static double Dot(double[] a, double[] b) => a.Zip(b, (x, y) => x * y).Sum();

    // ---------------------------------------------------------------- float64 reference forwards

    private static double[] LayerNorm(double[] x, double[] w, double[] b, int N, int C)
    {
        var y = new double[N * C];
        for (int n = 0; n < N; n++)
        {
            var row = x.AsSpan(n * C, C);
            double mean = 0, variance = 0;
            foreach (double v in row) mean += v / C;
            foreach (double v in row) variance += (v - mean) * (v - mean) / C;
            double rstd = 1 / Math.Sqrt(variance + 1e-5);
            for (int c = 0; c < C; c++) y[n * C + c] = (row[c] - mean) * rstd * w[c] + b[c];
        }
        return y;
    }

    /// <summary>y[N,OC] = x[N,C] @ W + b where W is [C,OC] (transposed: W is [OC,C] and there is no bias).</summary>
    private static double[] Matmul(double[] x, double[] w, double[]? b, int N, int C, int OC, bool transposed)
    {
        var y = new double[N * OC];
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++)
            {
                double sum = b?[o] ?? 0;
                for (int c = 0; c < C; c++) sum += x[n * C + c] * (transposed ? w[o * C + c] : w[c * OC + o]);
                y[n * OC + o] = sum;
            }
        return y;
    }

    private static double[] Attention(double[] qkv, int B, int T, int C, int NH)
    {
        int hs = C / NH;
        var y = new double[B * T * C];
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++)
                {
                    var scores = new double[t + 1];
                    for (int u = 0; u <= t; u++)
                    {
                        double s = 0;
                        for (int i = 0; i < hs; i++) s += qkv[(b * T + t) * 3 * C + h * hs + i] * qkv[(b * T + u) * 3 * C + C + h * hs + i];
                        scores[u] = s / Math.Sqrt(hs);
                    }
                    double max = scores.Max(), total = scores.Sum(s => Math.Exp(s - max));
                    for (int u = 0; u <= t; u++)
                        for (int i = 0; i < hs; i++)
                            y[(b * T + t) * C + h * hs + i] += Math.Exp(scores[u] - max) / total * qkv[(b * T + u) * 3 * C + 2 * C + h * hs + i];
                }
        return y;
    }

    private static double Gelu(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

    private static double CrossEntropy(double[] logits, int[] targets, int N, int V, double scale)
    {
        double loss = 0;
        for (int n = 0; n < N; n++)
        {
            var row = logits.AsSpan(n * V, V);
            double max = double.NegativeInfinity, total = 0;
            foreach (double v in row) max = Math.Max(max, v);
            foreach (double v in row) total += Math.Exp(v - max);
            loss += scale * (Math.Log(total) + max - row[targets[n]]);
        }
        return loss;
    }

    // ---------------------------------------------------------------- the checks

    [Fact]
    public void LayerNorm_backward_matches_finite_differences()
    {
        const int N = 3, C = 7;
        double[] x = RandomValues(N * C, 2), w = RandomValues(C), b = RandomValues(C), r = RandomValues(N * C);
        DeviceBuffer output = _cpu.Allocate(N * C), mean = _cpu.Allocate(N), rstd = _cpu.Allocate(N), input = Upload(x), weight = Upload(w);
        DeviceBuffer dinput = Gradient(N * C), dweight = Gradient(C), dbias = Gradient(C);
        _cpu.LayerNorm(output, mean, rstd, input, weight, Upload(b), N, C);
        _cpu.LayerNormBackward(dinput, dweight, dbias, Upload(r), input, weight, mean, rstd, N, C);

        double Objective() => Dot(LayerNorm(x, w, b, N, C), r);
        AssertMatchesFiniteDifferences(dinput, _cpu, x, Objective, "dinput");
        AssertMatchesFiniteDifferences(dweight, _cpu, w, Objective, "dweight");
        AssertMatchesFiniteDifferences(dbias, _cpu, b, Objective, "dbias");
    }

    [Fact]
    public void Matmul_backward_matches_finite_differences()
    {
        const int N = 5, C = 9, OC = 11;
        double[] x = RandomValues(N * C), w = RandomValues(C * OC), b = RandomValues(OC), r = RandomValues(N * OC);
        DeviceBuffer dinput = Gradient(N * C), dweight = Gradient(C * OC), dbias = Gradient(OC);
        _cpu.MatmulBackward(dinput, dweight, dbias, Upload(r), Upload(x), Upload(w), N, C, OC);

        double Objective() => Dot(Matmul(x, w, b, N, C, OC, transposed: false), r);
        AssertMatchesFiniteDifferences(dinput, _cpu, x, Objective, "dinput");
        AssertMatchesFiniteDifferences(dweight, _cpu, w, Objective, "dweight");
        AssertMatchesFiniteDifferences(dbias, _cpu, b, Objective, "dbias");
    }

    [Fact]
    public void MatmulTransposed_backward_matches_finite_differences()
    {
        const int N = 5, C = 9, OC = 13;
        double[] x = RandomValues(N * C), w = RandomValues(OC * C), r = RandomValues(N * OC);
        DeviceBuffer dinput = Gradient(N * C), dweight = Gradient(OC * C);
        _cpu.MatmulTransposedBackward(dinput, dweight, Upload(r), Upload(x), Upload(w), N, C, OC);

        double Objective() => Dot(Matmul(x, w, null, N, C, OC, transposed: true), r);
        AssertMatchesFiniteDifferences(dinput, _cpu, x, Objective, "dinput");
        AssertMatchesFiniteDifferences(dweight, _cpu, w, Objective, "dweight");
    }

    [Fact]
    public void Attention_backward_matches_finite_differences()
    {
        const int B = 2, T = 5, C = 12, NH = 3;
        double[] qkv = RandomValues(B * T * 3 * C), r = RandomValues(B * T * C);
        DeviceBuffer input = Upload(qkv), output = _cpu.Allocate(B * T * C), att = _cpu.Allocate(B * NH * T * T), dqkv = Gradient(B * T * 3 * C);
        _cpu.Attention(output, att, input, B, T, C, NH);
        _cpu.AttentionBackward(dqkv, Upload(r), input, att, B, T, C, NH);

        AssertMatchesFiniteDifferences(dqkv, _cpu, qkv, () => Dot(Attention(qkv, B, T, C, NH), r), "dqkv");
    }

    [Fact]
    public void Gelu_backward_matches_finite_differences()
    {
        const int N = 37;
        double[] x = RandomValues(N, 4), r = RandomValues(N);
        DeviceBuffer dinput = Gradient(N);
        _cpu.GeluBackward(dinput, Upload(x), Upload(r), N);

        AssertMatchesFiniteDifferences(dinput, _cpu, x, () => Dot(x.Select(Gelu).ToArray(), r), "dinput");
    }

    [Fact]
    public void SoftmaxCrossEntropy_backward_matches_finite_differences()
    {
        const int N = 4, V = 11;
        const float scale = 0.25f;
        double[] logits = RandomValues(N * V, 3);
        int[] targets = [3, 0, 10, 3];
        DeviceBuffer input = Upload(logits), probs = _cpu.Allocate(N * V), losses = _cpu.Allocate(N), targetBuffer = Ints(targets);
        _cpu.SoftmaxCrossEntropy(losses, probs, input, targetBuffer, N, V);
        double[] expectedLosses = Enumerable.Range(0, N).Select(n => CrossEntropy(logits[(n * V)..((n + 1) * V)], [targets[n]], 1, V, 1)).ToArray();
        Assert.Equal(expectedLosses, Download(losses).Select(l => (double)l), new ToleranceComparer(1e-5));

        // This kernel overwrites dlogits (it is where backward starts): written in place over the probabilities, as the model does.
        _cpu.SoftmaxCrossEntropyBackward(probs, probs, targetBuffer, N, V, scale);
        AssertMatchesFiniteDifferences(probs, _cpu, logits, () => CrossEntropy(logits, targets, N, V, scale), "dlogits", preset: 0);
    }

    [Fact]
    public void Encoder_backward_matches_finite_differences()
    {
        const int B = 2, T = 3, C = 5, V = 7, maxT = 4;
        int[] tokens = [1, 6, 1, 0, 6, 6];
        double[] wte = RandomValues(V * C), wpe = RandomValues(maxT * C), r = RandomValues(B * T * C);
        DeviceBuffer dwte = Gradient(V * C), dwpe = Gradient(maxT * C);
        _cpu.EncoderBackward(dwte, dwpe, Upload(r), Ints(tokens), B, T, C);

        double Objective()
        {
            double sum = 0;
            for (int bt = 0; bt < B * T; bt++)
                for (int c = 0; c < C; c++)
                    sum += (wte[tokens[bt] * C + c] + wpe[bt % T * C + c]) * r[bt * C + c];
            return sum;
        }
        AssertMatchesFiniteDifferences(dwte, _cpu, wte, Objective, "dwte");
        AssertMatchesFiniteDifferences(dwpe, _cpu, wpe, Objective, "dwpe");
    }

    private sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) <= tolerance;
        public int GetHashCode(double value) => 0;
    }
}
