using Gpt2Engine.Checkpoints;

namespace Gpt2Engine.Model;

/// <summary>
/// Every GPT-2 parameter as a <see cref="TensorView"/> under its canonical name (see <see cref="ParameterLayout"/>),
/// wherever it lives: in a memory-mapped TensorFlow bundle or safetensors file, or in a native buffer. The model
/// reads these views in place and never learns where they came from. Disposing releases the owner (the mapping).
/// </summary>
public sealed class Gpt2Weights : IDisposable
{
    private readonly Dictionary<string, TensorView> _tensors;
    private readonly IDisposable? _owner;

    public Gpt2Config Config { get; }
    public ParameterLayout Layout { get; }

    /// <summary>Where the weights came from, for messages ("TensorFlow bundle weights/124M/model.ckpt").</summary>
    public string Source { get; }

    /// <summary>
    /// Checks that <paramref name="tensors"/> holds exactly the parameters of <paramref name="config"/> with the right
    /// shapes (F32 everywhere, BF16 allowed for the matmul weights) and takes ownership of <paramref name="owner"/>.
    /// </summary>
    public Gpt2Weights(Gpt2Config config, IReadOnlyDictionary<string, TensorView> tensors, string source, IDisposable? owner)
    {
        config.Validate(source);
        CheckLayerCount(config, tensors.Count, source);
        Config = config;
        Layout = ParameterLayout.For(config);
        Source = source;
        _owner = owner;
        _tensors = new Dictionary<string, TensorView>(Layout.Specs.Count);
        foreach (var spec in Layout.Specs)
        {
            if (!tensors.TryGetValue(spec.Name, out var view))
                throw new Gpt2Exception($"{source}: missing tensor '{spec.Name}'");
            if (!view.Shape.SequenceEqual(spec.Shape))
                throw new Gpt2Exception($"{source}: tensor '{view.Name}' has shape {view.ShapeText}, expected [{string.Join(", ", spec.Shape)}] for {config}");
            bool dtypeOk = view.DType == TensorDType.F32 || (view.DType == TensorDType.BF16 && spec.IsMatmulWeight);
            if (!dtypeOk)
                throw new Gpt2Exception($"{source}: tensor '{view.Name}' has dtype {view.DType}; expected F32{(spec.IsMatmulWeight ? " or BF16" : "")}");
            _tensors[spec.Name] = view;
        }
    }

    /// <summary>
    /// Throws unless <paramref name="storedTensors"/> tensors can hold the layers of <paramref name="config"/>: with
    /// twelve tensors a layer, N tensors hold at most N / 12. A larger n_layer (a wrong or corrupt hyperparameter) is
    /// reported here, before a <see cref="ParameterLayout"/> of that many tensors is built; below that bound the
    /// tensor-by-tensor check names whatever is missing.
    /// </summary>
    internal static void CheckLayerCount(Gpt2Config config, int storedTensors, string source)
    {
        if ((long)ParameterLayout.TensorsPerLayer * config.Layers > storedTensors)
            throw new Gpt2Exception($"{source}: n_layer={config.Layers} needs {config.TensorCount} tensors, but it holds {storedTensors}");
    }

    /// <summary>The tensor with the canonical name <paramref name="name"/>, e.g. <c>h.0.attn.c_attn.weight</c>.</summary>
    public TensorView this[string name] => _tensors[name];

    public IEnumerable<TensorView> Tensors => Layout.Specs.Select(s => _tensors[s.Name]);

    public long ByteLength => Tensors.Sum(t => t.ByteLength);

    public void Dispose() => _owner?.Dispose();
}
