namespace Gpt2Engine.Generation;

/// <summary>How to continue a prompt. The defaults are those of OpenAI's sampling script (temperature 1, top-k 40).</summary>
public sealed record GenerationOptions
{
    /// <summary>New tokens per sample at most; 0 reads and checks the prompt and generates nothing (the model does not run).</summary>
    public int MaxTokens { get; init; } = 128;
    /// <summary>Continuations of the one prompt, decoded together as a batch (at most <see cref="MaxSamples"/>).</summary>
    public int Samples { get; init; } = 1;
    /// <summary>Always pick the most likely token (the same as temperature 0).</summary>
    public bool Greedy { get; init; }
    public float Temperature { get; init; } = 1f;
    /// <summary>Keep the k most likely tokens (0 = all).</summary>
    public int TopK { get; init; } = 40;
    /// <summary>Keep the nucleus holding this much probability (1 = all).</summary>
    public float TopP { get; init; } = 1f;
    /// <summary>Seed of the random draws: the same seed, options and weights give the same tokens.</summary>
    public ulong Seed { get; init; }
    /// <summary>End a sample when it produces &lt;|endoftext|&gt; (when the vocabulary has it).</summary>
    public bool StopAtEndOfText { get; init; } = true;
    /// <summary>End a sample after the token that completes any of these texts (the text itself is part of the output).</summary>
    public IReadOnlyList<string> StopTexts { get; init; } = [];
    /// <summary>
    /// A prompt that leaves no room for <see cref="MaxTokens"/> new tokens keeps its last positions (as many as leave
    /// that room, and at least half the context) instead of stopping early, or, longer than the context, being an error.
    /// </summary>
    public bool Truncate { get; init; }
    /// <summary>When the context is full, restart from the last half of it instead of stopping.</summary>
    public bool SlidingWindow { get; init; }

    /// <summary>The largest batch of samples: each one has its own cache of keys and values, and its own text.</summary>
    public const int MaxSamples = 1024;

    /// <summary>Throws a <see cref="Gpt2Exception"/> naming the first option out of its range.</summary>
    public void Validate()
    {
        if (MaxTokens < 0) throw new Gpt2Exception($"max tokens {MaxTokens} must be >= 0");
        if (Samples is < 1 or > MaxSamples) throw new Gpt2Exception($"samples {Samples} must be between 1 and {MaxSamples}");
        Sampler.Validate(Temperature, TopK, TopP);
        if (StopTexts.Any(string.IsNullOrEmpty)) throw new Gpt2Exception("a stop text must not be empty");
    }
}

/// <summary>Why a sample ended.</summary>
public enum StopReason { None, MaxTokens, EndOfText, StopText, ContextFull }

/// <summary>One new token of sample <see cref="Sample"/>; <see cref="Stop"/> is set on a sample's last token.</summary>
public readonly record struct GeneratedToken(int Sample, int Id, StopReason Stop = StopReason.None);

/// <summary>What a generation cost: prefill (prompt) and decoding, in tokens and seconds.</summary>
public sealed class GenerationStatistics
{
    /// <summary>
    /// Prompt positions fed, counting every sample of the batch and every sliding-window refill. With
    /// <see cref="GenerationOptions.MaxTokens"/> 0 nothing is fed, and this counts the positions that would have been
    /// (the prompt as read: truncated, or &lt;|endoftext|&gt; for an empty one).
    /// </summary>
    public long PromptTokens { get; internal set; }
    public double PromptSeconds { get; internal set; }
    /// <summary>New tokens produced over all samples.</summary>
    public long GeneratedTokens { get; internal set; }
    /// <summary>Positions fed one at a time after the prompt (all samples of the batch; finished ones too).</summary>
    public long DecodedPositions { get; internal set; }
    /// <summary>Time spent decoding one position at a time (forward passes and sampling).</summary>
    public double GenerationSeconds { get; internal set; }
    /// <summary>Prompt tokens dropped by <see cref="GenerationOptions.Truncate"/>.</summary>
    public int TruncatedTokens { get; internal set; }
    /// <summary>Times the window slid (<see cref="GenerationOptions.SlidingWindow"/>).</summary>
    public int WindowSlides { get; internal set; }

    public double PromptTokensPerSecond => PromptSeconds > 0 ? PromptTokens / PromptSeconds : 0;
    public double DecodedPositionsPerSecond => GenerationSeconds > 0 ? DecodedPositions / GenerationSeconds : 0;
}
