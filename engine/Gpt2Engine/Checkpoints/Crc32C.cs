using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Gpt2Engine.Checkpoints;

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TensorFlow bundles and LevelDB tables, and
/// LevelDB's "masking" of stored CRCs. Uses the CPU's CRC32C instruction (SSE4.2 or Armv8) when it has one; the
/// table-driven loop is the reference and the fallback. Not <c>System.IO.Hashing.Crc32</c>: that is the IEEE polynomial.
/// </summary>
public static class Crc32C
{
    private const uint Polynomial = 0x82F63B78;
    private const uint MaskDelta = 0xA282EAD8;
    private static readonly uint[] Table = BuildTable();

    public static bool IsHardwareAccelerated => Sse42.X64.IsSupported || Crc32.Arm64.IsSupported;

    /// <summary>The CRC-32C of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Append(0, data);

    /// <summary>Extends a finished CRC <paramref name="crc"/> (0 for nothing) with more bytes: Append(Compute(a), b) == Compute(a‖b).</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data) => ~UpdateState(~crc, data);

    /// <summary>The CRC-32C of <paramref name="length"/> bytes of native memory, read in chunks (tensors can exceed 2 GiB).</summary>
    public static unsafe uint Compute(nint address, long length)
    {
        uint state = ~0u;
        for (long done = 0; done < length;)
        {
            int chunk = (int)Math.Min(length - done, 1 << 30);
            state = UpdateState(state, new ReadOnlySpan<byte>((byte*)address + done, chunk));
            done += chunk;
        }
        return ~state;
    }

    /// <summary>LevelDB/TensorFlow store CRCs masked, so that a CRC of data that embeds CRCs stays well-mixed.</summary>
    public static uint Mask(uint crc) => ((crc >> 15) | (crc << 17)) + MaskDelta;

    public static uint Unmask(uint masked)
    {
        uint rotated = masked - MaskDelta;
        return (rotated >> 17) | (rotated << 15);
    }

    private static uint UpdateState(uint state, ReadOnlySpan<byte> data)
    {
        if (Sse42.X64.IsSupported) return UpdateSse42(state, data);
        if (Crc32.Arm64.IsSupported) return UpdateArm(state, data);
        return UpdateSoftware(state, data);
    }

    /// <summary>The reference: one table lookup per byte. <paramref name="state"/> is the raw (inverted) register.</summary>
    internal static uint UpdateSoftware(uint state, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data) state = Table[(byte)(state ^ b)] ^ (state >> 8);
        return state;
    }

    // The hardware loops run over whole tensors on their first call, so they skip the unoptimised first JIT tier.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static uint UpdateSse42(uint state, ReadOnlySpan<byte> data)
    {
        ref byte start = ref MemoryMarshal.GetReference(data);
        ulong wide = state;
        int i = 0;
        for (; i <= data.Length - 8; i += 8) wide = Sse42.X64.Crc32(wide, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i)));
        state = (uint)wide;
        for (; i < data.Length; i++) state = Sse42.Crc32(state, data[i]);
        return state;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static uint UpdateArm(uint state, ReadOnlySpan<byte> data)
    {
        ref byte start = ref MemoryMarshal.GetReference(data);
        int i = 0;
        for (; i <= data.Length - 8; i += 8) state = Crc32.Arm64.ComputeCrc32C(state, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i)));
        for (; i < data.Length; i++) state = Crc32.ComputeCrc32C(state, data[i]);
        return state;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? Polynomial ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }
}
