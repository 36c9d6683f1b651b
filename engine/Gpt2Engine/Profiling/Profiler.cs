using System.Diagnostics;
using Gpt2Engine.Generation;
using Gpt2Engine.Model;
using Gpt2Engine.Tokenization;

namespace Gpt2Engine.Profiling;

/// <summary>What to profile: one generation per (thread count, prompt length) and one training step per thread count.</summary>
/// <param name="Threads">Worker counts to sweep (a backend without threads ignores them).</param>
/// <param name="PromptLengths">Prompt lengths in tokens to sweep.</param>
/// <param name="NewTokens">Tokens generated after each prompt.</param>
/// <param name="TrainBatch">Batch size of the training step (0: no training step).</param>
/// <param name="TrainLength">Sequence length of the training step.</param>
public sealed record ProfileSettings(int[] Threads, int[] PromptLengths, int NewTokens, int TrainBatch, int TrainLength);

/// <summary>
/// Runs generation (prompt, then new tokens one at a time, greedy) and a training step (forward, backward, AdamW)
/// through a <see cref="ProfilingBackend"/> and reports where the time goes.
/// </summary>
public static class Profiler
{
    /// <param name="weights">The model to profile; read in place, never changed.</param>
    /// <param name="createBackend">A fresh backend for a thread count.</param>
    /// <param name="tokenizer">Encodes the prompt and decodes each new token (timed), when the model has GPT-2's vocabulary; otherwise token ids are synthetic.</param>
    public static ProfileReport Run(Gpt2Weights weights, Func<int, Backend> createBackend, ProfileSettings settings, Gpt2Tokenizer? tokenizer)
    {
        var config = weights.Config;
        foreach (int p in settings.PromptLengths)
        {
            if (p < 1) throw new Gpt2Exception($"a prompt of {p} tokens: a prompt needs at least 1 token");
            if (p + settings.NewTokens > config.ContextLength)
                throw new Gpt2Exception($"a prompt of {p} tokens plus {settings.NewTokens} new tokens does not fit the model's context of {config.ContextLength}");
        }
        if (settings.NewTokens < 1) throw new Gpt2Exception("profiling needs at least one new token");
        if (settings.TrainBatch > 0 && (settings.TrainLength < 1 || settings.TrainLength > config.ContextLength))
            throw new Gpt2Exception($"the training sequence length must be between 1 and the model's context of {config.ContextLength} (got {settings.TrainLength})");
        if (tokenizer is not null && tokenizer.VocabSize != config.VocabSize) tokenizer = null;

        var generation = new List<GenerationProfile>();
        var training = new List<TrainingProfile>();
        var backendNames = new List<string>();
        foreach (int threads in settings.Threads)
        {
            using var backend = new ProfilingBackend(createBackend(threads));
            backendNames.Add(backend.Name);
            using (var model = new Gpt2Model(weights, backend))
            {
                foreach (int promptLength in settings.PromptLengths)
                    generation.Add(Fastest(() => Generate(model, backend, promptLength, settings.NewTokens, tokenizer), g => g.TotalMs) with { Threads = threads });
            }
            if (settings.TrainBatch > 0)
            {
                using var model = new Gpt2Model(weights, backend, trainable: true);
                training.Add(TrainSteps(model, backend, settings.TrainBatch, settings.TrainLength) with { Threads = threads });
            }
        }
        return new ProfileReport($"{weights.Source} ({config})", string.Join(", ", backendNames), generation, training);
    }

    /// <summary>
    /// Warms up (JIT for these shapes, caches, thread pool) by running <paramref name="run"/> for at least
    /// <see cref="WarmUpSeconds"/> (at least once), then runs it three times and keeps the fastest. One warm-up run
    /// of a short prompt was not enough: the runtime keeps some code unoptimised for its first second or so, and a
    /// 124M prompt profiled that way showed its projections at twice their settled time.
    /// </summary>
    private static T Fastest<T>(Func<T> run, Func<T, double> milliseconds)
    {
        long warmUpEnd = Stopwatch.GetTimestamp() + (long)(WarmUpSeconds * Stopwatch.Frequency);
        do run(); while (Stopwatch.GetTimestamp() < warmUpEnd);
        return Enumerable.Range(0, 3).Select(_ => run()).MinBy(milliseconds)!;
    }

    private const double WarmUpSeconds = 1.5;

    private static GenerationProfile Generate(Gpt2Model model, ProfilingBackend backend, int promptLength, int newTokens, Gpt2Tokenizer? tokenizer)
    {
        using var session = model.CreateSession(1);
        backend.Reset();
        long start = Stopwatch.GetTimestamp();
        int[] prompt = Prompt(promptLength, model.Config.VocabSize, tokenizer, backend);
        var logits = session.Forward(prompt, prompt.Length);
        double prefillMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        for (int i = 0; i < newTokens; i++)
        {
            long t = Stopwatch.GetTimestamp();
            int next = Sampler.ArgMax(logits);
            backend.Record(ProfileCategories.Sampling, Stopwatch.GetElapsedTime(t));
            if (tokenizer is not null)
            {
                t = Stopwatch.GetTimestamp();
                _ = tokenizer.Decode([next]);
                backend.Record(ProfileCategories.Tokenizer, Stopwatch.GetElapsedTime(t));
            }
            if (i + 1 < newTokens) logits = session.Forward([next], 1);
        }
        double totalMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        return new GenerationProfile(0, promptLength, newTokens, prefillMs, totalMs - prefillMs, Breakdown(backend, totalMs));
    }

    /// <summary>A prompt of exactly <paramref name="length"/> tokens: encoded text (timed) when a tokenizer is given, else synthetic ids.</summary>
    private static int[] Prompt(int length, int vocabSize, Gpt2Tokenizer? tokenizer, ProfilingBackend backend)
    {
        if (tokenizer is null) return Enumerable.Range(0, length).Select(i => (i * 7919) % vocabSize).ToArray();
        const string Sentence = "The quick brown fox jumps over the lazy dog, and the dog does not seem to mind at all. ";
        string text = string.Concat(Enumerable.Repeat(Sentence, length / 16 + 1));
        long t = Stopwatch.GetTimestamp();
        int[] tokens = tokenizer.Encode(text, allowSpecial: false);
        backend.Record(ProfileCategories.Tokenizer, Stopwatch.GetElapsedTime(t));
        return tokens[..length];
    }

    private static TrainingProfile TrainSteps(Gpt2Model model, ProfilingBackend backend, int B, int T)
    {
        var random = new Random(1234);
        var tokens = new int[B * (T + 1)];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = random.Next(model.Config.VocabSize);
        int step = 0;
        return Fastest(() =>
        {
            backend.Reset();
            long start = Stopwatch.GetTimestamp();
            model.Forward(tokens.AsSpan(0, B * T), tokens.AsSpan(1, B * T), B, T);
            model.ZeroGradients();
            model.Backward();
            model.Update(1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, ++step);
            double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            return new TrainingProfile(0, B, T, ms, Breakdown(backend, ms));
        }, t => t.StepMs);
    }

    /// <summary>The backend's totals as rows, largest first, with "other" for the rest of <paramref name="totalMs"/>.</summary>
    private static List<OpTime> Breakdown(ProfilingBackend backend, double totalMs)
    {
        var rows = backend.Totals.Select(kv => new OpTime(kv.Key, kv.Value.Milliseconds, kv.Value.Calls)).ToList();
        double other = totalMs - rows.Sum(r => r.Milliseconds);
        if (other > 0) rows.Add(new OpTime(ProfileCategories.Other, other, 0));
        rows.Sort((a, b) => b.Milliseconds.CompareTo(a.Milliseconds));
        return rows;
    }
}
