using Xunit;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cpu;
using Gpt2Engine.Evaluation;
using Gpt2Engine.Model;
using Gpt2Engine.Tokenization;

namespace Gpt2Engine.Tests.Evaluation;

/// <summary>
/// LAMBADA on the tiny model through the token-id path. The fixture's greedy decode (prompt, the 12 argmax tokens and
/// the logits at each step) gives targets that greedy prediction must hit, and their exact likelihoods.
/// </summary>
public sealed class LambadaTests
{
    private static Gpt2Model LoadTiny() => new(CheckpointLoader.Load(TestFixtures.TinyModel), new CpuBackend(2), ownsWeights: true, ownsBackend: true);

    private static double[] Row(ReadOnlySpan<float> logits, int row, int V) => logits.Slice(row * V, V).ToArray().Select(x => (double)x).ToArray();

    [Fact]
    public void Greedy_targets_are_hit_and_scored_with_the_reference_likelihood()
    {
        using var expected = TestFixtures.OpenTinyExpected();
        using var model = LoadTiny();
        int V = model.Config.VocabSize;
        var prompt = expected["prompt"].AsSpan<int>().ToArray();
        var greedy = expected["greedy"].AsSpan<int>().ToArray();
        var greedyLogits = expected["greedy_logits"].AsSpan<float>().ToArray();

        var result = Lambada.Evaluate(model, [new LambadaExample(prompt, greedy[..3])], stopTokens: default);

        double nats = Enumerable.Range(0, 3).Sum(i => Float64Gpt2.NegativeLogSoftmax(Row(greedyLogits, i, V), greedy[i]));
        Assert.Equal((1, 3L, 1, 1), (result.Examples, result.TargetTokens, result.Correct, result.CorrectFiltered));
        Assert.InRange(result.Nats - nats, -1e-4, 1e-4);
        Assert.InRange(result.Perplexity / Math.Exp(nats), 1 - 1e-4, 1 + 1e-4);
        Assert.InRange(result.TokenPerplexity / Math.Exp(nats / 3), 1 - 1e-4, 1 + 1e-4);
    }

    [Fact]
    public void A_miss_on_a_later_token_fails_the_passage()
    {
        using var expected = TestFixtures.OpenTinyExpected();
        using var model = LoadTiny();
        var prompt = expected["prompt"].AsSpan<int>().ToArray();
        var greedy = expected["greedy"].AsSpan<int>().ToArray();
        int[] target = [greedy[0], (greedy[1] + 1) % model.Config.VocabSize];

        var result = Lambada.Evaluate(model, [new LambadaExample(prompt, target), new LambadaExample(prompt, greedy[..1])], default);

        Assert.Equal((2, 1, 1), (result.Examples, result.Correct, result.CorrectFiltered));
        Assert.Equal(0.5, result.Accuracy);
    }

    [Fact]
    public void Stop_word_filter_skips_stop_candidates_for_the_first_token_only()
    {
        using var expected = TestFixtures.OpenTinyExpected();
        using var model = LoadTiny();
        int V = model.Config.VocabSize;
        var prompt = expected["prompt"].AsSpan<int>().ToArray();
        var greedy = expected["greedy"].AsSpan<int>().ToArray();
        var first = Row(expected["greedy_logits"].AsSpan<float>(), 0, V);
        int runnerUp = Enumerable.Range(0, V).Where(i => i != greedy[0]).MaxBy(i => first[i]);
        var stop = new bool[V];
        stop[greedy[0]] = true;

        var result = Lambada.Evaluate(model, [new LambadaExample(prompt, [runnerUp]), new LambadaExample(prompt, [greedy[0]])], stop);

        // The runner-up is right only once the argmax (a "stop word") is skipped; the argmax itself, only unfiltered.
        Assert.Equal((1, 1), (result.Correct, result.CorrectFiltered));
        Assert.InRange(result.Nats - Float64Gpt2.NegativeLogSoftmax(first, runnerUp) - Float64Gpt2.NegativeLogSoftmax(first, greedy[0]), -1e-4, 1e-4);
    }

    [Fact]
    public void A_context_longer_than_the_model_keeps_its_last_tokens()
    {
        using var model = LoadTiny();
        using var file = SafetensorsFile.Open(TestFixtures.TinyModel);
        var reference = new Float64Gpt2(file, model.Config.Layers, model.Config.Heads);
        var random = new Random(3);
        int[] context = Enumerable.Range(0, 40).Select(_ => random.Next(model.Config.VocabSize)).ToArray();
        int[] target = [11, 42];

        var result = Lambada.Evaluate(model, [new LambadaExample(context, target)], default);

        // 32 positions: the last 31 context tokens and the first target token (the last target token is never fed).
        double nats = reference.NextTokenLosses([.. context[^31..], .. target])[^2..].Sum();
        Assert.InRange(result.Nats - nats, -1e-4, 1e-4);
    }

    [Theory]
    [InlineData("He opened the door", "He opened the", "door")]
    [InlineData("  a b\tc  ", "a b", "c")]
    [InlineData("one\nline break", "one\nline", "break")]
    public void Split_takes_the_last_word(string text, string context, string word) =>
        Assert.Equal((context, word), Lambada.Split(text));

    [Theory]
    [InlineData("word")]
    [InlineData("   ")]
    [InlineData("")]
    public void Split_rejects_a_text_without_context(string text) => Assert.Null(Lambada.Split(text));

    [Theory]
    [InlineData("{\"text\": \"a b\"}\n{\"text\": \"c d\"\n", "lambada.jsonl:2: malformed JSON")]
    [InlineData("{\"text\": \"a b\"}\n\n[1, 2]\n", "lambada.jsonl:3: expected an object with a string \"text\"")]
    [InlineData("{\"txt\": \"a b\"}\n", "lambada.jsonl:1: expected an object with a string \"text\"")]
    [InlineData("{\"text\": \"alone\"}\n", "lambada.jsonl:1: the text needs a context and a last word")]
    [InlineData("", "lambada.jsonl: no passages")]
    [InlineData("\n  \n", "lambada.jsonl: no passages")]
    public void Bad_jsonl_is_a_one_line_error_with_the_line_number(string content, string message)
    {
        using var directory = new TempDir();
        string path = Path.Combine(directory.Path, "lambada.jsonl");
        File.WriteAllText(path, content);
        var e = Assert.Throws<Gpt2Exception>(() => Lambada.ReadJsonl(path));
        Assert.StartsWith(Path.Combine(directory.Path, message.Split(':')[0]), e.Message);
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Jsonl_passages_are_split_into_context_and_word()
    {
        using var directory = new TempDir();
        string path = Path.Combine(directory.Path, "lambada.jsonl");
        File.WriteAllText(path, "{\"text\": \"She looked at the \\\"map\\\" again\"}\n\n{\"text\": \"x y\", \"id\": 3}\n");
        Assert.Equal([("She looked at the \"map\"", "again"), ("x", "y")], Lambada.ReadJsonl(path));
    }

    [Fact]
    public void Passage_without_tokens_is_an_error()
    {
        using var model = LoadTiny();
        var e = Assert.Throws<Gpt2Exception>(() => Lambada.Evaluate(model, [new LambadaExample([1, 2], [])], default));
        Assert.Contains("passage 1", e.Message);
    }

    [Fact]
    public void Stop_tokens_are_the_gpt2_tokens_that_spell_a_stop_word()
    {
        var tokenizer = Gpt2Tokenizer.Default;
        var stop = Lambada.StopTokens(tokenizer);
        int Id(string text) => Assert.Single(tokenizer.Encode(text));
        Assert.True(stop[Id(" the")] && stop[Id(" The")] && stop[Id("the")] && stop[Id(" would")] && stop[Id("'s")]);
        Assert.False(stop[Id(" door")] || stop[Id(" key")] || stop[Id(".")]);
    }
}
