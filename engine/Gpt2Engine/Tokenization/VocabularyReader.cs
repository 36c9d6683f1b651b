using System.Text;
using System.Text.Json;

namespace Gpt2Engine.Tokenization;

/// <summary>
/// Reads GPT-2's vocabulary files: encoder.json (token spelled in <see cref="ByteLevelAlphabet"/> → id) and
/// vocab.bpe (a "#version" line, then one merge "left right" a line, by rank). Anything malformed is a
/// <see cref="Gpt2Exception"/> naming the file.
/// </summary>
internal static class VocabularyReader
{
    public const string EndOfTextText = "<|endoftext|>";

    public sealed record Vocabulary(byte[] TokenBytes, int[] TokenOffsets, BpeMerges Merges, int EndOfTextId);

    public static Vocabulary Read(ReadOnlySpan<byte> encoderJson, string encoderName, string vocabBpe, string vocabName)
    {
        var encoder = ReadEncoder(encoderJson, encoderName);
        var tokens = new string[encoder.Count];
        foreach (var (token, id) in encoder)
            tokens[id] = token;

        // Each character of a token spells one byte.
        var bytes = new byte[tokens.Sum(token => token.Length)];
        var offsets = new int[tokens.Length + 1];
        for (int id = 0, length = 0; id < tokens.Length; id++)
        {
            foreach (char c in tokens[id])
            {
                if (!ByteLevelAlphabet.TryGetByte(c, out bytes[length++]))
                    throw new Gpt2Exception($"{encoderName}: token {id} contains U+{(int)c:X4}, which is not a byte of GPT-2's byte-level alphabet");
            }
            offsets[id + 1] = length;
        }

        var byteTokens = new int[256];
        var lookup = encoder.GetAlternateLookup<ReadOnlySpan<char>>();
        for (int b = 0; b < 256; b++)
        {
            if (!lookup.TryGetValue([ByteLevelAlphabet.ToChar((byte)b)], out byteTokens[b]))
                throw new Gpt2Exception($"{encoderName}: no token for the single byte 0x{b:X2}");
        }
        var merges = ReadMerges(vocabBpe, vocabName, lookup, encoderName);
        return new Vocabulary(bytes, offsets, new BpeMerges(byteTokens, merges),
            encoder.TryGetValue(EndOfTextText, out int endOfText) ? endOfText : -1);
    }

    private static Dictionary<string, int> ReadEncoder(ReadOnlySpan<byte> json, string name)
    {
        var encoder = new Dictionary<string, int>(capacity: 50_257, StringComparer.Ordinal);
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw new Gpt2Exception($"{name}: not a JSON object of token → id");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string token = reader.GetString()!;
                if (!reader.Read() || reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out int id))
                    throw new Gpt2Exception($"{name}: the id of token \"{token}\" is not an integer");
                if (token.Length == 0 || !encoder.TryAdd(token, id))
                    throw new Gpt2Exception($"{name}: token \"{token}\" is empty or listed twice");
            }
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
                throw new Gpt2Exception($"{name}: not a JSON object of token → id");
        }
        catch (JsonException e)
        {
            throw new Gpt2Exception($"{name}: invalid JSON ({e.Message})", e);
        }
        if (encoder.Count == 0)
            throw new Gpt2Exception($"{name}: no tokens");
        var seen = new bool[encoder.Count];
        foreach (var (token, id) in encoder)
        {
            if ((uint)id >= (uint)seen.Length || seen[id])
                throw new Gpt2Exception($"{name}: ids must be 0..{seen.Length - 1}, each once; token \"{token}\" has id {id}");
            seen[id] = true;
        }
        return encoder;
    }

    private static MergeTable ReadMerges(string text, string name,
        Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> encoder, string encoderName)
    {
        var merges = new MergeTable(capacity: text.Count('\n') + 1);
        Span<char> joined = stackalloc char[256];
        int lineNumber = 0;
        foreach (var rawLine in text.AsSpan().EnumerateLines())
        {
            lineNumber++;
            var line = rawLine.TrimEnd('\r');
            if (line.IsEmpty || (lineNumber == 1 && line.StartsWith("#version")))
                continue;
            int space = line.IndexOf(' ');
            var left = space > 0 ? line[..space] : default;
            var right = space > 0 ? line[(space + 1)..] : default;
            if (left.IsEmpty || right.IsEmpty || right.Contains(' ') || left.Length + right.Length > joined.Length)
                throw new Gpt2Exception($"{name}: line {lineNumber} is not a merge \"left right\"");
            left.CopyTo(joined);
            right.CopyTo(joined[left.Length..]);
            if (!encoder.TryGetValue(left, out int leftId) || !encoder.TryGetValue(right, out int rightId)
                || !encoder.TryGetValue(joined[..(left.Length + right.Length)], out int result))
                throw new Gpt2Exception($"{name}: line {lineNumber} merges \"{line}\", whose tokens are not all in {encoderName}");
            if (!merges.TryAdd(leftId, rightId, result))
                throw new Gpt2Exception($"{name}: line {lineNumber} repeats the merge \"{line}\"");
        }
        if (merges.Count == 0)
            throw new Gpt2Exception($"{name}: no merges");
        return merges;
    }

    public static string DecodeText(ReadOnlySpan<byte> bytes, string name)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new Gpt2Exception($"{name}: not valid UTF-8 text");
        }
    }
}
