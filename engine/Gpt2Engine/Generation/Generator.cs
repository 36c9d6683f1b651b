using System.Diagnostics;
using Gpt2Engine.Model;
using Gpt2Engine.Tokenization;

namespace Gpt2Engine.Generation;

/// <summary>
/// Continues a prompt with a <see cref="Gpt2Model"/>: the prompt is fed once (prefill) into a KV-cached
/// <see cref="InferenceSession"/>, then each new token costs one position. N samples of one prompt advance together
/// as a batch of N; sample k draws from stream k of the seed, so it does not depend on N.
/// Forward passes run on the thread that advances the enumeration. One generation at a time per instance.
/// </summary>
public sealed class Generator(Gpt2Model model, Gpt2Tokenizer? tokenizer = null)
{
    /// <summary>The cost of the current or last generation.</summary>
    public GenerationStatistics Statistics { get; private set; } = new();

    /// <summary>The new tokens, each sample's in order, the samples interleaved step by step.</summary>
    public IAsyncEnumerable<GeneratedToken> GenerateAsync(int[] prompt, GenerationOptions options, CancellationToken cancellationToken = default) =>
        Generate(prompt, options, cancellationToken).ToAsyncEnumerable();

    /// <summary>
    /// The positions the model will see for <paramref name="prompt"/>: the prompt itself, or &lt;|endoftext|&gt; for an
    /// empty one (as OpenAI's unconditional samples). Truncating, a prompt that leaves no room for
    /// <paramref name="maxTokens"/> new tokens keeps its last positions: as many as leave that room, and at least half
    /// the context. Not truncating, a prompt longer than the context is an error.
    /// </summary>
    internal static int[] PreparePrompt(ReadOnlySpan<int> prompt, Gpt2Config config, bool truncate, int maxTokens)
    {
        for (int i = 0; i < prompt.Length; i++)
            if ((uint)prompt[i] >= (uint)config.VocabSize)
                throw new Gpt2Exception($"prompt token {i} has id {prompt[i]}, outside the model's vocabulary (0..{config.VocabSize - 1})");
        if (prompt.IsEmpty)
        {
            if (config.VocabSize <= Gpt2Config.EndOfText) throw new Gpt2Exception($"the prompt is empty, and this model's vocabulary ({config.VocabSize} tokens) has no <|endoftext|> to start from");
            return [Gpt2Config.EndOfText];
        }
        int context = config.ContextLength;
        if (!truncate && prompt.Length > context)
            throw new Gpt2Exception($"the prompt is {prompt.Length} tokens, longer than the model's context of {context} (--truncate keeps its last tokens)");
        // The last new token is never fed back, so a prompt of context - maxTokens + 1 positions leaves room for all.
        int keep = truncate ? (int)Math.Clamp(context - (long)maxTokens + 1, Math.Max(1, context / 2), context) : context;
        return prompt.Length <= keep ? prompt.ToArray() : prompt[^keep..].ToArray();
    }

    /// <summary>The same tokens as <see cref="GenerateAsync"/>, synchronously.</summary>
    public IEnumerable<GeneratedToken> Generate(int[] prompt, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        // Checked here, before the iterator starts, so that bad options fail at the call.
        var config = model.Config;
        options.Validate();
        var sampler = new Sampler(config.VocabSize, options.Greedy ? 0f : options.Temperature, options.TopK, options.TopP);
        int[] context = PreparePrompt(prompt, config, options.Truncate, options.MaxTokens);
        StopTextMatcher[]? stopMatchers = null;
        if (options.StopTexts.Count > 0)
        {
            if (tokenizer is null) throw new Gpt2Exception("a stop text needs the vocabulary to read the tokens");
            stopMatchers = Enumerable.Range(0, options.Samples).Select(_ => new StopTextMatcher(options.StopTexts)).ToArray();
        }
        Statistics = new GenerationStatistics { TruncatedTokens = prompt.Length - Math.Min(prompt.Length, context.Length) };
        return Run(context, options, sampler, stopMatchers, cancellationToken);
    }

    private IEnumerable<GeneratedToken> Run(int[] context, GenerationOptions options, Sampler sampler, StopTextMatcher[]? stopMatchers, CancellationToken cancellationToken)
    {
        int B = options.Samples, V = model.Config.VocabSize;
        var stats = Statistics;
        if (options.MaxTokens == 0)
        {
            stats.PromptTokens = (long)B * context.Length; // read and checked, but nothing to generate: not fed
            yield break;
        }
        var rngs = new Xoshiro256StarStar[B];
        for (int b = 0; b < B; b++) rngs[b] = Xoshiro256StarStar.FromSeed(options.Seed, b);
        // Every sample's whole text so far, for refilling a sliding window.
        var histories = new List<int>[B];
        for (int b = 0; b < B; b++) histories[b] = [.. context];
        var stopped = new bool[B];
        var next = new int[B];
        int running = B;
        bool endOfTextExists = options.StopAtEndOfText && V > Gpt2Config.EndOfText;

        // The cache holds what this generation can reach: the prompt and the new tokens but the last (never fed back),
        // or the whole context when the window slides.
        int contextLength = model.Config.ContextLength;
        int positions = options.SlidingWindow ? contextLength : (int)Math.Min(contextLength, (long)context.Length + options.MaxTokens - 1);
        using var session = model.CreateSession(B, positions);
        var clock = Stopwatch.StartNew();
        Feed(session, Repeat(context, B), context.Length, sampler, rngs, stopped, next);
        stats.PromptTokens += (long)B * context.Length;
        stats.PromptSeconds += clock.Elapsed.TotalSeconds;

        for (int produced = 1; ; produced++)
        {
            for (int b = 0; b < B; b++)
            {
                if (stopped[b]) continue;
                int id = next[b];
                histories[b].Add(id);
                stats.GeneratedTokens++;
                var reason =
                    endOfTextExists && id == Gpt2Config.EndOfText ? StopReason.EndOfText :
                    stopMatchers is not null && stopMatchers[b].Push(tokenizer!.TokenBytes(id)) ? StopReason.StopText :
                    produced == options.MaxTokens ? StopReason.MaxTokens :
                    session.Position == contextLength && !options.SlidingWindow ? StopReason.ContextFull :
                    StopReason.None;
                if (reason != StopReason.None)
                {
                    stopped[b] = true;
                    running--;
                }
                yield return new GeneratedToken(b, id, reason);
            }
            if (running == 0) yield break;
            cancellationToken.ThrowIfCancellationRequested();

            clock.Restart();
            if (session.Position == contextLength)
            {
                // Slide: start again from the last half of each sample's text (the new token included).
                int keep = Math.Max(1, contextLength / 2);
                var window = new int[B * keep];
                for (int b = 0; b < B; b++) histories[b].CopyTo(histories[b].Count - keep, window, b * keep, keep);
                session.Reset();
                Feed(session, window, keep, sampler, rngs, stopped, next);
                stats.PromptTokens += window.Length;
                stats.PromptSeconds += clock.Elapsed.TotalSeconds;
                stats.WindowSlides++;
            }
            else
            {
                // Finished samples feed their last token again: the batch advances together and their logits are ignored.
                Feed(session, next, 1, sampler, rngs, stopped, next);
                stats.DecodedPositions += B;
                stats.GenerationSeconds += clock.Elapsed.TotalSeconds;
            }
        }
    }

    /// <summary>Feeds tokens [B, T] and samples each running sequence's next token into <paramref name="next"/>.</summary>
    private static void Feed(InferenceSession session, int[] tokens, int T, Sampler sampler, Xoshiro256StarStar[] rngs, bool[] stopped, int[] next)
    {
        var logits = session.Forward(tokens, T);
        int V = logits.Length / rngs.Length;
        for (int b = 0; b < rngs.Length; b++)
            if (!stopped[b]) next[b] = sampler.Sample(logits.Slice(b * V, V), ref rngs[b]);
    }

    private static int[] Repeat(int[] context, int times)
    {
        var result = new int[context.Length * times];
        for (int b = 0; b < times; b++) context.CopyTo(result, b * context.Length);
        return result;
    }
}
