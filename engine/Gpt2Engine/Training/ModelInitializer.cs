using Gpt2Engine.Model;

namespace Gpt2Engine.Training;

/// <summary>
/// GPT-2's initialisation for training from scratch (the paper and OpenAI's code): matrices and embeddings
/// N(0, 0.02), the residual projections (attn.c_proj, mlp.c_proj) N(0, 0.02/sqrt(2 x layers)) so the residual
/// stream does not grow with depth, biases 0, LayerNorm weights 1. Seeded and reproducible.
/// </summary>
public static class ModelInitializer
{
    public const float Std = 0.02f;

    public static Gpt2Weights RandomWeights(Gpt2Config config, ulong seed)
    {
        config.Validate("--config");
        HostParameters.RequireFits(config, "--config");
        var host = new HostParameters(ParameterLayout.For(config));
        var rng = new SplitMix64(seed);
        double residualStd = Std / Math.Sqrt(2.0 * config.Layers);
        foreach (var spec in host.Layout.Specs)
        {
            var values = host.Values.Slice(checked((int)spec.Offset), checked((int)spec.Count));
            if (spec.Name.EndsWith(".bias", StringComparison.Ordinal)) values.Clear();
            else if (spec.Name.Contains("ln_", StringComparison.Ordinal)) values.Fill(1f);
            else
            {
                double std = spec.Name.EndsWith("c_proj.weight", StringComparison.Ordinal) ? residualStd : Std;
                for (int i = 0; i < values.Length; i++) values[i] = (float)(std * rng.NextGaussian());
            }
        }
        return host.ToWeights(config, $"random initialisation (seed {seed})");
    }
}
