using Xunit;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;

namespace Gpt2Engine.Tests;

/// <summary>Paths of the fixtures copied beside the test assembly, and the tiny reference model's expected tensors.</summary>
public static class TestFixtures
{
    public static string Path(params string[] parts) => System.IO.Path.Combine([AppContext.BaseDirectory, "Fixtures", .. parts]);

    public static string TinyDirectory => Path("tiny");
    public static string TinyModel => Path("tiny", "model.safetensors");

    /// <summary>The tiny model's reference tensors (logits, loss, grad.*, losses, updated.*, prompt, greedy, greedy_logits).</summary>
    public static SafetensorsFile OpenTinyExpected() => SafetensorsFile.Open(Path("tiny", "expected.safetensors"));

    /// <summary>
    /// Greedy decoding of the fixture's prompt through <paramref name="model"/>'s KV cache: every step's last-position
    /// logits within 1e-5 of the fixture's greedy_logits, and the same tokens.
    /// </summary>
    public static void AssertGreedyDecodingMatchesTiny(Gpt2Model model)
    {
        using var expected = OpenTinyExpected();
        int[] prompt = expected["prompt"].AsSpan<int>().ToArray(), greedy = expected["greedy"].AsSpan<int>().ToArray();
        var greedyLogits = expected["greedy_logits"].AsSpan<float>();
        int V = model.Config.VocabSize;
        using var session = model.CreateSession(1);
        var logits = session.Forward(prompt, prompt.Length);
        for (int step = 0; step < greedy.Length; step++)
        {
            Assert.True(MaxAbsDiff(logits, greedyLogits.Slice(step * V, V)) <= 1e-5, $"step {step}");
            int next = 0;
            for (int i = 1; i < V; i++) if (logits[i] > logits[next]) next = i;
            Assert.Equal(greedy[step], next);
            logits = session.Forward(new[] { next }, 1);
        }
    }

    /// <summary>Largest |a - b| over two equally long arrays.</summary>
    public static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs((double)a[i] - b[i]));
        return max;
    }
}
