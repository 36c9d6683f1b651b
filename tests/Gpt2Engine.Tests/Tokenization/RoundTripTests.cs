using System.Buffers;
using System.Text;
using CsCheck;
using Gpt2Engine.Tokenization;
using Xunit;

namespace Gpt2Engine.Tests.Tokenization;

public class RoundTripTests
{
    private static readonly Gpt2Tokenizer Tokenizer = Gpt2Tokenizer.Default;

    private static void AssertRoundTrips(string text)
    {
        Assert.Equal(text, Tokenizer.Decode(Tokenizer.Encode(text)));
        Assert.Equal(text, Tokenizer.Decode(Tokenizer.Encode(text, allowSpecial: false)));
    }

    [Fact]
    public void RandomUnicodeTextRoundTrips() => TokenizerFixtures.Text.SampleSeeded(AssertRoundTrips, cases: 2000);

    [Fact]
    public void RandomWhitespaceRunsRoundTrip() =>
        Gen.Select(TokenizerFixtures.Whitespace, Gen.OneOfConst("", "x", "<|endoftext|>", "\n")).Array[1, 6]
            .Select(parts => string.Concat(parts.Select(p => p.Item1 + p.Item2)))
            .SampleSeeded(AssertRoundTrips, cases: 1000);

    [Fact]
    public void RandomByteSoupRoundTripsAsItsUtf8Reading() =>
        // Any bytes, read as UTF-8 (invalid sequences become U+FFFD), make a text that must round-trip exactly.
        Gen.Byte.Array[0, 60].Select(bytes => Encoding.UTF8.GetString(bytes)).SampleSeeded(AssertRoundTrips, cases: 2000);

    [Fact]
    public void DecodeOfAnyIdsIsTheUtf8ReadingOfTheirBytes() =>
        Gen.Int[0, Tokenizer.VocabSize - 1].Array[0, 20].SampleSeeded(ids =>
            Assert.Equal(Encoding.UTF8.GetString(ids.SelectMany(id => Tokenizer.TokenBytes(id).ToArray()).ToArray()), Tokenizer.Decode(ids)),
            cases: 2000);

    [Fact]
    public void EncodingIsThreadSafe()
    {
        var cases = TokenizerFixtures.Cases().ToArray();
        Parallel.For(0, 8, _ =>
        {
            foreach (var (text, ids) in cases)
                Assert.Equal(ids, Tokenizer.Encode(text));
        });
    }

    [Fact]
    public void ParallelEncodingGivesTheSameIdsAsOneThread()
    {
        // Long enough to be cut into chunks; whitespace of every kind makes the cut points vary.
        var text = new System.Text.StringBuilder();
        var random = new Random(7);
        var cases = TokenizerFixtures.Cases().Select(c => c.Text).ToArray();
        while (text.Length < 600_000)
            text.Append(cases[random.Next(cases.Length)]).Append(random.Next(4) switch { 0 => " ", 1 => "\n\n", 2 => "  \t", _ => "" });
        string input = text.ToString();
        Assert.Equal(Tokenizer.Encode(input), Tokenizer.EncodeParallel(input, threads: 4));
        Assert.Equal(Tokenizer.Encode(input, allowSpecial: false), Tokenizer.EncodeParallel(input, threads: 3, allowSpecial: false));
    }

    [Fact]
    public void DecodeNamesAnIdOutsideTheVocabularyAndItsPosition()
    {
        var error = Assert.Throws<Gpt2Exception>(() => Tokenizer.Decode([15496, 50257]));
        Assert.Contains("50257", error.Message);
        Assert.Contains("number 2", error.Message);
        Assert.Throws<Gpt2Exception>(() => Tokenizer.Decode([-1]));
        Assert.Throws<Gpt2Exception>(() => Tokenizer.TokenBytes(50257));
    }
}

public class Utf8StreamDecoderTests
{
    private static readonly Gpt2Tokenizer Tokenizer = Gpt2Tokenizer.Default;

    /// <summary>Pushes ids one at a time, checking that every write is whole characters (valid UTF-8 on its own).</summary>
    private static byte[] StreamDecode(IEnumerable<int> ids)
    {
        var decoder = Tokenizer.CreateStreamDecoder();
        var all = new List<byte>();
        var output = new ArrayBufferWriter<byte>();
        foreach (int id in ids)
        {
            decoder.Push(id, output);
            Assert.True(System.Text.Unicode.Utf8.IsValid(output.WrittenSpan));
            all.AddRange(output.WrittenSpan);
            output.ResetWrittenCount();
        }
        decoder.Flush(output);
        all.AddRange(output.WrittenSpan);
        return [.. all];
    }

    [Fact]
    public void AnyIdSequenceStreamsToTheUtf8OfItsDecoding() =>
        Gen.Int[0, Tokenizer.VocabSize - 1].Array[0, 30].SampleSeeded(ids =>
            Assert.Equal(Encoding.UTF8.GetBytes(Tokenizer.Decode(ids)), StreamDecode(ids)), cases: 3000);

    [Fact]
    public void ByteTokensStreamLikeUtf8DecodingOfTheirBytes() =>
        // One token per byte (the 256 single-byte tokens) splits every multi-byte character across pushes.
        Gen.Byte.Array[0, 40].SampleSeeded(bytes =>
        {
            Assert.Equal(Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(bytes)), StreamDecode(bytes.Select(SingleByteToken)));
        }, cases: 3000);

    private static readonly Dictionary<byte, int> ByteTokens = Enumerable.Range(0, Tokenizer.VocabSize)
        .Where(id => Tokenizer.TokenBytes(id).Length == 1).ToDictionary(id => Tokenizer.TokenBytes(id)[0]);

    private static int SingleByteToken(byte b) => ByteTokens[b];

    [Fact]
    public void ACharacterSplitAcrossTokensIsWrittenOnlyWhenComplete()
    {
        byte[] euro = Encoding.UTF8.GetBytes("€"); // E2 82 AC
        var decoder = Tokenizer.CreateStreamDecoder();
        var output = new ArrayBufferWriter<byte>();
        decoder.Push(SingleByteToken(euro[0]), output);
        decoder.Push(SingleByteToken(euro[1]), output);
        Assert.Equal(0, output.WrittenCount);
        decoder.Push(SingleByteToken(euro[2]), output);
        Assert.Equal(euro, output.WrittenSpan.ToArray());
    }

    [Fact]
    public void AnIncompleteCharacterAtTheEndIsFlushedAsReplacement()
    {
        var decoder = Tokenizer.CreateStreamDecoder();
        var output = new ArrayBufferWriter<byte>();
        decoder.Push(SingleByteToken((byte)'a'), output);
        decoder.Push(SingleByteToken(0xE2), output);
        decoder.Push(SingleByteToken(0x82), output);
        Assert.Equal("a"u8.ToArray(), output.WrittenSpan.ToArray());
        decoder.Flush(output);
        Assert.Equal("a\uFFFD"u8.ToArray(), output.WrittenSpan.ToArray());
        decoder.Flush(output);
        Assert.Equal("a\uFFFD"u8.ToArray(), output.WrittenSpan.ToArray());
    }
}
