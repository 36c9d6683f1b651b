using System.Runtime.InteropServices;
using System.Text;
using Gpt2Engine.Model;

namespace Gpt2Engine.Checkpoints;

/// <summary>
/// Writes GPT-2 weights in either official format, from loaded weights or from float arrays under the canonical
/// names: a self-describing <c>.safetensors</c> (hyperparameters in its metadata) or an OpenAI-layout folder
/// (hparams.json, checkpoint, model.ckpt.index, model.ckpt.data-00000-of-00001) that TensorFlow itself could read.
/// </summary>
public static class Gpt2Checkpoints
{
    public const string BundlePrefix = "model.ckpt";

    public static void WriteSafetensors(string path, Gpt2Weights weights) =>
        SafetensorsWriter.Write(path, weights.Tensors, ConfigFiles.ToMetadata(weights.Config));

    public static void WriteSafetensors(string path, Gpt2Config config, IReadOnlyDictionary<string, float[]> tensors) =>
        WithPinnedViews(config, tensors, views => SafetensorsWriter.Write(path, views, ConfigFiles.ToMetadata(config)));

    public static void WriteTensorFlowBundle(string directory, Gpt2Weights weights)
    {
        var notFloat = weights.Tensors.FirstOrDefault(t => t.DType != TensorDType.F32);
        if (notFloat.Name is not null) throw new Gpt2Exception($"{weights.Source}: tensor '{notFloat.Name}' is {notFloat.DType}; OpenAI bundles hold float32 only");
        WriteBundle(directory, weights.Config, weights.Tensors);
    }

    public static void WriteTensorFlowBundle(string directory, Gpt2Config config, IReadOnlyDictionary<string, float[]> tensors) =>
        WithPinnedViews(config, tensors, views => WriteBundle(directory, config, views));

    private static void WriteBundle(string directory, Gpt2Config config, IEnumerable<TensorView> canonical)
    {
        Directory.CreateDirectory(directory); // a bundle is a folder of files, made here (a single file's folder must exist)
        var renamed = canonical.Select(t =>
        {
            string name = OpenAiNames.FromCanonical(t.Name);
            return t with { Name = name, Shape = OpenAiNames.IsConvWeight(name) ? [1, .. t.Shape] : t.Shape };
        });
        TensorBundleWriter.Write(Path.Combine(directory, BundlePrefix), renamed);
        AtomicFile.Write(Path.Combine(directory, "checkpoint"),
            Encoding.UTF8.GetBytes($"model_checkpoint_path: \"{BundlePrefix}\"\nall_model_checkpoint_paths: \"{BundlePrefix}\"\n"));
        AtomicFile.Write(Path.Combine(directory, "hparams.json"), Encoding.UTF8.GetBytes(ConfigFiles.ToHparamsJson(config)));
    }

    /// <summary>Checks the arrays against the layout and pins them for the duration of <paramref name="write"/>.</summary>
    private static void WithPinnedViews(Gpt2Config config, IReadOnlyDictionary<string, float[]> tensors, Action<List<TensorView>> write)
    {
        config.Validate("checkpoint to write");
        var layout = ParameterLayout.For(config);
        var extra = tensors.Keys.FirstOrDefault(k => !layout.TryGet(k, out _));
        if (extra is not null) throw new ArgumentException($"'{extra}' is not a parameter of a GPT-2 with {config}");
        var handles = new List<GCHandle>();
        try
        {
            var views = new List<TensorView>();
            foreach (var spec in layout.Specs)
            {
                if (!tensors.TryGetValue(spec.Name, out float[]? data)) throw new ArgumentException($"missing tensor '{spec.Name}'");
                if (data.Length != spec.Count) throw new ArgumentException($"tensor '{spec.Name}' has {data.Length} values, expected {spec.Count}");
                var handle = GCHandle.Alloc(data, GCHandleType.Pinned);
                handles.Add(handle);
                views.Add(new TensorView(spec.Name, TensorDType.F32, spec.Shape, handle.AddrOfPinnedObject()));
            }
            write(views);
        }
        finally
        {
            foreach (var handle in handles) handle.Free();
        }
    }
}
