using System.Buffers;
using System.IO.Compression;
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

    /// <summary>
    /// The vocabulary in <paramref name="directory"/>: OpenAI's encoder.json and vocab.bpe, or the same files under
    /// Hugging Face's names vocab.json and merges.txt.
    /// </summary>
    public static Gpt2Tokenizer FromDirectory(string directory)
    {
        if (!Directory.Exists(directory))
            throw new Gpt2Exception($"vocabulary folder '{directory}' not found");
        var (encoderPath, vocabPath) = VocabularyFiles(directory);
        byte[] encoder = ReadFile(encoderPath), vocab = ReadFile(vocabPath);
        return new Gpt2Tokenizer(VocabularyReader.Read(encoder, encoderPath, VocabularyReader.DecodeText(vocab, vocabPath), vocabPath));
    }

    /// <summary>
    /// The vocabulary stored beside a checkpoint in <paramref name="directory"/>, or the built-in one when there is
    /// none there (<paramref name="builtIn"/> true): every GPT-2 size uses the same vocabulary.
    /// </summary>
    public static Gpt2Tokenizer ForWeightsDirectory(string directory, out bool builtIn)
    {
        var (encoderPath, vocabPath) = VocabularyFiles(directory);
        builtIn = !File.Exists(encoderPath) && !File.Exists(vocabPath);
        return builtIn ? Default : FromDirectory(directory);
    }

    private static (string Encoder, string Merges) VocabularyFiles(string directory)
    {
        string huggingFaceEncoder = Path.Combine(directory, "vocab.json");
        return File.Exists(Path.Combine(directory, "encoder.json")) || !File.Exists(huggingFaceEncoder)
            ? (Path.Combine(directory, "encoder.json"), Path.Combine(directory, "vocab.bpe"))
            : (huggingFaceEncoder, Path.Combine(directory, "merges.txt"));
    }

    public int VocabSize => _tokenOffsets.Length - 1;

    /// <summary>The number of merges in vocab.bpe.</summary>
    public int MergeCount => _merges.Count;

    internal BpeMerges Merges => _merges;

    public int[] Encode(string text, bool allowSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        using var ids = new IdBuffer(EstimatedTokens(text.Length));
        EncodeInto(text, ids, allowSpecial);
        return ids.ToArray();
    }

    /// <summary>Appends the token ids of <paramref name="text"/> to <paramref name="output"/>.</summary>
    public void EncodeTo(ReadOnlySpan<char> text, List<int> output, bool allowSpecial = true)
    {
        using var ids = new IdBuffer(EstimatedTokens(text.Length));
        EncodeInto(text, ids, allowSpecial);
        output.AddRange(ids.Span);
    }

    /// <summary>
    /// <see cref="Encode"/> on several threads (0: one per core) for large texts: the text is cut into chunks where
    /// whitespace follows non-whitespace, which is always a boundary between pieces, so the ids are the same.
    /// </summary>
    public int[] EncodeParallel(string text, int threads = 0, bool allowSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        threads = threads > 0 ? threads : Environment.ProcessorCount;
        const int MinChunk = 1 << 16;
        if (threads == 1 || text.Length < 2 * MinChunk)
            return Encode(text, allowSpecial);

        int chunkLength = Math.Max(MinChunk, text.Length / (4 * threads));
        var bounds = new List<int> { 0 };
        for (int end = chunkLength; end < text.Length; end += chunkLength)
        {
            end = Math.Max(end, bounds[^1] + 1);
            while (end < text.Length && !(char.IsWhiteSpace(text[end]) && !char.IsWhiteSpace(text[end - 1])))
                end++;
            if (end < text.Length)
                bounds.Add(end);
        }
        bounds.Add(text.Length);

        var chunks = new IdBuffer[bounds.Count - 1];
        try
        {
            Parallel.For(0, chunks.Length, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
            {
                var chunk = text.AsSpan(bounds[i], bounds[i + 1] - bounds[i]);
                chunks[i] = new IdBuffer(EstimatedTokens(chunk.Length));
                EncodeInto(chunk, chunks[i], allowSpecial);
            });
            using var ids = new IdBuffer(chunks.Sum(c => c.Count));
            foreach (var chunk in chunks)
                ids.AddRange(chunk.Span);
            return ids.ToArray();
        }
        finally
        {
            foreach (var chunk in chunks)
                chunk?.Dispose();
        }
    }

    /// <summary>English averages about 3 characters a token.</summary>
    private static int EstimatedTokens(int characters) => characters / 3 + 16;

    private void EncodeInto(ReadOnlySpan<char> text, IdBuffer output, bool allowSpecial)
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

    private void EncodeOrdinary(ReadOnlySpan<char> text, IdBuffer output, EncodeScratch scratch)
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
            scratch.Cache[piece] = output.Span[first..].ToArray();
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
            string where = position >= 0 ? $" (number {position + 1})" : "";
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
