using Xunit;
using Gpt2Engine.Checkpoints;

namespace Gpt2Engine.Tests;

/// <summary>Paths of the fixtures copied beside the test assembly, and the tiny reference model's expected tensors.</summary>
public static class TestFixtures
{
    public static string Path(params string[] parts) => System.IO.Path.Combine([AppContext.BaseDirectory, "Fixtures", .. parts]);

    public static string TinyDirectory => Path("tiny");
    public static string TinyModel => Path("tiny", "model.safetensors");

    /// <summary>The tiny model's reference tensors (logits, loss, grad.*, losses, updated.*, prompt, greedy, greedy_logits).</summary>
    public static SafetensorsFile OpenTinyExpected() => SafetensorsFile.Open(Path("tiny", "expected.safetensors"));

    /// <summary>Largest |a - b| over two equally long arrays.</summary>
    public static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs((double)a[i] - b[i]));
        return max;
    }
}
