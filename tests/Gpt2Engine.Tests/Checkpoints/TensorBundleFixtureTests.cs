using System.Globalization;
using Gpt2Engine.Checkpoints;
using Xunit;

namespace Gpt2Engine.Tests.Checkpoints;

/// <summary>Bundles written by TensorFlow itself (Fixtures/tf-checkpoint, expected values from their READMEs).</summary>
public class TensorBundleFixtureTests
{
    private static readonly string Gpt2Index = TestFiles.Fixture("tf-checkpoint", "gpt2-124M-finetuned-index", "model-4614.index");

    [Fact]
    public void Tf1_regression_model_has_its_two_tensors_with_values_and_crcs()
    {
        using var bundle = TensorBundle.Open(TestFiles.Fixture("tf-checkpoint", "tfrust-regression-model", "variables"));
        Assert.Equal(1, bundle.Index.ShardCount);
        Assert.Equal(["b", "w"], bundle.Entries.Select(e => e.Name));
        var (b, w) = (bundle.Entries[0], bundle.Entries[1]);
        Assert.Equal((0L, 4L, 0x3A117BA6u), (b.Offset, b.Size, b.MaskedCrc32C));
        Assert.Equal((4L, 4L, 0x1B530575u), (w.Offset, w.Size, w.MaskedCrc32C));
        Assert.Equal([1], w.Shape);
        Assert.Equal(0f, bundle.View(b).AsSpan<float>()[0]);
        Assert.Equal(BitConverter.UInt32BitsToSingle(0xBF5B9CDC), bundle.View(w).AsSpan<float>()[0]);
        Assert.All(bundle.Entries, e => Assert.True(bundle.VerifyCrc32C(e)));
    }

    [Fact]
    public void Tf2_object_checkpoint_reads_scalars_int64_and_string_with_crcs()
    {
        using var bundle = TensorBundle.Open(TestFiles.Fixture("tf-checkpoint", "tfrust-regression-savedmodel", "variables"));
        Assert.Equal(7, bundle.Entries.Count);
        var byName = bundle.Entries.ToDictionary(e => e.Name);
        var graph = byName["_CHECKPOINTABLE_OBJECT_GRAPH"];
        Assert.Equal(("string", 28L, 537L), (graph.DataTypeName, graph.Offset, graph.Size));
        Assert.Empty(graph.Shape);
        var iter = byName["optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE"];
        Assert.Equal((TensorDType.I64, 8L), (iter.DType, iter.Offset));
        Assert.Equal(0L, bundle.View(iter).AsSpan<long>()[0]);
        Assert.Equal(0.5f, bundle.View(byName["optimizer/learning_rate/.ATTRIBUTES/VARIABLE_VALUE"]).AsSpan<float>()[0]);
        Assert.Equal(BitConverter.UInt32BitsToSingle(0x3E513360), bundle.View(byName["w/.ATTRIBUTES/VARIABLE_VALUE"]).AsSpan<float>()[0]);
        Assert.All(bundle.Entries, e => Assert.True(bundle.VerifyCrc32C(e), e.Name));
    }

    [Fact]
    public void Real_gpt2_124M_index_matches_tensors_tsv_and_is_contiguous()
    {
        var index = TensorBundleIndex.Read(Gpt2Index);
        var expected = ReadTensorsTsv();
        Assert.Equal(148, index.Entries.Count);
        Assert.Equal(expected, index.Entries.Select(e => (e.Name, e.DataType, string.Join(",", e.Shape), e.ShardId, e.Offset, e.Size, e.MaskedCrc32C)));

        long end = 0;
        foreach (var e in index.Entries.OrderBy(e => e.Offset))
        {
            Assert.Equal(end, e.Offset);
            end += e.Size;
        }
        Assert.Equal(497_759_232L, end);
        Assert.Equal(4L * TestFiles.Gpt2Small.ParameterCount, end);
    }

    [Fact]
    public void Real_gpt2_124M_names_map_to_the_canonical_layout()
    {
        var index = TensorBundleIndex.Read(Gpt2Index);
        var layout = Gpt2Engine.Model.ParameterLayout.For(TestFiles.Gpt2Small);
        var mapped = index.Entries.ToDictionary(e => OpenAiNames.ToCanonical(e.Name)!, e => e.Shape is [1, .. var rest] ? rest : e.Shape);
        Assert.Equal(layout.Specs.Select(s => s.Name).Order(), mapped.Keys.Order());
        Assert.All(layout.Specs, s => Assert.Equal(s.Shape, mapped[s.Name]));
        Assert.Equal("h.10.attn.c_attn.weight", OpenAiNames.ToCanonical("model/h10/attn/c_attn/w"));
    }

    [Fact]
    public void Writer_reproduces_tensorflow_index_files_byte_for_byte()
    {
        var index = TensorBundleIndex.Read(Gpt2Index);
        Assert.Equal(File.ReadAllBytes(Gpt2Index), TensorBundleWriter.BuildIndex(index.Entries, index.ShardCount));
        string small = TestFiles.Fixture("tf-checkpoint", "tfrust-regression-model", "variables.index");
        Assert.Equal(File.ReadAllBytes(small), TensorBundleWriter.BuildIndex(TensorBundleIndex.Read(small).Entries, 1));
    }

    [Fact]
    public void Index_without_its_data_shard_is_a_clear_missing_shard_error()
    {
        using var dir = new TempDir();
        foreach (string file in new[] { "model-4614.index", "checkpoint" })
            File.Copy(TestFiles.Fixture("tf-checkpoint", "gpt2-124M-finetuned-index", file), dir[file]);
        File.WriteAllText(dir["hparams.json"], ConfigFiles.ToHparamsJson(TestFiles.Gpt2Small));
        var e = Assert.Throws<Gpt2Exception>(() => CheckpointLoader.Load(dir.Path));
        Assert.Contains("model-4614.data-00000-of-00001", e.Message);
        Assert.Contains("missing data shard", e.Message);
    }

    private static List<(string, int, string, int, long, long, uint)> ReadTensorsTsv() =>
        File.ReadLines(TestFiles.Fixture("tf-checkpoint", "gpt2-124M-finetuned-index", "tensors.tsv")).Skip(1)
            .Select(line => line.Split('\t'))
            .Select(f => (f[0], int.Parse(f[1], CultureInfo.InvariantCulture), f[2], int.Parse(f[3], CultureInfo.InvariantCulture),
                long.Parse(f[4], CultureInfo.InvariantCulture), long.Parse(f[5], CultureInfo.InvariantCulture), Convert.ToUInt32(f[6], 16)))
            .ToList();
}
