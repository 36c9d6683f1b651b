using System.Runtime.InteropServices;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;

namespace Gpt2Engine.Training;

/// <summary>
/// F32 values in host memory in <see cref="ParameterLayout"/> order, seen as named tensors: the pinned array freshly
/// initialised weights are made in.
/// </summary>
internal sealed unsafe class HostParameters : IDisposable
{
    private readonly float[] _array; // pinned: Address points into it

    /// <summary>
    /// Throws a <see cref="Gpt2Exception"/> naming <paramref name="source"/> unless the parameters of <paramref name="config"/>
    /// fit in one array: training needs that (initialisation, and the flat AdamW moments of a checkpoint, whose one
    /// dimension is 32-bit), so a larger model is refused before training starts rather than at its first checkpoint.
    /// </summary>
    public static void RequireFits(Gpt2Config config, string source)
    {
        if (config.ParameterCount > Array.MaxLength)
            throw new Gpt2Exception($"{source}: {config} has {config.ParameterCount:N0} parameters; training keeps them in one array of at most {Array.MaxLength:N0}");
    }

    /// <summary>A new zeroed array.</summary>
    public HostParameters(ParameterLayout layout)
    {
        Layout = layout;
        _array = GC.AllocateArray<float>(checked((int)layout.TotalCount), pinned: true);
        Address = Marshal.UnsafeAddrOfPinnedArrayElement(_array, 0);
    }

    public ParameterLayout Layout { get; }
    private nint Address { get; }

    public Span<float> Values => new((void*)Address, checked((int)Layout.TotalCount));

    /// <summary>Every parameter as a view into <see cref="Values"/>.</summary>
    public IEnumerable<TensorView> Tensors => Layout.Specs.Select(spec => new TensorView(spec.Name, TensorDType.F32, spec.Shape, Address + (nint)(spec.Offset * sizeof(float))));

    public Gpt2Weights ToWeights(Gpt2Config config, string source) =>
        new(config, Tensors.ToDictionary(t => t.Name), source, this);

    public void Dispose() { } // the pinned array is the GC's to free; the weights built on it keep this object alive
}
