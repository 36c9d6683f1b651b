using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;

namespace Gpt2Engine.Validation;

/// <summary>
/// What a check works with: the reference file, the weights and backend under test, the tolerance the user asked
/// for (null: each check's default), and an inference model built on first use. Trainable models are the business
/// of the checks that need them.
/// </summary>
public sealed class ReferenceContext(SafetensorsFile reference, Gpt2Weights weights, Backend backend, double? tolerance) : IDisposable
{
    private Gpt2Model? _model;

    public SafetensorsFile Reference => reference;
    public Gpt2Weights Weights => weights;
    public Backend Backend => backend;
    public Gpt2Config Config => weights.Config;

    public Gpt2Model InferenceModel => _model ??= new Gpt2Model(weights, backend);

    /// <summary>The user's tolerance, or <paramref name="defaultTolerance"/>.</summary>
    public double Tolerance(double defaultTolerance) => tolerance ?? defaultTolerance;

    public bool Has(string name) => reference.Tensors.ContainsKey(name);

    /// <summary>An F32 reference tensor, checked to have <paramref name="shape"/> (-1 = any size).</summary>
    public float[] Floats(string name, params int[] shape) => Read(name, TensorDType.F32, shape).ToFloatArray();

    /// <summary>An I32 reference tensor, checked to have <paramref name="shape"/> (-1 = any size).</summary>
    public int[] Ints(string name, params int[] shape) => Read(name, TensorDType.I32, shape).AsSpan<int>().ToArray();

    /// <summary>The shape of a reference tensor.</summary>
    public int[] Shape(string name) => reference[name].Shape;

    private TensorView Read(string name, TensorDType dtype, int[] shape)
    {
        var view = reference[name];
        if (view.DType != dtype) throw new Gpt2Exception($"{reference.Path}: '{name}' is {view.DType}, expected {dtype}");
        bool matches = view.Shape.Length == shape.Length && view.Shape.Zip(shape).All(p => p.Second < 0 || p.First == p.Second);
        if (!matches)
            throw new Gpt2Exception($"{reference.Path}: '{name}' has shape {view.ShapeText}, expected [{string.Join(", ", shape.Select(d => d < 0 ? "*" : d.ToString()))}] for a model with {Config}");
        return view;
    }

    public void Dispose() => _model?.Dispose();
}
