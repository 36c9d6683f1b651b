using System.Buffers.Binary;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Text.Unicode;

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
        using var doc = ParseJson(header, path);
        foreach (var member in doc.RootElement.EnumerateObject())
        {
            if (tensors.ContainsKey(member.Name) || (member.Name == "__metadata__" && metadata.Count > 0))
                throw new Gpt2Exception($"{path}: duplicate header entry '{member.Name}'");
            if (member.Name == "__metadata__")
            {
                if (member.Value.ValueKind != JsonValueKind.Object)
                    throw new Gpt2Exception($"{path}: '__metadata__' must be an object of strings, not {Excerpt(member.Value)}");
                foreach (var m in member.Value.EnumerateObject())
                    metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : throw new Gpt2Exception($"{path}: metadata value '{m.Name}' is not a string");
                continue;
            }
            var (dtype, shape, offsets) = ReadEntry(member, path);
            if (offsets[1] > dataLength)
                throw new Gpt2Exception($"{path}: tensor '{member.Name}' has data offsets [{string.Join(", ", offsets)}] outside the {dataLength}-byte data section (truncated file?)");
            var view = new TensorView(member.Name, dtype, shape, file.Address + (nint)(dataStart + offsets[0]));
            long? needed = CheckpointFiles.ByteCount(shape, dtype.SizeOf());
            if (needed != offsets[1] - offsets[0])
                throw new Gpt2Exception($"{path}: tensor '{member.Name}' has {offsets[1] - offsets[0]} bytes, but shape {view.ShapeText} of {dtype} needs {needed?.ToString() ?? "more than 2^63"}");
            tensors[member.Name] = view;
            ranges.Add((offsets[0], offsets[1], member.Name));
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

    private static JsonDocument ParseJson(ReadOnlySpan<byte> header, string path)
    {
        // The JSON reader checks UTF-8 only where a string is read, and then throws InvalidOperationException.
        if (!Utf8.IsValid(header)) throw new Gpt2Exception($"{path}: the safetensors header is not valid UTF-8");
        try
        {
            var reader = new Utf8JsonReader(header, new JsonReaderOptions { AllowTrailingCommas = false });
            return JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException e)
        {
            throw new Gpt2Exception($"{path}: the safetensors header is not valid JSON ({e.Message})", e);
        }
    }

    /// <summary>
    /// A tensor's header entry, <c>{"dtype": "F32", "shape": [d0, d1...], "data_offsets": [begin, end]}</c>, checked
    /// member by member so that a corrupt header is described in those terms.
    /// </summary>
    private static (TensorDType DType, int[] Shape, long[] Offsets) ReadEntry(JsonProperty tensor, string path)
    {
        Gpt2Exception Error(string problem) => new($"{path}: tensor '{tensor.Name}' {problem}");
        if (tensor.Value.ValueKind != JsonValueKind.Object)
            throw Error($"must be an object with 'dtype', 'shape' and 'data_offsets', not {Excerpt(tensor.Value)}");
        JsonElement Member(string key, JsonValueKind kind, string expected)
        {
            if (!tensor.Value.TryGetProperty(key, out var value)) throw Error($"has no '{key}'");
            return value.ValueKind == kind ? value : throw Error($"has '{key}' {Excerpt(value)}; expected {expected}");
        }

        var dtype = ParseDType(Member("dtype", JsonValueKind.String, "a string such as \"F32\"").GetString(), tensor.Name, path);
        var shape = Member("shape", JsonValueKind.Array, "a list of dimensions");
        int[] dimensions = [.. shape.EnumerateArray().Select(d => d.ValueKind == JsonValueKind.Number && d.TryGetInt32(out int n) && n >= 0 ? n
            : throw Error($"has shape {Excerpt(shape)}; dimensions are integers from 0 to {int.MaxValue}"))];
        var offsets = Member("data_offsets", JsonValueKind.Array, "[begin, end]");
        long[] range = [.. offsets.EnumerateArray().Select(o => o.ValueKind == JsonValueKind.Number && o.TryGetInt64(out long n) ? n : -1)];
        if (range is not [>= 0 and var begin, var end] || end < begin)
            throw Error($"has data_offsets {Excerpt(offsets)}; expected [begin, end], byte offsets with begin <= end");
        return (dtype, dimensions, range);
    }

    /// <summary>The JSON text of <paramref name="value"/> on one line and cut short: enough to recognise it in the header.</summary>
    private static string Excerpt(JsonElement value)
    {
        string text = Regex.Replace(value.GetRawText(), @"\s*[\r\n]\s*", " ");
        return text.Length <= 40 ? text : text[..37] + "...";
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
