using System.Runtime.InteropServices;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;

namespace Gpt2Engine.Training;

/// <summary>
/// A pinned host array of F32 values in <see cref="ParameterLayout"/> order, seen as named tensors: the source of
/// freshly initialised weights and the staging copy that checkpoints are written from.
/// </summary>
internal sealed class HostParameters(ParameterLayout layout) : IDisposable
{
    /// <summary>
    /// Throws a <see cref="Gpt2Exception"/> naming <paramref name="source"/> unless the parameters of <paramref name="config"/>
    /// fit in one array: training needs that (initialisation, and the staging copy every checkpoint is written from),
    /// so a larger model is refused before training starts rather than at its first checkpoint.
    /// </summary>
    public static void RequireFits(Gpt2Config config, string source)
    {
        if (config.ParameterCount > Array.MaxLength)
            throw new Gpt2Exception($"{source}: {config} has {config.ParameterCount:N0} parameters; training keeps them in one array of at most {Array.MaxLength:N0}");
    }

    public ParameterLayout Layout { get; } = layout;
    public float[] Values { get; } = GC.AllocateArray<float>(checked((int)layout.TotalCount), pinned: true);

    private nint Address => Marshal.UnsafeAddrOfPinnedArrayElement(Values, 0);

    /// <summary>Every parameter as a view into <see cref="Values"/>.</summary>
    public IEnumerable<TensorView> Tensors => Layout.Specs.Select(spec => new TensorView(spec.Name, TensorDType.F32, spec.Shape, Address + (nint)(spec.Offset * sizeof(float))));

    /// <summary>The whole array as one flat tensor.</summary>
    public TensorView Flat(string name) => new(name, TensorDType.F32, [Values.Length], Address);

    public Gpt2Weights ToWeights(Gpt2Config config, string source) =>
        new(config, Tensors.ToDictionary(t => t.Name), source, this);

    public void Dispose() { } // the pinned array is the GC's to free; the weights built on it keep this object alive
}
