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
        var sorted = tensors.Select(t => (Key: Encoding.UTF8.GetBytes(t.Name), Tensor: t)).ToList();
        sorted.Sort((a, b) => a.Key.AsSpan().SequenceCompareTo(b.Key));
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i - 1].Key.AsSpan().SequenceEqual(sorted[i].Key)) throw new ArgumentException($"duplicate tensor name '{sorted[i].Tensor.Name}'");

        var table = new SsTableWriter();
        var header = new ProtoWriter();
        header.Varint(1, 1); // num_shards
        var version = new ProtoWriter();
        version.Varint(1, 1); // producer = kTensorBundleVersion
        header.Bytes(3, version.ToArray());
        table.Add([], header.ToArray());

        long offset = 0;
        foreach (var (key, tensor) in sorted)
        {
            if (tensor.DType == TensorDType.String) throw new ArgumentException($"tensor '{tensor.Name}': string tensors cannot be written");
            var shape = new ProtoWriter();
            foreach (int d in tensor.Shape)
            {
                var dim = new ProtoWriter();
                dim.Varint(1, (ulong)d);
                shape.Bytes(2, dim.ToArray());
            }
            var entry = new ProtoWriter();
            entry.Varint(1, (ulong)TfDataTypes.FromDType(tensor.DType));
            entry.Bytes(2, shape.ToArray());
            entry.Varint(4, (ulong)offset);
            entry.Varint(5, (ulong)tensor.ByteLength);
            entry.Fixed32(6, Crc32C.Mask(Crc32C.Compute(tensor.Address, tensor.ByteLength)));
            table.Add(key, entry.ToArray());
            offset += tensor.ByteLength;
        }

        CheckpointFiles.WriteAtomic(TensorBundle.ShardPath(prefix, 0, 1), stream =>
        {
            foreach (var (_, tensor) in sorted) CheckpointFiles.WriteNative(stream, tensor.Address, tensor.ByteLength);
        });
        CheckpointFiles.WriteAtomic(prefix + ".index", table.Finish());
    }
}
