using Xunit;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cpu;
using Gpt2Engine.Evaluation;
using Gpt2Engine.Model;

namespace Gpt2Engine.Tests.Evaluation;

/// <summary>Sliding-window scoring on the tiny model against the fixture's reference logits and loss, and against a float64 model.</summary>
public sealed class SlidingWindowScorerTests
{
    private static Gpt2Model LoadTiny() => new(CheckpointLoader.Load(TestFixtures.TinyModel), new CpuBackend(2), ownsWeights: true, ownsBackend: true);

    [Fact]
    public void One_window_matches_the_reference_logits_and_loss()
    {
        using var expected = TestFixtures.OpenTinyExpected();
        using var model = LoadTiny();
        var tokens = expected["tokens"].AsSpan<int>().ToArray();
        var logits = expected["logits"].AsSpan<float>();
        int T = 16, V = model.Config.VocabSize;
        double total = 0;
        for (int b = 0; b < 2; b++)
        {
            var row = tokens.AsSpan(b * (T + 1), T + 1);
            var losses = SlidingWindowScorer.TokenLosses(model, row, window: T, stride: 3);
            Assert.Equal(T, losses.Length);
            for (int t = 0; t < T; t++)
            {
                var reference = logits.Slice((b * T + t) * V, V).ToArray().Select(x => (double)x).ToArray();
                Assert.InRange(losses[t] - Float64Gpt2.NegativeLogSoftmax(reference, row[t + 1]), -1e-5, 1e-5);
                total += losses[t];
            }
        }
        Assert.InRange(total / (2 * T) - expected["loss"].AsSpan<float>()[0], -1e-5, 1e-5);
    }

    [Theory]
    [InlineData(16, 5)]
    [InlineData(16, 16)]
    [InlineData(7, 1)]
    [InlineData(32, 16)]
    public void Windows_give_each_token_the_context_the_protocol_defines(int window, int stride)
    {
        using var model = LoadTiny();
        using var file = SafetensorsFile.Open(TestFixtures.TinyModel);
        var reference = new Float64Gpt2(file, model.Config.Layers, model.Config.Heads);
        var random = new Random(7);
        int[] tokens = Enumerable.Range(0, 45).Select(_ => random.Next(model.Config.VocabSize)).ToArray();

        var losses = SlidingWindowScorer.TokenLosses(model, tokens, window, stride);

        Assert.Equal(tokens.Length - 1, losses.Length);
        for (int j = 1; j < tokens.Length; j++)
        {
            // Token j is scored by the first window (starting at k * stride, window tokens long) that reaches it.
            int k = Math.Max(0, (j - window + stride - 1) / stride);
            double expected = reference.NextTokenLosses(tokens[(k * stride)..(j + 1)])[^1];
            Assert.True(Math.Abs(losses[j - 1] - expected) <= 1e-5, $"token {j}: {losses[j - 1]} vs {expected}");
        }
    }

    [Fact]
    public void Text_score_derives_perplexity_and_bits_per_byte()
    {
        var score = new TextScore("x", Tokens: 4, Nats: 8, Bytes: 10);
        Assert.Equal(2, score.Loss);
        Assert.Equal(Math.Exp(2), score.Perplexity, 12);
        Assert.Equal(8 / Math.Log(2) / 10, score.BitsPerByte, 12);
        var sum = TextScore.Sum("all", [score, new TextScore("y", 6, 4, 30)]);
        Assert.Equal((10L, 12.0, 40L), (sum.Tokens, sum.Nats, sum.Bytes));
    }

    [Theory]
    [InlineData(33, 16, "larger than the model's context of 32")]
    [InlineData(0, 1, "at least 1 token")]
    [InlineData(16, 0, "stride must be between 1 and the window of 16")]
    [InlineData(16, 17, "stride must be between 1 and the window of 16")]
    public void Bad_window_or_stride_is_a_one_line_error(int window, int stride, string message)
    {
        using var model = LoadTiny();
        var e = Assert.Throws<Gpt2Exception>(() => SlidingWindowScorer.TokenLosses(model, [1, 2, 3], window, stride));
        Assert.Contains(message, e.Message);
    }

    /// <summary>A session's losses after a prefix already in its cache: positions from..T-1 of the new tokens only.</summary>
    [Fact]
    public void Session_losses_continue_from_the_cache_and_cover_only_the_asked_positions()
    {
        using var model = LoadTiny();
        using var file = SafetensorsFile.Open(TestFixtures.TinyModel);
        var reference = new Float64Gpt2(file, model.Config.Layers, model.Config.Heads);
        var random = new Random(11);
        int[] tokens = Enumerable.Range(0, 21).Select(_ => random.Next(model.Config.VocabSize)).ToArray();
        var expected = reference.NextTokenLosses(tokens); // expected[j] = -ln p(tokens[j + 1] | tokens[..(j + 1)])

        using var session = model.CreateSession(1);
        session.Forward(tokens.AsSpan(0, 6), 6);
        var losses = session.Losses(tokens.AsSpan(6, 14), tokens.AsSpan(7, 14), from: 9).ToArray();

        Assert.Equal(5, losses.Length); // new positions 9..13 are tokens 15..19, predicting tokens 16..20
        for (int i = 0; i < losses.Length; i++)
            Assert.True(Math.Abs(losses[i] - expected[15 + i]) <= 1e-5, $"position {9 + i}: {losses[i]} vs {expected[15 + i]}");
        Assert.Equal(20, session.Position);
    }

    [Fact]
    public void Session_losses_reject_bad_arguments()
    {
        using var model = LoadTiny();
        using var session = model.CreateSession(1);
        int V = model.Config.VocabSize;
        Assert.Throws<ArgumentOutOfRangeException>(() => session.Losses([1, 2, 3], [2, 3, 4], from: 3));
        Assert.Throws<ArgumentException>(() => session.Losses([1, 2, 3], [2, 3], from: 0));
        Assert.Contains("outside the vocabulary", Assert.Throws<Gpt2Exception>(() => session.Losses([1, 2], [2, V], from: 0)).Message);
        Assert.Equal(0, session.Position); // nothing was fed
        using var batch = model.CreateSession(2);
        Assert.Throws<InvalidOperationException>(() => batch.Losses([1, 2], [2, 3], from: 0));
    }

    [Fact]
    public void Fewer_than_two_tokens_is_an_error()
    {
        using var model = LoadTiny();
        var e = Assert.Throws<Gpt2Exception>(() => SlidingWindowScorer.TokenLosses(model, [5], 16, 8));
        Assert.Contains("at least two", e.Message);
    }
}
