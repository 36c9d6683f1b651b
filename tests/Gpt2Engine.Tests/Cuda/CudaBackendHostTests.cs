using Xunit;

namespace Gpt2Engine.Tests.Cuda;

/// <summary>Every backend operation of the CUDA backend, run without a GPU: host-compiled kernels, reference GEMM.</summary>
public sealed class CudaBackendHostTests
{
    public static IEnumerable<object[]> Checks => BackendChecks.Names;

    [HostKernelTheory]
    [MemberData(nameof(Checks))]
    public void Operation_matches_float64_reference(string check)
    {
        using var cuda = new HostCuda();
        BackendChecks.All[check](cuda.Backend);
    }
}

public sealed class CudaBackendWriteTests
{
    /// <summary>A buffer is written to a file a chunk at a time (checkpoints of a GPU model take no host copy of it), its last chunk short.</summary>
    [HostKernelFact]
    public void A_buffer_is_written_a_chunk_at_a_time()
    {
        using var cuda = new HostCuda();
        float[] values = Enumerable.Range(0, 10_007).Select(i => i * 0.25f - 7).ToArray();
        var buffer = cuda.Backend.Put(values);
        var stream = new MemoryStream();
        cuda.Backend.WriteTo(stream, buffer, chunkElements: 1_000);
        Assert.Equal(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), stream.ToArray());
        Assert.Equal(4_000, cuda.Api.LargestCopyToHost);
    }
}

/// <summary>The same checks on a real NVIDIA GPU.</summary>
[Trait("Category", "Gpu")]
public sealed class CudaBackendGpuTests
{
    public static IEnumerable<object[]> Checks => BackendChecks.Names;

    [GpuTheory]
    [MemberData(nameof(Checks))]
    public void Operation_matches_float64_reference(string check)
    {
        using var backend = Gpt2Engine.Cuda.CudaBackend.Create();
        BackendChecks.All[check](backend);
    }
}
