using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cli;
using Gpt2Engine.Model;
using Xunit;

namespace Gpt2Engine.Tests.Checkpoints;

/// <summary>Every way a checkpoint can be broken ends in one Gpt2Exception line naming the file and the problem.</summary>
public class BadCheckpointTests
{
    private const string Index = "model.ckpt.index", Data = "model.ckpt.data-00000-of-00001";

    private static Gpt2Exception LoadFails(string path)
    {
        var e = Assert.Throws<Gpt2Exception>(() => CheckpointLoader.Load(path));
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    private static void RewriteIndex(TempDir dir, Func<List<BundleEntry>, IEnumerable<BundleEntry>> change)
    {
        var entries = TensorBundleIndex.Read(dir[Index]).Entries.ToList();
        File.WriteAllBytes(dir[Index], TensorBundleWriter.BuildIndex(change(entries), 1));
    }

    private static void Corrupt(string path, Action<byte[]> change)
    {
        byte[] bytes = File.ReadAllBytes(path);
        change(bytes);
        File.WriteAllBytes(path, bytes);
    }

    [Fact]
    public void Truncated_index()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        File.WriteAllBytes(dir[Index], File.ReadAllBytes(dir[Index])[..^30]);
        var e = LoadFails(dir.Path);
        Assert.Contains(dir[Index], e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Index_shorter_than_a_footer()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        File.WriteAllBytes(dir[Index], new byte[10]);
        Assert.Contains("truncated index (10 bytes", LoadFails(dir.Path).Message);
    }

    [Fact]
    public void Truncated_data_file()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        File.WriteAllBytes(dir[Data], File.ReadAllBytes(dir[Data])[..^4]);
        var e = LoadFails(dir.Path);
        Assert.Contains(dir[Data], e.Message);
        Assert.Contains("runs past the end", e.Message);
    }

    [Fact]
    public void Bad_magic()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        Corrupt(dir[Index], b => b[^1] ^= 0x40);
        var e = LoadFails(dir.Path);
        Assert.Contains(dir[Index], e.Message);
        Assert.Contains("bad table magic", e.Message);
    }

    [Fact]
    public void Bad_block_crc()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        Corrupt(dir[Index], b => b[20] ^= 1); // inside the first data block
        var e = LoadFails(dir.Path);
        Assert.Contains(dir[Index], e.Message);
        Assert.Contains("fails its CRC check", e.Message);
    }

    [Fact]
    public void Tensor_size_that_disagrees_with_its_shape()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        RewriteIndex(dir, entries => entries.Select(e => e.Name == "model/wpe" ? e with { Size = e.Size - 4 } : e));
        var e = LoadFails(dir.Path);
        Assert.Contains(dir[Index], e.Message);
        Assert.Contains("'model/wpe' has 212 bytes, but shape [9, 6] of float32 needs 216", e.Message);
    }

    [Fact]
    public void Shape_too_large_to_count()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        RewriteIndex(dir, entries => entries.Select(e => e.Name == "model/wpe" ? e with { Shape = [int.MaxValue, int.MaxValue, int.MaxValue] } : e));
        Assert.Contains("'model/wpe' has an impossibly large shape", LoadFails(dir.Path).Message);
    }

    [Fact]
    public void Model_tensor_that_is_not_float32()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        RewriteIndex(dir, entries => entries.Select(e => e.Name == "model/ln_f/g" ? e with { DataType = 3 } : e));
        Assert.Contains("'model/ln_f/g' has dtype int32", LoadFails(dir.Path).Message);
    }

    [Fact]
    public void Missing_tensor()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        RewriteIndex(dir, entries => entries.Where(e => e.Name != "model/h10/mlp/c_fc/b"));
        var e = LoadFails(dir.Path);
        Assert.Contains(dir["model.ckpt"], e.Message);
        Assert.Contains("missing tensor 'h.10.mlp.c_fc.bias'", e.Message);
    }

    [Theory]
    [InlineData(12, 148)] // one layer more than the file's eleven
    [InlineData(2_000_000_000, 24_000_000_004)] // would be a layout of 24 billion tensors
    public void N_layer_beyond_the_stored_tensors_fails_at_once(int layers, long needed)
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        File.WriteAllText(dir["hparams.json"], ConfigFiles.ToHparamsJson(TestFiles.Small with { Layers = layers }));
        Assert.Equal($"TensorFlow bundle {dir["model.ckpt"]}: n_layer={layers} needs {needed} tensors, but it holds 136", LoadFails(dir.Path).Message);
    }

    [Fact]
    public void Cli_inspect_of_a_huge_n_layer_in_safetensors_metadata_is_one_line()
    {
        using var dir = new TempDir();
        using (var small = CheckpointLoader.Load(TestFiles.WriteSmallSafetensors(dir["small.safetensors"])))
            SafetensorsWriter.Write(dir["huge.safetensors"], small.Tensors, ConfigFiles.ToMetadata(TestFiles.Small with { Layers = 2_000_000_000 }));
        var (output, error) = (new StringWriter(), new StringWriter());
        Assert.Equal(1, CliApp.Run(["inspect", "--weights", dir["huge.safetensors"]], output, error));
        Assert.Equal($"gpt2-engine: error: safetensors {dir["huge.safetensors"]}: n_layer=2000000000 needs 24000000004 tensors, but it holds 136\n", error.ToString());
    }

    [Fact]
    public void Weights_with_too_few_tensors_for_n_layer_fail_at_once()
    {
        using var dir = new TempDir();
        using var small = CheckpointLoader.Load(TestFiles.WriteSmallSafetensors(dir["small.safetensors"]));
        var tensors = small.Tensors.ToDictionary(t => t.Name);
        var e = Assert.Throws<Gpt2Exception>(() => new Gpt2Weights(TestFiles.Small with { Layers = int.MaxValue }, tensors, "training state", owner: null));
        Assert.Equal("training state: n_layer=2147483647 needs 25769803768 tensors, but it holds 136", e.Message);
    }

    [Fact]
    public void Extra_unknown_tensor_is_only_a_warning()
    {
        using var dir = new TempDir();
        var parameters = TestFiles.WriteSmallBundle(dir.Path);
        RewriteIndex(dir, entries => entries.Append(new BundleEntry("model/global_step", 1, TensorDType.F32, [1], 0, 0, 4, 0)));
        var warnings = new StringWriter();
        using var weights = CheckpointLoader.Load(dir.Path, warnings);
        Assert.Equal(parameters["ln_f.bias"], weights["ln_f.bias"].ToFloatArray());
        Assert.Contains("model/global_step", warnings.ToString());
        Assert.StartsWith("warning:", warnings.ToString());
    }

    [Fact]
    public void Shape_that_disagrees_with_hparams()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        File.WriteAllText(dir["hparams.json"], ConfigFiles.ToHparamsJson(TestFiles.Small with { ContextLength = 10 }));
        var e = LoadFails(dir.Path);
        Assert.Contains(dir["model.ckpt"], e.Message);
        Assert.Contains("'wpe.weight' has shape [9, 6], expected [10, 6]", e.Message);
    }

    [Fact]
    public void Missing_hparams_json()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        File.Delete(dir["hparams.json"]);
        Assert.Equal($"{dir["hparams.json"]}: missing hyperparameter file", LoadFails(dir.Path).Message);
    }

    [Fact]
    public void Unreadable_index()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        File.Delete(dir[Index]);
        Directory.CreateDirectory(dir[Index]); // a directory where the file should be: unreadable whatever the user's rights
        var e = LoadFails(dir.Path);
        Assert.StartsWith($"{dir[Index]}: cannot read checkpoint index", e.Message);
    }

    [Fact]
    public void Missing_index_next_to_hparams()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        File.Delete(dir[Index]);
        Assert.Equal($"{dir[Index]}: missing checkpoint index", LoadFails(dir.Path).Message);
    }

    [Fact]
    public void Bundle_that_is_not_a_gpt2_needs_hparams()
    {
        string dir = TestFiles.Fixture("tf-checkpoint", "tfrust-regression-model"); // its only index: variables.index
        Assert.Equal(Path.Combine(dir, "variables"), TensorBundle.FindPrefix(dir));
        Assert.Equal($"{Path.Combine(dir, "hparams.json")}: missing hyperparameter file", LoadFails(dir).Message);
    }

    [Fact]
    public void Directory_with_neither_format()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["notes.txt"], "hello");
        var e = LoadFails(dir.Path);
        Assert.Contains(dir.Path, e.Message);
        Assert.Contains("no checkpoint here", e.Message);
    }

    [Fact]
    public void Path_that_does_not_exist()
    {
        Assert.Contains("no such file or directory", LoadFails("/nonexistent/gpt2/weights").Message);
    }

    [Fact]
    public void Truncated_safetensors()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallSafetensors(dir["m.safetensors"]);
        File.WriteAllBytes(dir["m.safetensors"], File.ReadAllBytes(dir["m.safetensors"])[..^8]);
        var e = LoadFails(dir["m.safetensors"]);
        Assert.Contains(dir["m.safetensors"], e.Message);
    }

    [Fact]
    public void Safetensors_without_hyperparameters()
    {
        using var dir = new TempDir();
        using (var tiny = CheckpointLoader.Load(TestFiles.Fixture("tiny", "model.safetensors")))
            SafetensorsWriter.Write(dir["bare.safetensors"], tiny.Tensors);
        Assert.Contains("no hyperparameters", LoadFails(dir["bare.safetensors"]).Message);
    }

    [Fact]
    public void Cli_inspect_of_a_bad_checkpoint_prints_one_line_and_fails()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        Corrupt(dir[Index], b => b[20] ^= 1);
        var (output, error) = (new StringWriter(), new StringWriter());
        int code = CliApp.Run(["inspect", "--weights", dir.Path], output, error);
        Assert.NotEqual(0, code);
        string line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("gpt2-engine: error: ", line);
        Assert.Contains(dir[Index], line);
        Assert.DoesNotContain("   at ", error.ToString()); // no stack trace
    }

    [Fact]
    public void Cli_inspect_verify_reports_a_corrupt_tensor()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        Corrupt(dir[Data], b => b[^1] ^= 1); // last byte of the last tensor in key order: model/wte
        var (output, error) = (new StringWriter(), new StringWriter());
        Assert.Equal(1, CliApp.Run(["inspect", "--weights", dir.Path, "--verify"], output, error));
        var mismatches = output.ToString().Split('\n').Where(l => l.Contains("MISMATCH")).ToList();
        Assert.StartsWith("model/wte ", Assert.Single(mismatches));
        Assert.Contains("1 tensor(s) failed crc32c verification", error.ToString());
    }

    [Fact]
    public void Load_with_verification_rejects_a_corrupt_tensor()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        Corrupt(dir[Data], b => b[0] ^= 1); // first tensor in key order: model/h0/attn/c_attn/b
        CheckpointLoader.Load(dir.Path).Dispose(); // not checked unless asked
        var e = Assert.Throws<Gpt2Exception>(() => CheckpointLoader.Load(dir.Path, verifyChecksums: true));
        Assert.Equal($"{dir[Data]}: tensor 'model/h0/attn/c_attn/b' fails its crc32c check; the data file is corrupt", e.Message);
    }

    [Fact]
    public void Cli_inspect_lists_every_tensor_and_verifies()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        var (output, error) = (new StringWriter(), new StringWriter());
        Assert.Equal(0, CliApp.Run(["inspect", "--weights", dir.Path, "--verify"], output, error));
        string text = output.ToString();
        Assert.Contains($"parameters  {TestFiles.Small.ParameterCount:N0}", text);
        Assert.Contains("n_vocab=37 n_ctx=9 n_embd=6 n_layer=11 n_head=2", text);
        Assert.Equal(4 + 12 * 11, text.Split('\n').Count(l => l.StartsWith("model/", StringComparison.Ordinal)));
        Assert.Contains("136 ok, 0 failed", text);
        Assert.Equal("", error.ToString());

        output.GetStringBuilder().Clear();
        Assert.Equal(0, CliApp.Run(["inspect", "--weights", TestFiles.Fixture("tiny", "model.safetensors"), "--verify"], output, error));
        Assert.Contains("no checksums", output.ToString());
    }
}
