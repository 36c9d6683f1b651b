using Gpt2Engine.Model;

namespace Gpt2Engine.Tests.Checkpoints;

/// <summary>Fixture paths and small GPT-2 parameter sets to write in tests.</summary>
internal static class TestFiles
{
    public static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "Fixtures", .. parts]);

    /// <summary>The 124M release's hyperparameters (hparams.json of shared/docs/openai-checkpoint.md §2).</summary>
    public static readonly Gpt2Config Gpt2Small = new(50257, 1024, 768, 12, 12);

    /// <summary>A GPT-2 small enough to write in a millisecond, with C not a multiple of 8 and layer numbers ≥ 10 (h10 sorts before h2).</summary>
    public static readonly Gpt2Config Small = new(VocabSize: 37, ContextLength: 9, Channels: 6, Layers: 11, Heads: 2);

    /// <summary>Distinct values for every parameter (uniform in ±0.02, seeded).</summary>
    public static Dictionary<string, float[]> RandomParameters(Gpt2Config config, int seed = 1)
    {
        var random = new Random(seed);
        return ParameterLayout.For(config).Specs.ToDictionary(s => s.Name, s =>
        {
            var values = new float[s.Count];
            for (int i = 0; i < values.Length; i++) values[i] = (float)(0.02 * random.NextDouble() * 2 - 0.02);
            return values;
        });
    }

    /// <summary>Writes <see cref="Small"/> as an OpenAI TensorFlow folder and returns the parameters written.</summary>
    public static Dictionary<string, float[]> WriteSmallBundle(string directory)
    {
        var parameters = RandomParameters(Small);
        Gpt2Engine.Checkpoints.Gpt2Checkpoints.WriteTensorFlowBundle(directory, Small, parameters);
        return parameters;
    }

    /// <summary>Writes <see cref="Small"/> as a safetensors file (hyperparameters in its metadata) and returns its path.</summary>
    public static string WriteSmallSafetensors(string path)
    {
        Gpt2Engine.Checkpoints.Gpt2Checkpoints.WriteSafetensors(path, Small, RandomParameters(Small));
        return path;
    }
}
