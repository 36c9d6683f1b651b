using Xunit;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cpu;
using Gpt2Engine.Validation;

namespace Gpt2Engine.Tests.Training;

/// <summary>The training groups of the reference validator (grad.*, losses, updated.*) on the tiny fixture.</summary>
public sealed class TrainingChecksTests
{
    private static ValidationReport Validate(double? tolerance)
    {
        using var weights = CheckpointLoader.Load(TestFixtures.TinyModel);
        using var backend = new CpuBackend(2);
        return ReferenceValidator.Validate(weights, backend, TestFixtures.Path("tiny", "expected.safetensors"), tolerance,
            [new GradientsCheck(), new AdamWStepsCheck()]);
    }

    [Fact]
    public void Tiny_fixture_gradients_and_adamw_steps_pass()
    {
        var report = Validate(tolerance: null);
        Assert.Equal(["grad.*", "losses", "updated.*", "updated key bias"], report.Results.Select(r => r.Name));
        Assert.All(report.Results, r => Assert.True(r.Passed, r.ToString()));
        Assert.DoesNotContain(report.NotChecked, name => name is "grad.*" or "losses" or "updated.*");
    }

    [Fact]
    public void A_tolerance_below_float32_rounding_fails()
    {
        var report = Validate(tolerance: 1e-12);
        Assert.False(report.Results.Single(r => r.Name == "grad.*").Passed);
        Assert.False(report.Results.Single(r => r.Name == "updated.*").Passed);
    }
}
