using Gpt2Engine.Model;

namespace Gpt2Engine.Checkpoints;

/// <summary>One stored tensor as <c>inspect</c> lists it. <see cref="Checksum"/> is "ok", "MISMATCH ..." or null when not verified.</summary>
public sealed record TensorInfo(string Name, string Shape, string DType, long Bytes, string? Checksum);

public sealed record CheckpointReport(
    CheckpointFormat Format, string Source, Gpt2Config Config, long ParameterCount,
    IReadOnlyList<TensorInfo> Tensors, string? ChecksumNote, int ChecksumFailures);

/// <summary>Loads a checkpoint (with every check the loader makes) and describes what is stored in it.</summary>
public static class CheckpointInspector
{
    public static CheckpointReport Inspect(string weights, bool verify, TextWriter? warnings = null)
    {
        var opened = CheckpointLoader.Open(weights);
        using var loaded = opened.ToWeights(warnings);
        var tensors = new List<TensorInfo>();
        int failures = 0;
        string? note = null;
        if (opened.Bundle is { } bundle)
        {
            foreach (var e in bundle.Entries)
            {
                string? checksum = null;
                if (verify)
                {
                    uint stored = Crc32C.Unmask(e.MaskedCrc32C), actual = bundle.ComputeCrc32C(e);
                    checksum = stored == actual ? "ok" : $"MISMATCH (stored 0x{stored:X8}, data 0x{actual:X8})";
                    if (stored != actual) failures++;
                }
                tensors.Add(new TensorInfo(e.Name, e.ShapeText, e.DataTypeName, e.Size, checksum));
            }
            if (verify) note = $"crc32c verified ({(Crc32C.IsHardwareAccelerated ? "hardware" : "software")} CRC32C)";
        }
        else
        {
            foreach (var (name, view) in opened.Safetensors!.Tensors.OrderBy(t => t.Value.Address))
                tensors.Add(new TensorInfo(name, view.ShapeText, view.DType.ToString(), view.ByteLength, null));
            if (verify) note = "safetensors files carry no checksums: nothing to verify beyond the header and sizes";
        }
        return new CheckpointReport(opened.Format, opened.Source, opened.Config, loaded.Config.ParameterCount, tensors, note, failures);
    }
}
