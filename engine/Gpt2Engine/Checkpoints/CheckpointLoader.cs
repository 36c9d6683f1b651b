using System.Text.Json;
using Gpt2Engine.Model;

namespace Gpt2Engine.Checkpoints;

/// <summary>Interim loader (safetensors + config.json only); replaced by the checkpoints work.</summary>
public static class CheckpointLoader
{
    public static Gpt2Weights Load(string weights)
    {
        string file = Directory.Exists(weights) ? Path.Combine(weights, "model.safetensors") : weights;
        string configPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, "config.json");
        if (!File.Exists(configPath)) throw new Gpt2Exception($"{configPath}: missing");
        using var doc = JsonDocument.Parse(File.ReadAllText(configPath));
        var r = doc.RootElement;
        var config = new Gpt2Config(r.GetProperty("vocab_size").GetInt32(), r.GetProperty("n_positions").GetInt32(),
            r.GetProperty("n_embd").GetInt32(), r.GetProperty("n_layer").GetInt32(), r.GetProperty("n_head").GetInt32());
        var st = SafetensorsFile.Open(file);
        var tensors = st.Tensors.Where(kv => !kv.Key.EndsWith(".attn.bias")).ToDictionary(kv => kv.Key.StartsWith("transformer.") ? kv.Key["transformer.".Length..] : kv.Key, kv => kv.Value);
        return new Gpt2Weights(config, tensors, $"safetensors {file}", st);
    }
}
