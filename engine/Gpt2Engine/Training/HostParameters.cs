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
