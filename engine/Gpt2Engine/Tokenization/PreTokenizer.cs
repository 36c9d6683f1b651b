using System.Globalization;

namespace Gpt2Engine.Tokenization;

/// <summary>
/// GPT-2's pre-tokenizer, a hand-written equivalent of the regular expression
/// <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c> applied over code points
/// (a surrogate pair is one character, so letters and digits outside the BMP count as \p{L} and \p{N}).
/// It splits text into the pieces that BPE then encodes one by one.
/// </summary>
internal ref struct PreTokenizer(ReadOnlySpan<char> text)
{
    private enum CharClass : byte { Letter, Number, Space, Other }

    /// <summary>The class of every BMP character (a lone surrogate is Other), so the scanner never asks Unicode tables.</summary>
    private static readonly CharClass[] BmpClass = BuildBmpClass();

    private readonly ReadOnlySpan<char> _text = text;
    private int _position;

    /// <summary>The next piece as a range of the text; false at the end.</summary>
    public bool Next(out int start, out int length)
    {
        start = _position;
        if (start >= _text.Length)
        {
            length = 0;
            return false;
        }
        int end = PieceEnd(start);
        _position = end;
        length = end - start;
        return true;
    }

    private readonly int PieceEnd(int start)
    {
        char c = _text[start];
        if (c == '\'' && ContractionLength(start) is > 0 and var contraction)
            return start + contraction;

        CharClass cls = ClassAt(start, out int width);
        if (c == ' ' && start + 1 < _text.Length)
        {
            // ' ?\p{L}+', ' ?\p{N}+' and ' ?[^\s\p{L}\p{N}]+': a space joins the run that follows it.
            CharClass following = ClassAt(start + 1, out int followingWidth);
            if (following != CharClass.Space)
                return RunEnd(start + 1 + followingWidth, following);
        }
        if (cls != CharClass.Space)
            return RunEnd(start + width, cls);

        // '\s+(?!\S)' keeps the last whitespace of a run for the word that follows; '\s+' takes a lone one.
        int end = RunEnd(start + 1, CharClass.Space);
        return end < _text.Length && end - start >= 2 ? end - 1 : end;
    }

    /// <summary>The length of 's 't 're 've 'm 'll 'd at <paramref name="start"/> (case-sensitive), or 0.</summary>
    private readonly int ContractionLength(int start)
    {
        var rest = _text[(start + 1)..];
        if (rest.Length == 0)
            return 0;
        if (rest[0] is 's' or 't' or 'm' or 'd')
            return 2;
        if (rest.Length >= 2 && (rest.StartsWith("re") || rest.StartsWith("ve") || rest.StartsWith("ll")))
            return 3;
        return 0;
    }

    private readonly int RunEnd(int position, CharClass cls)
    {
        while (position < _text.Length && ClassAt(position, out int width) == cls)
            position += width;
        return position;
    }

    private readonly CharClass ClassAt(int position, out int width)
    {
        char c = _text[position];
        if (char.IsHighSurrogate(c) && position + 1 < _text.Length && char.IsLowSurrogate(_text[position + 1]))
        {
            width = 2;
            return ClassOf(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(c, _text[position + 1])));
        }
        width = 1;
        return BmpClass[c];
    }

    private static CharClass ClassOf(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharClass.Letter,
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharClass.Number,
        _ => CharClass.Other,
    };

    private static CharClass[] BuildBmpClass()
    {
        var table = new CharClass[char.MaxValue + 1];
        for (int c = 0; c <= char.MaxValue; c++)
            table[c] = char.IsWhiteSpace((char)c) ? CharClass.Space : ClassOf(CharUnicodeInfo.GetUnicodeCategory((char)c));
        return table;
    }
}
