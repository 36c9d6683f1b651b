using System.Runtime.Intrinsics;
using Gpt2Engine.Cpu;
using Xunit;

namespace Gpt2Engine.Tests.Cpu;

/// <summary>
/// The kernels' inlined vector exp against float64 Math.Exp, at every vector width (those this machine lacks in .NET's
/// software fallback, see <see cref="MatmulKernelTests.Levels"/>).
/// </summary>
public sealed unsafe class VectorExpTests
{
    public static TheoryData<SimdLevel> VectorLevels() => new(Enum.GetValues<SimdLevel>().Where(l => l != SimdLevel.Scalar));

    private static float[] Exp(SimdLevel level, float[] input)
    {
        var output = new float[input.Length];
        fixed (float* x = input, y = output)
        {
            for (int i = 0; i + 16 <= input.Length; i += 16)
                switch (level)
                {
                    case SimdLevel.V512: Ops512.Store(y + i, VectorExp.Exp<Ops512, Vector512<float>>(Ops512.Load(x + i))); break;
                    case SimdLevel.V256:
                        for (int j = i; j < i + 16; j += 8) Ops256.Store(y + j, VectorExp.Exp<Ops256, Vector256<float>>(Ops256.Load(x + j)));
                        break;
                    default:
                        for (int j = i; j < i + 16; j += 4) Ops128.Store(y + j, VectorExp.Exp<Ops128, Vector128<float>>(Ops128.Load(x + j)));
                        break;
                }
        }
        return output;
    }

    [Theory]
    [MemberData(nameof(VectorLevels))]
    public void Exp_is_within_two_ulps_of_float64_over_its_range(SimdLevel level)
    {
        var random = new Random(3);
        // Exact ties of n ln2 and the clamp's edges, then random points over the whole range.
        var input = new float[4096];
        float[] edges = [0f, -0f, 1f, -1f, 0.34657359f, -0.34657359f, 0.6931472f, 10f, -10f, 87.9f, 88f, -86.9f, -87f, 1e-8f, -1e-8f, 42.5f];
        edges.CopyTo(input, 0);
        for (int i = edges.Length; i < input.Length; i++) input[i] = (float)(random.NextDouble() * 175 - 87);
        var output = Exp(level, input);
        for (int i = 0; i < input.Length; i++)
        {
            double expected = Math.Exp(input[i]);
            Assert.True(Math.Abs(output[i] - expected) <= 2 * 1.1920929e-7 * expected, $"{level}: exp({input[i]:G9}) = {output[i]:G9}, expected {expected:G9}");
        }
    }

    [Theory]
    [MemberData(nameof(VectorLevels))]
    public void Exp_clamps_the_tails_and_passes_NaN_through(SimdLevel level)
    {
        float[] input = [-1000f, -88f, -100f, float.NegativeInfinity, 89f, 1000f, float.PositiveInfinity, float.NaN, .. new float[8]];
        var output = Exp(level, input);
        for (int i = 0; i < 4; i++) Assert.InRange(output[i], 0f, 2e-38f); // exp(-87) stands for anything smaller
        for (int i = 4; i < 7; i++) Assert.True(float.IsFinite(output[i]) && output[i] >= 1.6e38f, $"exp({input[i]}) = {output[i]}");
        Assert.True(float.IsNaN(output[7]), $"exp(NaN) = {output[7]}");
    }
}
