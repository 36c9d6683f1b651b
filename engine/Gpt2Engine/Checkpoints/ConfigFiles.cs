using System.Globalization;
using System.Text.Json;
using Gpt2Engine.Model;

namespace Gpt2Engine.Checkpoints;

/// <summary>
/// Hyperparameters from OpenAI's <c>hparams.json</c>, a Hugging Face <c>config.json</c>, or the <c>__metadata__</c>
/// of a safetensors file written by this engine (string values under the hparams.json keys).
/// </summary>
public static class ConfigFiles
{
    // Each hyperparameter under its OpenAI key, then the Hugging Face spelling.
    private static readonly (string Key, string? Alias)[] Keys =
        [("n_vocab", "vocab_size"), ("n_ctx", "n_positions"), ("n_embd", null), ("n_layer", null), ("n_head", null)];

    public static Gpt2Config Read(string path)
    {
        byte[] bytes = CheckpointFiles.ReadAllBytes(path, "hyperparameter file");
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new Gpt2Exception($"{path}: expected a JSON object");
            return Build(path, key => doc.RootElement.TryGetProperty(key, out var v) ? (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) ? n : throw new Gpt2Exception($"{path}: '{key}' is not an integer")) : null);
        }
        catch (JsonException e)
        {
            throw new Gpt2Exception($"{path}: not valid JSON ({e.Message})", e);
        }
    }

    /// <summary>The config stored in safetensors metadata, or null if the metadata has none of the keys.</summary>
    public static Gpt2Config? FromMetadata(IReadOnlyDictionary<string, string> metadata, string path)
    {
        if (!Keys.Any(k => metadata.ContainsKey(k.Key))) return null;
        return Build($"{path} (metadata)", key => metadata.TryGetValue(key, out string? text)
            ? int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : throw new Gpt2Exception($"{path}: metadata '{key}' = '{text}' is not an integer")
            : null);
    }

    public static Dictionary<string, string> ToMetadata(Gpt2Config c) => new()
    {
        ["format"] = "pt",
        ["n_vocab"] = c.VocabSize.ToString(CultureInfo.InvariantCulture),
        ["n_ctx"] = c.ContextLength.ToString(CultureInfo.InvariantCulture),
        ["n_embd"] = c.Channels.ToString(CultureInfo.InvariantCulture),
        ["n_layer"] = c.Layers.ToString(CultureInfo.InvariantCulture),
        ["n_head"] = c.Heads.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>hparams.json exactly as OpenAI formats it.</summary>
    public static string ToHparamsJson(Gpt2Config c) =>
        $"{{\n  \"n_vocab\": {c.VocabSize},\n  \"n_ctx\": {c.ContextLength},\n  \"n_embd\": {c.Channels},\n  \"n_head\": {c.Heads},\n  \"n_layer\": {c.Layers}\n}}\n";

    private static Gpt2Config Build(string source, Func<string, int?> lookup)
    {
        var values = new int[Keys.Length];
        for (int i = 0; i < Keys.Length; i++)
        {
            var (key, alias) = Keys[i];
            int? value = lookup(key), aliased = alias is null ? null : lookup(alias);
            if (value is not null && aliased is not null && value != aliased)
                throw new Gpt2Exception($"{source}: '{key}' = {value} disagrees with '{alias}' = {aliased}");
            values[i] = value ?? aliased ?? throw new Gpt2Exception($"{source}: missing '{key}'{(alias is null ? "" : $" (or '{alias}')")}");
        }
        var config = new Gpt2Config(values[0], values[1], values[2], values[3], values[4]);
        config.Validate(source);
        return config;
    }
}
