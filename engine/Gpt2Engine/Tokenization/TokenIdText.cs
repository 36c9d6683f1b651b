using System.Globalization;
using System.Text;
using System.Text.Unicode;

namespace Gpt2Engine.Tokenization;

/// <summary>The text forms the CLI reads and writes: files as UTF-8, token ids as whitespace-separated decimals.</summary>
public static class TokenIdText
{
    /// <summary>Writes <paramref name="ids"/> separated by single spaces (no newline).</summary>
    public static void Write(ReadOnlySpan<int> ids, TextWriter output)
    {
        Span<char> buffer = stackalloc char[4096];
        int used = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            if (used > buffer.Length - 12)
            {
                output.Write(buffer[..used]);
                used = 0;
            }
            if (i > 0)
                buffer[used++] = ' ';
            ids[i].TryFormat(buffer[used..], out int written, provider: CultureInfo.InvariantCulture);
            used += written;
        }
        output.Write(buffer[..used]);
    }

    /// <summary>The ids in <paramref name="text"/> (decimal, separated by any whitespace); <paramref name="source"/> names it in errors.</summary>
    public static int[] Parse(ReadOnlySpan<char> text, string source)
    {
        var ids = new List<int>(text.Length / 5);
        while (true)
        {
            int start = 0;
            while (start < text.Length && char.IsWhiteSpace(text[start]))
                start++;
            if (start == text.Length)
                return [.. ids];
            int end = start;
            while (end < text.Length && !char.IsWhiteSpace(text[end]))
                end++;
            var word = text[start..end];
            if (!int.TryParse(word, NumberStyles.None, CultureInfo.InvariantCulture, out int id))
                throw new Gpt2Exception($"{source}: '{word.ToString()}' (number {ids.Count + 1}) is not a token id (a non-negative integer)");
            ids.Add(id);
            text = text[end..];
        }
    }

    /// <summary>
    /// <paramref name="bytes"/> read as UTF-8; invalid sequences become U+FFFD, and <paramref name="firstInvalid"/>
    /// is the offset of the first (-1 when the text is valid).
    /// </summary>
    public static string DecodeUtf8(ReadOnlySpan<byte> bytes, out long firstInvalid)
    {
        var chars = new char[bytes.Length];
        var status = Utf8.ToUtf16(bytes, chars, out int read, out int written, replaceInvalidSequences: false);
        if (status == System.Buffers.OperationStatus.Done)
        {
            firstInvalid = -1;
            return new string(chars, 0, written);
        }
        firstInvalid = read;
        return Encoding.UTF8.GetString(bytes);
    }

    /// <summary>
    /// <paramref name="bytes"/> read as UTF-8, invalid sequences as U+FFFD; the first invalid byte of
    /// <paramref name="source"/> is named in a warning on <paramref name="warnings"/> (tokenize and prepare read text so).
    /// </summary>
    public static string DecodeUtf8(ReadOnlySpan<byte> bytes, string source, TextWriter? warnings)
    {
        string text = DecodeUtf8(bytes, out long invalid);
        if (invalid >= 0) WarnInvalid(warnings, source, "UTF-8", invalid);
        return text;
    }

    /// <summary>
    /// The one wording of the warning for text that is not valid <paramref name="encoding"/>, from byte
    /// <paramref name="at"/> on.
    /// </summary>
    internal static void WarnInvalid(TextWriter? warnings, string source, string encoding, long at) =>
        warnings?.WriteLine($"gpt2-engine: warning: {source}: invalid {encoding} at byte {at}; invalid bytes are read as U+FFFD");
}
