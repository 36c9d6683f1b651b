using System.Buffers.Binary;
using System.Text;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;
using Xunit;

namespace Gpt2Engine.Tests.Checkpoints;

public class SafetensorsTests
{
    private static readonly string HfDirectory = TestFiles.Fixture("safetensors", "tiny-random-gpt2");

    [Fact]
    public void Real_hugging_face_file_with_transformer_prefix_loads()
    {
        using var weights = CheckpointLoader.Load(HfDirectory);
        // Expected values from the fixture README (decoded by an independent reader).
        Assert.Equal(new Gpt2Config(1000, 512, 32, 5, 4), weights.Config);
        Assert.Equal([32, 96], weights["h.0.attn.c_attn.weight"].Shape);
        Assert.Equal(0.02560567855834961f, weights["h.0.attn.c_attn.weight"].AsSpan<float>()[0]);
        Assert.Equal(-0.004004547372460365f, weights["h.0.mlp.c_proj.weight"].AsSpan<float>()[0]);
        Assert.Equal(0.01554951909929514f, weights["wpe.weight"].AsSpan<float>()[0]);
        Assert.Equal(-0.020643139258027077f, weights["wte.weight"].AsSpan<float>()[0]);
        Assert.Equal(1f, weights["h.4.ln_2.weight"].AsSpan<float>()[0]);
        Assert.Equal(HfDirectory, CheckpointLoader.ResolveDirectory(HfDirectory));
    }

    [Fact]
    public void Header_offsets_follow_the_fixture()
    {
        using var file = SafetensorsFile.Open(Path.Combine(HfDirectory, "model.safetensors"));
        Assert.Equal(64, file.Tensors.Count);
        Assert.Equal("pt", file.Metadata["format"]);
        nint data = file["transformer.h.0.attn.c_attn.bias"].Address;
        Assert.Equal(384, file["transformer.h.0.attn.c_attn.weight"].Address - data);
        Assert.Equal(319_872, file["transformer.wte.weight"].Address - data);
    }

    /// <summary>A one-tensor file with the given header JSON and data length.</summary>
    private static string WriteRaw(TempDir dir, string json, int dataLength, ulong? headerLength = null)
    {
        byte[] header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + dataLength];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        File.WriteAllBytes(dir["x.safetensors"], bytes);
        return dir["x.safetensors"];
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 8, null, null)]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 8, 1_000_000_000UL, "corrupt safetensors header length")]
    [InlineData("""["a"]""", 0, null, "does not start with '{'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, null, "needs 12")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 4, null, "outside the 4-byte data section")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, null, "expected 0")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 8, null, "the tensors cover 4")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,4]}}""", 4, null, "needs more than 2^63")]
    [InlineData("""{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}}""", 4, null, "unsupported dtype 'Q4'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1]}}""", 4, null, "tensor 'a' has no 'data_offsets'")]
    [InlineData("""{"a":{"shape":[2],"data_offsets":[0,8]}}""", 8, null, "tensor 'a' has no 'dtype'")]
    [InlineData("""{"a":{"dtype":"F32","data_offsets":[0,8]}}""", 8, null, "tensor 'a' has no 'shape'")]
    [InlineData("""{"a":{"dtype":32,"shape":[2],"data_offsets":[0,8]}}""", 8, null, "tensor 'a' has 'dtype' 32; expected a string such as \"F32\"")]
    [InlineData("""{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}""", 8, null, "tensor 'a' has 'shape' \"2\"; expected a list of dimensions")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,8]}}""", 8, null, "tensor 'a' has shape [2,-1]; dimensions are integers from 0 to 2147483647")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}""", 8, null, "tensor 'a' has shape [2.5]; dimensions are integers")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2,"x"],"data_offsets":[0,8]}}""", 8, null, "tensor 'a' has shape [2,\"x\"]; dimensions are integers")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[\n  2,\n  -1\n],\"data_offsets\":[0,8]}}", 8, null, "tensor 'a' has shape [ 2, -1 ]; dimensions")] // on one line
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":{"begin":0}}}""", 8, null, "tensor 'a' has 'data_offsets' {\"begin\":0}; expected [begin, end]")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}}""", 8, null, "tensor 'a' has data_offsets [0,4,8]; expected [begin, end], byte offsets with begin <= end")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", 8, null, "tensor 'a' has data_offsets [8,0]; expected [begin, end]")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}""", 8, null, "tensor 'a' has data_offsets [-8,0]; expected [begin, end]")]
    [InlineData("""{"a":[1,2]}""", 8, null, "tensor 'a' must be an object with 'dtype', 'shape' and 'data_offsets', not [1,2]")]
    [InlineData("""{"__metadata__":"pt","a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 8, null, "'__metadata__' must be an object of strings, not \"pt\"")]
    [InlineData("""{"__metadata__":{"n_layer":12},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 8, null, "metadata value 'n_layer' is not a string")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 8, null, "duplicate header entry 'a'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}""", 8, null, "the safetensors header is not valid JSON (")]
    public void Header_is_validated(string json, int dataLength, ulong? headerLength, string? error)
    {
        using var dir = new TempDir();
        string path = WriteRaw(dir, json, dataLength, headerLength);
        if (error is null)
        {
            using var file = SafetensorsFile.Open(path);
            Assert.Equal([2], file["a"].Shape);
            return;
        }
        var e = Assert.Throws<Gpt2Exception>(() => SafetensorsFile.Open(path));
        Assert.StartsWith($"{path}: ", e.Message);
        Assert.Contains(error, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Header_that_is_not_utf8_is_rejected()
    {
        using var dir = new TempDir();
        string path = WriteRaw(dir, """{"a?":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 8);
        byte[] bytes = File.ReadAllBytes(path);
        bytes[8 + 3] = 0xFF; // the '?' of the tensor's name: never a byte of UTF-8
        File.WriteAllBytes(path, bytes);
        Assert.Equal($"{path}: the safetensors header is not valid UTF-8", Assert.Throws<Gpt2Exception>(() => SafetensorsFile.Open(path)).Message);
    }

    [Fact]
    public void Writer_pads_the_header_and_puts_wide_dtypes_first()
    {
        using var dir = new TempDir();
        var halves = new Half[] { (Half)1, (Half)2, (Half)3 };
        var floats = new float[] { 4, 5 };
        unsafe
        {
            fixed (Half* h = halves)
            fixed (float* f = floats)
            {
                SafetensorsWriter.Write(dir["w.safetensors"],
                    [new TensorView("half", TensorDType.F16, [3], (nint)h), new TensorView("float", TensorDType.F32, [2], (nint)f)],
                    new Dictionary<string, string> { ["note"] = "hi" });
            }
        }
        byte[] bytes = File.ReadAllBytes(dir["w.safetensors"]);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, (8 + n) % 64);
        Assert.Equal((long)(8 + n + 8 + 6), bytes.Length);
        Assert.Equal(4f, BitConverter.ToSingle(bytes, (int)(8 + n))); // float data first: wider dtype
        using var file = SafetensorsFile.Open(dir["w.safetensors"]);
        Assert.Equal(halves, file["half"].AsSpan<Half>().ToArray());
        Assert.Equal(floats, file["float"].AsSpan<float>().ToArray());
        Assert.Equal("hi", file.Metadata["note"]);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp-*"));
    }
}
