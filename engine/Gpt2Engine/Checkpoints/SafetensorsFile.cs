using System.Buffers.Binary;
using System.Text.Json;

namespace Gpt2Engine.Checkpoints;

/// <summary>
/// A memory-mapped safetensors file: an 8-byte header length, a JSON header, then the tensor bytes.
/// Tensors are views into the mapping. See shared/docs/safetensors.md.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    private const long MaxHeaderLength = 100_000_000;
    private readonly MappedFile _file;

    public string Path => _file.Path;
    public IReadOnlyDictionary<string, TensorView> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    private SafetensorsFile(MappedFile file, Dictionary<string, TensorView> tensors, Dictionary<string, string> metadata)
    {
        _file = file;
        Tensors = tensors;
        Metadata = metadata;
    }

    public TensorView this[string name] =>
        Tensors.TryGetValue(name, out var view) ? view : throw new Gpt2Exception($"{Path}: no tensor named '{name}'");

    public static SafetensorsFile Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            var (tensors, metadata) = ParseHeader(file);
            return new SafetensorsFile(file, tensors, metadata);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static (Dictionary<string, TensorView>, Dictionary<string, string>) ParseHeader(MappedFile file)
    {
        string path = file.Path;
        if (file.Length < 8) throw new Gpt2Exception($"{path}: not a safetensors file (only {file.Length} bytes)");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(file.Span(0, 8));
        if (headerLength > MaxHeaderLength || (long)headerLength > file.Length - 8)
            throw new Gpt2Exception($"{path}: corrupt safetensors header length {headerLength} (file is {file.Length} bytes)");
        var header = file.Span(8, (int)headerLength);
        if (header.Length == 0 || header[0] != (byte)'{') throw new Gpt2Exception($"{path}: safetensors header does not start with '{{'");
        long dataStart = 8 + (long)headerLength;
        long dataLength = file.Length - dataStart;

        var tensors = new Dictionary<string, TensorView>();
        var metadata = new Dictionary<string, string>();
        var ranges = new List<(long Begin, long End, string Name)>();
        try
        {
            var reader = new Utf8JsonReader(header, new JsonReaderOptions { AllowTrailingCommas = false });
            using var doc = JsonDocument.ParseValue(ref reader);
            foreach (var member in doc.RootElement.EnumerateObject())
            {
                if (tensors.ContainsKey(member.Name) || (member.Name == "__metadata__" && metadata.Count > 0))
                    throw new Gpt2Exception($"{path}: duplicate header entry '{member.Name}'");
                if (member.Name == "__metadata__")
                {
                    foreach (var m in member.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : throw new Gpt2Exception($"{path}: metadata value '{m.Name}' is not a string");
                    continue;
                }
                var dtype = ParseDType(member.Value.GetProperty("dtype").GetString(), member.Name, path);
                int[] shape = member.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                var offsets = member.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength)
                    throw new Gpt2Exception($"{path}: tensor '{member.Name}' has data offsets [{string.Join(", ", offsets)}] outside the {dataLength}-byte data section (truncated file?)");
                if (shape.Any(d => d < 0)) throw new Gpt2Exception($"{path}: tensor '{member.Name}' has a negative dimension");
                var view = new TensorView(member.Name, dtype, shape, file.Address + (nint)(dataStart + offsets[0]));
                long? needed = CheckpointFiles.ByteCount(shape, dtype.SizeOf());
                if (needed != offsets[1] - offsets[0])
                    throw new Gpt2Exception($"{path}: tensor '{member.Name}' has {offsets[1] - offsets[0]} bytes, but shape {view.ShapeText} of {dtype} needs {needed?.ToString() ?? "more than 2^63"}");
                tensors[member.Name] = view;
                ranges.Add((offsets[0], offsets[1], member.Name));
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new Gpt2Exception($"{path}: corrupt safetensors header ({e.Message})", e);
        }

        long expected = 0;
        foreach (var (begin, end, name) in ranges.OrderBy(r => r.Begin).ThenBy(r => r.End))
        {
            if (begin != expected) throw new Gpt2Exception($"{path}: tensor '{name}' starts at {begin}, expected {expected} (holes or overlapping tensors)");
            expected = end;
        }
        if (expected != dataLength) throw new Gpt2Exception($"{path}: the data section is {dataLength} bytes but the tensors cover {expected}");
        return (tensors, metadata);
    }

    private static TensorDType ParseDType(string? text, string name, string path) => text switch
    {
        "F32" => TensorDType.F32,
        "BF16" => TensorDType.BF16,
        "F16" => TensorDType.F16,
        "F64" => TensorDType.F64,
        "I32" => TensorDType.I32,
        "I64" => TensorDType.I64,
        "U16" => TensorDType.U16,
        "U8" => TensorDType.U8,
        _ => throw new Gpt2Exception($"{path}: tensor '{name}' has unsupported dtype '{text}'"),
    };

    public void Dispose() => _file.Dispose();
}
