using System.Globalization;
using System.Text;
using CsCheck;
using Gpt2Engine.Tokenization;
using Xunit;

namespace Gpt2Engine.Tests.Tokenization;

public class PreTokenizerTests
{
    private static List<string> Pieces(string text)
    {
        var pieces = new List<string>();
        var scanner = new PreTokenizer(text);
        while (scanner.Next(out int start, out int length))
            pieces.Add(text.Substring(start, length));
        return pieces;
    }

    /// <summary>
    /// The pattern's pieces by .NET's Regex. Regex sees a surrogate pair as two "other" code units, so each
    /// character outside the BMP is first replaced by one BMP character of its class (letter 'x', digit '7', other
    /// '§'), and the pieces are mapped back onto the original text.
    /// </summary>
    private static List<string> RegexPieces(string text)
    {
        var standIn = new StringBuilder();
        var origin = new List<int>();
        for (int i = 0; i < text.Length; i += char.IsSurrogatePair(text, i) ? 2 : 1)
        {
            origin.Add(i);
            if (!char.IsSurrogatePair(text, i))
            {
                standIn.Append(text[i]);
                continue;
            }
            standIn.Append(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text, i)) switch
            {
                UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                    or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => 'x',
                UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => '7',
                _ => '§',
            });
        }
        origin.Add(text.Length);
        return TokenizerFixtures.Pattern.Matches(standIn.ToString())
            .Select(m => text[origin[m.Index]..origin[m.Index + m.Length]]).ToList();
    }

    [Theory]
    [InlineData("Hello world", new[] { "Hello", " world" })]
    [InlineData("I'm here, they're 're 'S", new[] { "I", "'m", " here", ",", " they", "'re", " '", "re", " '", "S" })]
    [InlineData("a  b", new[] { "a", " ", " b" })]
    [InlineData("a\n\nb", new[] { "a", "\n", "\n", "b" })]
    [InlineData("a \n b  ", new[] { "a", " \n", " b", "  " })]
    [InlineData("x123 45!!?'s", new[] { "x", "123", " 45", "!!?'", "s" })]
    [InlineData("𝐀𝐁 𝟙𝟚 😀😀", new[] { "𝐀𝐁", " 𝟙𝟚", " 😀😀" })]
    public void SplitsLikeThePattern(string text, string[] expected)
    {
        Assert.Equal(expected, Pieces(text));
        Assert.Equal(expected, RegexPieces(text));
    }

    [Fact]
    public void AgreesWithRegexOnRandomText() =>
        TokenizerFixtures.Text.SampleSeeded(text => Assert.Equal(RegexPieces(text), Pieces(text)), cases: 3000);

    [Fact]
    public void AgreesWithRegexOnRandomBmpCodeUnits() =>
        Gen.Char.Array[0, 30].Select(chars => new string(chars))
            .SampleSeeded(text => Assert.Equal(TokenizerFixtures.Pattern.Matches(text).Select(m => m.Value), Pieces(text)), cases: 3000);

    [Fact]
    public void AgreesWithRegexOnWhitespaceRuns() =>
        Gen.Select(TokenizerFixtures.Whitespace, Gen.OneOfConst("", "a", "1", "!", "'s"), TokenizerFixtures.Whitespace)
            .SampleSeeded((a, b, c) => Assert.Equal(RegexPieces(a + b + c), Pieces(a + b + c)), cases: 2000);

    [Fact]
    public void SplittingAtWhitespaceToLetterBoundaryIsConsistentWithThePieces()
    {
        // The pattern never joins whitespace to the word after it, except one final ' ': the split (moved one
        // character left when the whitespace ends in ' ') is a piece boundary, the text encodes piece by piece,
        // and what follows the boundary encodes as it would alone.
        var tokenizer = Gpt2Tokenizer.Default;
        Gen.Select(TokenizerFixtures.Text, TokenizerFixtures.Whitespace, Gen.Char['a', 'z'], TokenizerFixtures.Text)
            .SampleSeeded((head, whitespace, letter, tail) =>
            {
                string text = head + whitespace + letter + tail;
                int split = head.Length + whitespace.Length - (whitespace[^1] == ' ' ? 1 : 0);
                var pieces = Pieces(text);
                int offset = 0;
                Assert.Contains(split, pieces.Select(p => offset += p.Length).Prepend(0));

                int[] ids = tokenizer.Encode(text);
                Assert.Equal(pieces.SelectMany(p => tokenizer.Encode(p)), ids);
                int[] after = tokenizer.Encode(text[split..]);
                Assert.Equal(after, ids[^after.Length..]);
            }, cases: 1000);
    }
}
