using System.Text;

namespace Gpt2Engine.Checkpoints;

/// <summary>
/// Writes a single-shard TensorFlow tensor bundle as TF1's Saver does: tensors sorted by name, packed back to back in
/// <c>prefix.data-00000-of-00001</c> in that order, and <c>prefix.index</c> with per-tensor masked CRC-32C.
/// </summary>
public static class TensorBundleWriter
{
    public static void Write(string prefix, IEnumerable<TensorView> tensors)
    {
        var sorted = tensors.OrderBy(t => Encoding.UTF8.GetBytes(t.Name), ByteOrder.Instance).ToList();
        var entries = new List<BundleEntry>(sorted.Count);
        long offset = 0;
        foreach (var t in sorted)
        {
            if (t.DType == TensorDType.String) throw new ArgumentException($"tensor '{t.Name}': string tensors cannot be written");
            entries.Add(new BundleEntry(t.Name, TfDataTypes.FromDType(t.DType), t.DType, t.Shape, 0, offset, t.ByteLength, Crc32C.Mask(Crc32C.Compute(t.Address, t.ByteLength))));
            offset += t.ByteLength;
        }
        byte[] index = BuildIndex(entries, shardCount: 1);
        AtomicFile.Write(TensorBundle.ShardPath(prefix, 0, 1), stream =>
        {
            foreach (var t in sorted) CheckpointFiles.WriteNative(stream, t.Address, t.ByteLength);
        });
        AtomicFile.Write(prefix + ".index", index);
    }

    /// <summary>The <c>.index</c> file for these entries, byte for byte as TensorFlow writes it.</summary>
    internal static byte[] BuildIndex(IEnumerable<BundleEntry> entries, int shardCount)
    {
        var table = new SsTableWriter();
        var header = new ProtoWriter();
        header.Varint(1, (ulong)shardCount);
        var version = new ProtoWriter();
        version.Varint(1, 1); // producer = kTensorBundleVersion
        header.Bytes(3, version.ToArray());
        table.Add([], header.ToArray());

        foreach (var e in entries.OrderBy(e => Encoding.UTF8.GetBytes(e.Name), ByteOrder.Instance))
        {
            var shape = new ProtoWriter();
            foreach (int d in e.Shape)
            {
                var dim = new ProtoWriter();
                dim.Varint(1, (ulong)d);
                shape.Bytes(2, dim.ToArray());
            }
            var entry = new ProtoWriter();
            entry.Varint(1, (ulong)e.DataType);
            entry.Bytes(2, shape.ToArray());
            entry.Varint(3, (ulong)e.ShardId);
            entry.Varint(4, (ulong)e.Offset);
            entry.Varint(5, (ulong)e.Size);
            entry.Fixed32(6, e.MaskedCrc32C);
            table.Add(Encoding.UTF8.GetBytes(e.Name), entry.ToArray());
        }
        return table.Finish();
    }

    /// <summary>Bytewise (memcmp) order, the order of keys in a table.</summary>
    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();
        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
