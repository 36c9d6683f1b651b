using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Gpt2Engine;

/// <summary>The JSON text that <paramref name="write"/> produces with a <see cref="Utf8JsonWriter"/> (the commands' --json output).</summary>
internal static class JsonText
{
    public static string Write(Action<Utf8JsonWriter> write, bool indented = false)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = indented })) write(writer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
