using System.Numerics;

namespace Gpt2Engine.Tokenization;

/// <summary>
/// The merges as an open-addressing hash table keyed by the pair (left id, right id) packed in a long, with
/// linear probing and a multiplicative hash. (Dictionary&lt;long, ...&gt; hashes a long as its halves XOR-ed, which
/// for pairs of token ids collides heavily.)
/// </summary>
internal sealed class MergeTable
{
    private const long Empty = -1;

    private readonly long[] _keys;
    private readonly int[] _ranks;
    private readonly int[] _results;
    private readonly int _shift;

    public MergeTable(int capacity)
    {
        int size = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, 2 * capacity));
        _keys = new long[size];
        Array.Fill(_keys, Empty);
        _ranks = new int[size];
        _results = new int[size];
        _shift = 64 - BitOperations.Log2((uint)size);
    }

    public int Count { get; private set; }

    private static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>Adds a merge with the next rank; false (and nothing added) when the pair is already there.</summary>
    public bool TryAdd(int left, int right, int result)
    {
        if (2 * (Count + 1) > _keys.Length)
            throw new InvalidOperationException("merge table is full");
        long key = PairKey(left, right);
        int slot = Slot(key);
        for (; _keys[slot] != Empty; slot = (slot + 1) & (_keys.Length - 1))
        {
            if (_keys[slot] == key)
                return false;
        }
        _keys[slot] = key;
        _ranks[slot] = Count++;
        _results[slot] = result;
        return true;
    }

    /// <summary>The rank and result of merging <paramref name="left"/> with <paramref name="right"/>; false when they do not merge.</summary>
    public bool TryGet(int left, int right, out int rank, out int result)
    {
        long key = PairKey(left, right);
        for (int slot = Slot(key); _keys[slot] != Empty; slot = (slot + 1) & (_keys.Length - 1))
        {
            if (_keys[slot] == key)
            {
                rank = _ranks[slot];
                result = _results[slot];
                return true;
            }
        }
        rank = result = 0;
        return false;
    }

    private int Slot(long key) => (int)((ulong)key * 0x9E3779B97F4A7C15UL >> _shift);
}
