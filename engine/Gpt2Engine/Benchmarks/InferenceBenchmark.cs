using Gpt2Engine.Generation;
using Gpt2Engine.Model;

namespace Gpt2Engine.Benchmarks;

/// <summary>What <see cref="InferenceBenchmark"/> measured. Rates are per second; bytes are 1e9 to a GB.</summary>
public sealed record InferenceBenchmarkResult(
    string Weights, string Backend, int PromptTokens, int GenTokens, double LoadSeconds,
    double PromptTokensPerSecond, double GenMillisecondsPerToken, double GenMedianMillisecondsPerToken, long WeightBytesPerToken, double RoofBytesPerSecond,
    long PromptFlops, double? PeakFlopsPerSecond)
{
    public double GenTokensPerSecond => 1000.0 / GenMillisecondsPerToken;
    /// <summary>Weight bytes streamed per second while generating.</summary>
    public double AchievedBytesPerSecond => WeightBytesPerToken * GenTokensPerSecond;
    /// <summary>Generation speed over the bandwidth roof (every weight read once per token at the probe's bandwidth).</summary>
    public double FractionOfRoof => AchievedBytesPerSecond / RoofBytesPerSecond;
    /// <summary>The prompt's floating-point operations (see <see cref="InferenceBenchmark.PromptFlops"/>) per second.</summary>
    public double PromptFlopsPerSecond => PromptFlops * PromptTokensPerSecond / PromptTokens;

    public string ToJson() => JsonText.Write(json =>
    {
        json.WriteStartObject();
        json.WriteString("weights", Weights);
        json.WriteString("backend", Backend);
        json.WriteNumber("prompt_tokens", PromptTokens);
        json.WriteNumber("gen_tokens", GenTokens);
        json.WriteNumber("load_s", Math.Round(LoadSeconds, 4));
        json.WriteNumber("prompt_tokens_per_s", Math.Round(PromptTokensPerSecond, 2));
        json.WriteNumber("gen_tokens_per_s", Math.Round(GenTokensPerSecond, 2));
        json.WriteNumber("gen_ms_per_token", Math.Round(GenMillisecondsPerToken, 3));
        json.WriteNumber("gen_ms_per_token_median", Math.Round(GenMedianMillisecondsPerToken, 3));
        json.WriteNumber("weight_bytes", WeightBytesPerToken);
        json.WriteNumber("achieved_gb_per_s", Math.Round(AchievedBytesPerSecond / 1e9, 3));
        json.WriteNumber("roof_gb_per_s", Math.Round(RoofBytesPerSecond / 1e9, 3));
        json.WriteNumber("fraction_of_roof", Math.Round(FractionOfRoof, 4));
        json.WriteNumber("prompt_gflop", Math.Round(PromptFlops / 1e9, 4));
        json.WriteNumber("prompt_gflop_per_s", Math.Round(PromptFlopsPerSecond / 1e9, 2));
        if (PeakFlopsPerSecond is { } peak)
        {
            json.WriteNumber("fma_peak_gflop_per_s", Math.Round(peak / 1e9, 2));
            json.WriteNumber("prompt_fraction_of_peak", Math.Round(PromptFlopsPerSecond / peak, 4));
        }
        json.WriteEndObject();
    });

    public override string ToString() =>
        $"""
        weights      {Weights} on {Backend}, loaded in {LoadSeconds:F2} s
        prompt       {PromptTokens} tokens: {PromptTokensPerSecond:F1} tokens/s, {PromptFlopsPerSecond / 1e9:F1} GFLOP/s{(PeakFlopsPerSecond is { } peak ? $" ({PromptFlopsPerSecond / peak:P0} of the {peak / 1e9:F0} GFLOP/s multiply-add peak, measured now)" : "")}
        generation   {GenTokens} tokens: {GenMillisecondsPerToken:F2} ms/token (median {GenMedianMillisecondsPerToken:F2}), {GenTokensPerSecond:F1} tokens/s
        weights read {WeightBytesPerToken / 1e6:F1} MB/token: {AchievedBytesPerSecond / 1e9:F2} GB/s
        roof         {RoofBytesPerSecond / 1e9:F2} GB/s read bandwidth (measured now): {RoofBytesPerSecond / WeightBytesPerToken:F1} tokens/s; generation at {FractionOfRoof:P0} of it
        """;
}

/// <summary>
/// Two models timed side by side (<see cref="InferenceBenchmark"/>): each one's result, and how many
/// times as fast the first runs as the second.
/// </summary>
public sealed record SideBySideResult(InferenceBenchmarkResult First, InferenceBenchmarkResult Second)
{
    public double GenSpeedup => First.GenTokensPerSecond / Second.GenTokensPerSecond;
    public double GenMedianSpeedup => Second.GenMedianMillisecondsPerToken / First.GenMedianMillisecondsPerToken;
    public double PromptSpeedup => First.PromptTokensPerSecond / Second.PromptTokensPerSecond;

    public string ToJson() => JsonText.Write(json =>
    {
        json.WriteStartObject();
        json.WritePropertyName("first");
        json.WriteRawValue(First.ToJson());
        json.WritePropertyName("second");
        json.WriteRawValue(Second.ToJson());
        json.WriteNumber("gen_speedup", Math.Round(GenSpeedup, 4));
        json.WriteNumber("gen_speedup_median", Math.Round(GenMedianSpeedup, 4));
        json.WriteNumber("prompt_speedup", Math.Round(PromptSpeedup, 4));
        json.WriteEndObject();
    });

    public override string ToString() =>
        $"""
        {First}

        {Second}

        side by side {First.Weights} runs {GenSpeedup:F2}x as fast as {Second.Weights} in generation (median token {GenMedianSpeedup:F2}x), {PromptSpeedup:F2}x on the prompt
        """;
}

/// <summary>
/// Batch-1 inference speed: prompt processing (one forward over the prompt through the KV cache; the median of
/// <see cref="PromptRepeats"/> timings) and token-by-token greedy generation, after warm-up passes that fault the mapped
/// weights in; generation reports the mean time per token and, as the typical token on a shared machine whose
/// neighbours steal bursts of time, the median. The roof is measured just before and just after, and the higher one
/// counts: on a shared machine the bandwidth drifts, and comparing against its better moment is the strict choice.
/// </summary>
public static class InferenceBenchmark
{
    public const int PromptRepeats = 5;

    /// <summary>
    /// Times one model, or several side by side in one process (e.g. fp32 weights and their bf16 conversion): their
    /// prompt passes and generated tokens take turns, in A B B A order, so that each model meets the machine as the
    /// others do. On a machine whose bandwidth drifts from minute to minute, separate runs cannot compare two models
    /// within 10-20%; the ratio of these results can. All the models are loaded at once.
    /// </summary>
    /// <param name="models">Each model's name and its loader (timed): the weights on the chosen backend.</param>
    /// <param name="measureRoof">Measures the read bandwidth to compare generation against (see <see cref="MemoryBandwidth"/>).</param>
    /// <param name="measurePeak">Measures the multiply-add peak to compare the prompt against (see <see cref="ComputePeak"/>), if any.</param>
    public static InferenceBenchmarkResult[] Run(IReadOnlyList<(string Weights, Func<Gpt2Model> Load)> models, int promptTokens, int genTokens,
        Func<double> measureRoof, Func<double>? measurePeak = null) =>
        Run(models, promptTokens, genTokens, measureRoof, measurePeak, WallClock.Seconds);

    /// <summary>
    /// <see cref="Run(IReadOnlyList{ValueTuple{string, Func{Gpt2Model}}}, int, int, Func{double}, Func{double}?)"/> with the timer given: it runs each load in turn, then each of the
    /// <see cref="PromptRepeats"/> rounds of prompt passes, then each round of generated tokens, and returns its seconds.
    /// </summary>
    internal static InferenceBenchmarkResult[] Run(IReadOnlyList<(string Weights, Func<Gpt2Model> Load)> models, int promptTokens, int genTokens,
        Func<double> measureRoof, Func<double>? measurePeak, Func<Action, double> timeSeconds)
    {
        if (promptTokens < 1 || genTokens < 1) throw new Gpt2Exception("--prompt-tokens and --gen-tokens must be at least 1");
        var runs = new List<TimedModel>();
        try
        {
            foreach (var (weights, load) in models)
            {
                Gpt2Model? loaded = null;
                double loadSeconds = timeSeconds(() => loaded = load());
                runs.Add(new TimedModel(weights, loaded!, loadSeconds, promptTokens, genTokens));
            }
            foreach (var run in runs) run.WarmUp();
            double roofBefore = measureRoof();
            for (int repeat = 0; repeat < PromptRepeats; repeat++)
                foreach (var run in Turns(runs, repeat)) run.PromptSeconds[repeat] = timeSeconds(run.Prompt);
            for (int i = 0; i < genTokens; i++)
                foreach (var run in Turns(runs, i)) run.TokenSeconds[i] = timeSeconds(run.Token);
            double roof = Math.Max(roofBefore, measureRoof());
            double? peak = measurePeak?.Invoke();
            return [.. runs.Select(run => run.Result(roof, peak))];
        }
        finally
        {
            foreach (var run in runs) run.Dispose();
        }
    }

    /// <summary>The models in round <paramref name="round"/>'s order: forwards in even rounds, backwards in odd ones (A B, B A, ...).</summary>
    private static IEnumerable<TimedModel> Turns(List<TimedModel> runs, int round) => round % 2 == 0 ? runs : Enumerable.Reverse(runs);

    /// <summary>One model under the benchmark: its session, its random prompt, the token it feeds next, and its timings.</summary>
    private sealed class TimedModel : IDisposable
    {
        private readonly InferenceSession _session;
        private readonly int[] _prompt;
        private readonly string _weights;
        private readonly double _loadSeconds;
        private int _next;

        public Gpt2Model Model { get; }
        public double[] PromptSeconds { get; } = new double[PromptRepeats];
        public double[] TokenSeconds { get; }

        /// <summary>Takes <paramref name="model"/> over: disposed with this, or here if this cannot be made.</summary>
        public TimedModel(string weights, Gpt2Model model, double loadSeconds, int promptTokens, int genTokens)
        {
            (_weights, Model, _loadSeconds) = (weights, model, loadSeconds);
            var config = model.Config;
            var random = new Random(1234);
            _prompt = new int[promptTokens];
            for (int i = 0; i < promptTokens; i++) _prompt[i] = random.Next(config.VocabSize);
            TokenSeconds = new double[genTokens];
            try
            {
                if (promptTokens + genTokens > config.ContextLength)
                    throw new Gpt2Exception($"--prompt-tokens {promptTokens} + --gen-tokens {genTokens} exceed the model's context of {config.ContextLength}");
                _session = model.CreateSession();
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }

        public void Dispose()
        {
            _session.Dispose();
            Model.Dispose();
        }

        /// <summary>Maps the weights in and lets the JIT settle on optimised kernels.</summary>
        public void WarmUp()
        {
            for (int pass = 0; pass < 2; pass++)
            {
                Prompt();
                for (int i = 0; i < Math.Min(TokenSeconds.Length, 16); i++) Token();
            }
        }

        /// <summary>A prompt pass from an empty cache; generation continues from its last position.</summary>
        public void Prompt()
        {
            _session.Reset();
            _next = Sampler.ArgMax(_session.Forward(_prompt, _prompt.Length));
        }

        public void Token() => _next = Sampler.ArgMax(_session.Forward([_next], 1));

        public InferenceBenchmarkResult Result(double roof, double? peak)
        {
            var prompt = PromptSeconds.Order().ToArray();
            var tokens = TokenSeconds.Order().ToArray();
            int P = _prompt.Length, G = tokens.Length;
            return new InferenceBenchmarkResult(_weights, Model.Backend.Name, P, G, _loadSeconds, P / prompt[PromptRepeats / 2],
                tokens.Sum() * 1000 / G, tokens[G / 2] * 1000, WeightBytesPerToken(Model), roof, PromptFlops(Model.Config, P), peak);
        }
    }

    /// <summary>
    /// Floating-point operations (a multiply-add is two) of a forward over a prompt of <paramref name="tokens"/>, as
    /// <see cref="InferenceSession"/> does it: per layer and token the qkv matmul's 3 C^2 multiply-adds and attention's
    /// scores and weighted sum over t + 1 positions (t from 0), 2 (t + 1) C; the other three matmuls' 9 C^2 per layer
    /// and token, except in the last layer, which needs them at the last position only; logits there, V C. The
    /// element-wise operations (LayerNorm, GELU, softmax) are left out: a few per element, against thousands of
    /// multiply-adds.
    /// </summary>
    public static long PromptFlops(Gpt2Config config, int tokens)
    {
        long c = config.Channels, t = tokens, layers = config.Layers;
        long qkvAndAttention = layers * (t * 3 * c * c + c * t * (t + 1));
        long projectionAndMlp = 9 * c * c * ((layers - 1) * t + 1);
        return 2 * (qkvAndAttention + projectionAndMlp + (long)config.VocabSize * c);
    }

    /// <summary>Bytes of weights one decoded token reads: every parameter once, except wpe (one row).</summary>
    public static long WeightBytesPerToken(Gpt2Model model)
    {
        var p = model.Parameters;
        long bytes = p.Wte.ByteLength + p.Wpe.ByteLength / model.Config.ContextLength + p.LnFWeight.ByteLength + p.LnFBias.ByteLength;
        foreach (var l in p.Layers)
        {
            foreach (var buffer in (DeviceBuffer[])[l.Ln1Weight, l.Ln1Bias, l.QkvWeight, l.QkvBias, l.AttnProjWeight, l.AttnProjBias,
                         l.Ln2Weight, l.Ln2Bias, l.FcWeight, l.FcBias, l.FcProjWeight, l.FcProjBias])
                bytes += buffer.ByteLength;
        }
        return bytes;
    }
}
