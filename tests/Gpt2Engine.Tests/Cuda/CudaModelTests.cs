using Gpt2Engine.Cuda;
using Xunit;

namespace Gpt2Engine.Tests.Cuda;

/// <summary>The tiny reference model on the CUDA backend over the CPU stand-in (no GPU needed).</summary>
public sealed class CudaModelHostTests
{
    [HostKernelFact]
    public void Training_matches_cpu_backend_and_fixture()
    {
        using var cuda = new HostCuda();
        TinyModelChecks.TrainingStepsMatch(cuda.Backend);
        Assert.True(cuda.Api.Launches > 100 && cuda.Api.Gemms > 50, $"{cuda.Api.Launches} launches, {cuda.Api.Gemms} GEMMs");
    }

    [HostKernelFact]
    public void Cached_decoding_matches_fixture()
    {
        using var cuda = new HostCuda();
        TinyModelChecks.CachedGreedyDecodingMatches(cuda.Backend);
    }

    [HostKernelFact]
    public void Session_losses_match_the_cpu_backend()
    {
        using var cuda = new HostCuda();
        TinyModelChecks.SessionLossesMatchCpu(cuda.Backend);
    }

    [HostKernelFact]
    public void Bf16_weights_decode_like_the_cpu_backend()
    {
        using var cuda = new HostCuda();
        TinyModelChecks.Bf16DecodingMatchesCpu(cuda.Backend);
    }

    [HostKernelFact]
    public void Disposing_the_backend_frees_every_allocation()
    {
        var api = new HostCudaApi();
        using (var backend = new CudaBackend(api))
            TinyModelChecks.CachedGreedyDecodingMatches(backend);
        Assert.Equal(0, api.LiveAllocations);
        api.Dispose();
    }
}

/// <summary>The same on a real NVIDIA GPU.</summary>
[Trait("Category", "Gpu")]
public sealed class CudaModelGpuTests
{
    [GpuFact]
    public void Training_matches_cpu_backend_and_fixture()
    {
        using var backend = CudaBackend.Create();
        TinyModelChecks.TrainingStepsMatch(backend);
    }

    [GpuFact]
    public void Cached_decoding_matches_fixture()
    {
        using var backend = CudaBackend.Create();
        TinyModelChecks.CachedGreedyDecodingMatches(backend);
    }

    [GpuFact]
    public void Session_losses_match_the_cpu_backend()
    {
        using var backend = CudaBackend.Create();
        TinyModelChecks.SessionLossesMatchCpu(backend);
    }

    [GpuFact]
    public void Bf16_weights_decode_like_the_cpu_backend()
    {
        using var backend = CudaBackend.Create();
        TinyModelChecks.Bf16DecodingMatchesCpu(backend);
    }
}
