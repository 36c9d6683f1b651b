using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;

namespace Gpt2Engine.Validation;

/// <summary>The results of a validation: one line per checked group, and the reference groups nobody checked.</summary>
public sealed record ValidationReport(IReadOnlyList<CheckResult> Results, IReadOnlyList<string> NotChecked)
{
    public bool Passed => Results.All(r => r.Passed);
}

/// <summary>
/// Runs the engine on a reference file's inputs and compares its outputs (see tests/.../Fixtures/tiny/README.md for
/// the format). Each group of outputs is an <see cref="IReferenceCheck"/>; a new group (gradients, training losses,
/// updated parameters) is a new class added to <see cref="Checks"/>.
/// </summary>
public static class ReferenceValidator
{
    /// <summary>Tensors that are inputs of the checks, not outputs to verify.</summary>
    private static readonly string[] Inputs = ["tokens", "prompt"];

    public static IReadOnlyList<IReferenceCheck> Checks { get; } =
    [
        new LogitsAndLossCheck(),
        new GreedyDecodingCheck(),
        new GradientsCheck(),
        new AdamWStepsCheck(),
    ];

    /// <summary>Validates <paramref name="weights"/> on <paramref name="backend"/> against the reference file at <paramref name="referencePath"/>.</summary>
    public static ValidationReport Validate(Gpt2Weights weights, Backend backend, string referencePath, double? tolerance = null, IReadOnlyList<IReferenceCheck>? checks = null)
    {
        if (tolerance is { } t && !(t >= 0)) throw new Gpt2Exception($"tolerance {t} must be a number >= 0");
        if (!File.Exists(referencePath)) throw new Gpt2Exception($"{referencePath}: reference file not found");
        using var reference = SafetensorsFile.Open(referencePath);
        using var context = new ReferenceContext(reference, weights, backend, tolerance);
        var results = new List<CheckResult>();
        var ran = new List<IReferenceCheck>();
        foreach (var check in checks ?? Checks)
        {
            if (!check.Requires.All(context.Has)) continue;
            results.AddRange(check.Run(context));
            ran.Add(check);
        }
        var notChecked = reference.Tensors.Keys
            .Where(name => !Inputs.Contains(name) && !ran.Any(c => c.Covers(name)))
            .Select(GroupName)
            .Distinct()
            .Order(StringComparer.Ordinal)
            .ToList();
        return new ValidationReport(results, notChecked);
    }

    /// <summary>"grad.h.0.ln_1.weight" → "grad.*": per-parameter tensors are reported as one group.</summary>
    private static string GroupName(string tensor)
    {
        int dot = tensor.IndexOf('.');
        return dot < 0 ? tensor : tensor[..dot] + ".*";
    }
}
