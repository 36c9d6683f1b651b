using System.Text;

namespace Gpt2Engine.Checkpoints;

/// <summary>One tensor of a TensorFlow bundle as its index describes it. <see cref="DType"/> is null for types the engine has no view for.</summary>
public sealed record BundleEntry(string Name, int DataType, TensorDType? DType, int[] Shape, int ShardId, long Offset, long Size, uint MaskedCrc32C)
{
    public string DataTypeName => TfDataTypes.Name(DataType);
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);
}

/// <summary>
/// The parsed <c>.index</c> of a TensorFlow tensor bundle (checkpoint V2): the header and every entry, checked for
/// block CRCs, key order, known dtypes, sizes that match shapes, and no partitioned (sliced) tensors.
/// </summary>
public sealed class TensorBundleIndex
{
    public string Path { get; }
    public int ShardCount { get; }
    public IReadOnlyList<BundleEntry> Entries { get; }

    private TensorBundleIndex(string path, int shardCount, List<BundleEntry> entries) => (Path, ShardCount, Entries) = (path, shardCount, entries);

    public static TensorBundleIndex Read(string path) => Parse(CheckpointFiles.ReadAllBytes(path, "checkpoint index"), path);

    public static TensorBundleIndex Parse(ReadOnlySpan<byte> file, string path)
    {
        var records = SsTable.ReadAll(file, path);
        if (records.Count == 0 || records[0].Key.Length != 0)
            throw new Gpt2Exception($"{path}: corrupt index (no bundle header entry)");
        int shardCount = ParseHeader(records[0].Value, path);
        var entries = new List<BundleEntry>(records.Count - 1);
        foreach (var (key, value) in records.Skip(1))
        {
            var entry = ParseEntry(SsTable.KeyText(key), value, path);
            if (entry.ShardId >= shardCount)
                throw new Gpt2Exception($"{path}: tensor '{entry.Name}' is in shard {entry.ShardId}, but the bundle has {shardCount} shard(s)");
            entries.Add(entry);
        }
        return new TensorBundleIndex(path, shardCount, entries);
    }

    private static int ParseHeader(ReadOnlySpan<byte> value, string path)
    {
        var reader = new ProtoReader(value, $"{path}: bundle header");
        long shards = 0, endianness = 0;
        while (reader.TryReadTag(out int field, out int wire))
        {
            if (field == 1 && wire == ProtoReader.Varint) shards = (long)reader.ReadVarint();
            else if (field == 2 && wire == ProtoReader.Varint) endianness = (long)reader.ReadVarint();
            else reader.Skip(wire);
        }
        if (endianness != 0) throw new Gpt2Exception($"{path}: big-endian bundles are not supported");
        if (shards < 1 || shards > 99_999) throw new Gpt2Exception($"{path}: corrupt bundle header (num_shards = {shards})");
        return (int)shards;
    }

    private static BundleEntry ParseEntry(string name, ReadOnlySpan<byte> value, string path)
    {
        var reader = new ProtoReader(value, $"{path}: entry '{name}'");
        long dataType = 0, shard = 0, offset = 0, size = 0;
        uint crc = 0;
        var shape = new List<int>();
        while (reader.TryReadTag(out int field, out int wire))
        {
            switch (field, wire)
            {
                case (1, ProtoReader.Varint): dataType = (long)reader.ReadVarint(); break;
                case (2, ProtoReader.LengthDelimited): ParseShape(reader.ReadBytes(), shape, reader.Context); break;
                case (3, ProtoReader.Varint): shard = reader.ReadNonNegative("shard id"); break;
                case (4, ProtoReader.Varint): offset = reader.ReadNonNegative("offset"); break;
                case (5, ProtoReader.Varint): size = reader.ReadNonNegative("size"); break;
                case (6, ProtoReader.Fixed32): crc = reader.ReadFixed32(); break;
                case (7, ProtoReader.LengthDelimited): throw new Gpt2Exception($"{path}: tensor '{name}' is partitioned into slices, which is not supported");
                default: reader.Skip(wire); break;
            }
        }
        if (!TfDataTypes.IsKnown(dataType)) throw new Gpt2Exception($"{path}: tensor '{name}' has unsupported TensorFlow dtype {dataType}");
        if (shard > int.MaxValue) throw reader.Corrupt($"shard id {shard}");
        var entry = new BundleEntry(name, (int)dataType, TfDataTypes.ToDType((int)dataType), [.. shape], (int)shard, offset, size, crc);
        int elementSize = TfDataTypes.ElementSize(entry.DataType);
        long? needed = CheckpointFiles.ByteCount(entry.Shape, Math.Max(elementSize, 1));
        if (needed is null) throw new Gpt2Exception($"{path}: tensor '{name}' has an impossibly large shape {entry.ShapeText}");
        if (elementSize > 0 && needed != size)
            throw new Gpt2Exception($"{path}: tensor '{name}' has {size} bytes, but shape {entry.ShapeText} of {entry.DataTypeName} needs {needed}");
        return entry;
    }

    private static void ParseShape(ReadOnlySpan<byte> bytes, List<int> shape, string context)
    {
        var reader = new ProtoReader(bytes, context + " shape");
        while (reader.TryReadTag(out int field, out int wire))
        {
            if (field == 3 && wire == ProtoReader.Varint && reader.ReadVarint() != 0) throw new Gpt2Exception($"{context}: tensor of unknown rank");
            else if (field == 2 && wire == ProtoReader.LengthDelimited)
            {
                var dim = new ProtoReader(reader.ReadBytes(), context + " dimension");
                long size = 0;
                while (dim.TryReadTag(out int f, out int w))
                {
                    if (f == 1 && w == ProtoReader.Varint) size = dim.ReadNonNegative("dimension");
                    else dim.Skip(w);
                }
                shape.Add(size <= int.MaxValue ? (int)size : throw dim.Corrupt($"dimension {size} is too large"));
            }
            else if (field != 3) reader.Skip(wire);
        }
    }
}

/// <summary>
/// A TensorFlow tensor bundle opened for reading: its index plus every data shard memory-mapped, each tensor a view
/// into the mapping. See shared/docs/tf-tensor-bundle.md.
/// </summary>
public sealed class TensorBundle : IDisposable
{
    private readonly MappedFile[] _shards;

    /// <summary>The bundle prefix: <c>dir/model.ckpt</c> for <c>dir/model.ckpt.index</c> and <c>dir/model.ckpt.data-*</c>.</summary>
    public string Prefix { get; }
    public TensorBundleIndex Index { get; }
    public IReadOnlyList<BundleEntry> Entries => Index.Entries;

    private TensorBundle(string prefix, TensorBundleIndex index, MappedFile[] shards) => (Prefix, Index, _shards) = (prefix, index, shards);

    public static string ShardPath(string prefix, int shard, int count) => $"{prefix}.data-{shard:D5}-of-{count:D5}";

    /// <summary>
    /// The bundle prefix of a checkpoint directory: <c>model_checkpoint_path</c> of its <c>checkpoint</c> file (TF's
    /// CheckpointState text), else <c>model.ckpt</c>, else the prefix of the directory's only <c>.index</c> file.
    /// </summary>
    public static string FindPrefix(string directory)
    {
        string stateFile = System.IO.Path.Combine(directory, "checkpoint");
        if (File.Exists(stateFile))
        {
            foreach (string line in File.ReadLines(stateFile))
            {
                const string Key = "model_checkpoint_path:";
                string trimmed = line.Trim();
                if (!trimmed.StartsWith(Key, StringComparison.Ordinal)) continue;
                string value = trimmed[Key.Length..].Trim().Trim('"');
                if (value.Length == 0) throw new Gpt2Exception($"{stateFile}: empty model_checkpoint_path");
                // Training scripts often record an absolute path on the machine that wrote the checkpoint; like
                // TensorFlow, fall back to the same file name inside this directory.
                string prefix = System.IO.Path.Combine(directory, value);
                string local = System.IO.Path.Combine(directory, System.IO.Path.GetFileName(value));
                return File.Exists(prefix + ".index") || !File.Exists(local + ".index") ? prefix : local;
            }
            throw new Gpt2Exception($"{stateFile}: no model_checkpoint_path line");
        }
        string standard = System.IO.Path.Combine(directory, "model.ckpt");
        string[] indexes = Directory.Exists(directory) ? Directory.GetFiles(directory, "*.index") : [];
        return File.Exists(standard + ".index") || indexes.Length != 1 ? standard : indexes[0][..^".index".Length];
    }

    public static TensorBundle Open(string prefix)
    {
        var index = TensorBundleIndex.Read(prefix + ".index");
        var shards = new MappedFile[index.ShardCount];
        try
        {
            for (int i = 0; i < shards.Length; i++)
            {
                string path = ShardPath(prefix, i, shards.Length);
                if (!File.Exists(path))
                    throw new Gpt2Exception($"{path}: missing data shard {i} of {shards.Length} (the index {index.Path} lists {index.Entries.Count(e => e.ShardId == i)} tensors in it)");
                shards[i] = MappedFile.Open(path);
            }
            foreach (var e in index.Entries)
            {
                var shard = shards[e.ShardId];
                if (e.Offset > shard.Length || e.Size > shard.Length - e.Offset)
                    throw new Gpt2Exception($"{shard.Path}: tensor '{e.Name}' (bytes {e.Offset}..{e.Offset + e.Size}) runs past the end of the {shard.Length}-byte data shard (truncated data file?)");
            }
            return new TensorBundle(prefix, index, shards);
        }
        catch
        {
            foreach (var shard in shards) shard?.Dispose();
            throw;
        }
    }

    /// <summary>The tensor's bytes in place, as a view; throws for dtypes the engine cannot view.</summary>
    public TensorView View(BundleEntry entry)
    {
        if (entry.DType is not { } dtype) throw new Gpt2Exception($"{Index.Path}: tensor '{entry.Name}' has dtype {entry.DataTypeName}, which the engine cannot read");
        return new TensorView(entry.Name, dtype, entry.Shape, _shards[entry.ShardId].Address + (nint)entry.Offset);
    }

    /// <summary>The CRC-32C of the tensor's stored bytes, computed the way TensorFlow does (string tensors: doc §5.2).</summary>
    public uint ComputeCrc32C(BundleEntry entry)
    {
        nint address = _shards[entry.ShardId].Address + (nint)entry.Offset;
        if (entry.DataType != TfDataTypes.String) return Crc32C.Compute(address, entry.Size);
        unsafe
        {
            // A string tensor is n varint lengths, a 4-byte checksum of them, then the bytes; TF's CRC covers the
            // lengths re-encoded as fixed-width integers followed by everything after the varints.
            var payload = new ReadOnlySpan<byte>((void*)address, checked((int)entry.Size));
            var reader = new ProtoReader(payload, $"{Index.Path}: string tensor '{entry.Name}'");
            uint crc = 0;
            Span<byte> fixedWidth = stackalloc byte[8];
            for (long i = 0; i < entry.ElementCount; i++)
            {
                ulong length = reader.ReadVarint();
                BitConverter.TryWriteBytes(fixedWidth, length);
                crc = Crc32C.Append(crc, fixedWidth[..(length > uint.MaxValue ? 8 : 4)]);
            }
            return Crc32C.Append(crc, payload[reader.Position..]);
        }
    }

    public bool VerifyCrc32C(BundleEntry entry) => ComputeCrc32C(entry) == Crc32C.Unmask(entry.MaskedCrc32C);

    public void Dispose()
    {
        foreach (var shard in _shards) shard.Dispose();
    }
}

/// <summary>TensorFlow's <c>DataType</c> enum values that can appear in a bundle (types.proto).</summary>
internal static class TfDataTypes
{
    public const int Float = 1, String = 7;

    private static readonly Dictionary<int, (string Name, int Size, TensorDType? DType)> Known = new()
    {
        [1] = ("float32", 4, TensorDType.F32),
        [2] = ("float64", 8, TensorDType.F64),
        [3] = ("int32", 4, TensorDType.I32),
        [4] = ("uint8", 1, TensorDType.U8),
        [5] = ("int16", 2, null),
        [6] = ("int8", 1, null),
        [7] = ("string", 0, TensorDType.String),
        [9] = ("int64", 8, TensorDType.I64),
        [10] = ("bool", 1, null),
        [14] = ("bfloat16", 2, TensorDType.BF16),
        [17] = ("uint16", 2, TensorDType.U16),
        [19] = ("float16", 2, TensorDType.F16),
        [22] = ("uint32", 4, null),
        [23] = ("uint64", 8, null),
    };

    public static bool IsKnown(long code) => code <= int.MaxValue && Known.ContainsKey((int)code);
    public static string Name(int code) => Known.TryGetValue(code, out var t) ? t.Name : $"dtype {code}";
    /// <summary>Bytes per element; 0 for variable-length strings.</summary>
    public static int ElementSize(int code) => Known[code].Size;
    public static TensorDType? ToDType(int code) => Known[code].DType;

    public static int FromDType(TensorDType dtype) =>
        Known.First(k => k.Value.DType == dtype && dtype != TensorDType.String).Key;
}
