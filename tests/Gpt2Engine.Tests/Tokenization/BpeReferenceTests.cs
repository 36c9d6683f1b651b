using System.Text;
using System.Text.Json;
using CsCheck;
using Gpt2Engine.Tokenization;
using Xunit;

namespace Gpt2Engine.Tests.Tokenization;

/// <summary>The tokenizer against a naive BPE written here from OpenAI's description, reading the fixture files itself.</summary>
public class BpeReferenceTests
{
    private static readonly Lazy<NaiveBpe> Reference = new(() => new NaiveBpe(TokenizerFixtures.Directory));

    private sealed class NaiveBpe
    {
        private readonly Dictionary<string, int> _encoder;
        private readonly Dictionary<(string, string), int> _ranks = [];
        private readonly string[] _byteChars = new string[256];

        public NaiveBpe(string directory)
        {
            _encoder = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(directory, "encoder.json")))!;
            foreach (string line in File.ReadLines(Path.Combine(directory, "vocab.bpe")).Skip(1).Where(l => l.Length > 0))
                _ranks[(line.Split(' ')[0], line.Split(' ')[1])] = _ranks.Count;
            // bytes_to_unicode(): printable Latin-1 bytes are themselves, the rest 256, 257, ... in byte order.
            int next = 256;
            for (int b = 0; b < 256; b++)
            {
                bool printable = b is >= 33 and <= 126 or >= 161 and <= 172 or >= 174 and <= 255;
                _byteChars[b] = ((char)(printable ? b : next++)).ToString();
            }
        }

        /// <summary>Repeatedly merges every occurrence of the lowest-ranked adjacent pair, left to right.</summary>
        public IEnumerable<int> Encode(byte[] piece)
        {
            var word = piece.Select(b => _byteChars[b]).ToList();
            while (word.Count > 1)
            {
                var best = Enumerable.Range(0, word.Count - 1)
                    .Select(i => (word[i], word[i + 1]))
                    .Where(_ranks.ContainsKey)
                    .OrderBy(pair => _ranks[pair]).FirstOrDefault();
                if (best == default)
                    break;
                var merged = new List<string>();
                for (int i = 0; i < word.Count; i++)
                {
                    if (i + 1 < word.Count && (word[i], word[i + 1]) == best)
                        merged.Add(word[i] + word[++i]);
                    else
                        merged.Add(word[i]);
                }
                word = merged;
            }
            return word.Select(token => _encoder[token]);
        }

        public IEnumerable<int> EncodeText(string text) =>
            TokenizerFixtures.Pattern.Matches(text).SelectMany(m => Encode(Encoding.UTF8.GetBytes(m.Value)));
    }

    private static int[] Merge(byte[] piece)
    {
        using var ids = new IdBuffer(1);
        Gpt2Tokenizer.Default.Merges.Encode(piece, ids, new BpeMerges.Scratch());
        return ids.ToArray();
    }

    [Fact]
    public void MergesRandomByteSoupLikeTheReference() =>
        Gen.Frequency((3, Gen.Byte), (1, Gen.Byte[(byte)'a', (byte)'z']), (1, Gen.Const((byte)' '))).Array[1, 24]
            .SampleSeeded(piece => Assert.Equal(Reference.Value.Encode(piece), Merge(piece)), cases: 1500);

    [Fact]
    public void EncodesRandomBmpTextLikeTheReference() =>
        TokenizerFixtures.Text.Where(text => !text.Any(char.IsSurrogate))
            .SampleSeeded(text => Assert.Equal(Reference.Value.EncodeText(text), Gpt2Tokenizer.Default.Encode(text, allowSpecial: false)), cases: 1000);

    [Fact]
    public void EncodesLongPiecesLikeTheReference()
    {
        // Long runs exercise the heap: many equal-rank candidates and chains of merges.
        foreach (string piece in new[] { new string(' ', 300), new string('a', 200), string.Concat(Enumerable.Repeat("ab", 150)), new string('=', 257) })
            Assert.Equal(Reference.Value.Encode(Encoding.UTF8.GetBytes(piece)), Merge(Encoding.UTF8.GetBytes(piece)));
    }

    [Fact]
    public void AMillionSpacesEncodesQuicklyAndRoundTrips()
    {
        string spaces = new(' ', 1_000_000);
        int[] ids = Gpt2Tokenizer.Default.Encode(spaces);
        Assert.Equal(spaces, Gpt2Tokenizer.Default.Decode(ids));
    }
}
