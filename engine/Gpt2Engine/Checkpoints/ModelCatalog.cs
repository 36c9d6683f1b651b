using Gpt2Engine.Model;

namespace Gpt2Engine.Checkpoints;

/// <summary>
/// The official OpenAI releases: size names → release names → folders under the weights root, the seven published
/// files and their known sizes. See shared/docs/openai-checkpoint.md §1.
/// </summary>
public static class ModelCatalog
{
    public const string DefaultBaseUrl = "https://openaipublic.blob.core.windows.net/gpt-2/models";
    public const string WeightsDirVariable = "GPT2_WEIGHTS_DIR";
    public const string DataFile = "model.ckpt.data-00000-of-00001";

    /// <summary>What <c>download_model.py</c> fetches into <c>models/&lt;name&gt;/</c>.</summary>
    public static readonly IReadOnlyList<string> Files =
        ["checkpoint", "encoder.json", "hparams.json", DataFile, "model.ckpt.index", "model.ckpt.meta", "vocab.bpe"];

    // Content-Length of the official files as public download tests assert them; the data file of every size is
    // 4 bytes per parameter (exact for 124M and 355M, so trusted for the larger two).
    private static readonly Dictionary<string, Dictionary<string, long>> PublishedSizes = new()
    {
        ["124M"] = new() { ["checkpoint"] = 77, ["encoder.json"] = 1_042_301, ["hparams.json"] = 90, ["model.ckpt.index"] = 5_215, ["model.ckpt.meta"] = 471_155, ["vocab.bpe"] = 456_318 },
        ["355M"] = new() { ["checkpoint"] = 77, ["encoder.json"] = 1_042_301, ["hparams.json"] = 91, ["model.ckpt.index"] = 10_399, ["model.ckpt.meta"] = 926_519, ["vocab.bpe"] = 456_318 },
    };

    /// <summary>The release name (124M, 355M, 774M, 1558M) for a release or paper name (117M, 345M, 762M, 1542M).</summary>
    public static bool TryGetReleaseName(string name, out string releaseName) => Gpt2Sizes.TryFind(name, out releaseName, out _);

    public static string ReleaseName(string name) =>
        TryGetReleaseName(name, out string release) ? release : throw new Gpt2Exception($"unknown model size '{name}'; known sizes: {Gpt2Sizes.Names}");

    /// <summary>The folder that holds <c>&lt;release&gt;/</c> folders: $GPT2_WEIGHTS_DIR, else the nearest <c>weights/</c> above the current directory, else ./weights.</summary>
    public static string WeightsRoot()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable(WeightsDirVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment)) return Path.GetFullPath(fromEnvironment);
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "weights");
            if (Directory.Exists(candidate)) return candidate;
        }
        return Path.GetFullPath("weights");
    }

    public static string DirectoryFor(string releaseName, string? root = null) => Path.Combine(root ?? WeightsRoot(), releaseName);

    /// <summary>The published size of one file of a release, when known.</summary>
    public static long? KnownSize(string releaseName, string file)
    {
        if (file == DataFile && Gpt2Sizes.TryFind(releaseName, out _, out var config)) return 4 * config.ParameterCount;
        return PublishedSizes.TryGetValue(releaseName, out var sizes) && sizes.TryGetValue(file, out long size) ? size : null;
    }

    public static Uri FileUrl(string baseUrl, string releaseName, string file) => new($"{baseUrl.TrimEnd('/')}/{releaseName}/{file}");
}
