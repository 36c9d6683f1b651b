using Gpt2Engine.Checkpoints;

namespace Gpt2Engine.Model;

/// <summary>
/// A span of a backend's memory: host memory on the CPU backend, GPU memory (a CUdeviceptr) on CUDA. It owns
/// nothing; the backend that allocated it frees it. <c>default</c> stands for "no buffer" (an optional argument).
/// </summary>
public readonly record struct DeviceBuffer(nint Address, long Count, TensorDType DType = TensorDType.F32)
{
    public bool IsNone => Address == 0;

    public long ByteLength => Count * DType.SizeOf();

    /// <summary>Elements [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="count"/>) of this buffer.</summary>
    public DeviceBuffer Slice(long offset, long count)
    {
        if (offset < 0 || count < 0 || offset + count > Count) throw new ArgumentOutOfRangeException(nameof(offset), $"slice [{offset}, +{count}) of a {Count}-element buffer");
        return new DeviceBuffer(Address + (nint)(offset * DType.SizeOf()), count, DType);
    }

    /// <summary>Host memory as a span (CPU backend and its stand-ins only).</summary>
    public unsafe Span<float> AsFloats() => new((void*)Address, checked((int)Count));
}
