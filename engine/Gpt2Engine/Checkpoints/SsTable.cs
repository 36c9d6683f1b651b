using System.Buffers.Binary;

namespace Gpt2Engine.Checkpoints;

/// <summary>
/// The immutable sorted string table of a TensorFlow <c>.index</c> file (LevelDB's table format as TensorFlow writes
/// it: uncompressed blocks, an empty metaindex, no filters). See shared/docs/tf-tensor-bundle.md §2.
/// </summary>
internal static class SsTable
{
    public const int FooterLength = 48;
    public const int TrailerLength = 5;
    public const ulong Magic = 0xDB4775248B80FB57;

    /// <summary>Every key/value pair of the table in file order, after checking the footer, every block CRC and the key order.</summary>
    public static List<(byte[] Key, byte[] Value)> ReadAll(ReadOnlySpan<byte> file, string path)
    {
        if (file.Length < FooterLength)
            throw new Gpt2Exception($"{path}: truncated index ({file.Length} bytes, shorter than the {FooterLength}-byte table footer)");
        var footer = file[^FooterLength..];
        if (BinaryPrimitives.ReadUInt64LittleEndian(footer[40..]) != Magic)
            throw new Gpt2Exception($"{path}: not a TensorFlow checkpoint index, or truncated (bad table magic at the end of the file)");
        var handles = new ProtoReader(footer[..40], $"{path}: table footer");
        ReadHandle(ref handles, path); // the metaindex: TensorFlow writes it empty and nothing in it is needed
        var (indexOffset, indexSize) = ReadHandle(ref handles, path);

        var result = new List<(byte[] Key, byte[] Value)>();
        foreach (var (_, handle) in ReadBlock(file, indexOffset, indexSize, path, "index block"))
        {
            var reader = new ProtoReader(handle, $"{path}: index block");
            var (offset, size) = ReadHandle(ref reader, path);
            foreach (var entry in ReadBlock(file, offset, size, path, $"data block at offset {offset}"))
            {
                if (result.Count > 0 && result[^1].Key.AsSpan().SequenceCompareTo(entry.Key) >= 0)
                    throw new Gpt2Exception($"{path}: corrupt index (key '{KeyText(entry.Key)}' is not greater than the key before it)");
                result.Add(entry);
            }
        }
        return result;
    }

    public static string KeyText(byte[] key) => System.Text.Encoding.UTF8.GetString(key);

    private static (long Offset, long Size) ReadHandle(ref ProtoReader reader, string path) =>
        (reader.ReadNonNegative("block offset"), reader.ReadNonNegative("block size"));

    /// <summary>Checks a block's trailer (type and masked CRC) and decodes its prefix-compressed entries.</summary>
    private static List<(byte[] Key, byte[] Value)> ReadBlock(ReadOnlySpan<byte> file, long offset, long size, string path, string what)
    {
        if (offset > file.Length - FooterLength || size > file.Length - FooterLength - offset - TrailerLength)
            throw new Gpt2Exception($"{path}: {what} (offset {offset}, {size} bytes) lies outside the {file.Length}-byte file (truncated index?)");
        var contents = file.Slice((int)offset, (int)size);
        byte type = file[(int)(offset + size)];
        if (type == 1) throw new Gpt2Exception($"{path}: {what} is Snappy-compressed, which TensorFlow bundles never are; not supported");
        if (type != 0) throw new Gpt2Exception($"{path}: {what} has unknown compression type {type}");
        uint stored = Crc32C.Unmask(BinaryPrimitives.ReadUInt32LittleEndian(file[(int)(offset + size + 1)..]));
        uint actual = Crc32C.Compute(file.Slice((int)offset, (int)size + 1));
        if (stored != actual)
            throw new Gpt2Exception($"{path}: {what} fails its CRC check (stored 0x{stored:X8}, computed 0x{actual:X8}); the file is corrupt");

        if (contents.Length < 4) throw new Gpt2Exception($"{path}: {what} is too short ({contents.Length} bytes)");
        uint restarts = BinaryPrimitives.ReadUInt32LittleEndian(contents[^4..]);
        long entriesEnd = contents.Length - 4 - 4L * restarts;
        if (restarts == 0 || entriesEnd < 0) throw new Gpt2Exception($"{path}: {what} has a corrupt restart count {restarts}");

        var entries = new List<(byte[] Key, byte[] Value)>();
        var reader = new ProtoReader(contents[..(int)entriesEnd], $"{path}: {what}");
        byte[] previous = [];
        while (!reader.AtEnd)
        {
            ulong shared = reader.ReadVarint(), unshared = reader.ReadVarint(), valueLength = reader.ReadVarint();
            if (shared > (ulong)previous.Length) throw reader.Corrupt($"entry shares {shared} bytes with a {previous.Length}-byte key");
            var delta = reader.ReadRaw(unshared > int.MaxValue ? -1 : (long)unshared);
            var value = reader.ReadRaw(valueLength > int.MaxValue ? -1 : (long)valueLength);
            byte[] key = [.. previous.AsSpan(0, (int)shared), .. delta];
            entries.Add((key, value.ToArray()));
            previous = key;
        }
        return entries;
    }
}

/// <summary>
/// Writes a table the way TensorFlow's bundle writer does: 256 KiB data blocks with a restart every 16 keys, an empty
/// metaindex, an index block with a restart at every key and shortened separator keys, uncompressed, masked CRCs.
/// </summary>
internal sealed class SsTableWriter
{
    private const int BlockSize = 256 * 1024;
    private const int DataRestartInterval = 16;

    private readonly List<byte> _file = [];
    private readonly BlockBuilder _data = new(DataRestartInterval);
    private readonly BlockBuilder _index = new(1);
    private byte[]? _lastKey;
    private (long Offset, long Size)? _pendingHandle;

    /// <summary>Adds an entry; keys must be strictly increasing in bytewise order.</summary>
    public void Add(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        if (_lastKey is not null && _lastKey.AsSpan().SequenceCompareTo(key) >= 0)
            throw new ArgumentException($"table keys must increase: '{System.Text.Encoding.UTF8.GetString(key)}' after '{SsTable.KeyText(_lastKey)}'");
        if (_pendingHandle is { } handle)
        {
            _index.Add(ShortestSeparator(_lastKey!, key), EncodeHandle(handle));
            _pendingHandle = null;
        }
        _data.Add(key, value);
        _lastKey = key.ToArray();
        if (_data.EstimatedSize >= BlockSize) FlushDataBlock();
    }

    public byte[] Finish()
    {
        if (!_data.IsEmpty) FlushDataBlock();
        if (_pendingHandle is { } handle) _index.Add(ShortSuccessor(_lastKey!), EncodeHandle(handle));
        var metaindex = WriteBlock(new BlockBuilder(1));
        var index = WriteBlock(_index);

        var footer = new ProtoWriter();
        footer.RawVarint((ulong)metaindex.Offset);
        footer.RawVarint((ulong)metaindex.Size);
        footer.RawVarint((ulong)index.Offset);
        footer.RawVarint((ulong)index.Size);
        _file.AddRange(footer.ToArray());
        _file.AddRange(new byte[40 - footer.Length]);
        _file.AddRange(BitConverter.GetBytes(SsTable.Magic));
        return [.. _file];
    }

    private void FlushDataBlock() => _pendingHandle = WriteBlock(_data);

    private (long Offset, long Size) WriteBlock(BlockBuilder block)
    {
        byte[] contents = block.Finish();
        long offset = _file.Count;
        _file.AddRange(contents);
        _file.Add(0); // no compression
        uint crc = Crc32C.Append(Crc32C.Compute(contents), [0]);
        _file.AddRange(BitConverter.GetBytes(Crc32C.Mask(crc)));
        return (offset, contents.Length);
    }

    private static byte[] EncodeHandle((long Offset, long Size) handle)
    {
        var writer = new ProtoWriter();
        writer.RawVarint((ulong)handle.Offset);
        writer.RawVarint((ulong)handle.Size);
        return writer.ToArray();
    }

    /// <summary>A short key k with start ≤ k &lt; limit (LevelDB's FindShortestSeparator).</summary>
    internal static byte[] ShortestSeparator(ReadOnlySpan<byte> start, ReadOnlySpan<byte> limit)
    {
        int common = start.CommonPrefixLength(limit);
        if (common < start.Length && common < limit.Length && start[common] < 0xFF && start[common] + 1 < limit[common])
        {
            byte[] separator = start[..(common + 1)].ToArray();
            separator[common]++;
            return separator;
        }
        return start.ToArray();
    }

    /// <summary>A short key ≥ <paramref name="key"/>: increment the first byte that is not 0xFF and drop the rest.</summary>
    internal static byte[] ShortSuccessor(ReadOnlySpan<byte> key)
    {
        for (int i = 0; i < key.Length; i++)
        {
            if (key[i] == 0xFF) continue;
            byte[] successor = key[..(i + 1)].ToArray();
            successor[i]++;
            return successor;
        }
        return key.ToArray();
    }

    /// <summary>One block: prefix-compressed entries, then the restart offsets and their count.</summary>
    private sealed class BlockBuilder(int restartInterval)
    {
        private readonly ProtoWriter _entries = new();
        private readonly List<uint> _restarts = [0];
        private byte[] _lastKey = [];
        private int _sinceRestart;

        public bool IsEmpty => _entries.Length == 0;
        public int EstimatedSize => _entries.Length + 4 * _restarts.Count + 4;

        public void Add(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
        {
            int shared = 0;
            if (_sinceRestart < restartInterval) shared = _lastKey.AsSpan().CommonPrefixLength(key);
            else
            {
                _restarts.Add((uint)_entries.Length);
                _sinceRestart = 0;
            }
            _entries.RawVarint((ulong)shared);
            _entries.RawVarint((ulong)(key.Length - shared));
            _entries.RawVarint((ulong)value.Length);
            _entries.RawBytes(key[shared..]);
            _entries.RawBytes(value);
            _lastKey = key.ToArray();
            _sinceRestart++;
        }

        public byte[] Finish()
        {
            var block = new ProtoWriter();
            block.RawBytes(_entries.ToArray());
            foreach (uint restart in _restarts) block.RawFixed32(restart);
            block.RawFixed32((uint)_restarts.Count);
            _entries.Clear();
            _restarts.Clear();
            _restarts.Add(0);
            _lastKey = [];
            _sinceRestart = 0;
            return block.ToArray();
        }
    }
}
