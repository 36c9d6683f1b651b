using Xunit;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using System.Text;
using Gpt2Engine.Checkpoints;

namespace Gpt2Engine.Tests.Checkpoints;

public class Crc32CTests
{
    // Check values from shared/docs/tf-tensor-bundle.md §6 (the standard CRC-32C check value and RFC 3720 vectors).
    public static TheoryData<byte[], uint> KnownVectors => new()
    {
        { Encoding.ASCII.GetBytes("123456789"), 0xE3069283 },
        { new byte[32], 0x8A9136AA },
        { Enumerable.Repeat((byte)0xFF, 32).ToArray(), 0x62A8AB43 },
        { Array.Empty<byte>(), 0 },
    };

    [Theory]
    [MemberData(nameof(KnownVectors))]
    public void Every_implementation_gives_the_known_values(byte[] data, uint expected)
    {
        Assert.Equal(expected, Crc32C.Compute(data));
        Assert.Equal(expected, ~Crc32C.UpdateSoftware(~0u, data));
        if (Sse42.X64.IsSupported) Assert.Equal(expected, ~Crc32C.UpdateSse42(~0u, data));
        if (Crc32.Arm64.IsSupported) Assert.Equal(expected, ~Crc32C.UpdateArm(~0u, data));
    }

    [Fact]
    public void Hardware_path_matches_the_table_on_odd_sizes_and_offsets()
    {
        var random = new Random(7);
        var buffer = new byte[5000];
        random.NextBytes(buffer);
        foreach (int length in new[] { 1, 3, 7, 8, 9, 15, 17, 63, 4093 })
        {
            var data = buffer.AsSpan(length % 5, length);
            uint reference = Crc32C.UpdateSoftware(~0u, data);
            if (Sse42.X64.IsSupported) Assert.Equal(reference, Crc32C.UpdateSse42(~0u, data));
            if (Crc32.Arm64.IsSupported) Assert.Equal(reference, Crc32C.UpdateArm(~0u, data));
            Assert.Equal(~reference, Crc32C.Compute(data));
        }
    }

    [Fact]
    public unsafe void Appending_and_native_memory_agree_with_one_pass()
    {
        var data = new byte[1001];
        new Random(3).NextBytes(data);
        uint whole = Crc32C.Compute(data);
        Assert.Equal(whole, Crc32C.Append(Crc32C.Compute(data.AsSpan(0, 400)), data.AsSpan(400)));
        fixed (byte* p = data) Assert.Equal(whole, Crc32C.Compute((nint)p, data.Length));
    }

    [Fact]
    public void Masking_matches_leveldb_and_round_trips()
    {
        // Mask(c) = rotr(c, 15) + 0xA282EAD8, computed here independently.
        uint crc = 0xE3069283;
        uint expected = unchecked(((crc >> 15) | (crc << 17)) + 0xA282EAD8u);
        Assert.Equal(expected, Crc32C.Mask(crc));
        Assert.Equal(crc, Crc32C.Unmask(Crc32C.Mask(crc)));
        // The real TF fixture: tensor 'b' = four zero bytes, stored masked crc 0x3A117BA6.
        Assert.Equal(0x3A117BA6u, Crc32C.Mask(Crc32C.Compute(new byte[4])));
    }
}
