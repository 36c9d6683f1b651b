using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cpu;
using Gpt2Engine.Generation;
using Gpt2Engine.Model;
using Gpt2Engine.Tests.Evaluation;
using Gpt2Engine.Tokenization;
using Xunit;

namespace Gpt2Engine.Tests.Generation;

public class GeneratorTests
{
    private static readonly GenerationOptions Sampling = new() { MaxTokens = 20, Temperature = 0.8f, TopK = 10, TopP = 0.9f, Seed = 99 };

    [Fact]
    public void Greedy_generation_reproduces_the_reference_continuation()
    {
        using var model = TinyFixture.LoadModel();
        int[] prompt = TinyFixture.Ints("prompt"), expected = TinyFixture.Ints("greedy");
        var tokens = new Generator(model).Generate(prompt, new GenerationOptions { Greedy = true, MaxTokens = expected.Length }).ToList();
        Assert.Equal(expected, tokens.Select(t => t.Id));
        Assert.All(tokens, t => Assert.Equal(0, t.Sample));
        Assert.Equal(StopReason.MaxTokens, tokens[^1].Stop);
        Assert.All(tokens[..^1], t => Assert.Equal(StopReason.None, t.Stop));
    }

    /// <summary>
    /// What the generator feeds back, against an independent float64 model: each greedy token is its argmax over the text
    /// so far, by a margin far above float32's error. (The fixture's greedy continuation repeats one token, which also is
    /// the prompt's last, so it cannot show a wrong token fed back.) Both samples of a batch of two are checked.
    /// </summary>
    [Fact]
    public void Greedy_tokens_are_the_float64_models_argmax_over_the_text_so_far()
    {
        using var model = new WanderingModel();
        int[] prompt = [17, 4, 60, 33, 81];
        var tokens = new Generator(model.Engine).Generate(prompt, new GenerationOptions { Greedy = true, MaxTokens = 12, Samples = 2 }).ToList();
        for (int sample = 0; sample < 2; sample++)
        {
            int[] text = [.. prompt, .. tokens.Where(t => t.Sample == sample).Select(t => t.Id)];
            Assert.True(text[prompt.Length..].Distinct().Count() >= 4, $"a degenerate continuation shows little: {string.Join(' ', text[prompt.Length..])}");
            for (int t = prompt.Length; t < text.Length; t++)
            {
                double[] logits = model.Reference.Logits(text[..t])[^1];
                int best = Array.IndexOf(logits, logits.Max());
                double runnerUp = logits.Where((_, v) => v != best).Max();
                Assert.True(logits.Max() - runnerUp > 1e-3, $"position {t}: the top two logits are too close to tell apart");
                Assert.Equal(best, text[t]);
            }
        }
    }

    /// <summary>
    /// Each sampled token of a batch of three (top-k 3) is among the float64 model's top three over its own sample's
    /// text: a sample fed another's token, or a stale one, would soon draw outside them (3 of 96 tokens).
    /// </summary>
    [Fact]
    public void Sampled_tokens_are_among_the_float64_models_top_k_over_their_own_text()
    {
        using var model = new WanderingModel();
        int[] prompt = [17, 4, 60, 33, 81];
        var options = new GenerationOptions { Temperature = 1.5f, TopK = 3, Seed = 5, MaxTokens = 12, Samples = 3 };
        var tokens = new Generator(model.Engine).Generate(prompt, options).ToList();
        for (int sample = 0; sample < 3; sample++)
        {
            int[] text = [.. prompt, .. tokens.Where(t => t.Sample == sample).Select(t => t.Id)];
            for (int t = prompt.Length; t < text.Length; t++)
            {
                double[] logits = model.Reference.Logits(text[..t])[^1];
                double third = logits.OrderDescending().ElementAt(2);
                Assert.True(logits[text[t]] >= third - 1e-4, $"sample {sample}, position {t}: token {text[t]} is not among the top 3");
            }
        }
        Assert.Equal(3, tokens.GroupBy(t => t.Sample).Select(g => string.Join(' ', g.Select(t => t.Id))).Distinct().Count());
    }

    /// <summary>
    /// Random weights large enough that greedy decoding wanders rather than repeating one token (the fixture's, and
    /// small random ones, settle on one at once), with the engine over them and the float64 reference.
    /// </summary>
    private sealed class WanderingModel : IDisposable
    {
        private readonly RandomGpt2Model _file = new(new Gpt2Config(VocabSize: 96, ContextLength: 32, Channels: 32, Layers: 2, Heads: 4), scale: 1.0);
        private readonly SafetensorsFile _weights;

        public WanderingModel()
        {
            Engine = new Gpt2Model(CheckpointLoader.Load(_file.WeightsPath), new CpuBackend(2), ownsWeights: true, ownsBackend: true);
            _weights = SafetensorsFile.Open(_file.WeightsPath);
            Reference = new Float64Gpt2(_weights, 2, 4);
        }

        public Gpt2Model Engine { get; }
        public Float64Gpt2 Reference { get; }

        public void Dispose()
        {
            Engine.Dispose();
            _weights.Dispose();
            _file.Dispose();
        }
    }

    [Fact]
    public void Kv_cache_decoding_equals_full_recomputation_at_every_position()
    {
        using var model = TinyFixture.LoadModel();
        int[] tokens = TinyFixture.Ints("tokens");   // [2, 17]
        const int B = 2, T = 16, V = 96, Prefill = 5;
        var inputs = new int[B * T];
        for (int b = 0; b < B; b++) tokens.AsSpan(b * (T + 1), T).CopyTo(inputs.AsSpan(b * T));
        model.Forward(inputs, [], B, T);
        float[] full = model.DownloadLogits();

        // Prefill positions 0..4 in one call, then one position per call, both sequences as one batch.
        using var session = model.CreateSession(B);
        for (int t = Prefill - 1; t < T; t++)
        {
            int fed = t == Prefill - 1 ? Prefill : 1;
            var step = new int[B * fed];
            for (int b = 0; b < B; b++) inputs.AsSpan(b * T + t + 1 - fed, fed).CopyTo(step.AsSpan(b * fed));
            float[] logits = session.Forward(step, fed).ToArray();
            Assert.Equal(t + 1, session.Position);
            for (int b = 0; b < B; b++)
                for (int v = 0; v < V; v++)
                    Assert.True(Math.Abs(logits[b * V + v] - full[(b * T + t) * V + v]) <= 1e-5f, $"b={b} t={t} v={v}");
        }
    }

    /// <summary>A session made for fewer positions than the context holds them, the same as a full one, and no more.</summary>
    [Fact]
    public void A_session_for_fewer_positions_decodes_the_same_and_refuses_more()
    {
        using var model = TinyFixture.LoadModel();
        using var full = model.CreateSession(1);
        using var small = model.CreateSession(1, positions: 6);
        int[] prompt = [5, 6, 7, 8];
        Assert.Equal(full.Forward(prompt, 4).ToArray(), small.Forward(prompt, 4).ToArray());
        for (int token = 9; token <= 10; token++) Assert.Equal(full.Forward([token], 1).ToArray(), small.Forward([token], 1).ToArray());
        Assert.Contains("6", Assert.Throws<Gpt2Exception>(() => small.Forward([11], 1).ToArray()).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.CreateSession(1, positions: 33));
    }

    [Fact]
    public void The_same_seed_gives_the_same_samples_and_another_seed_others()
    {
        using var model = TinyFixture.LoadModel();
        var generator = new Generator(model);
        int[] Run(ulong seed) => generator.Generate([1, 2, 3], Sampling with { Seed = seed }).Select(t => t.Id).ToArray();
        Assert.Equal(Run(7), Run(7));
        Assert.NotEqual(Run(7), Run(8));
    }

    [Fact]
    public void A_sample_does_not_depend_on_how_many_samples_run_beside_it()
    {
        using var model = TinyFixture.LoadModel();
        var generator = new Generator(model);
        var alone = generator.Generate([4, 5, 6], Sampling).Select(t => t.Id).ToArray();
        var batch = generator.Generate([4, 5, 6], Sampling with { Samples = 3 }).ToList();
        Assert.Equal(3 * Sampling.MaxTokens, batch.Count);
        Assert.Equal(alone, batch.Where(t => t.Sample == 0).Select(t => t.Id));
        Assert.NotEqual(alone, batch.Where(t => t.Sample == 1).Select(t => t.Id));
    }

    [Fact]
    public async Task The_async_stream_yields_the_same_tokens()
    {
        using var model = TinyFixture.LoadModel();
        var generator = new Generator(model);
        var expected = generator.Generate([1, 2, 3], Sampling with { Samples = 2 }).ToList();
        var actual = new List<GeneratedToken>();
        await foreach (var token in generator.GenerateAsync([1, 2, 3], Sampling with { Samples = 2 })) actual.Add(token);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Generation_stops_at_the_end_of_the_context()
    {
        using var model = TinyFixture.LoadModel();
        var generator = new Generator(model);
        // 8 prompt positions + 24 fed tokens fill the 32 positions; the logits of the last one give one more token.
        var tokens = generator.Generate(TinyFixture.Ints("prompt"), Sampling with { MaxTokens = 1000 }).ToList();
        Assert.Equal(32 - 8 + 1, tokens.Count);
        Assert.Equal(StopReason.ContextFull, tokens[^1].Stop);
    }

    [Fact]
    public void A_sliding_window_continues_from_the_last_half_of_the_context()
    {
        using var model = TinyFixture.LoadModel();
        var generator = new Generator(model);
        int[] prompt = TinyFixture.Ints("prompt");
        var ids = generator.Generate(prompt, new GenerationOptions { Greedy = true, MaxTokens = 40, SlidingWindow = true }).Select(t => t.Id).ToArray();
        Assert.Equal(40, ids.Length);
        Assert.Equal(1, generator.Statistics.WindowSlides);

        // The token after the slide is the argmax of a full forward pass over the last 16 tokens of the text.
        int[] text = [.. prompt, .. ids];
        int slideAt = 32 - prompt.Length + 1;    // tokens generated before the window slid
        int[] window = text[(prompt.Length + slideAt - 16)..(prompt.Length + slideAt)];
        model.Forward(window, [], 1, 16);
        float[] logits = model.DownloadLogits();
        Assert.Equal(Sampler.ArgMax(logits.AsSpan(15 * 96, 96)), ids[slideAt]);
    }

    [Fact]
    public void A_prompt_longer_than_the_context_is_an_error_unless_truncated()
    {
        using var model = TinyFixture.LoadModel();
        var generator = new Generator(model);
        int[] prompt = Enumerable.Range(0, 40).Select(i => i % 96).ToArray();
        var e = Assert.Throws<Gpt2Exception>(() => generator.Generate(prompt, Sampling));
        Assert.Contains("40 tokens", e.Message);
        Assert.Contains("--truncate", e.Message);

        // Truncation leaves room for the new tokens: 5 need 32 - 5 + 1 = 28 prompt positions (the last token is not fed).
        var greedy = new GenerationOptions { Greedy = true, MaxTokens = 5 };
        var truncated = generator.Generate(prompt, greedy with { Truncate = true }).ToList();
        Assert.Equal(12, generator.Statistics.TruncatedTokens);
        Assert.Equal(generator.Generate(prompt[12..], greedy).ToList(), truncated);
        Assert.Equal(StopReason.MaxTokens, truncated[^1].Stop);

        // A prompt that fits but leaves too little room is cut the same way: 30 + 10 - 1 positions exceed 32.
        var fits = generator.Generate(prompt[10..], greedy with { MaxTokens = 10, Truncate = true }).ToList();
        Assert.Equal(30 - (32 - 10 + 1), generator.Statistics.TruncatedTokens);
        Assert.Equal(10, fits.Count);

        // More new tokens than the context holds: the prompt keeps half the context, and generation fills the rest.
        var beyond = generator.Generate(prompt, greedy with { MaxTokens = 100, Truncate = true }).ToList();
        Assert.Equal(40 - 16, generator.Statistics.TruncatedTokens);
        Assert.Equal(32 - 16 + 1, beyond.Count);
        Assert.Equal(StopReason.ContextFull, beyond[^1].Stop);
    }

    /// <summary>MaxTokens 0 generates nothing and runs no model, but the statistics count the prompt as read (not 0).</summary>
    [Fact]
    public void Zero_max_tokens_counts_the_prompt_and_runs_nothing()
    {
        using var model = TinyFixture.LoadModel();
        var generator = new Generator(model);
        Assert.Empty(generator.Generate([5, 6, 7, 8], new GenerationOptions { MaxTokens = 0, Samples = 3 }));
        var stats = generator.Statistics;
        Assert.Equal((3 * 4L, 0.0, 0L, 0L), (stats.PromptTokens, stats.PromptSeconds, stats.GeneratedTokens, stats.DecodedPositions));

        // Truncated to the whole context of 32 (no room to leave for new tokens).
        Assert.Empty(generator.Generate(Enumerable.Range(0, 40).ToArray(), new GenerationOptions { MaxTokens = 0, Truncate = true }));
        Assert.Equal((32L, 8), (generator.Statistics.PromptTokens, generator.Statistics.TruncatedTokens));
    }

    [Theory]
    [InlineData(96)]
    [InlineData(-1)]
    public void A_prompt_id_outside_the_vocabulary_is_an_error(int id)
    {
        using var model = TinyFixture.LoadModel();
        var e = Assert.Throws<Gpt2Exception>(() => new Generator(model).Generate([1, id], Sampling));
        Assert.Contains($"id {id}", e.Message);
    }

    [Fact]
    public void An_empty_prompt_needs_endoftext_in_the_vocabulary()
    {
        using var model = TinyFixture.LoadModel();
        var e = Assert.Throws<Gpt2Exception>(() => new Generator(model).Generate([], Sampling));
        Assert.Contains("empty", e.Message);
    }

    [Fact]
    public void A_stop_text_ends_the_sample_at_the_token_that_completes_it()
    {
        using var model = TinyFixture.LoadModel();
        var tokenizer = Gpt2Tokenizer.Default;
        var options = new GenerationOptions { Temperature = 1, TopK = 0, Seed = 3, MaxTokens = 20 };
        var free = new Generator(model, tokenizer).Generate([10, 20, 30], options).Select(t => t.Id).ToArray();
        // Stop at the text of tokens 5 and 6 (it spans two tokens); the first occurrence may come earlier.
        string stop = tokenizer.Decode(free.AsSpan(5, 2));
        int end = Enumerable.Range(1, free.Length).First(n => tokenizer.Decode(free.AsSpan(0, n)).Contains(stop));
        var stopped = new Generator(model, tokenizer).Generate([10, 20, 30], options with { StopTexts = [stop] }).ToList();
        Assert.Equal(free[..end], stopped.Select(t => t.Id));
        Assert.Equal(StopReason.StopText, stopped[^1].Stop);
    }

    [Fact]
    public void Cancellation_stops_generation()
    {
        using var model = TinyFixture.LoadModel();
        using var cancel = new CancellationTokenSource();
        int count = 0;
        Assert.Throws<OperationCanceledException>(() =>
        {
            foreach (var _ in new Generator(model).Generate([1], Sampling, cancel.Token))
                if (++count == 3) cancel.Cancel();
        });
        Assert.Equal(3, count);
    }

    [Fact]
    public void Bad_options_are_user_errors()
    {
        using var model = TinyFixture.LoadModel();
        var generator = new Generator(model);
        Assert.Throws<Gpt2Exception>(() => generator.Generate([1], Sampling with { Samples = 0 }));
        Assert.Throws<Gpt2Exception>(() => generator.Generate([1], Sampling with { MaxTokens = -1 }));
        Assert.Throws<Gpt2Exception>(() => generator.Generate([1], Sampling with { TopP = 0 }));
        Assert.Throws<Gpt2Exception>(() => generator.Generate([1], Sampling with { StopTexts = ["x"] }));   // no tokenizer
    }
}
