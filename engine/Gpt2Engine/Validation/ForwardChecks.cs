namespace Gpt2Engine.Validation;

/// <summary>
/// <c>logits</c> and <c>loss</c>: a full forward pass over <c>tokens</c> [B, T+1], inputs tokens[:, :T], targets
/// tokens[:, 1:]. Absolute tolerance, 2e-5 by default (fp32 on the CPU).
/// </summary>
public sealed class LogitsAndLossCheck : IReferenceCheck
{
    public const double DefaultTolerance = 2e-5;

    public IReadOnlyList<string> Requires { get; } = ["tokens", "logits", "loss"];

    public bool Covers(string name) => name is "logits" or "loss";

    public IEnumerable<CheckResult> Run(ReferenceContext context)
    {
        var shape = context.Shape("tokens");
        if (shape.Length != 2 || shape[1] < 2) throw new Gpt2Exception($"{context.Reference.Path}: 'tokens' has shape [{string.Join(", ", shape)}], expected [B, T+1] with T >= 1");
        int B = shape[0], T = shape[1] - 1, V = context.Config.VocabSize;
        var (inputs, targets) = SplitTokens(context.Ints("tokens", B, T + 1), B, T);
        var expectedLogits = context.Floats("logits", B, T, V);
        var expectedLoss = context.Floats("loss", 1);
        double tolerance = context.Tolerance(DefaultTolerance);

        var model = context.InferenceModel;
        model.Forward(inputs, [], B, T);
        var logits = model.DownloadLogits();
        float loss = model.Forward(inputs, targets, B, T);
        return
        [
            CheckResult.Compare("logits", logits, expectedLogits, tolerance, relative: false),
            CheckResult.Compare("loss", [loss], expectedLoss, tolerance, relative: false) with { Detail = $"loss {loss:0.000000} expected {expectedLoss[0]:0.000000}" },
        ];
    }

    /// <summary>Inputs tokens[:, :T] and targets tokens[:, 1:] of a [B, T+1] batch.</summary>
    public static (int[] Inputs, int[] Targets) SplitTokens(int[] tokens, int B, int T)
    {
        var inputs = new int[B * T];
        var targets = new int[B * T];
        for (int b = 0; b < B; b++)
        {
            tokens.AsSpan(b * (T + 1), T).CopyTo(inputs.AsSpan(b * T));
            tokens.AsSpan(b * (T + 1) + 1, T).CopyTo(targets.AsSpan(b * T));
        }
        return (inputs, targets);
    }
}

/// <summary>
/// <c>greedy_logits</c> and <c>greedy</c>: decodes from <c>prompt</c> through the KV cache, one position per step,
/// comparing each step's last-position logits and its argmax with the reference. The reference token is fed back
/// even after a mismatch, so that the logits stay comparable. Absolute tolerance, 2e-5 by default; tokens exact.
/// </summary>
public sealed class GreedyDecodingCheck : IReferenceCheck
{
    public const double DefaultTolerance = 2e-5;

    public IReadOnlyList<string> Requires { get; } = ["prompt", "greedy", "greedy_logits"];

    public bool Covers(string name) => name is "greedy" or "greedy_logits";

    public IEnumerable<CheckResult> Run(ReferenceContext context)
    {
        int V = context.Config.VocabSize;
        var prompt = context.Ints("prompt", -1);
        var greedy = context.Ints("greedy", -1);
        var expected = context.Floats("greedy_logits", greedy.Length, V);
        if (prompt.Length == 0 || prompt.Length + greedy.Length - 1 > context.Config.ContextLength)
            throw new Gpt2Exception($"{context.Reference.Path}: a prompt of {prompt.Length} and {greedy.Length} greedy tokens do not fit the context of {context.Config.ContextLength}");

        var actual = new float[greedy.Length * V];
        int mismatches = 0, firstMismatch = -1;
        using var session = context.InferenceModel.CreateSession(1);
        var logits = session.Forward(prompt, prompt.Length);
        for (int step = 0; step < greedy.Length; step++)
        {
            if (step > 0) logits = session.Forward(greedy.AsSpan(step - 1, 1), 1);
            logits.CopyTo(actual.AsSpan(step * V));
            if (Generation.Sampler.ArgMax(logits) != greedy[step])
            {
                mismatches++;
                if (firstMismatch < 0) firstMismatch = step;
            }
        }
        return
        [
            CheckResult.Compare("greedy_logits", actual, expected, context.Tolerance(DefaultTolerance), relative: false),
            CheckResult.Mismatches("greedy", mismatches, greedy.Length,
                mismatches == 0 ? $"{greedy.Length}/{greedy.Length} tokens equal" : $"{mismatches} of {greedy.Length} tokens differ, first at step {firstMismatch}"),
        ];
    }
}
