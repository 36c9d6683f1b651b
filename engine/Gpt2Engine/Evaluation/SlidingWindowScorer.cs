using Gpt2Engine.Model;

namespace Gpt2Engine.Evaluation;

/// <summary>
/// Per-token losses of a long token sequence under the usual sliding-window perplexity protocol: windows of up to
/// <c>window</c> input positions start every <c>stride</c> tokens; each window scores only the targets that no earlier
/// window scored (the first window scores all of its own), so every token after the first is scored exactly once,
/// with at least <c>window - stride</c> tokens of context once the first window is past.
/// </summary>
public static class SlidingWindowScorer
{
    /// <summary>Checks a window and stride against the model; throws a one-line <see cref="Gpt2Exception"/> when they cannot work.</summary>
    public static void Validate(Gpt2Config config, int window, int stride)
    {
        if (window < 1) throw new Gpt2Exception($"the window must be at least 1 token (got {window})");
        if (window > config.ContextLength)
            throw new Gpt2Exception($"a window of {window} tokens is larger than the model's context of {config.ContextLength} positions");
        if (stride < 1 || stride > window)
            throw new Gpt2Exception($"the stride must be between 1 and the window of {window} tokens (got {stride})");
    }

    /// <summary>
    /// losses[j - 1] = -ln p(tokens[j] | the window's tokens before j), in nats, for j = 1..n-1: the first token is
    /// context only. Needs at least two tokens.
    /// </summary>
    public static float[] TokenLosses(Gpt2Model model, ReadOnlySpan<int> tokens, int window, int stride)
    {
        Validate(model.Config, window, stride);
        int n = tokens.Length;
        if (n < 2) throw new Gpt2Exception($"the text is {n} token{(n == 1 ? "" : "s")} long; scoring needs at least two");
        var losses = new float[n - 1];
        using var session = model.CreateSession(1);
        int scored = 0; // targets 1..scored already have their loss
        for (int begin = 0; scored < n - 1; begin += stride)
        {
            int T = Math.Min(window, n - 1 - begin);
            session.Reset();
            // Position t predicts target begin + 1 + t, whose loss goes to losses[begin + t]; only the positions no
            // earlier window scored get logits.
            session.Losses(tokens.Slice(begin, T), tokens.Slice(begin + 1, T), scored - begin).CopyTo(losses.AsSpan(scored));
            scored = begin + T;
        }
        return losses;
    }
}
