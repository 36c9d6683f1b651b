using System.Text;
using Gpt2Engine.Model;
using Gpt2Engine.Tokenization;

namespace Gpt2Engine.Evaluation;

/// <summary>
/// The score of a text: <see cref="Tokens"/> predicted tokens costing <see cref="Nats"/> in all, over a text of
/// <see cref="Bytes"/> UTF-8 bytes.
/// </summary>
public sealed record TextScore(string Name, long Tokens, double Nats, long Bytes)
{
    /// <summary>Mean cross-entropy per token, in nats.</summary>
    public double Loss => Nats / Tokens;
    public double Perplexity => Math.Exp(Loss);
    /// <summary>Total nats / ln 2 / UTF-8 bytes: comparable across tokenizers.</summary>
    public double BitsPerByte => Nats / Math.Log(2) / Bytes;

    /// <summary>Several scores as one (the tokens, nats and bytes add up).</summary>
    public static TextScore Sum(string name, IEnumerable<TextScore> scores)
    {
        long tokens = 0, bytes = 0;
        double nats = 0;
        foreach (var s in scores) (tokens, nats, bytes) = (tokens + s.Tokens, nats + s.Nats, bytes + s.Bytes);
        return new TextScore(name, tokens, nats, bytes);
    }

    /// <summary>
    /// Scores a text file. The text is encoded as plain text (a literal &lt;|endoftext|&gt; is not special) and
    /// preceded by &lt;|endoftext|&gt;, the document separator GPT-2 was trained with, so that every token and every
    /// byte of the file is scored.
    /// </summary>
    public static TextScore ScoreFile(Gpt2Model model, Gpt2Tokenizer tokenizer, string path, int window, int stride)
    {
        RequireVocabulary(model.Config, tokenizer);
        if (!File.Exists(path)) throw new Gpt2Exception($"{path}: no such file");
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length == 0) throw new Gpt2Exception($"{path}: the file is empty");
        string text;
        try
        {
            text = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new Gpt2Exception($"{path}: not valid UTF-8 text");
        }
        int[] tokens = [Gpt2Config.EndOfText, .. tokenizer.Encode(text, allowSpecial: false)];
        try
        {
            double nats = 0;
            foreach (float loss in SlidingWindowScorer.TokenLosses(model, tokens, window, stride)) nats += loss;
            return new TextScore(path, tokens.Length - 1, nats, bytes.Length);
        }
        catch (Gpt2Exception e)
        {
            throw new Gpt2Exception($"{path}: {e.Message}");
        }
    }

    /// <summary>Text goes through <paramref name="tokenizer"/>: the model must know every id it can produce.</summary>
    internal static void RequireVocabulary(Gpt2Config config, Gpt2Tokenizer tokenizer)
    {
        if (config.VocabSize < tokenizer.VocabSize)
            throw new Gpt2Exception($"the model's vocabulary has {config.VocabSize} tokens; text needs the GPT-2 tokenizer's {tokenizer.VocabSize}");
    }
}
