using System.Text.Json;
using System.Text.RegularExpressions;
using CsCheck;

namespace Gpt2Engine.Tests.Tokenization;

/// <summary>The fixture vocabulary and reference cases, and generators of text shared by the tokenizer tests.</summary>
internal static class TokenizerFixtures
{
    public static readonly string Directory = Path.Combine(AppContext.BaseDirectory, "Fixtures", "gpt2-tokenizer");

    /// <summary>GPT-2's pre-tokenizer pattern, as published, for .NET's Regex (which sees UTF-16 code units).</summary>
    public static readonly Regex Pattern = new(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+");

    public static IEnumerable<(string Text, int[] Ids)> Cases() =>
        File.ReadLines(Path.Combine(Directory, "cases.jsonl")).Where(line => line.Length > 0).Select(line =>
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            return (root.GetProperty("text").GetString()!, root.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        });

    /// <summary>Characters that exercise every branch of the pattern: contractions, the space rule, whitespace kinds.</summary>
    private static readonly string Tricky = "'stremvdlSa Z09٣½\t\n\r\u00A0\u2003\u3000.,!?-_\"'é\u0301中文ǅ";

    private static readonly Gen<string> CodePoint = Gen.Frequency(
        (4, Gen.Char[' ', '~'].Select(c => c.ToString())),
        (4, Gen.OneOfConst([.. Tricky.Select(c => c.ToString())])),
        (1, Gen.Int[0x80, 0xFFFF].Where(c => c is < 0xD800 or > 0xDFFF).Select(c => ((char)c).ToString())),
        (1, Gen.Int[0x10000, 0x10FFFF].Select(char.ConvertFromUtf32)),
        (1, Gen.OneOfConst("𝐀", "𝟙", "😀", "𐍈", "𠀋")));

    /// <summary>Random valid Unicode text, rich in the characters that matter to the pattern.</summary>
    public static readonly Gen<string> Text = CodePoint.Array[0, 40].Select(parts => string.Concat(parts));

    public static readonly Gen<string> Whitespace = Gen.OneOfConst(" ", "\t", "\n", "\r", "\u00A0", "\u2003", "\u3000")
        .Array[1, 12].Select(parts => string.Concat(parts));
}
