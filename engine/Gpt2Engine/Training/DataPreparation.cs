using System.Buffers.Binary;
using System.Text;
using Gpt2Engine.Model;
using Gpt2Engine.Tokenization;

namespace Gpt2Engine.Training;

/// <summary>What <see cref="DataPreparation.Prepare"/> wrote.</summary>
public sealed record PreparedData(int Documents, long TrainTokens, long ValidationTokens, IReadOnlyList<string> Files);

/// <summary>
/// Turns text files into token shards for training: each file is a document (a literal &lt;|endoftext|&gt; inside one
/// separates further documents), and every document starts with the &lt;|endoftext|&gt; token 50256, as in GPT-2's
/// training data. The last <c>validationFraction</c> of the token stream becomes the validation split.
/// </summary>
public static class DataPreparation
{
    /// <summary>Tokens per shard file (200 MB of uint16).</summary>
    public const int ShardTokens = 100_000_000;

    /// <summary>
    /// Writes the shards. A file is UTF-8 unless a byte-order mark says UTF-16 or UTF-32; one that is not valid UTF-8
    /// is read with U+FFFD for its invalid bytes, as tokenize reads it, and named in a warning on
    /// <paramref name="warnings"/>.
    /// </summary>
    public static PreparedData Prepare(IReadOnlyList<string> textFiles, string outputDirectory, double validationFraction, TextWriter? warnings = null)
    {
        if (textFiles.Count == 0) throw new Gpt2Exception("no input text files given");
        if (!(validationFraction >= 0 && validationFraction < 1)) throw new Gpt2Exception($"--val-fraction {validationFraction} must be in [0, 1)");
        var tokens = new List<ushort>();
        int documents = 0;
        foreach (string file in textFiles)
        {
            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new Gpt2Exception($"{file}: cannot read ({e.Message})", e);
            }
            string text = ReadText(bytes, file, warnings);
            if (text.Length == 0) throw new Gpt2Exception($"{file}: the file is empty");
            tokens.Add(Gpt2Config.EndOfText);
            foreach (int id in Gpt2Tokenizer.Default.Encode(text))
            {
                if (id == Gpt2Config.EndOfText) documents++;
                tokens.Add(checked((ushort)id));
            }
            documents++;
        }

        long validation = (long)Math.Round(tokens.Count * validationFraction);
        if (validationFraction > 0 && validation < 2) validation = Math.Min(2, tokens.Count);
        var all = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(tokens);
        if (string.IsNullOrWhiteSpace(outputDirectory)) throw new Gpt2Exception("the output folder is empty");
        Directory.CreateDirectory(outputDirectory);
        // The shards are written aside, then moved in place of the old ones at once: a failure or Ctrl-C (which deletes
        // the staging folder, see TemporaryPaths) leaves the previous data set as it was.
        string staging = Path.Combine(outputDirectory, ".prepare-" + Path.GetRandomFileName());
        var inFlight = TemporaryPaths.Process;
        inFlight.Create(staging, () => Directory.CreateDirectory(staging));
        try
        {
            var staged = new List<string>();
            WriteShards(staging, "train", all[..^(int)validation], staged);
            WriteShards(staging, "val", all[^(int)validation..], staged);
            var written = staged.Select(file => Path.Combine(outputDirectory, Path.GetFileName(file))).ToList();
            foreach (string target in written)
                if (AtomicFile.NonRegularKind(target) is { } kind) throw new Gpt2Exception($"{target}: cannot write: it is {kind}, not a regular file");
            inFlight.Keep(staging, () =>
            {
                foreach (string stale in TokenDataset.ShardPaths(outputDirectory, "train").Concat(TokenDataset.ShardPaths(outputDirectory, "val")))
                    File.Delete(stale);
                for (int i = 0; i < staged.Count; i++) File.Move(staged[i], written[i]);
                Directory.Delete(staging);
            });
            return new PreparedData(documents, tokens.Count - validation, validation, written);
        }
        catch
        {
            inFlight.Delete(staging);
            throw;
        }
    }

    private static void WriteShards(string directory, string split, ReadOnlySpan<ushort> tokens, List<string> written)
    {
        for (int shard = 0, start = 0; start < tokens.Length; shard++, start += ShardTokens)
        {
            string path = Path.Combine(directory, $"{split}_{shard:D3}.bin");
            TokenShard.Write(path, tokens.Slice(start, Math.Min(ShardTokens, tokens.Length - start)));
            written.Add(path);
        }
    }

    /// <summary>
    /// A file's text: a byte-order mark names its encoding and is not text (an editor's UTF-8 with a mark, UTF-16 or
    /// UTF-32); any other file is UTF-8, as tokenize reads it. Invalid bytes are read as U+FFFD, with a warning.
    /// </summary>
    private static string ReadText(byte[] bytes, string file, TextWriter? warnings)
    {
        foreach (var encoding in Utf16And32)
        {
            if (!bytes.AsSpan().StartsWith(encoding.Preamble)) continue;
            int mark = encoding.Preamble.Length;
            var strict = (Encoding)encoding.Clone();
            strict.DecoderFallback = DecoderFallback.ExceptionFallback;
            try
            {
                return strict.GetString(bytes, mark, bytes.Length - mark);
            }
            catch (DecoderFallbackException)
            {
                TokenIdText.WarnInvalid(warnings, file, encoding.WebName.ToUpperInvariant(), FirstInvalidUnit(bytes, mark, encoding));
                return encoding.GetString(bytes, mark, bytes.Length - mark);
            }
        }
        string text = TokenIdText.DecodeUtf8(bytes, file, warnings);
        return text.StartsWith('\uFEFF') ? text[1..] : text;
    }

    /// <summary>
    /// The byte offset (in the file, its mark counted) of the first code unit of UTF-16 or UTF-32 text that does not
    /// decode: a lone surrogate, a code point past U+10FFFF, or a last unit cut short. Found here because .NET's
    /// decoders do not say where reliably. -1 if there is none.
    /// </summary>
    internal static long FirstInvalidUnit(ReadOnlySpan<byte> bytes, int mark, Encoding encoding)
    {
        int size = encoding is UTF32Encoding ? 4 : 2;
        bool bigEndian = encoding.Preamble[0] != 0xFF; // the little-endian marks begin FF FE
        static uint Unit(ReadOnlySpan<byte> unit, bool bigEndian) => unit.Length == 4
            ? (bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(unit) : BinaryPrimitives.ReadUInt32LittleEndian(unit))
            : (bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(unit) : BinaryPrimitives.ReadUInt16LittleEndian(unit));
        static bool IsHigh(uint u) => u is >= 0xD800 and <= 0xDBFF;
        static bool IsLow(uint u) => u is >= 0xDC00 and <= 0xDFFF;
        for (int at = mark; at < bytes.Length; at += size)
        {
            if (bytes.Length - at < size) return at;
            uint unit = Unit(bytes.Slice(at, size), bigEndian);
            if (size == 4 ? unit > 0x10FFFF || IsHigh(unit) || IsLow(unit) : IsLow(unit)) return at;
            if (size == 2 && IsHigh(unit))
            {
                if (bytes.Length - at < 2 * size || !IsLow(Unit(bytes.Slice(at + size, size), bigEndian))) return at;
                at += size; // the pair's low half
            }
        }
        return -1;
    }

    /// <summary>The encodings a mark can name besides UTF-8; UTF-32 LE first, as its mark begins with UTF-16 LE's.</summary>
    private static readonly Encoding[] Utf16And32 =
        [Encoding.UTF32, Encoding.Unicode, Encoding.BigEndianUnicode, new UTF32Encoding(bigEndian: true, byteOrderMark: true)];
}
