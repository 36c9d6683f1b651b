using Gpt2Engine.Training;

namespace Gpt2Engine.Tests.Training;

/// <summary>A temporary directory of token shards for tests, deleted on dispose.</summary>
internal sealed class TrainingData : IDisposable
{
    public string Directory { get; } = Path.Combine(Path.GetTempPath(), "gpt2-training-" + Path.GetRandomFileName());

    public TrainingData() => System.IO.Directory.CreateDirectory(Directory);

    public string File(params string[] parts) => Path.Combine([Directory, .. parts]);

    /// <summary>Writes split_000.bin, split_001.bin ... holding <paramref name="shards"/>.</summary>
    public void WriteSplit(string split, params ushort[][] shards)
    {
        for (int i = 0; i < shards.Length; i++) TokenShard.Write(File($"{split}_{i:D3}.bin"), shards[i]);
    }

    /// <summary><paramref name="count"/> pseudo-random tokens below <paramref name="vocabulary"/>.</summary>
    public static ushort[] RandomTokens(int count, int vocabulary, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (ushort)random.Next(vocabulary)).ToArray();
    }

    public void Dispose()
    {
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}
