using Gpt2Engine.Model;

namespace Gpt2Engine.Checkpoints;

public enum CheckpointFormat { TensorFlowBundle, Safetensors }

/// <summary>
/// Finds and opens GPT-2 weights in either official format, memory-mapped: a size name (124M... or 117M...; the
/// folder <c>&lt;weights root&gt;/&lt;release&gt;/</c>), a directory (OpenAI: hparams.json + checkpoint + model.ckpt.*;
/// Hugging Face: config.json + model.safetensors), or a <c>.safetensors</c> file (hyperparameters from its metadata or
/// a config.json beside it).
/// </summary>
public static class CheckpointLoader
{
    public const string SafetensorsFileName = "model.safetensors";

    /// <summary>
    /// Opens and checks the weights; unknown extra tensors are reported on <paramref name="warnings"/>. With
    /// <paramref name="verifyChecksums"/>, every tensor of a TensorFlow bundle is checked against its stored crc32c
    /// (this reads the whole file; safetensors files have no checksums).
    /// </summary>
    public static Gpt2Weights Load(string weights, TextWriter? warnings = null, bool verifyChecksums = false)
    {
        var opened = Open(weights);
        var corrupt = verifyChecksums ? opened.Bundle?.Entries.FirstOrDefault(e => !opened.Bundle.VerifyCrc32C(e)) : null;
        if (corrupt is not null)
        {
            string shard = TensorBundle.ShardPath(opened.Bundle!.Prefix, corrupt.ShardId, opened.Bundle.Index.ShardCount);
            opened.Dispose();
            throw new Gpt2Exception($"{shard}: tensor '{corrupt.Name}' fails its crc32c check; the data file is corrupt");
        }
        return opened.ToWeights(warnings);
    }

    /// <summary>The folder the weights live in, where encoder.json/vocab.bpe (or vocab.json/merges.txt) sit beside them.</summary>
    public static string ResolveDirectory(string weights)
    {
        string path = ResolvePath(weights);
        return Directory.Exists(path) ? Path.GetFullPath(path) : Path.GetDirectoryName(Path.GetFullPath(path))!;
    }

    internal static OpenedCheckpoint Open(string weights)
    {
        string path = ResolvePath(weights);
        if (File.Exists(path))
        {
            if (path.EndsWith(".index", StringComparison.Ordinal)) return OpenBundle(Path.GetDirectoryName(Path.GetFullPath(path))!, path[..^".index".Length]);
            return OpenSafetensors(path);
        }
        string prefix = TensorBundle.FindPrefix(path);
        if (File.Exists(prefix + ".index")) return OpenBundle(path, prefix);
        string safetensors = Path.Combine(path, SafetensorsFileName);
        if (File.Exists(safetensors)) return OpenSafetensors(safetensors);
        if (File.Exists(Path.Combine(path, "hparams.json")) || File.Exists(Path.Combine(path, "checkpoint"))) return OpenBundle(path, prefix);
        throw new Gpt2Exception($"{path}: no checkpoint here: expected an OpenAI TensorFlow bundle (hparams.json, checkpoint, model.ckpt.index, model.ckpt.data-*) or Hugging Face files (config.json, {SafetensorsFileName})");
    }

    /// <summary>A size name becomes its folder under the weights root; anything else must exist.</summary>
    private static string ResolvePath(string weights)
    {
        if (string.IsNullOrWhiteSpace(weights)) throw new Gpt2Exception("no weights given (a size such as 124M, a checkpoint directory or a .safetensors file)");
        bool isBareName = weights.IndexOfAny(['/', '\\']) < 0;
        if (isBareName && ModelCatalog.TryGetReleaseName(weights, out string release))
        {
            string directory = ModelCatalog.DirectoryFor(release);
            if (!Directory.Exists(directory))
                throw new Gpt2Exception($"{directory}: GPT-2 {release} is not downloaded (run 'gpt2-engine download {release}', or set {ModelCatalog.WeightsDirVariable})");
            return directory;
        }
        if (File.Exists(weights) || Directory.Exists(weights)) return weights;
        throw new Gpt2Exception($"{weights}: no such file or directory, and not a model size ({Gpt2Sizes.Names})");
    }

    private static OpenedCheckpoint OpenBundle(string directory, string prefix)
    {
        var config = ConfigFiles.Read(Path.Combine(directory, "hparams.json"));
        return new OpenedCheckpoint(CheckpointFormat.TensorFlowBundle, $"TensorFlow bundle {prefix}", config, TensorBundle.Open(prefix), null);
    }

    private static OpenedCheckpoint OpenSafetensors(string path)
    {
        var file = SafetensorsFile.Open(path);
        try
        {
            string configPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "config.json");
            var config = ConfigFiles.FromMetadata(file.Metadata, path)
                ?? (File.Exists(configPath) ? ConfigFiles.Read(configPath)
                    : throw new Gpt2Exception($"{path}: no hyperparameters: no config.json beside it and no n_vocab/n_ctx/n_embd/n_layer/n_head in its metadata"));
            return new OpenedCheckpoint(CheckpointFormat.Safetensors, $"safetensors {path}", config, null, file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }
}

/// <summary>A checkpoint file set that is open and mapped, before its tensors are matched to the model's names.</summary>
internal sealed class OpenedCheckpoint(CheckpointFormat format, string source, Gpt2Config config, TensorBundle? bundle, SafetensorsFile? safetensors) : IDisposable
{
    public CheckpointFormat Format { get; } = format;
    public string Source { get; } = source;
    public Gpt2Config Config { get; } = config;
    public TensorBundle? Bundle { get; } = bundle;
    public SafetensorsFile? Safetensors { get; } = safetensors;

    /// <summary>
    /// Renames the stored tensors to the canonical names, warns about unknown ones and hands ownership of the mapping
    /// to the weights; if the tensors do not make a GPT-2, closes the files and throws.
    /// </summary>
    public Gpt2Weights ToWeights(TextWriter? warnings)
    {
        try
        {
            return MatchTensors(warnings);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private Gpt2Weights MatchTensors(TextWriter? warnings)
    {
        Gpt2Weights.CheckLayerCount(Config, Bundle?.Entries.Count ?? Safetensors!.Tensors.Count, Source);
        var layout = ParameterLayout.For(Config);
        var tensors = new Dictionary<string, TensorView>();
        var unknown = new List<string>();
        void Add(string stored, string canonical, TensorView view)
        {
            if (!tensors.TryAdd(canonical, view with { Name = canonical }))
                throw new Gpt2Exception($"{Source}: tensor '{stored}' duplicates '{canonical}'");
        }

        if (Bundle is not null)
        {
            foreach (var entry in Bundle.Entries)
            {
                string? canonical = OpenAiNames.ToCanonical(entry.Name);
                if (canonical is null || !layout.TryGet(canonical, out _))
                {
                    unknown.Add(entry.Name);
                    continue;
                }
                if (entry.DataType != TfDataTypes.Float)
                    throw new Gpt2Exception($"{Source}: tensor '{entry.Name}' has dtype {entry.DataTypeName}; GPT-2 tensors are float32");
                var view = Bundle.View(entry);
                if (OpenAiNames.IsConvWeight(entry.Name) && view.Shape is [1, int rows, int columns]) view = view with { Shape = [rows, columns] };
                Add(entry.Name, canonical, view);
            }
        }
        else
        {
            foreach (var (name, view) in Safetensors!.Tensors)
            {
                string canonical = name.StartsWith("transformer.", StringComparison.Ordinal) ? name["transformer.".Length..] : name;
                bool isMaskBuffer = (canonical.EndsWith(".attn.bias", StringComparison.Ordinal) && view.Shape.Length == 4)
                    || canonical.EndsWith(".attn.masked_bias", StringComparison.Ordinal);
                if (isMaskBuffer) continue;
                if (canonical == "lm_head.weight")
                {
                    int[] wte = layout["wte.weight"].Shape;
                    if (!view.Shape.SequenceEqual(wte))
                        throw new Gpt2Exception($"{Source}: lm_head.weight has shape {view.ShapeText}, not wte's [{string.Join(", ", wte)}]; untied output heads are not supported");
                    continue; // tied to wte
                }
                if (!layout.TryGet(canonical, out _))
                {
                    unknown.Add(name);
                    continue;
                }
                Add(name, canonical, view);
            }
        }

        if (unknown.Count > 0)
            warnings?.WriteLine($"warning: {Source}: ignoring {unknown.Count} tensor(s) that are not GPT-2 parameters: {string.Join(", ", unknown.Take(5))}{(unknown.Count > 5 ? ", ..." : "")}");
        return new Gpt2Weights(Config, tensors, Source, this);
    }

    public void Dispose()
    {
        Bundle?.Dispose();
        Safetensors?.Dispose();
    }
}
