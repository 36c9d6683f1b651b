using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cpu;
using Gpt2Engine.Model;

namespace Gpt2Engine.Tests.Generation;

/// <summary>The tiny reference GPT-2 (V=96, context 32, 2 layers) of Fixtures/tiny and its expected outputs.</summary>
internal static class TinyFixture
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "Fixtures", "tiny");
    public static string ModelPath => Path.Combine(Directory, "model.safetensors");
    public static string ExpectedPath => Path.Combine(Directory, "expected.safetensors");

    /// <summary>The model on a single-threaded CPU backend (it owns the weights and the backend).</summary>
    public static Gpt2Model LoadModel() => new(CheckpointLoader.Load(ModelPath), new CpuBackend(1), ownsWeights: true, ownsBackend: true);

    public static int[] Ints(string name)
    {
        using var file = SafetensorsFile.Open(ExpectedPath);
        return file[name].AsSpan<int>().ToArray();
    }

    public static float[] Floats(string name)
    {
        using var file = SafetensorsFile.Open(ExpectedPath);
        return file[name].ToFloatArray();
    }
}
