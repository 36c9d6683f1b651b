using System.Text.Json;
using Gpt2Engine.Model;
using Gpt2Engine.Tokenization;

namespace Gpt2Engine.Evaluation;

/// <summary>One LAMBADA passage as tokens: the context, and the final word's tokens (encoded with its leading space).</summary>
public sealed record LambadaExample(int[] Context, int[] Target);

/// <summary>
/// LAMBADA totals. <see cref="Nats"/> is the negative log-likelihood of all final words together.
/// <see cref="Correct"/> counts passages whose whole final word greedy decoding reproduces; <see cref="CorrectFiltered"/>
/// the same when the first token's prediction skips stop-word candidates.
/// </summary>
public sealed record LambadaResult(int Examples, long TargetTokens, double Nats, int Correct, int CorrectFiltered)
{
    /// <summary>exp(mean NLL per final word): the number the GPT-2 paper and lm-evaluation-harness report.</summary>
    public double Perplexity => Math.Exp(Nats / Examples);
    /// <summary>exp(mean NLL per final-word token).</summary>
    public double TokenPerplexity => Math.Exp(Nats / TargetTokens);
    public double Accuracy => (double)Correct / Examples;
    public double FilteredAccuracy => (double)CorrectFiltered / Examples;
}

/// <summary>
/// The LAMBADA last-word task as the GPT-2 paper runs it: each passage's context is all but its last word, the target
/// is " " + the last word; perplexity of the target tokens, and accuracy of greedily predicting every one of them.
/// The stop-word-filtered variant skips, when predicting the target's first token, every candidate that decodes to a
/// stop word (<see cref="StopWords"/>), and takes the highest-scoring remaining one; the later tokens stay greedy.
/// </summary>
public static class Lambada
{
    /// <summary>Reads a LAMBADA jsonl file (one {"text": ...} per line, blank lines ignored) into (context, last word) pairs.</summary>
    public static List<(string Context, string Word)> ReadJsonl(string path)
    {
        if (!File.Exists(path)) throw new Gpt2Exception($"{path}: no such file");
        var passages = new List<(string, string)>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string text;
            try
            {
                using var json = JsonDocument.Parse(line);
                if (json.RootElement.ValueKind != JsonValueKind.Object || !json.RootElement.TryGetProperty("text", out var value) || value.ValueKind != JsonValueKind.String)
                    throw new Gpt2Exception($"{path}:{lineNumber}: expected an object with a string \"text\"");
                text = value.GetString()!;
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException) // the latter: a lone surrogate escape, "\ud800"
            {
                throw new Gpt2Exception($"{path}:{lineNumber}: malformed JSON ({e.Message.Split('\n')[0].TrimEnd('.')})");
            }
            passages.Add(Split(text) ?? throw new Gpt2Exception($"{path}:{lineNumber}: the text needs a context and a last word"));
        }
        if (passages.Count == 0) throw new Gpt2Exception($"{path}: no passages (the file is empty)");
        return passages;
    }

    /// <summary>Splits a passage at its last whitespace: (context, last word), or null when either would be empty.</summary>
    public static (string Context, string Word)? Split(string text)
    {
        text = text.Trim();
        int space = text.Length - 1;
        while (space >= 0 && !char.IsWhiteSpace(text[space])) space--;
        string context = space > 0 ? text[..space].TrimEnd() : "";
        return context.Length == 0 ? null : (context, text[(space + 1)..]);
    }

    /// <summary>Context and target (" " + word) encoded separately, as the task defines them.</summary>
    public static LambadaExample Encode(Gpt2Tokenizer tokenizer, string context, string word) =>
        new(tokenizer.Encode(context, allowSpecial: false), tokenizer.Encode(" " + word, allowSpecial: false));

    /// <summary>Reads, encodes and runs a LAMBADA jsonl file: the whole task as the GPT-2 paper runs it.</summary>
    public static LambadaResult EvaluateFile(Gpt2Model model, Gpt2Tokenizer tokenizer, string path, Action<int, int>? progress = null)
    {
        TextScore.RequireVocabulary(model.Config, tokenizer);
        var passages = ReadJsonl(path);
        var examples = passages.Select(p => Encode(tokenizer, p.Context, p.Word));
        return Evaluate(model, examples, StopTokens(tokenizer), done => progress?.Invoke(done, passages.Count));
    }

    /// <summary>Marks every token of <paramref name="tokenizer"/> whose text, trimmed and lower-cased, is a stop word.</summary>
    public static bool[] StopTokens(Gpt2Tokenizer tokenizer)
    {
        var stop = new bool[tokenizer.VocabSize];
        for (int id = 0; id < stop.Length; id++)
            stop[id] = StopWords.Contains(tokenizer.Decode([id]).Trim().ToLowerInvariant());
        return stop;
    }

    /// <summary>
    /// Runs the task. <paramref name="stopTokens"/>[id] marks the tokens the filtered variant skips (empty: none).
    /// A context too long for the model keeps its last tokens.
    /// </summary>
    /// <param name="progress">Called with the number of passages done after each one.</param>
    public static LambadaResult Evaluate(Gpt2Model model, IEnumerable<LambadaExample> examples, ReadOnlySpan<bool> stopTokens, Action<int>? progress = null)
    {
        int V = model.Config.VocabSize, maxT = model.Config.ContextLength;
        using var session = model.CreateSession(1);
        int count = 0, correct = 0, correctFiltered = 0;
        long targetTokens = 0;
        double nats = 0;
        foreach (var example in examples)
        {
            count++;
            var target = example.Target;
            if (example.Context.Length == 0 || target.Length == 0)
                throw new Gpt2Exception($"passage {count}: the context and the last word must both have tokens");
            if (target.Length >= maxT)
                throw new Gpt2Exception($"passage {count}: its last word is {target.Length} tokens, more than the model's context of {maxT} allows");
            var context = example.Context.AsSpan();
            if (context.Length + target.Length - 1 > maxT) context = context[^(maxT - target.Length + 1)..];

            session.Reset();
            var logits = session.Forward(context, context.Length);
            bool greedyHit = true, filteredHit = true;
            for (int i = 0; i < target.Length; i++)
            {
                nats += NegativeLogLikelihood(logits, target[i]);
                int best = ArgMax(logits, skip: default);
                greedyHit &= best == target[i];
                filteredHit &= (i == 0 ? ArgMax(logits, stopTokens) : best) == target[i];
                // The greedy continuation equals the target as long as every prediction so far hit it; a miss decides the
                // passage, so feeding the target tokens (teacher forcing) gives both accuracies and the likelihood at once.
                if (i + 1 < target.Length) logits = session.Forward(target.AsSpan(i, 1), 1);
            }
            targetTokens += target.Length;
            if (greedyHit) correct++;
            if (filteredHit) correctFiltered++;
            progress?.Invoke(count);
        }
        if (count == 0) throw new Gpt2Exception("LAMBADA needs at least one passage");
        return new LambadaResult(count, targetTokens, nats, correct, correctFiltered);
    }

    /// <summary>-ln softmax(logits)[target], in float64.</summary>
    internal static double NegativeLogLikelihood(ReadOnlySpan<float> logits, int target)
    {
        float max = float.NegativeInfinity;
        foreach (float x in logits) max = Math.Max(max, x);
        double sum = 0;
        foreach (float x in logits) sum += Math.Exp((double)x - max);
        return Math.Log(sum) + max - logits[target];
    }

    /// <summary>The highest logit's index (lowest index on ties), leaving out the ids marked in <paramref name="skip"/>.</summary>
    internal static int ArgMax(ReadOnlySpan<float> logits, ReadOnlySpan<bool> skip)
    {
        int best = -1;
        for (int i = 0; i < logits.Length; i++)
            if ((i >= skip.Length || !skip[i]) && (best < 0 || logits[i] > logits[best])) best = i;
        return best;
    }
}
