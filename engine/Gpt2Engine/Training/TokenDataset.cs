using System.IO.Hashing;

namespace Gpt2Engine.Training;

/// <summary>
/// The token shards of one split (<c>train_*.bin</c> or <c>val_*.bin</c>) of a prepared data directory, read as
/// windows of T+1 tokens: window k of a shard starts at token k*T, so consecutive windows share one token
/// (the last target of one is the first input of the next) and no window crosses a shard boundary.
/// </summary>
public sealed class TokenDataset : IDisposable
{
    private readonly TokenShard[] _shards;
    private readonly long[] _firstWindow; // prefix sums of the shards' window counts

    public string Split { get; }
    public int SequenceLength { get; }
    public long TokenCount { get; }
    public long WindowCount => _firstWindow[^1];

    /// <summary>
    /// A 64-bit fingerprint (XXH3) of the split: each shard's token count and tokens, in order. A resumed run compares
    /// it with its checkpoint's, since its data position counts windows of the data it was trained on.
    /// </summary>
    public ulong ContentHash { get; }

    private TokenDataset(string split, TokenShard[] shards, int T, ulong contentHash)
    {
        Split = split;
        ContentHash = contentHash;
        _shards = shards;
        SequenceLength = T;
        _firstWindow = new long[shards.Length + 1];
        for (int i = 0; i < shards.Length; i++)
        {
            _firstWindow[i + 1] = _firstWindow[i] + Math.Max(0, (shards[i].Count - 1) / T);
            TokenCount += shards[i].Count;
        }
    }

    /// <summary>The shard file names of <paramref name="split"/> in <paramref name="directory"/>, in order.</summary>
    public static string[] ShardPaths(string directory, string split) =>
        Directory.Exists(directory)
            ? Directory.GetFiles(directory, $"{split}_*.bin").Order(StringComparer.Ordinal).ToArray()
            : throw new Gpt2Exception($"{directory}: data directory not found (run 'gpt2-engine prepare --out {directory} FILE...')");

    /// <summary>
    /// Opens the <paramref name="split"/> shards of <paramref name="directory"/>; they must hold at least one window of
    /// T+1 tokens. Every token is checked against the model's <paramref name="vocabularySize"/> once, here, not when
    /// its window is drawn, and hashed (<see cref="ContentHash"/>) in the same pass.
    /// </summary>
    public static TokenDataset Open(string directory, string split, int T, int vocabularySize)
    {
        if (T <= 0) throw new Gpt2Exception($"sequence length {T} must be positive");
        string[] paths = ShardPaths(directory, split);
        if (paths.Length == 0) throw new Gpt2Exception($"{directory}: no {split}_*.bin token shards (run 'gpt2-engine prepare --out {directory} FILE...')");
        var shards = new List<TokenShard>();
        var hash = new XxHash3();
        try
        {
            foreach (string path in paths)
            {
                shards.Add(TokenShard.Open(path));
                shards[^1].Scan(vocabularySize, hash);
            }
            var dataset = new TokenDataset(split, [.. shards], T, hash.GetCurrentHashAsUInt64());
            if (dataset.WindowCount == 0)
                throw new Gpt2Exception($"{directory}: the {split} split has {dataset.TokenCount} tokens, too few for one sequence of {T}+1 tokens");
            return dataset;
        }
        catch
        {
            foreach (var shard in shards) shard.Dispose();
            throw;
        }
    }

    /// <summary>Copies window <paramref name="window"/>: inputs = its first T tokens, targets = its last T.</summary>
    public void ReadWindow(long window, Span<int> inputs, Span<int> targets)
    {
        int T = SequenceLength;
        int shard = Array.BinarySearch(_firstWindow, window);
        shard = shard >= 0 ? shard : ~shard - 1;
        while (_firstWindow[shard + 1] <= window) shard++; // skip shards with no window
        var tokens = _shards[shard].Tokens((window - _firstWindow[shard]) * T, T + 1);
        for (int t = 0; t < T; t++)
        {
            inputs[t] = tokens[t];
            targets[t] = tokens[t + 1];
        }
    }

    public void Dispose()
    {
        foreach (var shard in _shards) shard.Dispose();
    }
}
