using Gpt2Engine.Tokenization;
using Xunit;

namespace Gpt2Engine.Tests.Tokenization;

public sealed class VocabularyErrorTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gpt2-vocab-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string EncoderPath => Path.Combine(_directory, "encoder.json");
    private string VocabPath => Path.Combine(_directory, "vocab.bpe");

    private void CopyFixture(string file) =>
        File.Copy(Path.Combine(TokenizerFixtures.Directory, file), Path.Combine(_directory, file), overwrite: true);

    private Gpt2Exception Load() => Assert.Throws<Gpt2Exception>(() => Gpt2Tokenizer.FromDirectory(_directory));

    [Fact]
    public void MissingFolderIsNamed()
    {
        string missing = Path.Combine(_directory, "nope");
        Assert.Contains(missing, Assert.Throws<Gpt2Exception>(() => Gpt2Tokenizer.FromDirectory(missing)).Message);
    }

    [Fact]
    public void MissingFilesAreNamed()
    {
        Assert.Contains(EncoderPath, Load().Message);
        CopyFixture("encoder.json");
        Assert.Contains(VocabPath, Load().Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("[1, 2]")]
    [InlineData("{\"a\": 0, \"b\": ")]
    [InlineData("{\"a\": \"zero\"}")]
    [InlineData("{\"a\": 0, \"a\": 1}")]
    [InlineData("{\"a\": 0, \"b\": 5}")]
    [InlineData("{\"a\": 0, \"\\u4e2d\": 1}")]
    public void CorruptEncoderIsNamed(string json)
    {
        File.WriteAllText(EncoderPath, json);
        CopyFixture("vocab.bpe");
        Assert.StartsWith(EncoderPath, Load().Message);
    }

    [Fact]
    public void TruncatedEncoderIsNamed()
    {
        var bytes = File.ReadAllBytes(Path.Combine(TokenizerFixtures.Directory, "encoder.json"));
        File.WriteAllBytes(EncoderPath, bytes[..(bytes.Length / 2)]);
        CopyFixture("vocab.bpe");
        Assert.StartsWith(EncoderPath, Load().Message);
    }

    [Theory]
    [InlineData("#version: 0.2\nĠ t\nĠt\n", "line 3")]
    [InlineData("#version: 0.2\nĠ t\nĠ zzzzqqq\n", "line 3")]
    [InlineData("#version: 0.2\nĠ t\nĠ t\n", "line 3")]
    [InlineData("#version: 0.2\n", "no merges")]
    public void CorruptMergesAreNamedWithTheirLine(string merges, string problem)
    {
        CopyFixture("encoder.json");
        File.WriteAllText(VocabPath, merges);
        var message = Load().Message;
        Assert.StartsWith(VocabPath, message);
        Assert.Contains(problem, message);
    }

    [Fact]
    public void InvalidUtf8MergesAreNamed()
    {
        CopyFixture("encoder.json");
        File.WriteAllBytes(VocabPath, [0x23, 0xFF, 0xFE, 0x0A]);
        Assert.StartsWith(VocabPath, Load().Message);
    }

    [Fact]
    public void HuggingFaceFileNamesAreAccepted()
    {
        File.Copy(Path.Combine(TokenizerFixtures.Directory, "encoder.json"), Path.Combine(_directory, "vocab.json"));
        File.Copy(Path.Combine(TokenizerFixtures.Directory, "vocab.bpe"), Path.Combine(_directory, "merges.txt"));
        var tokenizer = Gpt2Tokenizer.ForWeightsDirectory(_directory, out bool builtIn);
        Assert.False(builtIn);
        Assert.Equal([15496, 995, 0], tokenizer.Encode("Hello world!"));
    }

    [Fact]
    public void AWeightsFolderWithHalfAVocabularyIsAnError()
    {
        CopyFixture("encoder.json");
        Assert.Throws<Gpt2Exception>(() => Gpt2Tokenizer.ForWeightsDirectory(_directory, out _));
    }

    [Fact]
    public void ATruncatedMergeListStillLoadsAndRoundTrips()
    {
        // The first 1,000 merges are a valid (smaller) vocabulary: tokens are longer sequences, text is the same.
        CopyFixture("encoder.json");
        File.WriteAllLines(VocabPath, File.ReadLines(Path.Combine(TokenizerFixtures.Directory, "vocab.bpe")).Take(1001));
        var small = Gpt2Tokenizer.FromDirectory(_directory);
        Assert.Equal(1000, small.MergeCount);
        const string text = "The quick brown fox jumps over the lazy dog.";
        Assert.Equal(text, small.Decode(small.Encode(text)));
        Assert.True(small.Encode(text).Length > Gpt2Tokenizer.Default.Encode(text).Length);
    }
}
