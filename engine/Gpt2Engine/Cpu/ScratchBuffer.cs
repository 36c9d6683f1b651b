using System.Runtime.InteropServices;

namespace Gpt2Engine.Cpu;

/// <summary>
/// Native float memory that a kernel keeps per thread (as a <c>[ThreadStatic]</c> field) and reuses on every call:
/// grown when a call needs more, 64-byte aligned, never freed. Hot loops then allocate nothing.
/// </summary>
internal unsafe struct ScratchBuffer
{
    private float* _memory;
    private long _length;

    /// <summary>At least <paramref name="length"/> floats (contents undefined).</summary>
    public float* Get(long length)
    {
        if (_length < length)
        {
            if (_memory != null) NativeMemory.AlignedFree(_memory);
            _memory = (float*)NativeMemory.AlignedAlloc((nuint)(length * sizeof(float)), 64);
            _length = length;
        }
        return _memory;
    }
}
