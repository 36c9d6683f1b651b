using Gpt2Engine.Model;

namespace Gpt2Engine.Validation;

/// <summary>
/// <c>grad.*</c>: the gradient of the mean loss over <c>tokens</c> for every parameter, each tensor compared relative
/// to its largest reference value (2e-5 by default). Reported as one group, naming the worst tensor.
/// </summary>
public sealed class GradientsCheck : IReferenceCheck
{
    public const double DefaultTolerance = 2e-5;

    public IReadOnlyList<string> Requires { get; } = ["tokens", "grad.wte.weight"];

    public bool Covers(string name) => name.StartsWith("grad.", StringComparison.Ordinal);

    public IEnumerable<CheckResult> Run(ReferenceContext context)
    {
        var (inputs, targets, B, T) = TrainingReference.Batch(context);
        using var model = new Gpt2Model(context.Weights, context.Backend, trainable: true);
        model.ZeroGradients();
        model.Forward(inputs, targets, B, T);
        model.Backward();
        var gradients = new float[model.Layout.TotalCount];
        model.Backend.Download<float>(model.GradientMemory, gradients);

        CheckResult? worst = null;
        string worstName = "";
        foreach (var spec in model.Layout.Specs)
        {
            var result = CheckResult.Compare("grad.*", gradients.AsSpan((int)spec.Offset, (int)spec.Count), context.Floats("grad." + spec.Name, spec.Shape), context.Tolerance(DefaultTolerance), relative: true);
            if (worst is null || result.MaxRelError > worst.MaxRelError) (worst, worstName) = (result, spec.Name);
        }
        yield return worst! with { Detail = $"{model.Layout.Specs.Count} tensors, worst {worstName}" };
    }
}

/// <summary>
/// <c>losses</c> and <c>updated.*</c>: AdamW steps on the <c>tokens</c> batch with the reference's hyperparameters
/// (lr 1e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.01 on every parameter, no clipping; see the tiny fixture's
/// README), comparing each step's loss and the final parameters (absolute, 2e-5 by default). The key slice
/// [C, 2C) of each attn.c_attn.bias has a gradient that is zero in exact arithmetic, so float32 noise moves it by
/// up to lr per step: it is its own group with tolerance steps x lr.
/// </summary>
public sealed class AdamWStepsCheck : IReferenceCheck
{
    public const double DefaultTolerance = 2e-5;
    public const float LearningRate = 1e-4f, Beta1 = 0.9f, Beta2 = 0.999f, Epsilon = 1e-8f, WeightDecay = 0.01f;

    public IReadOnlyList<string> Requires { get; } = ["tokens", "losses", "updated.wte.weight"];

    public bool Covers(string name) => name == "losses" || name.StartsWith("updated.", StringComparison.Ordinal);

    public IEnumerable<CheckResult> Run(ReferenceContext context)
    {
        var (inputs, targets, B, T) = TrainingReference.Batch(context);
        var expectedLosses = context.Floats("losses", -1);
        int steps = expectedLosses.Length;
        double tolerance = context.Tolerance(DefaultTolerance);
        using var model = new Gpt2Model(context.Weights, context.Backend, trainable: true);
        var losses = new float[steps];
        for (int step = 0; step < steps; step++)
        {
            model.ZeroGradients();
            losses[step] = model.Forward(inputs, targets, B, T);
            model.Backward();
            model.Update(LearningRate, Beta1, Beta2, Epsilon, WeightDecay, step + 1);
        }
        var parameters = new float[model.Layout.TotalCount];
        model.Backend.Download<float>(model.ParameterMemory, parameters);

        // Every updated tensor; the key-bias slices are set aside (copied from the reference) and compared on their own.
        int C = context.Config.Channels;
        var actual = new List<float>();
        var expected = new List<float>();
        var keyBiasActual = new List<float>();
        var keyBiasExpected = new List<float>();
        foreach (var spec in model.Layout.Specs)
        {
            var mine = parameters.AsSpan((int)spec.Offset, (int)spec.Count).ToArray();
            var reference = context.Floats("updated." + spec.Name, spec.Shape);
            if (spec.Name.EndsWith("attn.c_attn.bias", StringComparison.Ordinal))
            {
                keyBiasActual.AddRange(mine[C..(2 * C)]);
                keyBiasExpected.AddRange(reference[C..(2 * C)]);
                reference[C..(2 * C)].CopyTo(mine.AsSpan(C));
            }
            actual.AddRange(mine);
            expected.AddRange(reference);
        }
        double keyBiasTolerance = context.Tolerance(steps * LearningRate);
        return
        [
            CheckResult.Compare("losses", losses, expectedLosses, tolerance, relative: false) with { Detail = $"{steps} AdamW steps, last loss {losses[^1]:0.000000} expected {expectedLosses[^1]:0.000000}" },
            CheckResult.Compare("updated.*", actual.ToArray(), expected.ToArray(), tolerance, relative: false) with { Detail = "all parameters but the key biases" },
            CheckResult.Compare("updated key bias", keyBiasActual.ToArray(), keyBiasExpected.ToArray(), keyBiasTolerance, relative: false)
                with { Detail = "zero gradient in exact arithmetic" + (keyBiasTolerance == steps * LearningRate ? ": tolerance steps x lr" : "") },
        ];
    }
}

/// <summary>The batch the training references are computed on.</summary>
internal static class TrainingReference
{
    public static (int[] Inputs, int[] Targets, int B, int T) Batch(ReferenceContext context)
    {
        var shape = context.Shape("tokens");
        if (shape.Length != 2 || shape[1] < 2) throw new Gpt2Exception($"{context.Reference.Path}: 'tokens' has shape [{string.Join(", ", shape)}], expected [B, T+1] with T >= 1");
        int B = shape[0], T = shape[1] - 1;
        var (inputs, targets) = LogitsAndLossCheck.SplitTokens(context.Ints("tokens", B, T + 1), B, T);
        return (inputs, targets, B, T);
    }
}
