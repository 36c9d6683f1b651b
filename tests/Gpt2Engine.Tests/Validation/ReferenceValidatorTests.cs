using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cli;
using Gpt2Engine.Cpu;
using Gpt2Engine.Tests.Generation;
using Gpt2Engine.Validation;
using Xunit;

namespace Gpt2Engine.Tests.Validation;

public sealed class ReferenceValidatorTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("gpt2-validate-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static ValidationReport Validate(string reference, double? tolerance = null)
    {
        using var weights = CheckpointLoader.Load(TinyFixture.ModelPath);
        using var backend = new CpuBackend(1);
        return ReferenceValidator.Validate(weights, backend, reference, tolerance);
    }

    [Fact]
    public void The_tiny_fixture_passes_within_the_fp32_tolerance()
    {
        var report = Validate(TinyFixture.ExpectedPath);
        Assert.Equal(["logits", "loss", "greedy_logits", "greedy", "grad.*", "losses", "updated.*", "updated key bias"], report.Results.Select(r => r.Name));
        Assert.All(report.Results, r => Assert.True(r.Passed, r.ToString()));
        // The key biases have their own tolerance (steps x lr, see AdamWStepsCheck).
        Assert.All(report.Results.Where(r => !r.IsExact && r.Name != "updated key bias"), r => Assert.Equal(2e-5, r.Tolerance));
        Assert.True(report.Passed);
        Assert.Empty(report.NotChecked);
    }

    [Fact]
    public void The_same_weights_as_a_TensorFlow_bundle_pass_too()
    {
        string bundle = Path.Combine(_temp, "bundle");
        WriteOpenAiBundle(bundle);
        using var loaded = CheckpointLoader.Load(bundle, verifyChecksums: true);
        Assert.StartsWith("TensorFlow bundle", loaded.Source);
        using var backend = new CpuBackend(1);
        var report = ReferenceValidator.Validate(loaded, backend, TinyFixture.ExpectedPath);
        Assert.Equal(["logits", "loss", "greedy_logits", "greedy", "grad.*", "losses", "updated.*", "updated key bias"], report.Results.Select(r => r.Name));
        Assert.All(report.Results, r => Assert.True(r.Passed, r.ToString()));
    }

    [Fact]
    public void The_bundle_writer_lays_out_the_documented_bytes()
    {
        string expected = Path.Combine(_temp, "by-hand"), written = Path.Combine(_temp, "written");
        WriteOpenAiBundle(expected);
        using (var weights = CheckpointLoader.Load(TinyFixture.ModelPath))
            Gpt2Checkpoints.WriteTensorFlowBundle(written, weights);
        foreach (string file in new[] { "model.ckpt.data-00000-of-00001", "model.ckpt.index", "checkpoint", "hparams.json" })
            Assert.True(File.ReadAllBytes(Path.Combine(expected, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(written, file))), file);
    }

    [Fact]
    public void A_zero_tolerance_fails_on_float32_rounding()
    {
        var report = Validate(TinyFixture.ExpectedPath, tolerance: 0);
        var logits = report.Results.Single(r => r.Name == "logits");
        Assert.False(logits.Passed);
        Assert.InRange(logits.MaxAbsError, 1e-9, 1e-5);
        Assert.False(report.Passed);
    }

    [Fact]
    public void A_wrong_reference_logit_fails_its_group_only()
    {
        string path = Path.Combine(_temp, "perturbed.safetensors");
        RewriteExpected(path, (name, data) =>
        {
            if (name == "greedy_logits") MemoryMarshal.Cast<byte, float>(data)[17] += 1e-3f;
        });
        var byName = Validate(path).Results.ToDictionary(r => r.Name);
        Assert.True(byName["logits"].Passed);
        Assert.True(byName["loss"].Passed);
        Assert.True(byName["greedy"].Passed);
        Assert.False(byName["greedy_logits"].Passed);
        Assert.InRange(byName["greedy_logits"].MaxAbsError, 0.9e-3, 1.1e-3);
    }

    [Fact]
    public void A_wrong_reference_token_fails_the_greedy_check()
    {
        string path = Path.Combine(_temp, "perturbed.safetensors");
        RewriteExpected(path, (name, data) =>
        {
            if (name == "greedy") MemoryMarshal.Cast<byte, int>(data)[4] ^= 1;
        });
        var greedy = Validate(path).Results.Single(r => r.Name == "greedy");
        Assert.False(greedy.Passed);
        Assert.Contains("first at step 4", greedy.Detail);
    }

    [Fact]
    public void A_reference_for_another_model_shape_is_a_user_error()
    {
        string path = Path.Combine(_temp, "short.safetensors");
        RewriteExpected(path, keep: name => name is "tokens" or "loss" or "greedy", rename: name => name);
        // Only groups with all their tensors run: here none.
        var report = Validate(path);
        Assert.Empty(report.Results);
        Assert.Equal(["greedy", "loss"], report.NotChecked);

        string logits = Path.Combine(_temp, "logits.safetensors");
        RewriteExpected(logits, keep: name => name is "tokens" or "loss" or "greedy_logits", rename: name => name == "greedy_logits" ? "logits" : name);
        var e = Assert.Throws<Gpt2Exception>(() => Validate(logits));
        Assert.Contains("'logits' has shape [12, 96]", e.Message);
    }

    [Fact]
    public void The_command_prints_one_line_per_group_and_fails_beyond_the_tolerance()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Run(["validate", "--weights", TinyFixture.ModelPath, "--reference", TinyFixture.ExpectedPath], output, error);
        Assert.Equal(0, code);
        Assert.Equal("", error.ToString());
        string[] lines = output.ToString().TrimEnd('\n').Split('\n');
        Assert.Equal(8, lines.Count(l => l.EndsWith("OK") || l.Contains("  OK  ")));
        Assert.DoesNotContain(lines, l => l.StartsWith("not checked"));

        output = new StringWriter();
        error = new StringWriter();
        code = CliApp.Run(["validate", "--weights", TinyFixture.ModelPath, "--reference", TinyFixture.ExpectedPath, "--tolerance", "0"], output, error);
        Assert.Equal(1, code);
        Assert.Contains("FAIL", output.ToString());
        // float32 rounding is above zero on the logits (the loss may happen to round exactly).
        Assert.StartsWith("gpt2-engine: validation failed: logits, ", error.ToString());
        Assert.Contains("greedy_logits", error.ToString());
        Assert.Contains("updated.*", error.ToString());
        Assert.Contains("updated key bias", error.ToString()); // --tolerance overrides every group, this one too
        Assert.Single(error.ToString().TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public void A_missing_reference_is_a_one_line_error()
    {
        var error = new StringWriter();
        int code = CliApp.Run(["validate", "--weights", TinyFixture.ModelPath, "--reference", Path.Combine(_temp, "none.safetensors")], new StringWriter(), error);
        Assert.Equal(1, code);
        Assert.StartsWith("gpt2-engine: error: ", error.ToString());
        Assert.Contains("none.safetensors", error.ToString());
        Assert.Single(error.ToString().TrimEnd('\n').Split('\n'));
    }

    /// <summary>Copies the fixture's expected.safetensors to <paramref name="path"/>, editing tensor bytes on the way.</summary>
    private static void RewriteExpected(string path, Action<string, Span<byte>> edit) => RewriteExpected(path, _ => true, n => n, edit);

    private static void RewriteExpected(string path, Func<string, bool> keep, Func<string, string> rename, Action<string, Span<byte>>? edit = null)
    {
        using var source = SafetensorsFile.Open(TinyFixture.ExpectedPath);
        var header = new Dictionary<string, object>();
        var data = new MemoryStream();
        foreach (var (name, view) in source.Tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!keep(name)) continue;
            byte[] bytes = view.AsSpan<byte>().ToArray();
            edit?.Invoke(name, bytes);
            header[rename(name)] = new { dtype = view.DType.ToString().ToUpperInvariant(), shape = view.Shape, data_offsets = new[] { data.Length, data.Length + bytes.Length } };
            data.Write(bytes);
        }
        byte[] json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        using var file = File.Create(path);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)json.Length);
        file.Write(length);
        file.Write(json);
        data.Position = 0;
        data.CopyTo(file);
    }

    /// <summary>OpenAI's names for a layer's tensors (shared/docs/openai-checkpoint.md §3), by their Hugging Face names.</summary>
    private static readonly Dictionary<string, string> OpenAiLayerNames = new()
    {
        ["ln_1.weight"] = "ln_1/g", ["ln_1.bias"] = "ln_1/b",
        ["attn.c_attn.weight"] = "attn/c_attn/w", ["attn.c_attn.bias"] = "attn/c_attn/b",
        ["attn.c_proj.weight"] = "attn/c_proj/w", ["attn.c_proj.bias"] = "attn/c_proj/b",
        ["ln_2.weight"] = "ln_2/g", ["ln_2.bias"] = "ln_2/b",
        ["mlp.c_fc.weight"] = "mlp/c_fc/w", ["mlp.c_fc.bias"] = "mlp/c_fc/b",
        ["mlp.c_proj.weight"] = "mlp/c_proj/w", ["mlp.c_proj.bias"] = "mlp/c_proj/b",
    };

    /// <summary>
    /// The tiny fixture as OpenAI released GPT-2, laid out here from the documents rather than by the engine's writer
    /// (shared/docs/openai-checkpoint.md §1-3, tf-tensor-bundle.md §5): the fixture's tensors renamed (model/h0/...),
    /// conv1d weights given a leading 1 ([1, in, out]: the same bytes as Hugging Face's [in, out]), then packed back to
    /// back in bytewise name order in the .data file. Only the .index encoding is the engine's,
    /// <see cref="TensorBundleWriter.BuildIndex"/>, which reproduces TensorFlow's own index files byte for byte
    /// (TensorBundleFixtureTests).
    /// </summary>
    private static void WriteOpenAiBundle(string directory)
    {
        var tensors = new List<(string Name, int[] Shape, byte[] Bytes)>();
        foreach (var (name, shape, bytes) in ReadFixtureTensors())
        {
            string openAi = name.Split('.', 3) switch
            {
                ["h", string layer, string rest] => $"model/h{layer}/{OpenAiLayerNames[rest]}",
                ["ln_f", "weight"] => "model/ln_f/g",
                ["ln_f", "bias"] => "model/ln_f/b",
                [string embedding, "weight"] => "model/" + embedding, // wte, wpe
                _ => throw new InvalidDataException($"the fixture has an unexpected tensor '{name}'"),
            };
            tensors.Add((openAi, openAi.EndsWith("/w", StringComparison.Ordinal) ? [1, .. shape] : shape, bytes));
        }
        tensors.Sort((a, b) => Encoding.UTF8.GetBytes(a.Name).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(b.Name)));

        Directory.CreateDirectory(directory);
        var data = new MemoryStream();
        var entries = new List<BundleEntry>();
        foreach (var (name, shape, bytes) in tensors)
        {
            const int DtFloat = 1;
            entries.Add(new BundleEntry(name, DtFloat, TensorDType.F32, shape, ShardId: 0, data.Length, bytes.Length, Crc32C.Mask(Crc32C.Compute(bytes))));
            data.Write(bytes);
        }
        File.WriteAllBytes(Path.Combine(directory, "model.ckpt.data-00000-of-00001"), data.ToArray());
        File.WriteAllBytes(Path.Combine(directory, "model.ckpt.index"), TensorBundleWriter.BuildIndex(entries, shardCount: 1));
        File.WriteAllText(Path.Combine(directory, "checkpoint"), "model_checkpoint_path: \"model.ckpt\"\nall_model_checkpoint_paths: \"model.ckpt\"\n");
        // The fixture's config.json (V=96, 32 positions, C=64, 4 heads, 2 layers) in hparams.json's keys and format.
        File.WriteAllText(Path.Combine(directory, "hparams.json"), "{\n  \"n_vocab\": 96,\n  \"n_ctx\": 32,\n  \"n_embd\": 64,\n  \"n_head\": 4,\n  \"n_layer\": 2\n}\n");
    }

    /// <summary>Every tensor of the fixture's model.safetensors (all F32), read from its JSON header and data offsets.</summary>
    private static IEnumerable<(string Name, int[] Shape, byte[] Bytes)> ReadFixtureTensors()
    {
        byte[] file = File.ReadAllBytes(TinyFixture.ModelPath);
        int dataStart = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        using var header = JsonDocument.Parse(file.AsMemory(8, dataStart - 8));
        foreach (var tensor in header.RootElement.EnumerateObject().Where(t => t.Name != "__metadata__"))
        {
            Assert.Equal("F32", tensor.Value.GetProperty("dtype").GetString());
            int[] shape = [.. tensor.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32())];
            var offsets = tensor.Value.GetProperty("data_offsets");
            int begin = offsets[0].GetInt32(), end = offsets[1].GetInt32();
            yield return (tensor.Name, shape, file[(dataStart + begin)..(dataStart + end)]);
        }
    }
}
