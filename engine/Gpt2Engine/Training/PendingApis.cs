// TEMPORARY stand-ins for APIs that other helpers are writing (checkpoints: SafetensorsWriter, ConfigFiles,
// CheckpointFiles; tokenizer: Gpt2Tokenizer). Same names and signatures as theirs; delete this file when merging main.
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Gpt2Engine.Model;

namespace Gpt2Engine.Checkpoints
{
    public static class SafetensorsWriter
    {
        public static void Write(string path, IEnumerable<TensorView> tensors, IReadOnlyDictionary<string, string>? metadata = null)
        {
            var ordered = tensors.ToList();
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
                    writer.WriteString("dtype", t.DType.ToString());
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
            while (json.Length % 8 != 0) json.WriteByte((byte)' ');
            CheckpointFiles.WriteAtomic(path, stream =>
            {
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)json.Length);
                stream.Write(length);
                stream.Write(json.GetBuffer().AsSpan(0, (int)json.Length));
                foreach (var t in ordered) unsafe { stream.Write(new ReadOnlySpan<byte>((void*)t.Address, checked((int)t.ByteLength))); }
            });
        }
    }

    public static class ConfigFiles
    {
        public static Gpt2Config? FromMetadata(IReadOnlyDictionary<string, string> metadata, string path)
        {
            int Get(string key) => int.Parse(metadata[key], CultureInfo.InvariantCulture);
            return metadata.ContainsKey("n_embd") ? new Gpt2Config(Get("n_vocab"), Get("n_ctx"), Get("n_embd"), Get("n_layer"), Get("n_head")) : null;
        }

        public static Dictionary<string, string> ToMetadata(Gpt2Config c) => new()
        {
            ["format"] = "pt",
            ["n_vocab"] = c.VocabSize.ToString(CultureInfo.InvariantCulture),
            ["n_ctx"] = c.ContextLength.ToString(CultureInfo.InvariantCulture),
            ["n_embd"] = c.Channels.ToString(CultureInfo.InvariantCulture),
            ["n_layer"] = c.Layers.ToString(CultureInfo.InvariantCulture),
            ["n_head"] = c.Heads.ToString(CultureInfo.InvariantCulture),
        };
    }

    internal static class CheckpointFiles
    {
        public static void WriteAtomic(string path, Action<FileStream> write)
        {
            string temporary = $"{path}.tmp-{Path.GetRandomFileName()}";
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
                using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
                {
                    write(stream);
                    stream.Flush(flushToDisk: true);
                }
                File.Move(temporary, path, overwrite: true);
            }
            catch (Exception e)
            {
                File.Delete(temporary);
                if (e is IOException or UnauthorizedAccessException) throw new Gpt2Exception($"{path}: cannot write ({e.Message})", e);
                throw;
            }
        }

        public static void WriteAtomic(string path, ReadOnlySpan<byte> contents)
        {
            byte[] copy = contents.ToArray();
            WriteAtomic(path, stream => stream.Write(copy));
        }
    }
}

namespace Gpt2Engine.Tokenization
{
    public sealed class Gpt2Tokenizer
    {
        public static Gpt2Tokenizer Default { get; } = new();
        public int[] Encode(string text, bool allowSpecial = true) => throw new NotImplementedException("the tokenizer is not merged yet");
    }
}
