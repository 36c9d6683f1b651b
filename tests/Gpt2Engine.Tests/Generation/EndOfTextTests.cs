using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cpu;
using Gpt2Engine.Generation;
using Gpt2Engine.Model;
using Gpt2Engine.Tests.Evaluation;
using Xunit;

namespace Gpt2Engine.Tests.Generation;

/// <summary>&lt;|endoftext|&gt; (50256) on models with GPT-2's whole vocabulary: where an empty prompt starts, and where a sample stops.</summary>
public sealed class EndOfTextTests : IDisposable
{
    private readonly RandomGpt2Model _file = new();

    public void Dispose() => _file.Dispose();

    private static Gpt2Model Load(string path) => new(CheckpointLoader.Load(path), new CpuBackend(2), ownsWeights: true, ownsBackend: true);

    private static int[] Ids(IEnumerable<GeneratedToken> tokens) => tokens.Select(t => t.Id).ToArray();

    [Fact]
    public void An_empty_prompt_starts_from_end_of_text()
    {
        using var model = Load(_file.WeightsPath);
        var generator = new Generator(model);
        var greedy = new GenerationOptions { Greedy = true, MaxTokens = 8 };

        int[] fromNothing = Ids(generator.Generate([], greedy));
        Assert.Equal(1, generator.Statistics.PromptTokens);
        Assert.Equal(Ids(generator.Generate([Gpt2Config.EndOfText], greedy)), fromNothing);
        // The first token is the argmax of the logits after <|endoftext|> alone...
        using (var session = model.CreateSession())
            Assert.Equal(Sampler.ArgMax(session.Forward([Gpt2Config.EndOfText], 1)), fromNothing[0]);
        // ...and this model's continuation depends on where it starts, so the comparison above can fail.
        Assert.NotEqual(Ids(generator.Generate([0], greedy)), fromNothing);

        // Sampled (the defaults: temperature 1, top-k 40), three samples: the same draws as from <|endoftext|>.
        var sampled = new GenerationOptions { MaxTokens = 8, Samples = 3, Seed = 11 };
        Assert.Equal(generator.Generate([Gpt2Config.EndOfText], sampled).ToArray(), generator.Generate([], sampled).ToArray());
    }

    /// <summary>
    /// The random model with <c>ln_f</c>'s weight 0 and bias b = (1, ..., 1): the final LayerNorm then gives b at every
    /// position, whatever the input, so the logits are wte b. Row 50256 of wte is set to 10 b: its logit is 10 C = 160 (C = 16),
    /// while every other row's entries lie in [-0.05, 0.05), so theirs are at most 0.05 C = 0.8 in magnitude. 50256 is
    /// the argmax by 159, and any other token has probability under 50256 e^-159 at temperature 1.
    /// </summary>
    private string WriteEndOfTextModel()
    {
        var config = _file.Config;
        int C = config.Channels;
        Dictionary<string, float[]> tensors;
        using (var weights = CheckpointLoader.Load(_file.WeightsPath))
            tensors = weights.Layout.Specs.ToDictionary(spec => spec.Name, spec => weights[spec.Name].ToFloatArray());
        Assert.All(tensors["wte.weight"], w => Assert.InRange(w, -0.05f, 0.05f));
        Array.Fill(tensors["ln_f.weight"], 0f);
        Array.Fill(tensors["ln_f.bias"], 1f);
        Array.Fill(tensors["wte.weight"], 10f, Gpt2Config.EndOfText * C, C);
        string path = Path.Combine(_file.Directory, "ends-at-once.safetensors");
        Gpt2Checkpoints.WriteSafetensors(path, config, tensors);
        return path;
    }

    [Fact]
    public void A_sample_stops_when_it_produces_end_of_text()
    {
        using var model = Load(WriteEndOfTextModel());
        var generator = new Generator(model);
        int[] prompt = [464, 3290, 318];

        Assert.Equal([new GeneratedToken(0, Gpt2Config.EndOfText, StopReason.EndOfText)],
            generator.Generate(prompt, new GenerationOptions { Greedy = true, MaxTokens = 5 }));
        Assert.Equal([new GeneratedToken(0, Gpt2Config.EndOfText, StopReason.EndOfText), new GeneratedToken(1, Gpt2Config.EndOfText, StopReason.EndOfText)],
            generator.Generate(prompt, new GenerationOptions { MaxTokens = 5, Samples = 2, Seed = 3 }));
        // Without the stop, the same model goes on to the limit: the stop above came from <|endoftext|> itself.
        var unstopped = generator.Generate(prompt, new GenerationOptions { Greedy = true, MaxTokens = 5, StopAtEndOfText = false }).ToArray();
        Assert.Equal(Enumerable.Repeat(Gpt2Config.EndOfText, 5), unstopped.Select(t => t.Id));
        Assert.Equal([StopReason.None, StopReason.None, StopReason.None, StopReason.None, StopReason.MaxTokens], unstopped.Select(t => t.Stop));
    }
}
