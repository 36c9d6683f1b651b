namespace Gpt2Engine.Model;

/// <summary>One transformer block's parameters (or their gradients) as backend buffers.</summary>
public sealed record LayerParameters(
    DeviceBuffer Ln1Weight, DeviceBuffer Ln1Bias,
    DeviceBuffer QkvWeight, DeviceBuffer QkvBias,
    DeviceBuffer AttnProjWeight, DeviceBuffer AttnProjBias,
    DeviceBuffer Ln2Weight, DeviceBuffer Ln2Bias,
    DeviceBuffer FcWeight, DeviceBuffer FcBias,
    DeviceBuffer FcProjWeight, DeviceBuffer FcProjBias);

/// <summary>All of GPT-2's parameters (or gradients) as backend buffers, named as in the paper's code.</summary>
public sealed record ModelParameters(DeviceBuffer Wte, DeviceBuffer Wpe, LayerParameters[] Layers, DeviceBuffer LnFWeight, DeviceBuffer LnFBias)
{
    /// <summary>Binds each tensor of <paramref name="layout"/> to the buffer <paramref name="bufferFor"/> gives it.</summary>
    public static ModelParameters Bind(ParameterLayout layout, int layers, Func<ParameterSpec, DeviceBuffer> bufferFor)
    {
        DeviceBuffer Get(string name) => bufferFor(layout[name]);
        var blocks = new LayerParameters[layers];
        for (int l = 0; l < layers; l++)
        {
            string p = $"h.{l}.";
            blocks[l] = new LayerParameters(
                Get(p + "ln_1.weight"), Get(p + "ln_1.bias"),
                Get(p + "attn.c_attn.weight"), Get(p + "attn.c_attn.bias"),
                Get(p + "attn.c_proj.weight"), Get(p + "attn.c_proj.bias"),
                Get(p + "ln_2.weight"), Get(p + "ln_2.bias"),
                Get(p + "mlp.c_fc.weight"), Get(p + "mlp.c_fc.bias"),
                Get(p + "mlp.c_proj.weight"), Get(p + "mlp.c_proj.bias"));
        }
        return new ModelParameters(Get("wte.weight"), Get("wpe.weight"), blocks, Get("ln_f.weight"), Get("ln_f.bias"));
    }

    /// <summary>Views into one flat buffer laid out as <paramref name="layout"/> (training: parameters, gradients).</summary>
    public static ModelParameters Slices(ParameterLayout layout, int layers, DeviceBuffer flat) =>
        Bind(layout, layers, spec => flat.Slice(spec.Offset, spec.Count));
}
