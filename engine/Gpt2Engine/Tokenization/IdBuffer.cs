using System.Buffers;

namespace Gpt2Engine.Tokenization;

/// <summary>
/// A growable list of token ids in an array rented from <see cref="ArrayPool{T}.Shared"/>: encoding a large text
/// then reuses memory instead of touching tens of fresh megabytes on every call (which costs more than the encoding).
/// </summary>
internal sealed class IdBuffer(int capacity) : IDisposable
{
    private int[] _ids = ArrayPool<int>.Shared.Rent(Math.Max(16, capacity));

    public int Count { get; private set; }

    public ReadOnlySpan<int> Span => _ids.AsSpan(0, Count);

    public void Add(int id)
    {
        if (Count == _ids.Length)
            Grow(Count + 1);
        _ids[Count++] = id;
    }

    public void AddRange(ReadOnlySpan<int> ids)
    {
        if (Count + ids.Length > _ids.Length)
            Grow(Count + ids.Length);
        ids.CopyTo(_ids.AsSpan(Count));
        Count += ids.Length;
    }

    /// <summary>A new array of exactly the ids (not zeroed first: every element is written).</summary>
    public int[] ToArray()
    {
        var ids = GC.AllocateUninitializedArray<int>(Count);
        Span.CopyTo(ids);
        return ids;
    }

    public void Dispose()
    {
        ArrayPool<int>.Shared.Return(_ids);
        _ids = [];
        Count = 0;
    }

    private void Grow(int needed)
    {
        var larger = ArrayPool<int>.Shared.Rent((int)Math.Min(Array.MaxLength, Math.Max(needed, 2L * _ids.Length)));
        Span.CopyTo(larger);
        ArrayPool<int>.Shared.Return(_ids);
        _ids = larger;
    }
}
