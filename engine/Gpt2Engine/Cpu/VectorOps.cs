using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gpt2Engine.Cpu;

/// <summary>
/// The handful of vector operations the kernels need, over one vector type <typeparamref name="TV"/>. Kernels are
/// written once, generic over an ops struct; the JIT specialises each instantiation to straight-line SIMD code.
/// </summary>
internal unsafe interface IVectorOps<TV> where TV : unmanaged
{
    static abstract int Count { get; }
    static abstract TV Zero { get; }
    static abstract TV Broadcast(float value);
    static abstract TV Load(float* source);
    /// <summary>Count bfloat16 values widened to float32 (a bf16 is the top half of a float32).</summary>
    static abstract TV LoadBf16(ushort* source);
    static abstract void Store(float* destination, TV value);
    /// <summary>a * b + c.</summary>
    static abstract TV MultiplyAdd(TV a, TV b, TV c);
    static abstract TV Add(TV a, TV b);
    static abstract TV Multiply(TV a, TV b);
    static abstract TV Divide(TV a, TV b);
    /// <summary>The smaller of a and b, or b when either is NaN (so a NaN in b goes through).</summary>
    static abstract TV Min(TV a, TV b);
    /// <summary>The larger of a and b, or b when either is NaN.</summary>
    static abstract TV Max(TV a, TV b);
    /// <summary>Rounds to the nearest integer, ties to even.</summary>
    static abstract TV Round(TV value);
    /// <summary>value * 2^n for integral n in [-126, 127].</summary>
    static abstract TV ScaleByPowerOfTwo(TV value, TV n);
    static abstract float Sum(TV value);
}

internal readonly unsafe struct Ops512 : IVectorOps<Vector512<float>>
{
    public static int Count => Vector512<float>.Count;
    public static Vector512<float> Zero => Vector512<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Broadcast(float value) => Vector512.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* source) => Vector512.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadBf16(ushort* source) =>
        Vector512.ShiftLeft(Vector512.WidenLower(Vector256.Load(source).ToVector512Unsafe()), 16).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* destination, Vector512<float> value) => value.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Divide(Vector512<float> a, Vector512<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Min(Vector512<float> a, Vector512<float> b) => Vector512.MinNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.MaxNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Round(Vector512<float> value) => Vector512.Round(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ScaleByPowerOfTwo(Vector512<float> value, Vector512<float> n) =>
        value * Vector512.ShiftLeft(Vector512.ConvertToInt32Native(n) + Vector512.Create(127), 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> value) => Vector512.Sum(value);
}

internal readonly unsafe struct Ops256 : IVectorOps<Vector256<float>>
{
    public static int Count => Vector256<float>.Count;
    public static Vector256<float> Zero => Vector256<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Broadcast(float value) => Vector256.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* source) => Vector256.Load(source);
    // AVX2: vpmovzxwd straight from memory, one instruction where the portable form compiles to a load and a widen.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadBf16(ushort* source) =>
        Vector256.ShiftLeft(Avx2.IsSupported ? Avx2.ConvertToVector256Int32(source).AsUInt32() : Vector256.WidenLower(Vector128.Load(source).ToVector256Unsafe()), 16).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* destination, Vector256<float> value) => value.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Divide(Vector256<float> a, Vector256<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Min(Vector256<float> a, Vector256<float> b) => Vector256.MinNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.MaxNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Round(Vector256<float> value) => Vector256.Round(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ScaleByPowerOfTwo(Vector256<float> value, Vector256<float> n) =>
        value * Vector256.ShiftLeft(Vector256.ConvertToInt32Native(n) + Vector256.Create(127), 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> value) => Vector256.Sum(value);
}

internal readonly unsafe struct Ops128 : IVectorOps<Vector128<float>>
{
    public static int Count => Vector128<float>.Count;
    public static Vector128<float> Zero => Vector128<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Broadcast(float value) => Vector128.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(float* source) => Vector128.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadBf16(ushort* source) =>
        Vector128.ShiftLeft(Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(ulong*)source).AsUInt16()), 16).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* destination, Vector128<float> value) => value.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> MultiplyAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Multiply(Vector128<float> a, Vector128<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Divide(Vector128<float> a, Vector128<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Min(Vector128<float> a, Vector128<float> b) => Vector128.MinNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => Vector128.MaxNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Round(Vector128<float> value) => Vector128.Round(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> ScaleByPowerOfTwo(Vector128<float> value, Vector128<float> n) =>
        value * Vector128.ShiftLeft(Vector128.ConvertToInt32Native(n) + Vector128.Create(127), 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector128<float> value) => Vector128.Sum(value);
}

/// <summary>
/// exp(x) in float32 within about one ulp, inlined into the kernels (the runtime's vector exp works in float64 and is
/// a call that starts out unoptimised). x = n ln2 + r with |r| <= ln2/2 (ln2 split in two so n ln2 is exact), exp(r)
/// by its Taylor polynomial to r^7 (truncation below 6e-9), times 2^n. Inputs are clamped to [-87, 88]: exp(-87),
/// about 1.6e-38, stands for every smaller result, and nothing overflows; NaN goes through.
/// </summary>
internal static class VectorExp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Exp<TOps, TV>(TV x) where TOps : IVectorOps<TV> where TV : unmanaged
    {
        x = TOps.Max(TOps.Broadcast(-87f), TOps.Min(TOps.Broadcast(88f), x));
        TV n = TOps.Round(TOps.Multiply(x, TOps.Broadcast(1.44269504f)));
        TV r = TOps.MultiplyAdd(n, TOps.Broadcast(-0.693359375f), x);
        r = TOps.MultiplyAdd(n, TOps.Broadcast(2.12194440e-4f), r);
        TV p = TOps.MultiplyAdd(TOps.Broadcast(1f / 5040), r, TOps.Broadcast(1f / 720));
        p = TOps.MultiplyAdd(p, r, TOps.Broadcast(1f / 120));
        p = TOps.MultiplyAdd(p, r, TOps.Broadcast(1f / 24));
        p = TOps.MultiplyAdd(p, r, TOps.Broadcast(1f / 6));
        p = TOps.MultiplyAdd(p, r, TOps.Broadcast(0.5f));
        p = TOps.MultiplyAdd(p, r, TOps.Broadcast(1f));
        p = TOps.MultiplyAdd(p, r, TOps.Broadcast(1f));
        return TOps.ScaleByPowerOfTwo(p, n);
    }
}

/// <summary>bfloat16 conversions: widening is exact; narrowing rounds to nearest, ties to even.</summary>
public static class BFloat16
{
    public static float ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    public static ushort FromSingle(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40); // stay a (quiet) NaN
        uint roundingBias = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + roundingBias) >> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe float Read<TW>(TW* weights, long index) where TW : unmanaged =>
        typeof(TW) == typeof(float) ? ((float*)weights)[index] : ToSingle(((ushort*)weights)[index]);

    /// <summary>Count weights at <paramref name="source"/> as one float vector, whatever their storage type (float or bf16 ushort).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe TV Load<TOps, TV, TW>(TW* source) where TOps : IVectorOps<TV> where TV : unmanaged where TW : unmanaged =>
        typeof(TW) == typeof(float) ? TOps.Load((float*)source) : TOps.LoadBf16((ushort*)source);
}
