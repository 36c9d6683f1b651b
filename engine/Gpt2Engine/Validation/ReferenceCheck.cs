namespace Gpt2Engine.Validation;

/// <summary>
/// One group of reference outputs the engine can reproduce (e.g. the logits and loss of a full forward pass).
/// <see cref="ReferenceValidator"/> runs every check whose tensors the reference file has; the tensors that no check
/// covers are reported as not checked.
/// </summary>
public interface IReferenceCheck
{
    /// <summary>Reference tensors this check needs; it is skipped when one is missing.</summary>
    IReadOnlyList<string> Requires { get; }
    /// <summary>Whether this check verifies the reference tensor <paramref name="name"/> (an input it only reads does not count).</summary>
    bool Covers(string name);
    /// <summary>Compares the engine with the reference: one result per group.</summary>
    IEnumerable<CheckResult> Run(ReferenceContext context);
}

/// <summary>
/// The outcome of one group: the largest absolute difference, the same relative to the largest |expected| value, and
/// whether the compared one (<see cref="Relative"/> or absolute) is within <see cref="Tolerance"/>. Exact checks
/// (token ids, <see cref="Mismatches"/>) count differences as their error and pass only with none.
/// </summary>
public sealed record CheckResult(string Name, double MaxAbsError, double MaxRelError, double Tolerance, bool Relative, string? Detail = null, bool IsExact = false)
{
    public bool Passed => (Relative ? MaxRelError : MaxAbsError) <= Tolerance;

    /// <summary>An exact comparison of <paramref name="count"/> items of which <paramref name="mismatches"/> differ.</summary>
    public static CheckResult Mismatches(string name, int mismatches, int count, string detail) =>
        new(name, mismatches, count == 0 ? 0 : (double)mismatches / count, 0, Relative: false, detail, IsExact: true);

    /// <summary>Compares two tensors element by element in float64; NaN anywhere is a failure.</summary>
    public static CheckResult Compare(string name, ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double tolerance, bool relative)
    {
        if (actual.Length != expected.Length) throw new ArgumentException($"{name}: {actual.Length} values against {expected.Length} expected");
        double maxError = 0, maxExpected = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double error = Math.Abs((double)actual[i] - expected[i]);
            if (double.IsNaN(error)) error = double.PositiveInfinity;
            maxError = Math.Max(maxError, error);
            maxExpected = Math.Max(maxExpected, Math.Abs((double)expected[i]));
        }
        double relativeError = maxError == 0 ? 0 : maxError / maxExpected;
        return new CheckResult(name, maxError, relativeError, tolerance, relative);
    }

    public override string ToString() => IsExact
        ? $"{Name,-16} exact  {(Passed ? "OK" : "FAIL")}  {Detail}"
        : $"{Name,-16} max abs {MaxAbsError,9:0.00e+00}  max rel {MaxRelError,9:0.00e+00}  tolerance {Tolerance:0.0e+00} ({(Relative ? "rel" : "abs")})  {(Passed ? "OK" : "FAIL")}" +
        (Detail is null ? "" : $"  {Detail}");
}
