using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;

namespace Gpt2Engine.Tests.Evaluation;

/// <summary>
/// A small random model written once as a safetensors file in a temporary directory: by default with GPT-2's full
/// vocabulary (so text goes through the real tokenizer), for the command-line tests.
/// </summary>
public sealed class RandomGpt2Model : IDisposable
{
    private static readonly Gpt2Config FullVocabulary = new(Gpt2Config.Gpt2VocabSize, ContextLength: 64, Channels: 16, Layers: 1, Heads: 2);

    private readonly TempDir _directory = new();

    public Gpt2Config Config { get; }
    public string WeightsPath { get; }
    public string Directory => _directory.Path;

    public RandomGpt2Model() : this(FullVocabulary, scale: 0.1) { }

    /// <summary>Weights uniform in [-scale/2, scale/2), LayerNorm weights 1. (Internal: a class fixture has one public constructor.)</summary>
    internal RandomGpt2Model(Gpt2Config config, double scale)
    {
        Config = config;
        var random = new Random(42);
        var tensors = ParameterLayout.For(config).Specs.ToDictionary(spec => spec.Name, spec =>
        {
            bool isLayerNormWeight = spec.Name.Contains("ln_") && spec.Name.EndsWith(".weight");
            return Enumerable.Range(0, (int)spec.Count).Select(_ => isLayerNormWeight ? 1f : (float)(scale * (random.NextDouble() - 0.5))).ToArray();
        });
        WeightsPath = Path.Combine(Directory, "model.safetensors");
        Gpt2Checkpoints.WriteSafetensors(WeightsPath, config, tensors);
    }

    public string WriteFile(string name, string content)
    {
        string path = Path.Combine(Directory, name);
        File.WriteAllText(path, content);
        return path;
    }

    public void Dispose() => _directory.Dispose();
}
