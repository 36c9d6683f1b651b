using Gpt2Engine.Cpu;
using Xunit;

namespace Gpt2Engine.Tests.Cpu;

/// <summary>Softmax + cross-entropy at every SIMD level against float64, on odd vocabulary sizes and extreme logits.</summary>
public sealed unsafe class LossKernelTests
{
    [Theory]
    [MemberData(nameof(MatmulKernelTests.Levels), MemberType = typeof(MatmulKernelTests))]
    public void Softmax_and_loss_match_float64(SimdLevel level)
    {
        var random = new Random(17);
        foreach (int V in (int[])[1, 7, 301, 5003])
        {
            const int N = 3;
            var logits = new float[N * V];
            for (int i = 0; i < logits.Length; i++) logits[i] = (float)(random.NextDouble() * 10 - 5);
            int[] targets = [0, V - 1, V / 2];
            // Row 1: the target 150 below the rest, where its probability underflows float32 (the loss is still ~150).
            if (V > 1) logits[V + V - 1] = -155f;
            // Row 2: logits far from zero (the shift by the maximum keeps exp in range).
            for (int v = 0; v < V; v++) logits[2 * V + v] += 1000f;
            var probs = new float[N * V];
            var losses = new float[N];
            fixed (float* pl = logits, pp = probs, ploss = losses)
            fixed (int* pt = targets)
                LossKernels.SoftmaxCrossEntropy(ploss, pp, pl, pt, N, V, threads: 2, level);
            for (int n = 0; n < N; n++)
            {
                var row = logits.AsSpan(n * V, V).ToArray();
                double max = row.Max(), logSum = Math.Log(row.Sum(z => Math.Exp(z - max))) + max;
                double expectedLoss = logSum - row[targets[n]];
                Assert.True(Math.Abs(losses[n] - expectedLoss) <= 1e-5 * Math.Max(1, expectedLoss), $"{level} V={V} row {n}: loss {losses[n]}, expected {expectedLoss:G9}");
                for (int v = 0; v < V; v++)
                {
                    double expected = Math.Exp(row[v] - logSum);
                    if (!(Math.Abs(probs[n * V + v] - expected) <= 1e-6 * expected + 1e-30))
                        Assert.Fail($"{level} V={V} row {n} p[{v}] = {probs[n * V + v]:G9}, expected {expected:G9}");
                }
            }
        }
    }
}
