namespace Gpt2Engine.Training;

/// <summary>
/// Batches of B windows from a <see cref="TokenDataset"/>, every window once per epoch in an order shuffled by
/// (seed, epoch). Its whole state is <see cref="Position"/>, the number of windows handed out so far, so a
/// checkpoint that stores it resumes the exact same sequence of batches.
/// </summary>
public sealed class DataLoader
{
    private readonly TokenDataset _dataset;
    private readonly ulong _seed;
    private long[] _order = [];
    private long _orderEpoch = -1;

    public long Position { get; set; }
    public long Epoch => Position / _dataset.WindowCount;

    public DataLoader(TokenDataset dataset, ulong seed, long position = 0)
    {
        _dataset = dataset;
        _seed = seed;
        Position = position;
    }

    /// <summary>Fills inputs and targets [B,T] with the next B windows.</summary>
    public void NextBatch(Span<int> inputs, Span<int> targets, int B)
    {
        int T = _dataset.SequenceLength;
        for (int b = 0; b < B; b++, Position++)
        {
            long epoch = Position / _dataset.WindowCount;
            if (epoch != _orderEpoch)
            {
                _order = Shuffle(_dataset.WindowCount, _seed, epoch);
                _orderEpoch = epoch;
            }
            _dataset.ReadWindow(_order[Position % _dataset.WindowCount], inputs.Slice(b * T, T), targets.Slice(b * T, T));
        }
    }

    /// <summary>A Fisher-Yates permutation of [0, count) determined by (seed, epoch).</summary>
    public static long[] Shuffle(long count, ulong seed, long epoch)
    {
        var order = new long[count];
        for (long i = 0; i < count; i++) order[i] = i;
        var rng = new SplitMix64(seed ^ (0x9E3779B97F4A7C15UL * (ulong)(epoch + 1)));
        for (long i = count - 1; i > 0; i--)
        {
            long j = (long)rng.NextBelow((ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }
}
