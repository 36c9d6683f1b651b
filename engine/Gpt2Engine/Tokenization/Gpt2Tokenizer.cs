using System.Buffers;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;

namespace Gpt2Engine.Tokenization;

/// <summary>
/// GPT-2's byte-level BPE tokenizer: text → pieces (<see cref="PreTokenizer"/>) → UTF-8 bytes → merged tokens
/// (<see cref="BpeMerges"/>). <c>&lt;|endoftext|&gt;</c> in the text is the single token 50256 unless special tokens
/// are disallowed. Encoding is thread-safe; each thread keeps its own bounded cache of piece → ids.
/// </summary>
public sealed class Gpt2Tokenizer
{
    public const int EndOfText = 50256;

    /// <summary>Pieces remembered per thread; the cache starts over when full (natural text repeats few distinct words).</summary>
    private const int CacheCapacity = 1 << 16;

    private static readonly Lazy<Gpt2Tokenizer> BuiltIn = new(LoadBuiltIn);

    private readonly byte[] _tokenBytes;
    private readonly int[] _tokenOffsets;
    private readonly BpeMerges _merges;
    private readonly int _endOfTextId;
    private readonly ThreadLocal<EncodeScratch> _scratch = new(() => new EncodeScratch());

    private Gpt2Tokenizer(VocabularyReader.Vocabulary vocabulary)
    {
        _tokenBytes = vocabulary.TokenBytes;
        _tokenOffsets = vocabulary.TokenOffsets;
        _merges = vocabulary.Merges;
        _endOfTextId = vocabulary.EndOfTextId;
    }

    /// <summary>The GPT-2 vocabulary embedded in the library, loaded on first use.</summary>
    public static Gpt2Tokenizer Default => BuiltIn.Value;

    /// <summary>The vocabulary in <paramref name="directory"/>/encoder.json and vocab.bpe.</summary>
    public static Gpt2Tokenizer FromDirectory(string directory)
    {
        if (!Directory.Exists(directory))
            throw new Gpt2Exception($"vocabulary folder '{directory}' not found");
        string encoderPath = Path.Combine(directory, "encoder.json"), vocabPath = Path.Combine(directory, "vocab.bpe");
        byte[] encoder = ReadFile(encoderPath), vocab = ReadFile(vocabPath);
        return new Gpt2Tokenizer(VocabularyReader.Read(encoder, encoderPath, VocabularyReader.DecodeText(vocab, vocabPath), vocabPath));
    }

    public int VocabSize => _tokenOffsets.Length - 1;

    /// <summary>The number of merges in vocab.bpe.</summary>
    public int MergeCount => _merges.Count;

    internal BpeMerges Merges => _merges;

    public int[] Encode(string text, bool allowSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 4 + 1);
        EncodeTo(text, ids, allowSpecial);
        return [.. ids];
    }

    /// <summary>Appends the token ids of <paramref name="text"/> to <paramref name="output"/>.</summary>
    public void EncodeTo(ReadOnlySpan<char> text, List<int> output, bool allowSpecial = true)
    {
        var scratch = _scratch.Value!;
        if (allowSpecial && _endOfTextId >= 0)
        {
            int at;
            while ((at = text.IndexOf(VocabularyReader.EndOfTextText, StringComparison.Ordinal)) >= 0)
            {
                EncodeOrdinary(text[..at], output, scratch);
                output.Add(_endOfTextId);
                text = text[(at + VocabularyReader.EndOfTextText.Length)..];
            }
        }
        EncodeOrdinary(text, output, scratch);
    }

    private void EncodeOrdinary(ReadOnlySpan<char> text, List<int> output, EncodeScratch scratch)
    {
        var pieces = new PreTokenizer(text);
        while (pieces.Next(out int start, out int length))
        {
            var piece = text.Slice(start, length);
            if (scratch.Cache.TryGetValue(piece, out int[]? cached))
            {
                if (cached.Length == 1)
                    output.Add(cached[0]);
                else
                    output.AddRange(cached);
                continue;
            }
            int first = output.Count;
            _merges.Encode(scratch.ToUtf8(piece), output, scratch.Bpe);
            if (scratch.Cache.Dictionary.Count >= CacheCapacity)
                scratch.Cache.Dictionary.Clear();
            scratch.Cache[piece] = CollectionsMarshal.AsSpan(output)[first..].ToArray();
        }
    }

    /// <summary>The text of <paramref name="ids"/>; bytes that are not valid UTF-8 become U+FFFD.</summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        int total = 0;
        for (int i = 0; i < ids.Length; i++)
            total += TokenBytes(ids[i], i).Length;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(total);
        int written = 0;
        foreach (int id in ids)
        {
            var token = TokenBytes(id);
            token.CopyTo(buffer.AsSpan(written));
            written += token.Length;
        }
        string text = Encoding.UTF8.GetString(buffer, 0, total);
        ArrayPool<byte>.Shared.Return(buffer);
        return text;
    }

    /// <summary>The raw bytes of one token (a token may hold part of a UTF-8 character).</summary>
    public ReadOnlySpan<byte> TokenBytes(int id) => TokenBytes(id, position: -1);

    private ReadOnlySpan<byte> TokenBytes(int id, int position)
    {
        if ((uint)id >= (uint)VocabSize)
        {
            string where = position >= 0 ? $" at position {position}" : "";
            throw new Gpt2Exception($"token id {id}{where} is outside the vocabulary (0..{VocabSize - 1})");
        }
        return _tokenBytes.AsSpan(_tokenOffsets[id], _tokenOffsets[id + 1] - _tokenOffsets[id]);
    }

    public Utf8StreamDecoder CreateStreamDecoder() => new(this);

    private static byte[] ReadFile(string path)
    {
        if (!File.Exists(path))
            throw new Gpt2Exception($"vocabulary file '{path}' not found");
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new Gpt2Exception($"cannot read vocabulary file '{path}': {e.Message}", e);
        }
    }

    private static Gpt2Tokenizer LoadBuiltIn()
    {
        const string Encoder = "built-in encoder.json", Vocab = "built-in vocab.bpe";
        byte[] encoder = ReadResource("encoder.json.gz"), vocab = ReadResource("vocab.bpe.gz");
        return new Gpt2Tokenizer(VocabularyReader.Read(encoder, Encoder, VocabularyReader.DecodeText(vocab, Vocab), Vocab));
    }

    private static byte[] ReadResource(string name)
    {
        using var stream = typeof(Gpt2Tokenizer).Assembly.GetManifestResourceStream($"Gpt2Engine.Tokenization.{name}")
            ?? throw new InvalidOperationException($"embedded resource {name} is missing from the build");
        using var gzip = new GZipStream(stream, CompressionMode.Decompress);
        var bytes = new MemoryStream();
        gzip.CopyTo(bytes);
        return bytes.ToArray();
    }

    /// <summary>One thread's working memory for encoding.</summary>
    private sealed class EncodeScratch
    {
        public readonly Dictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> Cache =
            new Dictionary<string, int[]>(StringComparer.Ordinal).GetAlternateLookup<ReadOnlySpan<char>>();
        public readonly BpeMerges.Scratch Bpe = new();
        private byte[] _utf8 = new byte[256];

        public ReadOnlySpan<byte> ToUtf8(ReadOnlySpan<char> piece)
        {
            int needed = Encoding.UTF8.GetMaxByteCount(piece.Length);
            if (_utf8.Length < needed)
                _utf8 = new byte[Math.Max(needed, 2 * _utf8.Length)];
            return _utf8.AsSpan(0, Encoding.UTF8.GetBytes(piece, _utf8));
        }
    }
}
