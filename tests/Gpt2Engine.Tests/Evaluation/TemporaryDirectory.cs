namespace Gpt2Engine.Tests.Evaluation;

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
internal sealed class TemporaryDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("gpt2-eval-").FullName;

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
