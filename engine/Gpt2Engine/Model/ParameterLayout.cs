namespace Gpt2Engine.Model;

/// <summary>One parameter tensor: its Hugging Face name (without <c>transformer.</c>), shape and place in a flat buffer.</summary>
public sealed record ParameterSpec(string Name, int[] Shape, long Offset)
{
    public long Count => Shape.Aggregate(1L, (a, d) => a * d);

    /// <summary>
    /// True for the matrices that matmuls read: each layer's four weights and the tied wte. They hold nearly all the
    /// bytes, so they are the ones stored in bf16; wpe is only ever indexed by position and stays float32.
    /// </summary>
    public bool IsMatmulWeight => Shape.Length == 2 && Name != "wpe.weight";
}

/// <summary>
/// The canonical order of GPT-2's parameters: wte, wpe, then each layer's twelve tensors, then ln_f. Training keeps
/// parameters, gradients and AdamW moments in flat buffers laid out this way; checkpoints are written in this order.
/// Matmul weights are [in, out] (TensorFlow conv1d / Hugging Face Conv1D), wte is [vocab, channels].
/// </summary>
public sealed class ParameterLayout
{
    internal const int TensorsPerLayer = 12;

    public IReadOnlyList<ParameterSpec> Specs { get; }
    public long TotalCount { get; }
    private readonly Dictionary<string, ParameterSpec> _byName;

    private ParameterLayout(List<ParameterSpec> specs)
    {
        Specs = specs;
        TotalCount = specs.Count == 0 ? 0 : specs[^1].Offset + specs[^1].Count;
        _byName = specs.ToDictionary(s => s.Name);
    }

    public ParameterSpec this[string name] => _byName[name];

    public bool TryGet(string name, out ParameterSpec spec) => _byName.TryGetValue(name, out spec!);

    public static ParameterLayout For(Gpt2Config c)
    {
        int C = c.Channels;
        var specs = new List<ParameterSpec>();
        long offset = 0;
        void Add(string name, params int[] shape)
        {
            var spec = new ParameterSpec(name, shape, offset);
            specs.Add(spec);
            offset += spec.Count;
        }
        Add("wte.weight", c.VocabSize, C);
        Add("wpe.weight", c.ContextLength, C);
        for (int l = 0; l < c.Layers; l++)
        {
            string p = $"h.{l}.";
            Add(p + "ln_1.weight", C);
            Add(p + "ln_1.bias", C);
            Add(p + "attn.c_attn.weight", C, 3 * C);
            Add(p + "attn.c_attn.bias", 3 * C);
            Add(p + "attn.c_proj.weight", C, C);
            Add(p + "attn.c_proj.bias", C);
            Add(p + "ln_2.weight", C);
            Add(p + "ln_2.bias", C);
            Add(p + "mlp.c_fc.weight", C, 4 * C);
            Add(p + "mlp.c_fc.bias", 4 * C);
            Add(p + "mlp.c_proj.weight", 4 * C, C);
            Add(p + "mlp.c_proj.bias", C);
        }
        Add("ln_f.weight", C);
        Add("ln_f.bias", C);
        return new ParameterLayout(specs);
    }
}
