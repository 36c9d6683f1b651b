using System.Buffers.Binary;
using CsCheck;
using Gpt2Engine.Checkpoints;
using Xunit;

namespace Gpt2Engine.Tests.Checkpoints;

/// <summary>Random damage to checkpoint bytes ends in a Gpt2Exception (or a valid parse), never another exception or a hang.</summary>
public class CorruptionPropertyTests
{
    private static readonly byte[] RealIndex = File.ReadAllBytes(TestFiles.Fixture("tf-checkpoint", "tfrust-regression-savedmodel", "variables.index"));

    private static void OnlyGpt2Exceptions(Action parse)
    {
        try { parse(); }
        catch (Gpt2Exception) { }
    }

    [Fact]
    public void Damaged_index_files_fail_cleanly()
    {
        Gen.Select(Gen.Int[0, RealIndex.Length - 1], Gen.Byte, Gen.Int[0, RealIndex.Length]).SampleSeeded((position, value, length) =>
        {
            byte[] bytes = RealIndex[..length];
            if (position < length) bytes[position] = value;
            OnlyGpt2Exceptions(() => TensorBundleIndex.Parse(bytes, "fuzz.index"));
        }, cases: 3000);
    }

    /// <summary>A table whose one data block is <paramref name="contents"/>, behind a valid trailer CRC.</summary>
    private static byte[] TableAround(byte[] contents)
    {
        var file = new List<byte>(contents);
        AddTrailer(file, contents);
        int indexOffset = file.Count;
        // One entry: key "\xFF" → handle (0, contents.Length) as two varints; then one restart at 0.
        var handle = new List<byte> { 0 };
        for (uint n = (uint)contents.Length; ; n >>= 7)
        {
            handle.Add((byte)(n < 0x80 ? n : (n & 0x7F) | 0x80));
            if (n < 0x80) break;
        }
        byte[] index = [0, 1, (byte)handle.Count, 0xFF, .. handle, 0, 0, 0, 0, 1, 0, 0, 0];
        file.AddRange(index);
        AddTrailer(file, index);
        var footer = new byte[48];
        (footer[0], footer[1], footer[2]) = ((byte)(indexOffset & 0x7F | 0x80), (byte)(indexOffset >> 7), 0); // metaindex (unused)
        (footer[3], footer[4], footer[5]) = ((byte)(indexOffset & 0x7F | 0x80), (byte)(indexOffset >> 7), (byte)index.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(footer.AsSpan(40), 0xDB4775248B80FB57);
        file.AddRange(footer);
        return [.. file];
    }

    private static void AddTrailer(List<byte> file, byte[] block)
    {
        file.Add(0);
        file.AddRange(BitConverter.GetBytes(Crc32C.Mask(Crc32C.Append(Crc32C.Compute(block), [0]))));
    }

    [Fact]
    public void Random_block_contents_with_valid_crcs_fail_cleanly()
    {
        // The harness itself works: the real data block (368 bytes at offset 0) wrapped this way parses in full.
        Assert.Equal(7, TensorBundleIndex.Parse(TableAround(RealIndex[..368]), "wrapped.index").Entries.Count);
        byte[] realBlock = RealIndex[..368];
        Gen.Select(Gen.Byte.Array[0, 64], Gen.Int[0, 367], Gen.Byte).SampleSeeded((random, position, value) =>
        {
            OnlyGpt2Exceptions(() => TensorBundleIndex.Parse(TableAround(random), "fuzz.index"));
            byte[] damaged = (byte[])realBlock.Clone();
            damaged[position] = value;
            OnlyGpt2Exceptions(() => TensorBundleIndex.Parse(TableAround(damaged), "fuzz.index"));
        }, cases: 3000);
    }

    [Fact]
    public void Damaged_safetensors_headers_fail_cleanly()
    {
        byte[] real = File.ReadAllBytes(TestFiles.Fixture("tiny", "model.safetensors"));
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(real);
        using var dir = new TempDir();
        Gen.Select(Gen.Int[0, headerEnd - 1], Gen.Byte).SampleSeeded((position, value) =>
        {
            byte[] bytes = (byte[])real.Clone();
            bytes[position] = value;
            string path = Path.Combine(dir.Path, $"{Guid.NewGuid():N}.safetensors");
            File.WriteAllBytes(path, bytes);
            OnlyGpt2Exceptions(() => SafetensorsFile.Open(path).Dispose());
            File.Delete(path);
        }, cases: 150);
    }
}
