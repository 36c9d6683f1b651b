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
/// Batch-1 inference speed: prompt processing (one forward over the prompt through the KV cache; the median of
/// <see cref="PromptRepeats"/> timings) and token-by-token greedy generation, after warm-up passes that fault the mapped
/// weights in; generation reports the mean time per token and, as the typical token on a shared machine whose
/// neighbours steal bursts of time, the median. The roof is measured just before and just after, and the higher one
/// counts: on a shared machine the bandwidth drifts, and comparing against its better moment is the strict choice.
/// </summary>
public static class InferenceBenchmark
{
    public const int PromptRepeats = 5;

    /// <param name="loadModel">Loads the model (timed): the weights on the chosen backend.</param>
    /// <param name="measureRoof">Measures the read bandwidth to compare generation against (see <see cref="MemoryBandwidth"/>).</param>
    /// <param name="measurePeak">Measures the multiply-add peak to compare the prompt against (see <see cref="ComputePeak"/>), if any.</param>
    public static InferenceBenchmarkResult Run(string weights, Func<Gpt2Model> loadModel, int promptTokens, int genTokens, Func<double> measureRoof,
        Func<double>? measurePeak = null) =>
        Run(weights, loadModel, promptTokens, genTokens, measureRoof, measurePeak, WallClock.Seconds);

    /// <summary>
    /// <see cref="Run(string, Func{Gpt2Model}, int, int, Func{double}, Func{double}?)"/> with the timer given: it runs
    /// the load, then each of the <see cref="PromptRepeats"/> prompt passes, then each generated token, and returns its seconds.
    /// </summary>
    internal static InferenceBenchmarkResult Run(string weights, Func<Gpt2Model> loadModel, int promptTokens, int genTokens, Func<double> measureRoof,
        Func<double>? measurePeak, Func<Action, double> timeSeconds)
    {
        if (promptTokens < 1 || genTokens < 1) throw new Gpt2Exception("--prompt-tokens and --gen-tokens must be at least 1");
        Gpt2Model? loaded = null;
        double loadSeconds = timeSeconds(() => loaded = loadModel());
        using var model = loaded!;
        var config = model.Config;
        if (promptTokens + genTokens > config.ContextLength)
            throw new Gpt2Exception($"--prompt-tokens {promptTokens} + --gen-tokens {genTokens} exceed the model's context of {config.ContextLength}");

        var random = new Random(1234);
        int[] prompt = new int[promptTokens];
        for (int i = 0; i < promptTokens; i++) prompt[i] = random.Next(config.VocabSize);
        using var session = model.CreateSession();

        for (int warmUp = 0; warmUp < 2; warmUp++) // maps the weights in and lets the JIT settle on optimised kernels
        {
            Generate(session, prompt, Math.Min(genTokens, 16));
            session.Reset();
        }
        double roofBefore = measureRoof();
        var promptSeconds = new double[PromptRepeats];
        int next = 0;
        for (int repeat = 0; repeat < PromptRepeats; repeat++)
        {
            session.Reset();
            promptSeconds[repeat] = timeSeconds(() => next = Sampler.ArgMax(session.Forward(prompt, promptTokens)));
        }
        Array.Sort(promptSeconds);
        var tokenSeconds = new double[genTokens];
        for (int i = 0; i < genTokens; i++) tokenSeconds[i] = timeSeconds(() => next = Sampler.ArgMax(session.Forward([next], 1)));
        double genSeconds = tokenSeconds.Sum();
        Array.Sort(tokenSeconds);
        double roof = Math.Max(roofBefore, measureRoof());

        return new InferenceBenchmarkResult(weights, model.Backend.Name, promptTokens, genTokens, loadSeconds,
            promptTokens / promptSeconds[PromptRepeats / 2], genSeconds * 1000 / genTokens, tokenSeconds[genTokens / 2] * 1000, WeightBytesPerToken(model), roof,
            PromptFlops(config, promptTokens), measurePeak?.Invoke());
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

    private static void Generate(InferenceSession session, int[] prompt, int tokens)
    {
        int next = Sampler.ArgMax(session.Forward(prompt, prompt.Length));
        for (int i = 0; i < tokens; i++) next = Sampler.ArgMax(session.Forward([next], 1));
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
