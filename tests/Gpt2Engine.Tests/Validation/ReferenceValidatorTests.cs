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
        Assert.Equal(["logits", "loss", "greedy_logits", "greedy"], report.Results.Select(r => r.Name));
        Assert.All(report.Results, r => Assert.True(r.Passed, r.ToString()));
        Assert.All(report.Results.Where(r => !r.IsExact), r => Assert.Equal(2e-5, r.Tolerance));
        Assert.True(report.Passed);
        // Training outputs are there but not this engine's business yet.
        Assert.Equal(["grad.*", "losses", "updated.*"], report.NotChecked);
    }

    [Fact]
    public void The_same_weights_as_a_TensorFlow_bundle_pass_too()
    {
        string bundle = Path.Combine(_temp, "bundle");
        using (var weights = CheckpointLoader.Load(TinyFixture.ModelPath))
            Gpt2Checkpoints.WriteTensorFlowBundle(bundle, weights);
        Assert.True(File.Exists(Path.Combine(bundle, "hparams.json")));
        using var loaded = CheckpointLoader.Load(bundle);
        Assert.StartsWith("TensorFlow", loaded.Source, StringComparison.OrdinalIgnoreCase);
        using var backend = new CpuBackend(1);
        var report = ReferenceValidator.Validate(loaded, backend, TinyFixture.ExpectedPath);
        Assert.Equal(4, report.Results.Count);
        Assert.All(report.Results, r => Assert.True(r.Passed, r.ToString()));
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
        Assert.Equal(4, lines.Count(l => l.EndsWith("OK") || l.Contains("  OK  ")));
        Assert.Contains("not checked: grad.*, losses, updated.*", lines);

        output = new StringWriter();
        error = new StringWriter();
        code = CliApp.Run(["validate", "--weights", TinyFixture.ModelPath, "--reference", TinyFixture.ExpectedPath, "--tolerance", "0"], output, error);
        Assert.Equal(1, code);
        Assert.Contains("FAIL", output.ToString());
        // float32 rounding is above zero on the logits (the loss may happen to round exactly).
        Assert.StartsWith("gpt2-engine: validation failed: logits, ", error.ToString());
        Assert.Contains("greedy_logits", error.ToString());
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
}
