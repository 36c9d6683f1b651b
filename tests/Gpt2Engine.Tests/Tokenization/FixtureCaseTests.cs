using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Gpt2Engine.Tokenization;
using Xunit;

namespace Gpt2Engine.Tests.Tokenization;

public class FixtureCaseTests
{
    [Fact]
    public void EveryReferenceCaseEncodesExactly()
    {
        int count = 0;
        foreach (var (text, ids) in TokenizerFixtures.Cases())
        {
            Assert.Equal(ids, Gpt2Tokenizer.Default.Encode(text));
            count++;
        }
        Assert.Equal(132, count);
    }

    [Fact]
    public void EveryReferenceCaseDecodesBackToItsText()
    {
        foreach (var (text, ids) in TokenizerFixtures.Cases())
            Assert.Equal(text, Gpt2Tokenizer.Default.Decode(ids));
    }

    [Fact]
    public void VocabularyFromTheFixtureFolderEncodesLikeTheBuiltInOne()
    {
        var fromFiles = Gpt2Tokenizer.FromDirectory(TokenizerFixtures.Directory);
        Assert.Equal(50_257, fromFiles.VocabSize);
        Assert.Equal(50_000, fromFiles.MergeCount);
        foreach (var (text, ids) in TokenizerFixtures.Cases())
            Assert.Equal(ids, fromFiles.Encode(text));
    }

    [Theory]
    [InlineData("encoder.json.gz", "encoder.json")]
    [InlineData("vocab.bpe.gz", "vocab.bpe")]
    public void EmbeddedVocabularyHasThePublishedSha256(string resource, string file)
    {
        var readme = File.ReadAllText(Path.Combine(TokenizerFixtures.Directory, "README.md"));
        string expected = Regex.Match(readme, Regex.Escape(file) + @" ([0-9a-f]{64})").Groups[1].Value;
        using var stream = typeof(Gpt2Tokenizer).Assembly.GetManifestResourceStream($"Gpt2Engine.Tokenization.{resource}")!;
        using var gzip = new System.IO.Compression.GZipStream(stream, System.IO.Compression.CompressionMode.Decompress);
        Assert.Equal(64, expected.Length);
        Assert.Equal(expected, Convert.ToHexStringLower(SHA256.HashData(gzip)));
    }

    [Fact]
    public void EndOfTextIsOneTokenUnlessSpecialTokensAreDisallowed()
    {
        var tokenizer = Gpt2Tokenizer.Default;
        int[] hello = tokenizer.Encode("Hello");
        Assert.Equal([.. hello, Gpt2Tokenizer.EndOfText, .. hello], tokenizer.Encode("Hello<|endoftext|>Hello"));
        Assert.Equal([Gpt2Tokenizer.EndOfText, Gpt2Tokenizer.EndOfText], tokenizer.Encode("<|endoftext|><|endoftext|>"));

        int[] plain = tokenizer.Encode("<|endoftext|>", allowSpecial: false);
        Assert.DoesNotContain(Gpt2Tokenizer.EndOfText, plain);
        Assert.True(plain.Length > 1);
        Assert.Equal("<|endoftext|>", tokenizer.Decode(plain));
        Assert.Equal("<|endoftext|>", tokenizer.Decode([Gpt2Tokenizer.EndOfText]));
    }

    [Fact]
    public void LettersOutsideTheBmpAreLettersForThePreTokenizer()
    {
        // U+1D400 is a letter, so "'s" after it is a contraction piece: token 338 ("'s" in encoder.json), and
        // "'ll go" is 1183 ("'ll") 467 ("Ġgo"). A pattern run over UTF-16 code units (.NET Regex) would read the
        // surrogate pair as punctuation, join the apostrophe to it, and give "'" + "s".
        var tokenizer = Gpt2Tokenizer.Default;
        int[] letter = tokenizer.Encode("𝐀");
        Assert.Equal([.. letter, 338], tokenizer.Encode("𝐀's"));
        Assert.Equal([.. letter, 1183, 467], tokenizer.Encode("𝐀'll go"));
    }

    [Fact]
    public void KnownWordsAreTheirVocabularyTokens()
    {
        // Ids read from encoder.json by hand: "Hello" 15496, "Ġworld" 995, "!" 0.
        Assert.Equal([15496, 995, 0], Gpt2Tokenizer.Default.Encode("Hello world!"));
        Assert.Equal([], Gpt2Tokenizer.Default.Encode(""));
        Assert.Equal("", Gpt2Tokenizer.Default.Decode([]));
    }
}
