using System.Text.Json;
using Gpt2Engine.Benchmarks;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cli;
using Gpt2Engine.Cpu;
using Gpt2Engine.Model;
using Xunit;

namespace Gpt2Engine.Tests.Cpu;

public sealed class ConversionAndBenchTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gpt2-cpu-tests-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Bf16_conversion_rounds_the_matmul_matrices_and_keeps_the_rest()
    {
        string path = Path.Combine(_directory, "tiny-bf16.safetensors");
        using (var original = CheckpointLoader.Load(TestFixtures.TinyModel))
            WeightConversion.WriteSafetensors(original, TensorDType.BF16, path);
        Assert.Empty(Directory.GetFiles(_directory, "*.tmp-*"));

        using var source = CheckpointLoader.Load(TestFixtures.TinyModel);
        using var converted = CheckpointLoader.Load(path);
        Assert.Equal(source.Config, converted.Config);
        foreach (var spec in source.Layout.Specs)
        {
            var view = converted[spec.Name];
            bool matrix = spec.IsMatmulWeight;
            Assert.Equal(matrix ? TensorDType.BF16 : TensorDType.F32, view.DType);
            float[] expected = source[spec.Name].ToFloatArray();
            if (matrix) expected = Array.ConvertAll(expected, v => BFloat16.ToSingle(BFloat16.FromSingle(v)));
            Assert.Equal(expected, view.ToFloatArray());
        }
    }

    [Fact]
    public void A_bf16_model_decodes_like_the_f32_one_within_bf16_precision()
    {
        string path = Path.Combine(_directory, "tiny-bf16.safetensors");
        using (var original = CheckpointLoader.Load(TestFixtures.TinyModel))
            WeightConversion.WriteSafetensors(original, TensorDType.BF16, path);
        int[] prompt = [1, 5, 9, 33, 2, 70];
        float[] Logits(string weights)
        {
            using var model = new Gpt2Model(CheckpointLoader.Load(weights), new CpuBackend(2), ownsWeights: true, ownsBackend: true);
            using var session = model.CreateSession();
            return session.Forward(prompt, prompt.Length).ToArray();
        }
        float[] f32 = Logits(TestFixtures.TinyModel), bf16 = Logits(path);
        double largest = f32.Max(Math.Abs);
        // bf16 keeps 8 significant bits: a relative error of 2^-8 per weight, averaged over the dot products.
        Assert.True(TestFixtures.MaxAbsDiff(f32, bf16) <= 0.02 * largest, $"max diff {TestFixtures.MaxAbsDiff(f32, bf16)} vs largest logit {largest}");
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

    [Fact]
    public void Bench_reports_every_field_as_json()
    {
        using var backend = new CpuBackend(2);
        var roofs = new Queue<double>([1e10, 2e10]);
        var result = InferenceBenchmark.Run("tiny", () => new Gpt2Model(CheckpointLoader.Load(TestFixtures.TinyModel), backend, ownsWeights: true),
            promptTokens: 5, genTokens: 3, measureRoof: () => roofs.Dequeue(), measurePeak: () => 1e11);
        using var json = JsonDocument.Parse(result.ToJson());
        Assert.Equal(20.0, json.RootElement.GetProperty("roof_gb_per_s").GetDouble()); // measured before and after: the higher counts
        Assert.Equal(100.0, json.RootElement.GetProperty("fma_peak_gflop_per_s").GetDouble());
        foreach (string key in (string[])["prompt_tokens_per_s", "gen_tokens_per_s", "gen_ms_per_token", "gen_ms_per_token_median", "load_s", "roof_gb_per_s",
                     "fraction_of_roof", "prompt_gflop_per_s", "prompt_fraction_of_peak"])
            Assert.True(json.RootElement.GetProperty(key).GetDouble() > 0, key);
        // Every parameter once per token except wpe, of which one row: the tiny model's sizes, by hand.
        const int V = 96, C = 64, L = 2, T = 5;
        long parameters = (long)V * C + C + L * (12L * C * C + 13L * C) + 2L * C;
        Assert.Equal(parameters * sizeof(float), json.RootElement.GetProperty("weight_bytes").GetInt64());
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
        using var weights = CheckpointLoader.Load(TestFixtures.TinyModel);
        Assert.Equal(2 * multiplyAdds, InferenceBenchmark.PromptFlops(weights.Config, T));
        Assert.Equal(2 * multiplyAdds / 1e9, json.RootElement.GetProperty("prompt_gflop").GetDouble(), 4);
    }

    [Fact]
    public void Bench_leaves_out_the_peak_where_none_is_measured()
    {
        using var backend = new CpuBackend(1);
        var result = InferenceBenchmark.Run("tiny", () => new Gpt2Model(CheckpointLoader.Load(TestFixtures.TinyModel), backend, ownsWeights: true),
            promptTokens: 2, genTokens: 1, measureRoof: () => 1e10);
        using var json = JsonDocument.Parse(result.ToJson());
        Assert.False(json.RootElement.TryGetProperty("fma_peak_gflop_per_s", out _));
        Assert.DoesNotContain("peak", result.ToString());
    }

    [Theory]
    [MemberData(nameof(MatmulKernelTests.Levels), MemberType = typeof(MatmulKernelTests))]
    public void Compute_probe_measures_a_positive_rate_at_every_level(SimdLevel level) =>
        Assert.True(ComputePeak.MeasureFma(2, 100_000, passes: 1, level) > 0);

    [Fact]
    public void Bandwidth_probe_measures_a_positive_rate() => Assert.True(MemoryBandwidth.MeasureRead(2, 16L << 20, passes: 1) > 0);
}
