using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;

namespace Gpt2Engine.Tests.Evaluation;

/// <summary>
/// A small random model with GPT-2's full vocabulary (so text goes through the real tokenizer), written once as a
/// safetensors file in a temporary directory for the command-line tests.
/// </summary>
public sealed class RandomGpt2Model : IDisposable
{
    public static readonly Gpt2Config Config = new(Gpt2Config.Gpt2VocabSize, ContextLength: 64, Channels: 16, Layers: 1, Heads: 2);

    private readonly TemporaryDirectory _directory = new();

    public string WeightsPath { get; }
    public string Directory => _directory.Path;

    public RandomGpt2Model()
    {
        var random = new Random(42);
        var tensors = ParameterLayout.For(Config).Specs.ToDictionary(spec => spec.Name, spec =>
        {
            bool isLayerNormWeight = spec.Name.Contains("ln_") && spec.Name.EndsWith(".weight");
            return Enumerable.Range(0, (int)spec.Count).Select(_ => isLayerNormWeight ? 1f : (float)(0.1 * (random.NextDouble() - 0.5))).ToArray();
        });
        WeightsPath = Path.Combine(Directory, "model.safetensors");
        Gpt2Checkpoints.WriteSafetensors(WeightsPath, Config, tensors);
    }

    public string WriteFile(string name, string content)
    {
        string path = Path.Combine(Directory, name);
        File.WriteAllText(path, content);
        return path;
    }

    public void Dispose() => _directory.Dispose();
}
