using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using Gpt2Engine.Checkpoints;

namespace Gpt2Engine.Training;

/// <summary>
/// One file of uint16 GPT-2 token ids behind a 32-byte header, memory-mapped for training:
/// magic "GPT2TOK1", format version (uint32, 1), bytes per token (uint32, 2), token count (uint64), 8 reserved zero
/// bytes, then the tokens, little-endian. The header makes a truncated or foreign file fail with a clear message.
/// </summary>
public sealed class TokenShard : IDisposable
{
    public const int HeaderBytes = 32;
    public const uint FormatVersion = 1;
    private static readonly byte[] Magic = Encoding.ASCII.GetBytes("GPT2TOK1");

    private readonly MappedFile _file;

    public string Path => _file.Path;
    public long Count { get; }

    private TokenShard(MappedFile file, long count)
    {
        _file = file;
        Count = count;
    }

    /// <summary>The tokens [start, start + length) of this shard.</summary>
    public ReadOnlySpan<ushort> Tokens(long start, int length) =>
        MemoryMarshal.Cast<byte, ushort>(_file.Span(HeaderBytes + 2 * start, 2 * length));

    /// <summary>
    /// Checks every token id against <paramref name="vocabularySize"/>, throwing a one-line error that names the first
    /// one at or above it and its position (a shard prepared for another vocabulary would otherwise fail only when
    /// training draws that window), and appends the shard (its count, then its tokens) to <paramref name="hash"/>.
    /// One pass over the mapped tokens, a chunk at a time, so that the hash reads what the vectorised check just
    /// brought into the cache: about as fast as the pages can be read.
    /// </summary>
    internal void Scan(int vocabularySize, XxHash3 hash)
    {
        const int Chunk = 1 << 17; // tokens: 256 KB, still in L2 when the hash reads them
        Span<byte> count = stackalloc byte[sizeof(long)];
        BinaryPrimitives.WriteInt64LittleEndian(count, Count);
        hash.Append(count);
        for (long start = 0; start < Count; start += Chunk)
        {
            var tokens = Tokens(start, (int)Math.Min(Chunk, Count - start));
            int i = vocabularySize > ushort.MaxValue ? -1 : tokens.IndexOfAnyInRange((ushort)vocabularySize, ushort.MaxValue);
            if (i >= 0)
                throw new Gpt2Exception($"{Path}: token id {tokens[i]} at position {start + i} is outside the model's vocabulary (0..{vocabularySize - 1})");
            hash.Append(MemoryMarshal.AsBytes(tokens));
        }
    }

    public static TokenShard Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            if (file.Length < HeaderBytes || !file.Span(0, Magic.Length).SequenceEqual(Magic))
                throw new Gpt2Exception($"{path}: not a token shard (no GPT2TOK1 header)");
            var header = file.Span(0, HeaderBytes);
            uint version = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
            uint tokenBytes = BinaryPrimitives.ReadUInt32LittleEndian(header[12..]);
            ulong count = BinaryPrimitives.ReadUInt64LittleEndian(header[16..]);
            if (version != FormatVersion) throw new Gpt2Exception($"{path}: token shard format version {version} is not supported (expected {FormatVersion})");
            if (tokenBytes != 2) throw new Gpt2Exception($"{path}: token shard stores {tokenBytes}-byte tokens; only 2 is supported");
            if (count > (ulong)(file.Length - HeaderBytes) / 2 || HeaderBytes + 2 * (long)count != file.Length)
                throw new Gpt2Exception($"{path}: header says {count} tokens but the file has {file.Length} bytes (truncated or corrupt)");
            return new TokenShard(file, (long)count);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Writes <paramref name="tokens"/> as a shard, atomically.</summary>
    public static void Write(string path, ReadOnlySpan<ushort> tokens)
    {
        var bytes = new byte[HeaderBytes + 2L * tokens.Length];
        Magic.CopyTo(bytes, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), FormatVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(12), 2);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(16), (ulong)tokens.Length);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("token shards are little-endian");
        MemoryMarshal.AsBytes(tokens).CopyTo(bytes.AsSpan(HeaderBytes));
        AtomicFile.Write(path, stream => stream.Write(bytes));
    }

    public void Dispose() => _file.Dispose();
}
