using System.Globalization;
using System.Text.Json;

namespace Gpt2Engine.Profiling;

/// <summary>Time spent in one category: total milliseconds over <see cref="Calls"/> calls.</summary>
public sealed record OpTime(string Name, double Milliseconds, int Calls);

/// <summary>Generating <see cref="NewTokens"/> greedy tokens after a prompt of <see cref="PromptTokens"/> tokens.</summary>
public sealed record GenerationProfile(int Threads, int PromptTokens, int NewTokens, double PrefillMs, double DecodeMs, IReadOnlyList<OpTime> Ops)
{
    public double TotalMs => PrefillMs + DecodeMs;
    /// <summary>Decode milliseconds per new token (the first new token comes from the prefill's logits).</summary>
    public double MsPerToken => NewTokens > 1 ? DecodeMs / (NewTokens - 1) : double.NaN;
}

/// <summary>One training step (forward, backward, AdamW) on a batch of <see cref="Batch"/> x <see cref="Length"/> tokens.</summary>
public sealed record TrainingProfile(int Threads, int Batch, int Length, double StepMs, IReadOnlyList<OpTime> Ops);

/// <summary>The result of <see cref="Profiler.Run"/>: readable as a table, and as JSON for tools and <c>gpt2-engine plot --bench</c>.</summary>
public sealed record ProfileReport(string Model, string Backend, IReadOnlyList<GenerationProfile> Generation, IReadOnlyList<TrainingProfile> Training)
{
    public void WriteText(TextWriter output)
    {
        // The name column is as wide as the longest name of any table ("softmax/cross-entropy backward"), so that
        // every row of every table lines up.
        int nameWidth = Generation.SelectMany(g => g.Ops).Concat(Training.SelectMany(t => t.Ops)).Select(op => op.Name.Length).DefaultIfEmpty(0).Max();
        output.WriteLine($"model: {Model}");
        output.WriteLine($"backend: {Backend}");
        foreach (var g in Generation)
        {
            output.WriteLine();
            string decode = g.NewTokens > 1 ? Invariant($"decode {g.MsPerToken:F2} ms/token") : "no decode step";
            output.WriteLine(Invariant($"generate: {g.Threads} threads, prompt {g.PromptTokens} tokens + {g.NewTokens} new: prefill {g.PrefillMs:F1} ms, {decode}, total {g.TotalMs:F1} ms"));
            WriteOps(output, g.Ops, g.TotalMs, nameWidth);
        }
        foreach (var t in Training)
        {
            output.WriteLine();
            output.WriteLine(Invariant($"train step: {t.Threads} threads, batch {t.Batch} x {t.Length} tokens: {t.StepMs:F1} ms"));
            WriteOps(output, t.Ops, t.StepMs, nameWidth);
        }
    }

    private static void WriteOps(TextWriter output, IReadOnlyList<OpTime> ops, double totalMs, int nameWidth)
    {
        foreach (var op in ops)
            output.WriteLine(Invariant($"  {op.Name.PadRight(nameWidth)} {op.Milliseconds,10:F2} ms {100 * op.Milliseconds / totalMs,6:F1} %  {op.Calls,7} calls"));
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    public void WriteJson(Stream stream)
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("model", Model);
        w.WriteString("backend", Backend);
        w.WriteStartArray("generation");
        foreach (var g in Generation)
        {
            w.WriteStartObject();
            w.WriteNumber("threads", g.Threads);
            w.WriteNumber("prompt_tokens", g.PromptTokens);
            w.WriteNumber("new_tokens", g.NewTokens);
            w.WriteNumber("prefill_ms", g.PrefillMs);
            w.WriteNumber("decode_ms", g.DecodeMs);
            w.WriteNumber("ms_per_token", g.NewTokens > 1 ? g.MsPerToken : 0);
            WriteOps(w, g.Ops, g.TotalMs);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("training");
        foreach (var t in Training)
        {
            w.WriteStartObject();
            w.WriteNumber("threads", t.Threads);
            w.WriteNumber("batch", t.Batch);
            w.WriteNumber("length", t.Length);
            w.WriteNumber("step_ms", t.StepMs);
            WriteOps(w, t.Ops, t.StepMs);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteOps(Utf8JsonWriter w, IReadOnlyList<OpTime> ops, double totalMs)
    {
        w.WriteStartArray("ops");
        foreach (var op in ops)
        {
            w.WriteStartObject();
            w.WriteString("name", op.Name);
            w.WriteNumber("ms", op.Milliseconds);
            w.WriteNumber("percent", 100 * op.Milliseconds / totalMs);
            w.WriteNumber("calls", op.Calls);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>Reads what <see cref="WriteJson"/> wrote; a file that is not such a report is a one-line error.</summary>
    public static ProfileReport ReadJson(string path)
    {
        if (!File.Exists(path)) throw new Gpt2Exception($"{path}: no such file");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            static List<OpTime> Ops(JsonElement e) => [.. e.GetProperty("ops").EnumerateArray()
                .Select(o => new OpTime(o.GetProperty("name").GetString()!, o.GetProperty("ms").GetDouble(), o.GetProperty("calls").GetInt32()))];
            var generation = root.GetProperty("generation").EnumerateArray().Select(g => new GenerationProfile(
                g.GetProperty("threads").GetInt32(), g.GetProperty("prompt_tokens").GetInt32(), g.GetProperty("new_tokens").GetInt32(),
                g.GetProperty("prefill_ms").GetDouble(), g.GetProperty("decode_ms").GetDouble(), Ops(g))).ToList();
            var training = root.GetProperty("training").EnumerateArray().Select(t => new TrainingProfile(
                t.GetProperty("threads").GetInt32(), t.GetProperty("batch").GetInt32(), t.GetProperty("length").GetInt32(),
                t.GetProperty("step_ms").GetDouble(), Ops(t))).ToList();
            return new ProfileReport(root.GetProperty("model").GetString()!, root.GetProperty("backend").GetString()!, generation, training);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new Gpt2Exception($"{path}: not a profile report written by 'gpt2-engine bench --profile --json' ({e.Message.Split('\n')[0]})");
        }
    }
}
