using Xunit;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cpu;
using Gpt2Engine.Model;
using Gpt2Engine.Tests.Cpu;

namespace Gpt2Engine.Tests.Model;

/// <summary>
/// The whole model against the tiny reference fixture (float64 PyTorch, cross-checked with llm.c): logits, loss,
/// every gradient, five AdamW steps, and KV-cached greedy decoding, at every SIMD level (512-bit too, in .NET's software
/// vectors where this CPU lacks them). Tolerances from the fixture's README.
/// </summary>
public sealed class TinyReferenceTests
{
    private const int B = 2, T = 16;

    private static (int[] Inputs, int[] Targets) Batch(SafetensorsFile expected)
    {
        var tokens = expected["tokens"].AsSpan<int>();
        var inputs = new int[B * T];
        var targets = new int[B * T];
        for (int b = 0; b < B; b++)
        {
            tokens.Slice(b * (T + 1), T).CopyTo(inputs.AsSpan(b * T));
            tokens.Slice(b * (T + 1) + 1, T).CopyTo(targets.AsSpan(b * T));
        }
        return (inputs, targets);
    }

    [Theory]
    [MemberData(nameof(MatmulKernelTests.Levels), MemberType = typeof(MatmulKernelTests))]
    public void Forward_matches_reference_logits_and_loss(SimdLevel level)
    {
        using var expected = TestFixtures.OpenTinyExpected();
        using var model = new Gpt2Model(CheckpointLoader.Load(TestFixtures.TinyModel), CpuBackend.Emulating(2, level), ownsWeights: true, ownsBackend: true);
        var (inputs, targets) = Batch(expected);

        Assert.True(float.IsNaN(model.Forward(inputs, default, B, T)));
        Assert.True(TestFixtures.MaxAbsDiff(model.DownloadLogits(), expected["logits"].AsSpan<float>()) <= 1e-5);

        float loss = model.Forward(inputs, targets, B, T);
        Assert.InRange(Math.Abs(loss - expected["loss"].AsSpan<float>()[0]), 0, 1e-5);
    }

    [Theory]
    [MemberData(nameof(MatmulKernelTests.Levels), MemberType = typeof(MatmulKernelTests))]
    public void Backward_matches_every_reference_gradient(SimdLevel level)
    {
        using var expected = TestFixtures.OpenTinyExpected();
        using var model = new Gpt2Model(CheckpointLoader.Load(TestFixtures.TinyModel), CpuBackend.Emulating(2, level), trainable: true, ownsWeights: true, ownsBackend: true);
        var (inputs, targets) = Batch(expected);
        model.Forward(inputs, targets, B, T);
        model.ZeroGradients();
        model.Backward();

        var gradients = new float[model.Layout.TotalCount];
        model.Backend.Download<float>(model.GradientMemory, gradients);
        foreach (var spec in model.Layout.Specs)
        {
            var reference = expected["grad." + spec.Name].AsSpan<float>();
            var actual = gradients.AsSpan((int)spec.Offset, (int)spec.Count);
            double largest = 0;
            foreach (float g in reference) largest = Math.Max(largest, Math.Abs(g));
            double error = TestFixtures.MaxAbsDiff(actual, reference);
            Assert.True(error <= 1e-5 * largest, $"{spec.Name}: max abs error {error:E2} vs largest gradient {largest:E2}");
        }
    }

    [Theory]
    [MemberData(nameof(MatmulKernelTests.Levels), MemberType = typeof(MatmulKernelTests))]
    public void Five_AdamW_steps_match_reference_losses_and_parameters(SimdLevel level)
    {
        using var expected = TestFixtures.OpenTinyExpected();
        using var model = new Gpt2Model(CheckpointLoader.Load(TestFixtures.TinyModel), CpuBackend.Emulating(2, level), trainable: true, ownsWeights: true, ownsBackend: true);
        var (inputs, targets) = Batch(expected);
        var losses = expected["losses"].AsSpan<float>().ToArray();
        for (int step = 0; step < losses.Length; step++)
        {
            float loss = model.Forward(inputs, targets, B, T);
            Assert.InRange(Math.Abs(loss - losses[step]), 0, 1e-5);
            model.ZeroGradients();
            model.Backward();
            model.Update(1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, step + 1);
        }
        var parameters = new float[model.Layout.TotalCount];
        model.Backend.Download<float>(model.ParameterMemory, parameters);
        int C = model.Config.Channels;
        foreach (var spec in model.Layout.Specs)
        {
            var reference = expected["updated." + spec.Name].AsSpan<float>();
            var actual = parameters.AsSpan((int)spec.Offset, (int)spec.Count);
            if (spec.Name.EndsWith("attn.c_attn.bias"))
            {
                // The key slice [C, 2C) has a mathematically zero gradient; AdamW turns its rounding noise into moves of
                // up to lr per step (fixture README), so only the query and value slices are compared tightly.
                Assert.True(TestFixtures.MaxAbsDiff(actual[..C], reference[..C]) <= 1e-5, spec.Name);
                Assert.True(TestFixtures.MaxAbsDiff(actual[(2 * C)..], reference[(2 * C)..]) <= 1e-5, spec.Name);
                Assert.True(TestFixtures.MaxAbsDiff(actual[C..(2 * C)], reference[C..(2 * C)]) <= 5 * 1e-4 + 1e-6, spec.Name);
                continue;
            }
            double tolerance = spec.Name.Contains("ln_") && spec.Name.EndsWith(".weight") ? 2e-6 : 1e-5; // weight decay shows on LN weights
            double error = TestFixtures.MaxAbsDiff(actual, reference);
            Assert.True(error <= tolerance, $"{spec.Name}: max abs error {error:E2}");
        }
    }

    [Theory]
    [MemberData(nameof(MatmulKernelTests.Levels), MemberType = typeof(MatmulKernelTests))]
    public void Kv_cached_greedy_decoding_matches_reference_logits_and_tokens(SimdLevel level)
    {
        using var model = new Gpt2Model(CheckpointLoader.Load(TestFixtures.TinyModel), CpuBackend.Emulating(2, level), ownsWeights: true, ownsBackend: true);
        TestFixtures.AssertGreedyDecodingMatchesTiny(model);
    }
}
