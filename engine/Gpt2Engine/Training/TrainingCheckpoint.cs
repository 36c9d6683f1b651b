using System.Globalization;
using System.Numerics;
using System.Text;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;

namespace Gpt2Engine.Training;

/// <summary>
/// A run's output directory: <c>model.safetensors</c> + <c>config.json</c> (the weights, loadable like any other
/// checkpoint) and <c>training-state.safetensors</c> (the weights again, the AdamW moments, and in its metadata the
/// step, the data loader's position, the seed, T and the training data it read). Each file is written atomically, and the training state is
/// self-contained, so a run killed at any moment leaves a consistent checkpoint to resume from.
/// </summary>
public static class TrainingCheckpoint
{
    public const string ModelFile = "model.safetensors";
    public const string ConfigFile = "config.json";
    public const string StateFile = "training-state.safetensors";
    private const string FormatName = "gpt2-engine-training-state-1";

    /// <summary>Where a resumed run continues.</summary>
    /// <param name="DataDirectory">The data directory the run trained on (its full path), null in checkpoints from before it was recorded.</param>
    /// <param name="TrainTokens">The tokens of its train split, null likewise.</param>
    /// <param name="TrainHash">The train split's <see cref="TokenDataset.ContentHash"/>, null in checkpoints from before it was recorded.</param>
    public sealed record State(int Step, long DataPosition, ulong Seed, int SequenceLength, string? DataDirectory, long? TrainTokens, ulong? TrainHash = null);

    /// <summary>
    /// Throws a <see cref="Gpt2Exception"/> if <paramref name="directory"/> holds a checkpoint that a new run there would
    /// overwrite: a training run's (to continue with --resume) or other weights.
    /// </summary>
    internal static void RequireNoCheckpoint(string directory)
    {
        if (File.Exists(Path.Combine(directory, StateFile)))
            throw new Gpt2Exception($"--out {directory} holds a training run; continue it with --resume, or choose another --out");
        if (File.Exists(Path.Combine(directory, ModelFile)))
            throw new Gpt2Exception($"--out {directory} holds {ModelFile}, which a new run would overwrite; choose another --out");
    }

    public static void Save(string directory, Gpt2Model model, State state)
    {
        var (m, v) = model.OptimizerState;
        if (m.IsNone) throw new InvalidOperationException("a checkpoint needs at least one optimizer step");
        // The backend's buffers are written as they are: in place on the CPU, a chunk at a time from a GPU.
        var backend = model.Backend;
        IEnumerable<SafetensorsWriter.TensorSource> Parameters() => model.Layout.Specs.Select(spec =>
            new SafetensorsWriter.TensorSource(spec.Name, TensorDType.F32, spec.Shape, stream => backend.WriteTo(stream, model.ParameterMemory.Slice(spec.Offset, spec.Count))));
        SafetensorsWriter.TensorSource Flat(string name, DeviceBuffer moment) =>
            new(name, TensorDType.F32, [checked((int)moment.Count)], stream => backend.WriteTo(stream, moment));

        Directory.CreateDirectory(directory); // the run's folder: --out names it, and it may not exist yet
        var modelMetadata = ConfigFiles.ToMetadata(model.Config);
        modelMetadata["step"] = Text(state.Step);
        var stateMetadata = new Dictionary<string, string>(modelMetadata)
        {
            ["training_format"] = FormatName,
            ["data_position"] = Text(state.DataPosition),
            ["seed"] = Text(state.Seed),
            ["seq"] = Text(state.SequenceLength),
        };
        if (state.DataDirectory is not null) stateMetadata["data"] = state.DataDirectory;
        if (state.TrainTokens is long tokens) stateMetadata["train_tokens"] = Text(tokens);
        if (state.TrainHash is ulong hash) stateMetadata["train_hash"] = hash.ToString("x16", CultureInfo.InvariantCulture);
        SafetensorsWriter.Write(Path.Combine(directory, StateFile), Parameters().Append(Flat("optimizer.m", m)).Append(Flat("optimizer.v", v)), stateMetadata);
        SafetensorsWriter.Write(Path.Combine(directory, ModelFile), Parameters(), modelMetadata);
        AtomicFile.Write(Path.Combine(directory, ConfigFile), Encoding.UTF8.GetBytes(ConfigJson(model.Config)));
    }

    /// <summary>The model's config and the run's state saved in <paramref name="directory"/>, from the training state's header alone.</summary>
    internal static (Gpt2Config Config, State State) ReadState(string directory)
    {
        using var file = OpenState(directory);
        return Describe(file);
    }

    /// <summary>Builds a trainable model from the training state in <paramref name="directory"/>, with its optimizer moments.</summary>
    public static Gpt2Model Load(string directory, Backend backend)
    {
        using var file = OpenState(directory);
        return Load(file, Describe(file).Config, backend);
    }

    /// <summary>Builds a trainable model of <paramref name="config"/> (<see cref="Describe"/>'s) from an open training state.</summary>
    internal static Gpt2Model Load(SafetensorsFile file, Gpt2Config config, Backend backend)
    {
        using var weights = new Gpt2Weights(config, file.Tensors, $"training state {file.Path}", owner: null);
        var model = new Gpt2Model(weights, backend, trainable: true);
        try
        {
            model.SetOptimizerState(Moment(file, "optimizer.m", model.Layout), Moment(file, "optimizer.v", model.Layout));
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The training state in <paramref name="directory"/>, mapped: its header is read once, for <see cref="Describe"/> and <see cref="Load(SafetensorsFile, Gpt2Config, Backend)"/>.</summary>
    internal static SafetensorsFile OpenState(string directory)
    {
        string path = Path.Combine(directory, StateFile);
        if (!File.Exists(path)) throw new Gpt2Exception($"{path}: no training checkpoint to resume from");
        return SafetensorsFile.Open(path);
    }

    internal static (Gpt2Config Config, State State) Describe(SafetensorsFile file)
    {
        string path = file.Path;
        var metadata = file.Metadata;
        if (!metadata.TryGetValue("training_format", out string? format) || format != FormatName)
            throw new Gpt2Exception($"{path}: not a gpt2-engine training state (metadata 'training_format' is '{format}')");
        var config = ConfigFiles.FromMetadata(metadata, path) ?? throw new Gpt2Exception($"{path}: metadata has no model config");
        var state = new State(Read<int>(metadata, "step", path), Read<long>(metadata, "data_position", path),
            Read<ulong>(metadata, "seed", path), Read<int>(metadata, "seq", path), metadata.GetValueOrDefault("data"),
            metadata.ContainsKey("train_tokens") ? Read<long>(metadata, "train_tokens", path) : null,
            metadata.TryGetValue("train_hash", out string? hash) ? ParseHash(hash, path) : null);
        return (config, state);
    }

    public static string ConfigJson(Gpt2Config c) =>
        $"{{\n  \"model_type\": \"gpt2\",\n  \"vocab_size\": {c.VocabSize},\n  \"n_positions\": {c.ContextLength},\n  \"n_embd\": {c.Channels},\n  \"n_layer\": {c.Layers},\n  \"n_head\": {c.Heads}\n}}\n";

    private static ReadOnlySpan<float> Moment(SafetensorsFile file, string name, ParameterLayout layout)
    {
        var view = file[name];
        if (view.DType != TensorDType.F32 || view.ElementCount != layout.TotalCount)
            throw new Gpt2Exception($"{file.Path}: '{name}' must be F32 with {layout.TotalCount} elements, found {view.DType} {view.ShapeText}");
        return view.AsSpan<float>();
    }

    private static string Text<T>(T value) where T : IFormattable => value.ToString(null, CultureInfo.InvariantCulture);

    private static ulong ParseHash(string text, string path) =>
        text.Length == 16 && ulong.TryParse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong hash)
            ? hash : throw new Gpt2Exception($"{path}: metadata 'train_hash' is not 16 hexadecimal digits");

    private static string Required(IReadOnlyDictionary<string, string> metadata, string key, string path) =>
        metadata.TryGetValue(key, out string? value) ? value : throw new Gpt2Exception($"{path}: metadata has no '{key}'");

    private static T Read<T>(IReadOnlyDictionary<string, string> metadata, string key, string path) where T : INumberBase<T> =>
        T.TryParse(Required(metadata, key, path), NumberStyles.None, CultureInfo.InvariantCulture, out T? n) ? n : throw new Gpt2Exception($"{path}: metadata '{key}' is not a count");
}
