using System.Buffers.Binary;
using System.Text.Json;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;
using Xunit;

namespace Gpt2Engine.Tests.Checkpoints;

public class CheckpointLoaderTests
{
    [Fact]
    public void Tiny_fixture_loads_with_config_json_beside_it()
    {
        string path = TestFiles.Fixture("tiny", "model.safetensors");
        using var weights = CheckpointLoader.Load(path);
        Assert.Equal(new Gpt2Config(96, 32, 64, 2, 4), weights.Config); // fixture README: V=96, maxT=32, C=64, L=2, NH=4
        Assert.Equal(108_288, weights.Config.ParameterCount);
        Assert.Equal(Path.GetDirectoryName(path), CheckpointLoader.ResolveDirectory(path));

        // An independent read of the file: header JSON, then the tensor at its data offset.
        byte[] file = File.ReadAllBytes(path);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        using var header = JsonDocument.Parse(file.AsMemory(8, (int)headerLength));
        foreach (string name in new[] { "wte.weight", "h.1.mlp.c_proj.weight", "ln_f.bias" })
        {
            var stored = header.RootElement.GetProperty(name);
            long begin = stored.GetProperty("data_offsets")[0].GetInt64(), end = stored.GetProperty("data_offsets")[1].GetInt64();
            var expected = new float[(end - begin) / 4];
            Buffer.BlockCopy(file, (int)(8 + headerLength + begin), expected, 0, (int)(end - begin));
            Assert.Equal(expected, weights[name].ToFloatArray());
        }
    }

    [Fact]
    public void Both_formats_written_by_the_engine_load_to_the_same_tensors()
    {
        using var dir = new TempDir();
        var parameters = TestFiles.WriteSmallBundle(dir["openai"]);
        Gpt2Checkpoints.WriteSafetensors(dir["model.safetensors"], TestFiles.Small, parameters);

        using var fromBundle = CheckpointLoader.Load(dir["openai"]);
        using var fromSafetensors = CheckpointLoader.Load(dir["model.safetensors"]); // config from its metadata
        Assert.Equal(TestFiles.Small, fromBundle.Config);
        Assert.Equal(TestFiles.Small, fromSafetensors.Config);
        foreach (var spec in fromBundle.Layout.Specs)
        {
            Assert.Equal(spec.Shape, fromBundle[spec.Name].Shape);
            Assert.Equal(parameters[spec.Name], fromBundle[spec.Name].ToFloatArray());
            Assert.Equal(parameters[spec.Name], fromSafetensors[spec.Name].ToFloatArray());
        }
    }

    [Fact]
    public void Written_bundle_has_the_official_file_set_and_names()
    {
        using var dir = new TempDir();
        TestFiles.WriteSmallBundle(dir.Path);
        Assert.Equal(["checkpoint", "hparams.json", "model.ckpt.data-00000-of-00001", "model.ckpt.index"],
            Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order());
        Assert.Equal("model_checkpoint_path: \"model.ckpt\"\nall_model_checkpoint_paths: \"model.ckpt\"\n", File.ReadAllText(dir["checkpoint"]));
        var index = TensorBundleIndex.Read(dir["model.ckpt.index"]);
        Assert.Equal(4 + 12 * TestFiles.Small.Layers, index.Entries.Count);
        var cAttn = index.Entries.Single(e => e.Name == "model/h10/attn/c_attn/w");
        Assert.Equal([1, 6, 18], cAttn.Shape);
        Assert.Equal(["model/h0/attn/c_attn/b", "model/h0/attn/c_attn/w"], index.Entries.Take(2).Select(e => e.Name));
        Assert.Equal(4 * TestFiles.Small.ParameterCount, new FileInfo(dir["model.ckpt.data-00000-of-00001"]).Length);
        using var bundle = TensorBundle.Open(dir["model.ckpt"]);
        Assert.All(bundle.Entries, e => Assert.True(bundle.VerifyCrc32C(e)));
    }

    [Fact]
    public void Checkpoint_state_file_picks_the_prefix_even_with_a_foreign_absolute_path()
    {
        using var dir = new TempDir();
        var parameters = TestFiles.WriteSmallBundle(dir.Path);
        foreach (string suffix in new[] { ".index", ".data-00000-of-00001" }) File.Move(dir["model.ckpt" + suffix], dir["model-4614" + suffix]);
        File.WriteAllText(dir["checkpoint"], "model_checkpoint_path: \"/home/someone/run1/model-4614\"\nall_model_checkpoint_paths: \"/home/someone/run1/model-4614\"\n");
        Assert.Equal(dir["model-4614"], TensorBundle.FindPrefix(dir.Path));
        using var weights = CheckpointLoader.Load(dir.Path);
        Assert.Equal(parameters["wpe.weight"], weights["wpe.weight"].ToFloatArray());
        string real = TestFiles.Fixture("tf-checkpoint", "gpt2-124M-finetuned-index"); // a TF-written state file, relative path
        Assert.Equal(Path.Combine(real, "model-4614"), TensorBundle.FindPrefix(real));
    }

    [Fact]
    public void Loaded_weights_write_back_identically_in_both_formats()
    {
        using var dir = new TempDir();
        using var original = CheckpointLoader.Load(TestFiles.Fixture("tiny", "model.safetensors"));
        Gpt2Checkpoints.WriteTensorFlowBundle(dir["tf"], original);
        Gpt2Checkpoints.WriteSafetensors(dir["copy.safetensors"], original);
        using var tf = CheckpointLoader.Load(dir["tf"]);
        using var copy = CheckpointLoader.Load(dir["copy.safetensors"]);
        foreach (var spec in original.Layout.Specs)
        {
            Assert.Equal(original[spec.Name].ToFloatArray(), tf[spec.Name].ToFloatArray());
            Assert.Equal(original[spec.Name].ToFloatArray(), copy[spec.Name].ToFloatArray());
        }
        using var file = SafetensorsFile.Open(dir["copy.safetensors"]);
        Assert.Equal("pt", file.Metadata["format"]);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(File.ReadAllBytes(dir["copy.safetensors"]));
        Assert.Equal(0UL, (8 + headerLength) % 64); // data starts on a cache line, and so does every GPT-2 tensor
    }

    [Fact]
    public void Hugging_face_names_with_prefix_buffers_and_tied_head_are_accepted()
    {
        using var dir = new TempDir();
        var config = TestFiles.Small;
        var parameters = TestFiles.RandomParameters(config);
        var pinned = parameters.ToDictionary(p => "transformer." + p.Key, p => p.Value);
        var mask = new float[config.ContextLength * config.ContextLength];
        var extraValues = new float[3];
        var views = new List<TensorView>();
        var handles = new List<System.Runtime.InteropServices.GCHandle>();
        TensorView Pin(string name, float[] data, int[] shape)
        {
            var h = System.Runtime.InteropServices.GCHandle.Alloc(data, System.Runtime.InteropServices.GCHandleType.Pinned);
            handles.Add(h);
            return new TensorView(name, TensorDType.F32, shape, h.AddrOfPinnedObject());
        }
        var layout = ParameterLayout.For(config);
        foreach (var spec in layout.Specs) views.Add(Pin("transformer." + spec.Name, parameters[spec.Name], spec.Shape));
        views.Add(Pin("transformer.h.0.attn.bias", mask, [1, 1, config.ContextLength, config.ContextLength]));
        views.Add(Pin("transformer.h.0.attn.masked_bias", [-1e4f], []));
        views.Add(Pin("lm_head.weight", parameters["wte.weight"], [config.VocabSize, config.Channels]));
        views.Add(Pin("transformer.extra.thing", extraValues, [3]));
        SafetensorsWriter.Write(dir["model.safetensors"], views, new Dictionary<string, string> { ["format"] = "pt" });
        handles.ForEach(h => h.Free());
        File.WriteAllText(dir["config.json"], $$"""{"vocab_size": {{config.VocabSize}}, "n_positions": {{config.ContextLength}}, "n_ctx": {{config.ContextLength}}, "n_embd": {{config.Channels}}, "n_layer": {{config.Layers}}, "n_head": {{config.Heads}}}""");

        var warnings = new StringWriter();
        using var weights = CheckpointLoader.Load(dir.Path, warnings);
        Assert.Equal(parameters["h.3.mlp.c_fc.weight"], weights["h.3.mlp.c_fc.weight"].ToFloatArray());
        string warning = Assert.Single(warnings.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("transformer.extra.thing", warning);
        Assert.DoesNotContain("attn.bias", warning);
    }

    [Fact]
    public void Known_sizes_follow_the_published_table()
    {
        Assert.Equal(497_759_232L, ModelCatalog.KnownSize("124M", ModelCatalog.DataFile));
        Assert.Equal(1_419_292_672L, ModelCatalog.KnownSize("355M", ModelCatalog.DataFile));
        Assert.Equal(6_230_444_800L, ModelCatalog.KnownSize("1558M", ModelCatalog.DataFile));
        Assert.Equal(5_215L, ModelCatalog.KnownSize("124M", "model.ckpt.index"));
        Assert.Null(ModelCatalog.KnownSize("774M", "model.ckpt.index"));
        Assert.Equal(7, ModelCatalog.Files.Count);
    }

    [Fact]
    public void Canonical_and_openai_names_round_trip_for_every_parameter()
    {
        foreach (var spec in ParameterLayout.For(TestFiles.Small).Specs)
            Assert.Equal(spec.Name, OpenAiNames.ToCanonical(OpenAiNames.FromCanonical(spec.Name)));
        Assert.Equal("model/h7/ln_2/g", OpenAiNames.FromCanonical("h.7.ln_2.weight"));
        Assert.Equal("model/h7/mlp/c_proj/w", OpenAiNames.FromCanonical("h.7.mlp.c_proj.weight"));
        Assert.Null(OpenAiNames.ToCanonical("model/h07/ln_1/g"));
        Assert.Null(OpenAiNames.ToCanonical("global_step"));
    }

    [Fact]
    public void Config_json_spellings_are_read_and_conflicts_rejected()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["a.json"], """{"n_vocab": 5, "n_positions": 4, "n_embd": 6, "n_layer": 1, "n_head": 3}""");
        Assert.Equal(new Gpt2Config(5, 4, 6, 1, 3), ConfigFiles.Read(dir["a.json"]));
        File.WriteAllText(dir["b.json"], """{"vocab_size": 5, "n_ctx": 8, "n_positions": 4, "n_embd": 6, "n_layer": 1, "n_head": 3}""");
        var e = Assert.Throws<Gpt2Exception>(() => ConfigFiles.Read(dir["b.json"]));
        Assert.Contains("b.json", e.Message);
        Assert.Contains("n_positions", e.Message);
    }
}

/// <summary>Tests that set $GPT2_WEIGHTS_DIR, which every test resolving a size name or the default weights reads.</summary>
[Collection(nameof(ProcessEnvironment))]
public class WeightsRootTests
{
    [Fact]
    public void Size_names_resolve_under_the_weights_root()
    {
        using var dir = new TempDir();
        string? saved = Environment.GetEnvironmentVariable(ModelCatalog.WeightsDirVariable);
        try
        {
            Environment.SetEnvironmentVariable(ModelCatalog.WeightsDirVariable, dir.Path);
            Assert.Equal(Path.Combine(dir.Path, "124M"), ModelCatalog.DirectoryFor(ModelCatalog.ReleaseName("117M")));
            var e = Assert.Throws<Gpt2Exception>(() => CheckpointLoader.Load("345M"));
            Assert.Contains(Path.Combine(dir.Path, "355M"), e.Message);
            Assert.Contains("download 355M", e.Message);
            Directory.CreateDirectory(dir["1558M"]);
            Assert.Equal(dir["1558M"], CheckpointLoader.ResolveDirectory("1542M"));
        }
        finally
        {
            Environment.SetEnvironmentVariable(ModelCatalog.WeightsDirVariable, saved);
        }
    }
}
