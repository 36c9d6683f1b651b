using System.Runtime.InteropServices;
using Gpt2Engine.Cpu;
using Gpt2Engine.Model;

namespace Gpt2Engine.Checkpoints;

/// <summary>
/// Rewrites weights with their matmul matrices (each layer's four weights and wte) in another dtype: bf16 (rounded to
/// nearest, ties to even) halves the bytes a decoded token streams; f32 widens them back. Everything else (wpe,
/// biases, LayerNorm) stays float32. The result is a self-describing, memory-mappable safetensors file, written atomically.
/// </summary>
public static unsafe class WeightConversion
{
    /// <summary>True for the tensors a conversion changes: the matrices the matmuls read (wpe is added, not multiplied).</summary>
    public static bool IsConverted(ParameterSpec spec) => spec.IsMatmulWeight;

    public static void WriteSafetensors(Gpt2Weights weights, TensorDType dtype, string path)
    {
        if (dtype is not (TensorDType.F32 or TensorDType.BF16)) throw new Gpt2Exception($"cannot convert weights to {dtype}: expected f32 or bf16");
        var converted = new List<nint>();
        try
        {
            var views = new List<TensorView>();
            foreach (var spec in weights.Layout.Specs)
            {
                var view = weights[spec.Name];
                if (!IsConverted(spec) || view.DType == dtype)
                {
                    views.Add(view);
                    continue;
                }
                nint memory = (nint)NativeMemory.Alloc((nuint)(view.ElementCount * dtype.SizeOf()));
                converted.Add(memory);
                Convert(view, dtype, memory);
                views.Add(view with { DType = dtype, Address = memory });
            }
            SafetensorsWriter.Write(path, views, ConfigFiles.ToMetadata(weights.Config));
        }
        finally
        {
            foreach (nint memory in converted) NativeMemory.Free((void*)memory);
        }
    }

    private static void Convert(TensorView view, TensorDType dtype, nint destination)
    {
        long count = view.ElementCount;
        if (dtype == TensorDType.BF16)
        {
            float* source = (float*)view.Address;
            ushort* target = (ushort*)destination;
            for (long i = 0; i < count; i++) target[i] = BFloat16.FromSingle(source[i]);
        }
        else
        {
            ushort* source = (ushort*)view.Address;
            float* target = (float*)destination;
            for (long i = 0; i < count; i++) target[i] = BFloat16.ToSingle(source[i]);
        }
    }
}
