using Gpt2Engine.Model;
using Gpt2Engine.Tokenization;

namespace Gpt2Engine.Training;

/// <summary>What <see cref="DataPreparation.Prepare"/> wrote.</summary>
public sealed record PreparedData(int Documents, long TrainTokens, long ValidationTokens, IReadOnlyList<string> Files);

/// <summary>
/// Turns text files into token shards for training: each file is a document (a literal &lt;|endoftext|&gt; inside one
/// separates further documents), and every document starts with the &lt;|endoftext|&gt; token 50256, as in GPT-2's
/// training data. The last <c>validationFraction</c> of the token stream becomes the validation split.
/// </summary>
public static class DataPreparation
{
    /// <summary>Tokens per shard file (200 MB of uint16).</summary>
    public const int ShardTokens = 100_000_000;

    public static PreparedData Prepare(IReadOnlyList<string> textFiles, string outputDirectory, double validationFraction)
    {
        if (textFiles.Count == 0) throw new Gpt2Exception("no input text files given");
        if (!(validationFraction >= 0 && validationFraction < 1)) throw new Gpt2Exception($"--val-fraction {validationFraction} must be in [0, 1)");
        var tokens = new List<ushort>();
        int documents = 0;
        foreach (string file in textFiles)
        {
            string text;
            try
            {
                text = File.ReadAllText(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new Gpt2Exception($"{file}: cannot read ({e.Message})", e);
            }
            tokens.Add(Gpt2Config.EndOfText);
            foreach (int id in Gpt2Tokenizer.Default.Encode(text))
            {
                if (id == Gpt2Config.EndOfText) documents++;
                tokens.Add(checked((ushort)id));
            }
            documents++;
        }

        long validation = (long)Math.Round(tokens.Count * validationFraction);
        if (validationFraction > 0 && validation < 2) validation = Math.Min(2, tokens.Count);
        var all = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(tokens);
        var written = new List<string>();
        Directory.CreateDirectory(outputDirectory);
        foreach (string stale in TokenDataset.ShardPaths(outputDirectory, "train").Concat(TokenDataset.ShardPaths(outputDirectory, "val")))
            File.Delete(stale);
        WriteShards(outputDirectory, "train", all[..^(int)validation], written);
        WriteShards(outputDirectory, "val", all[^(int)validation..], written);
        return new PreparedData(documents, tokens.Count - validation, validation, written);
    }

    private static void WriteShards(string directory, string split, ReadOnlySpan<ushort> tokens, List<string> written)
    {
        for (int shard = 0, start = 0; start < tokens.Length; shard++, start += ShardTokens)
        {
            string path = Path.Combine(directory, $"{split}_{shard:D3}.bin");
            TokenShard.Write(path, tokens.Slice(start, Math.Min(ShardTokens, tokens.Length - start)));
            written.Add(path);
        }
    }
}
