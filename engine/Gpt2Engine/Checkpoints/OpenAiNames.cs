namespace Gpt2Engine.Checkpoints;

/// <summary>
/// OpenAI's TensorFlow variable names ↔ the canonical (Hugging Face) names of Model/ParameterLayout:
/// <c>model/h3/attn/c_attn/w [1, C, 3C]</c> ↔ <c>h.3.attn.c_attn.weight [C, 3C]</c>, LayerNorm <c>g</c>/<c>b</c> ↔ <c>weight</c>/<c>bias</c>.
/// </summary>
internal static class OpenAiNames
{
    private const string Scope = "model/";

    /// <summary>The canonical name of a TF variable, or null if it is not shaped like a GPT-2 name.</summary>
    public static string? ToCanonical(string tfName)
    {
        if (!tfName.StartsWith(Scope, StringComparison.Ordinal)) return null;
        string[] parts = tfName[Scope.Length..].Split('/');
        if (parts is ["wte" or "wpe"]) return parts[0] + ".weight";
        if (parts.Length < 2) return null;
        if (parts[0].StartsWith('h'))
        {
            // Layer numbers are not zero-padded; anything that does not round-trip (h01, h-1) is not ours.
            if (!int.TryParse(parts[0].AsSpan(1), System.Globalization.NumberStyles.None, null, out int layer) || $"h{layer}" != parts[0]) return null;
            parts[0] = $"h.{layer}";
        }
        parts[^1] = parts[^1] switch { "w" or "g" => "weight", "b" => "bias", _ => "" };
        return parts[^1].Length == 0 ? null : string.Join('.', parts);
    }

    public static string FromCanonical(string name)
    {
        string[] parts = name.Split('.');
        if (parts is ["wte" or "wpe", "weight"]) return Scope + parts[0];
        if (parts[0] == "h") parts = [$"h{parts[1]}", .. parts[2..]];
        bool isLayerNorm = parts[^2].StartsWith("ln_", StringComparison.Ordinal);
        parts[^1] = parts[^1] == "bias" ? "b" : isLayerNorm ? "g" : "w";
        return Scope + string.Join('/', parts);
    }

    /// <summary>TF stores conv1d weights as [1, in, out]; the engine's matrices are [in, out] (same bytes).</summary>
    public static bool IsConvWeight(string tfName) => tfName.EndsWith("/w", StringComparison.Ordinal);
}
