using Gpt2Engine.Cpu;
using Xunit;

namespace Gpt2Engine.Tests.Cpu;

/// <summary>The one-pass GELU at every SIMD level against GPT-2's tanh form in float64, on odd lengths and far into both tails.</summary>
public sealed unsafe class GeluKernelTests
{
    [Theory]
    [MemberData(nameof(MatmulKernelTests.Levels), MemberType = typeof(MatmulKernelTests))]
    public void Gelu_forward_matches_the_float64_tanh_form(SimdLevel level)
    {
        var random = new Random(5);
        foreach (int length in (int[])[1, 7, 15, 17, 33, 1023, 3075])
        foreach (int threads in (int[])[1, 2])
        {
            // Mostly the range activations live in, plus tails where exp(-2u) overflows or vanishes.
            var input = Enumerable.Range(0, length).Select(i => i % 11 == 0 ? (float)(random.NextDouble() * 200 - 100) : (float)(random.NextDouble() * 12 - 6)).ToArray();
            var output = new float[length];
            fixed (float* x = input, y = output) GeluKernels.Forward(y, x, length, threads, level);

            for (int i = 0; i < length; i++)
            {
                double v = input[i], expected = 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
                Assert.True(Math.Abs(output[i] - expected) <= 2e-7 + 1e-6 * Math.Abs(expected),
                    $"{level}, length {length}: gelu({input[i]:G9}) = {output[i]:G9}, expected {expected:G9}");
            }
        }
    }
}
