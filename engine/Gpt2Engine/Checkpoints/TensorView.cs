namespace Gpt2Engine.Checkpoints;

/// <summary>Element types a checkpoint tensor can have. The model uses F32 and BF16; the rest are read to be named in errors.</summary>
public enum TensorDType { F32, BF16, F16, F64, I32, I64, U16, U8, String }

public static class TensorDTypes
{
    public static int SizeOf(this TensorDType dtype) => dtype switch
    {
        TensorDType.F32 or TensorDType.I32 => 4,
        TensorDType.BF16 or TensorDType.F16 or TensorDType.U16 => 2,
        TensorDType.F64 or TensorDType.I64 => 8,
        TensorDType.U8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "no fixed element size"),
    };
}

/// <summary>
/// A named tensor that lives somewhere else: a view straight into a memory-mapped checkpoint, or into a native
/// buffer. It owns nothing; whoever produced it keeps the memory alive.
/// </summary>
public readonly unsafe record struct TensorView(string Name, TensorDType DType, int[] Shape, nint Address)
{
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (int d in Shape) n *= d;
            return n;
        }
    }

    public long ByteLength => ElementCount * DType.SizeOf();

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";

    /// <summary>The elements as a span of <typeparamref name="T"/>; the caller picks the type that matches <see cref="DType"/>.</summary>
    public ReadOnlySpan<T> AsSpan<T>() where T : unmanaged
    {
        if (ByteLength % sizeof(T) != 0) throw new InvalidOperationException($"{Name}: {DType} data cannot be read as {typeof(T).Name}");
        return new ReadOnlySpan<T>((void*)Address, checked((int)(ByteLength / sizeof(T))));
    }

    /// <summary>The elements widened to float32 (copies; for tests, tools and training initialisation).</summary>
    public float[] ToFloatArray()
    {
        var result = new float[ElementCount];
        switch (DType)
        {
            case TensorDType.F32: AsSpan<float>().CopyTo(result); break;
            case TensorDType.BF16:
                var bf = AsSpan<ushort>();
                for (int i = 0; i < bf.Length; i++) result[i] = BitConverter.Int32BitsToSingle(bf[i] << 16);
                break;
            case TensorDType.F16:
                var h = AsSpan<Half>();
                for (int i = 0; i < h.Length; i++) result[i] = (float)h[i];
                break;
            default: throw new Gpt2Exception($"tensor '{Name}' has dtype {DType}, which is not a floating-point type");
        }
        return result;
    }
}
