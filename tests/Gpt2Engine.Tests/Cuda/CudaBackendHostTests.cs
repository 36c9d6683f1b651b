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
