using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace Gpt2Engine.Checkpoints;

/// <summary>
/// Writes a safetensors file atomically: the JSON header padded with spaces so the data starts on a 64-byte boundary
/// (a cache line: the kernels read mapped weights in place, and a vector load across two lines costs ~20% of decode
/// speed), then the tensors back to back, widest dtype first and whole cache lines first within a dtype, so every
/// tensor is aligned to its element size and GPT-2's (whose sizes are multiples of 64 bytes) to a cache line.
/// </summary>
public static class SafetensorsWriter
{
    private const int DataAlignment = 64;

    public static void Write(string path, IEnumerable<TensorView> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Write(path, tensors.Select(TensorSource.Of), metadata);

    /// <summary>Writes tensors whose bytes each source writes itself (e.g. downloaded from a GPU a chunk at a time).</summary>
    internal static void Write(string path, IEnumerable<TensorSource> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var ordered = tensors.OrderByDescending(t => t.DType.SizeOf()).ThenBy(t => t.ByteLength % DataAlignment != 0).ToList();
        if (ordered.Select(t => t.Name).Distinct().Count() != ordered.Count || ordered.Any(t => t.Name == "__metadata__"))
            throw new ArgumentException("tensor names must be unique and not '__metadata__'");

        var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata) writer.WriteString(key, value);
                writer.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in ordered)
            {
                writer.WriteStartObject(t.Name);
                writer.WriteString("dtype", DTypeName(t.DType));
                writer.WriteStartArray("shape");
                foreach (int d in t.Shape) writer.WriteNumberValue(d);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + t.ByteLength);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += t.ByteLength;
            }
            writer.WriteEndObject();
        }
        int padding = (int)((DataAlignment - (8 + json.Length) % DataAlignment) % DataAlignment);
        json.Write(Encoding.ASCII.GetBytes(new string(' ', padding)));

        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)json.Length);
            stream.Write(length);
            stream.Write(json.GetBuffer().AsSpan(0, (int)json.Length));
            foreach (var t in ordered)
            {
                long start = stream.Position;
                t.WriteBytes(stream);
                if (stream.Position - start != t.ByteLength)
                    throw new InvalidOperationException($"tensor '{t.Name}' wrote {stream.Position - start} bytes, not {t.ByteLength}");
            }
        });
    }

    /// <summary>A tensor to write: its header entry, and what writes its <see cref="ByteLength"/> bytes to the file.</summary>
    internal readonly record struct TensorSource(string Name, TensorDType DType, int[] Shape, Action<Stream> WriteBytes)
    {
        public long ByteLength => Shape.Aggregate(1L, (n, d) => n * d) * DType.SizeOf();

        public static TensorSource Of(TensorView view) =>
            new(view.Name, view.DType, view.Shape, stream => CheckpointFiles.WriteNative(stream, view.Address, view.ByteLength));
    }

    private static string DTypeName(TensorDType dtype) => dtype switch
    {
        TensorDType.F32 => "F32",
        TensorDType.BF16 => "BF16",
        TensorDType.F16 => "F16",
        TensorDType.F64 => "F64",
        TensorDType.I32 => "I32",
        TensorDType.I64 => "I64",
        TensorDType.U16 => "U16",
        TensorDType.U8 => "U8",
        _ => throw new ArgumentException($"dtype {dtype} cannot be stored in safetensors"),
    };
}
