using System.Text.Json;
using Gpt2Engine.Benchmarks;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cli;
using Gpt2Engine.Cpu;
using Gpt2Engine.Model;
using Gpt2Engine.Tests.Evaluation;
using Xunit;

namespace Gpt2Engine.Tests.Cpu;

public sealed class ConversionAndBenchTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gpt2-cpu-tests-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    // The tiny fixture's sizes (config.json), by hand.
    private const int V = 96, C = 64, L = 2;

    /// <summary>The tiny model converted to bf16 in the test's directory.</summary>
    private string TinyInBf16()
    {
        string path = Path.Combine(_directory, "tiny-bf16.safetensors");
        using var original = CheckpointLoader.Load(TestFixtures.TinyModel);
        WeightConversion.WriteSafetensors(original, TensorDType.BF16, path);
        return path;
    }

    /// <summary>The matrices the matmuls read: wte (also the output head) and each layer's four weights; wpe is added, not multiplied.</summary>
    private static bool IsMatmulMatrix(string name) =>
        name == "wte.weight" || name.EndsWith(".attn.c_attn.weight") || name.EndsWith(".attn.c_proj.weight") ||
        name.EndsWith(".mlp.c_fc.weight") || name.EndsWith(".mlp.c_proj.weight");

    /// <summary>
    /// <paramref name="x"/> rounded to bfloat16's 8 significant bits, to nearest with ties to even, computed on the value
    /// (x = m 2^e with 1 &lt;= m &lt; 2; m rounded to a multiple of 2^-7) rather than on its bits as the engine does.
    /// For normal numbers, which the weights are.
    /// </summary>
    private static float RoundToBf16(float x)
    {
        if (x == 0) return x;
        int exponent = Math.ILogB(x);
        double scaled = Math.ScaleB(x, 7 - exponent);
        return (float)Math.ScaleB(Math.Round(scaled, MidpointRounding.ToEven), exponent - 7);
    }

    /// <summary>What a bf16 conversion should hold for the tensor <paramref name="name"/>: its matmul matrices rounded, the rest as is.</summary>
    private static float[] AfterBf16Conversion(string name, float[] values) => IsMatmulMatrix(name) ? Array.ConvertAll(values, RoundToBf16) : values;

    [Fact]
    public void Bf16_rounding_of_the_test_is_to_nearest_with_ties_to_even()
    {
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: to the even 1. 1 + 3 * 2^-8 is halfway up from 1 + 2^-7: to 1 + 2^-6.
        Assert.Equal(1f, RoundToBf16(1 + MathF.ScaleB(1, -8)));
        Assert.Equal(1 + MathF.ScaleB(1, -6), RoundToBf16(1 + 3 * MathF.ScaleB(1, -8)));
        Assert.Equal(-(1 + MathF.ScaleB(1, -7)), RoundToBf16(-(1 + MathF.ScaleB(1, -8) + MathF.ScaleB(1, -20))));
        Assert.Equal(0.15625f, RoundToBf16(0.15625f)); // 5 * 2^-5: exact
    }

    [Fact]
    public void Bf16_conversion_rounds_the_matmul_matrices_and_keeps_the_rest()
    {
        string path = TinyInBf16();
        Assert.Empty(Directory.GetFiles(_directory, "*.tmp-*"));

        using var source = CheckpointLoader.Load(TestFixtures.TinyModel);
        using var converted = CheckpointLoader.Load(path);
        Assert.Equal(source.Config, converted.Config);
        foreach (var spec in source.Layout.Specs)
        {
            var view = converted[spec.Name];
            Assert.Equal(IsMatmulMatrix(spec.Name) ? TensorDType.BF16 : TensorDType.F32, view.DType);
            Assert.Equal(AfterBf16Conversion(spec.Name, source[spec.Name].ToFloatArray()), view.ToFloatArray());
        }
    }

    [Fact]
    public void A_bf16_model_decodes_like_the_float64_reference_on_the_rounded_weights()
    {
        string bf16 = TinyInBf16();
        // The reference reads float32: the fixture's weights, rounded here, written as such.
        string rounded = Path.Combine(_directory, "tiny-rounded-f32.safetensors");
        Gpt2Config config;
        using (var source = CheckpointLoader.Load(TestFixtures.TinyModel))
        {
            config = source.Config;
            Gpt2Checkpoints.WriteSafetensors(rounded, config,
                source.Layout.Specs.ToDictionary(spec => spec.Name, spec => AfterBf16Conversion(spec.Name, source[spec.Name].ToFloatArray())));
        }
        int[] prompt = [1, 5, 9, 33, 2, 70, 95, 0];
        using var roundedFile = SafetensorsFile.Open(rounded);
        double[][] expected = new Float64Gpt2(roundedFile, config.Layers, config.Heads).Logits(prompt);

        using var model = new Gpt2Model(CheckpointLoader.Load(bf16), new CpuBackend(2), ownsWeights: true, ownsBackend: true);
        using var session = model.CreateSession();
        // A prefill of 3 (the bf16 GEMM), then one position at a time (the bf16 matrix-vector products).
        const int Prefill = 3;
        for (int t = Prefill - 1; t < prompt.Length; t++)
        {
            var fed = t == Prefill - 1 ? prompt.AsSpan(0, Prefill) : prompt.AsSpan(t, 1);
            float[] logits = session.Forward(fed, fed.Length).ToArray();
            Assert.Equal(V, logits.Length);
            double largest = expected[t].Max(Math.Abs), error = expected[t].Zip(logits, (e, a) => Math.Abs(e - a)).Max();
            // Only float32 arithmetic separates the two: measured at most 2.4e-7 of the largest logit (at every SIMD
            // level). Weights truncated to bf16 instead of rounded move the logits by 5.8e-3 of it.
            Assert.True(error <= 1e-6 * largest, $"position {t}: max diff {error} vs largest logit {largest}");
        }
    }

    [Fact]
    public void Convert_command_rejects_a_bad_dtype_in_one_line_and_writes_nothing()
    {
        string output = Path.Combine(_directory, "out.safetensors");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = CliApp.Run(["convert", "--weights", TestFixtures.TinyModel, "--dtype", "f16", "--out", output], stdout, stderr);
        Assert.Equal(1, exit);
        Assert.Equal("gpt2-engine: error: --dtype f16: expected bf16 or f32", stderr.ToString().Trim());
        Assert.False(File.Exists(output));
    }

    /// <summary>Stands in for the wall clock: runs each piece of work it is given, then reports the next of the given durations.</summary>
    private sealed class ScriptedTimer(IEnumerable<double> seconds)
    {
        private readonly Queue<double> _seconds = new(seconds);

        public ScriptedTimer(params double[] seconds) : this((IEnumerable<double>)seconds) { }

        /// <summary>Durations not yet reported: 0 once every expected piece of work was timed.</summary>
        public int Left => _seconds.Count;

        public double Time(Action work)
        {
            work();
            return _seconds.Dequeue();
        }
    }

    private static Gpt2Model LoadTiny(Backend backend, string? path = null) => new(CheckpointLoader.Load(path ?? TestFixtures.TinyModel), backend, ownsWeights: true);

    /// <summary>Bytes a decoded token reads: every parameter once, except wpe, of which one row; matmul matrices at <paramref name="matrixBytes"/> each.</summary>
    private static long WeightBytesByHand(int matrixBytes)
    {
        long matrices = (long)V * C + L * (3L * C * C + C * C + 4L * C * C + 4L * C * C);
        long vectors = C /* wpe row */ + L * (2L * C + 3L * C + C + 2L * C + 4L * C + C) /* ln_1, c_attn, c_proj, ln_2, c_fc, c_proj */ + 2L * C /* ln_f */;
        return matrices * matrixBytes + vectors * sizeof(float);
    }

    [Fact]
    public void Bench_reports_the_timings_it_measured_and_the_rates_they_imply()
    {
        using var backend = new CpuBackend(2);
        const int T = 5, G = 3;
        // Loading 2 s; the prompt's five passes, median 1 us; tokens of 8, 1 and 3 us: mean 4 us, median 3 us.
        var timer = new ScriptedTimer(2.0, 4e-6, 1e-6, 0.5e-6, 5e-6, 0.2e-6, 8e-6, 1e-6, 3e-6);
        var roofs = new Queue<double>([1e11, 2e11]);
        var result = InferenceBenchmark.Run([("tiny", () => LoadTiny(backend))], promptTokens: T, genTokens: G,
            measureRoof: () => roofs.Dequeue(), measurePeak: () => 1e12, timer.Time).Single();
        Assert.Equal(0, timer.Left);
        Assert.Empty(roofs);

        // The prompt's multiply-adds, counted one by one: per layer and position the qkv matmul, scores and weighted sum
        // over the positions so far, and the attention-projection, fc and fc-projection matmuls (in the last layer at the
        // last position only: the logits need no other); logits at the last position.
        long multiplyAdds = (long)V * C;
        for (int layer = 0; layer < L; layer++)
            for (int t = 0; t < T; t++)
            {
                multiplyAdds += C * 3L * C + 2L * (t + 1) * C;
                if (layer < L - 1 || t == T - 1) multiplyAdds += C * (long)C + C * 4L * C + 4L * C * C;
            }
        long flops = 2 * multiplyAdds, bytes = WeightBytesByHand(sizeof(float));
        double promptTokensPerSecond = T / 1e-6, genTokensPerSecond = 1 / 4e-6;

        using var json = JsonDocument.Parse(result.ToJson());
        var root = json.RootElement;
        void Field(string key, double expected, int decimals) => Assert.Equal(expected, root.GetProperty(key).GetDouble(), decimals);
        Assert.Equal("tiny", root.GetProperty("weights").GetString());
        Assert.Equal(backend.Name, root.GetProperty("backend").GetString());
        Assert.Equal(T, root.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(G, root.GetProperty("gen_tokens").GetInt32());
        Field("load_s", 2, 4);
        Field("prompt_tokens_per_s", promptTokensPerSecond, 2);
        Field("gen_ms_per_token", 4e-3, 3);
        Field("gen_ms_per_token_median", 3e-3, 3);
        Field("gen_tokens_per_s", genTokensPerSecond, 2);
        Assert.Equal(bytes, root.GetProperty("weight_bytes").GetInt64());
        Field("achieved_gb_per_s", bytes * genTokensPerSecond / 1e9, 3);
        Field("roof_gb_per_s", 200, 3); // measured before and after: the higher counts
        Field("fraction_of_roof", bytes * genTokensPerSecond / 2e11, 4);
        Assert.Equal(flops, result.PromptFlops);
        Field("prompt_gflop", flops / 1e9, 4);
        Field("prompt_gflop_per_s", flops / 1e9 * promptTokensPerSecond / T, 2);
        Field("fma_peak_gflop_per_s", 1000, 2);
        Field("prompt_fraction_of_peak", flops * promptTokensPerSecond / T / 1e12, 4);
    }

    /// <summary>
    /// Two models side by side: loads in turn, then prompt passes and tokens in A B B A order, each model's timings
    /// its own. The script gives A's passes and tokens 2 us and B's 1 us, so a timing that went to the wrong model, or
    /// an order that is not A B B A, shows in the mean time per token (the prompt's median would hide an order of A B
    /// A B: three of its five passes would still be A's).
    /// </summary>
    [Fact]
    public void Side_by_side_models_take_turns_and_keep_their_own_timings()
    {
        using var backend = new CpuBackend(1);
        const int G = 3;
        var timings = new List<double> { 1.0, 3.0 }; // loads: A, B
        foreach (int rounds in new[] { InferenceBenchmark.PromptRepeats, G }) // prompt passes, then tokens: A B, B A, A B, ...
            for (int round = 0; round < rounds; round++)
                timings.AddRange(round % 2 == 0 ? [2e-6, 1e-6] : [1e-6, 2e-6]);
        var timer = new ScriptedTimer(timings);
        var results = InferenceBenchmark.Run([("a", () => LoadTiny(backend)), ("b", () => LoadTiny(backend, TinyInBf16()))], promptTokens: 4, genTokens: G,
            measureRoof: () => 1e10, measurePeak: null, timer.Time);
        Assert.Equal(0, timer.Left);
        Assert.Equal(["a", "b"], results.Select(r => r.Weights));
        Assert.Equal([1.0, 3.0], results.Select(r => r.LoadSeconds));
        Assert.Equal([4 / 2e-6, 4 / 1e-6], results.Select(r => r.PromptTokensPerSecond));
        Assert.Equal(2e-3, results[0].GenMillisecondsPerToken, 12);
        Assert.Equal(1e-3, results[1].GenMillisecondsPerToken, 12);
        Assert.Equal([WeightBytesByHand(sizeof(float)), WeightBytesByHand(2)], results.Select(r => r.WeightBytesPerToken));

        // A's tokens and passes take twice B's time: it runs half as fast.
        using var json = JsonDocument.Parse(new SideBySideResult(results[0], results[1]).ToJson());
        Assert.Equal(["a", "b"], new[] { "first", "second" }.Select(key => json.RootElement.GetProperty(key).GetProperty("weights").GetString()));
        Assert.Equal([0.5, 0.5, 0.5], new[] { "gen_speedup", "gen_speedup_median", "prompt_speedup" }.Select(key => json.RootElement.GetProperty(key).GetDouble()));
        Assert.EndsWith("side by side a runs 0.50x as fast as b in generation (median token 0.50x), 0.50x on the prompt",
            new SideBySideResult(results[0], results[1]).ToString().TrimEnd());
    }

    /// <summary>
    /// Every model and session the benchmark made is freed, after a run and when a later model fails (here the second
    /// model's prompt and tokens exceed its context, and then its load throws).
    /// </summary>
    [Fact]
    public void Bench_frees_its_models_and_sessions_whether_or_not_it_fails()
    {
        using var backend = new CpuBackend(1);
        var timer = new ScriptedTimer(Enumerable.Repeat(1e-3, 2 + 2 * (InferenceBenchmark.PromptRepeats + 1)));
        InferenceBenchmark.Run([("a", () => LoadTiny(backend)), ("b", () => LoadTiny(backend))], promptTokens: 2, genTokens: 1, measureRoof: () => 1e10, measurePeak: null, timer.Time);
        Assert.Equal(0, backend.AllocatedBytes);

        int context;
        using (var probe = LoadTiny(backend)) context = probe.Config.ContextLength;
        var tooLong = Assert.Throws<Gpt2Exception>(() => InferenceBenchmark.Run([("a", () => LoadTiny(backend))], promptTokens: context, genTokens: 1,
            measureRoof: () => 1e10, measurePeak: null, t => { t(); return 1e-3; }));
        Assert.Contains("exceed the model's context", tooLong.Message);
        Assert.Equal(0, backend.AllocatedBytes);

        Assert.Throws<Gpt2Exception>(() => InferenceBenchmark.Run([("a", () => LoadTiny(backend)), ("b", () => throw new Gpt2Exception("no such weights"))],
            promptTokens: 2, genTokens: 1, measureRoof: () => 1e10, measurePeak: null, t => { t(); return 1e-3; }));
        Assert.Equal(0, backend.AllocatedBytes);
    }

    [Fact]
    public void Bench_counts_the_bytes_of_bf16_matrices_as_two_each()
    {
        using var backend = new CpuBackend(1);
        using var bf16 = LoadTiny(backend, TinyInBf16());
        using var f32 = LoadTiny(backend);
        Assert.Equal(WeightBytesByHand(2), InferenceBenchmark.WeightBytesPerToken(bf16));
        Assert.Equal(WeightBytesByHand(sizeof(float)), InferenceBenchmark.WeightBytesPerToken(f32));
    }

    [Fact]
    public void Bench_leaves_out_the_peak_where_none_is_measured()
    {
        using var backend = new CpuBackend(1);
        var timer = new ScriptedTimer(Enumerable.Repeat(1e-3, 1 + InferenceBenchmark.PromptRepeats + 1));
        var result = InferenceBenchmark.Run([("tiny", () => LoadTiny(backend))], promptTokens: 2, genTokens: 1, measureRoof: () => 1e10, measurePeak: null, timer.Time).Single();
        using var json = JsonDocument.Parse(result.ToJson());
        Assert.False(json.RootElement.TryGetProperty("fma_peak_gflop_per_s", out _));
        Assert.False(json.RootElement.TryGetProperty("prompt_fraction_of_peak", out _));
        Assert.DoesNotContain("peak", result.ToString());
    }

    [Theory]
    [MemberData(nameof(MatmulKernelTests.Levels), MemberType = typeof(MatmulKernelTests))]
    public void Compute_probe_counts_every_multiply_add_and_keeps_the_fastest_pass(SimdLevel level)
    {
        const int Threads = 2, Steps = 100, Chains = 12;
        int lanes = level switch { SimdLevel.V512 => 16, SimdLevel.V256 => 8, SimdLevel.V128 => 4, _ => 1 }; // floats per vector
        var timer = new ScriptedTimer(0.5, 0.25, 1.0);
        double rate = ComputePeak.MeasureFma(Threads, Steps, passes: 3, level, timer.Time, out float[] sinks);
        Assert.Equal(0, timer.Left);
        // Per thread, Steps multiply-adds (2 FLOPs) on each lane of each chain; the fastest pass, 0.25 s, counts.
        Assert.Equal((double)Threads * Steps * Chains * lanes * 2 / 0.25, rate);
        // Every chain runs a <- 0.999 a + 0.001 from 0 (float constants), so each thread's sum is Chains * lanes times
        // its value after Steps steps, here in float64: a step less or more changes it by 1%.
        double a = 0;
        for (int step = 0; step < Steps; step++) a = a * (double)0.999f + (double)0.001f;
        double expected = Chains * lanes * a;
        Assert.All(sinks, sink => Assert.Equal(expected, sink, expected * 1e-5));
    }

    [Fact]
    public void Bandwidth_probe_counts_the_bytes_of_whole_chunks_and_keeps_the_fastest_pass()
    {
        // 9 MiB asked for: two whole chunks of 4 MiB are read, in each of two passes by each of the two access patterns.
        // The probe checks every pass's sum of what it read, so a pass that skips a chunk throws.
        var timer = new ScriptedTimer(0.004, 0.002, 0.001, 0.003);
        double rate = MemoryBandwidth.MeasureRead(threads: 2, 9L << 20, passes: 2, timer.Time);
        Assert.Equal(0, timer.Left);
        Assert.Equal((8L << 20) / 0.001, rate);
    }
}
