namespace Gpt2Engine.Tokenization;

/// <summary>
/// GPT-2's byte-pair merges: a piece starts as one token per byte, then the adjacent pair with the lowest rank
/// (the earliest line of vocab.bpe; the leftmost on a tie) is merged until no pair has a rank. A min-heap of
/// candidate pairs over a linked list of symbols keeps long pieces (a run of a million spaces) O(n log n).
/// </summary>
internal sealed class BpeMerges(int[] byteTokens, MergeTable merges)
{
    public int Count => merges.Count;

    /// <summary>Appends the token ids of <paramref name="piece"/> to <paramref name="output"/>.</summary>
    public void Encode(ReadOnlySpan<byte> piece, IdBuffer output, Scratch scratch)
    {
        int n = piece.Length;
        if (n == 1)
        {
            output.Add(byteTokens[piece[0]]);
            return;
        }
        scratch.Reset(n);
        int[] ids = scratch.Ids, next = scratch.Next, previous = scratch.Previous;
        for (int i = 0; i < n; i++)
        {
            ids[i] = byteTokens[piece[i]];
            next[i] = i + 1;
            previous[i] = i - 1;
        }
        for (int i = 0; i + 1 < n; i++)
            PushPair(scratch, ids, i, i + 1);

        while (scratch.TryPop(out long candidate))
        {
            int left = (int)candidate, rank = (int)(candidate >> 32);
            int right = next[left];
            // Stale candidates (a side was merged away since) no longer name a pair of that rank.
            if (ids[left] < 0 || right >= n || !merges.TryGet(ids[left], ids[right], out int currentRank, out int result) || currentRank != rank)
                continue;
            ids[left] = result;
            ids[right] = -1;
            next[left] = next[right];
            if (next[left] < n)
                previous[next[left]] = left;
            if (previous[left] >= 0)
                PushPair(scratch, ids, previous[left], left);
            if (next[left] < n)
                PushPair(scratch, ids, left, next[left]);
        }
        for (int i = 0; i < n; i = next[i])
            output.Add(ids[i]);
    }

    private void PushPair(Scratch scratch, int[] ids, int left, int right)
    {
        if (merges.TryGet(ids[left], ids[right], out int rank, out _))
            scratch.Push(((long)rank << 32) | (uint)left);
    }

    /// <summary>Per-thread working memory of <see cref="Encode"/>: the symbol list and a binary min-heap of (rank, position).</summary>
    public sealed class Scratch
    {
        public int[] Ids = new int[64], Next = new int[64], Previous = new int[64];
        private long[] _heap = new long[64];
        private int _heapCount;

        public void Reset(int n)
        {
            if (Ids.Length < n)
            {
                int size = (int)Math.Min(Array.MaxLength, Math.Max(n, 2L * Ids.Length));
                Ids = new int[size];
                Next = new int[size];
                Previous = new int[size];
            }
            _heapCount = 0;
        }

        public void Push(long value)
        {
            if (_heapCount == _heap.Length)
                Array.Resize(ref _heap, 2 * _heap.Length);
            int i = _heapCount++;
            while (i > 0 && _heap[(i - 1) / 2] > value)
            {
                _heap[i] = _heap[(i - 1) / 2];
                i = (i - 1) / 2;
            }
            _heap[i] = value;
        }

        public bool TryPop(out long min)
        {
            if (_heapCount == 0)
            {
                min = 0;
                return false;
            }
            min = _heap[0];
            long last = _heap[--_heapCount];
            int i = 0;
            while (true)
            {
                int child = 2 * i + 1;
                if (child >= _heapCount)
                    break;
                if (child + 1 < _heapCount && _heap[child + 1] < _heap[child])
                    child++;
                if (_heap[child] >= last)
                    break;
                _heap[i] = _heap[child];
                i = child;
            }
            _heap[i] = last;
            return true;
        }
    }
}
