using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cpu;
using Gpt2Engine.Tests.Cuda;
using Xunit;

namespace Gpt2Engine.Tests.Cpu;

/// <summary>
/// The backend checks that hold the CUDA backend to float64 references (every operation, odd shapes), run on the CPU
/// backend at every SIMD level (one this machine lacks runs in .NET's software vectors). Two are the CUDA backend's own: it rounds activations to bf16 for a bf16
/// matmul (cuBLAS takes one type; the CPU keeps them fp32, checked in <see cref="MatmulKernelTests"/>), and it reads a
/// bf16 wpe, which checkpoint loading never hands a backend (only matmul weights may be bf16).
/// </summary>
public sealed class CpuBackendChecksTests
{
    private static readonly string[] CudaOnly = ["MatmulBf16", "EncoderBf16Both"];

    public static TheoryData<string, SimdLevel> Checks()
    {
        var data = new TheoryData<string, SimdLevel>();
        foreach (string check in BackendChecks.All.Keys.Except(CudaOnly))
            foreach (var level in Enum.GetValues<SimdLevel>()) data.Add(check, level);
        return data;
    }

    public static TheoryData<SimdLevel, TensorDType> LevelsAndWeightTypes()
    {
        var data = new TheoryData<SimdLevel, TensorDType>();
        foreach (var level in Enum.GetValues<SimdLevel>())
            foreach (var type in (TensorDType[])[TensorDType.F32, TensorDType.BF16]) data.Add(level, type);
        return data;
    }

    /// <summary>The warm-up's small shapes are valid for every operation it runs (a bad one throws), at every level.</summary>
    [Theory]
    [MemberData(nameof(LevelsAndWeightTypes))]
    public void Warm_up_runs_at_every_level_and_weight_type(SimdLevel level, TensorDType weightType)
    {
        using var backend = CpuBackend.Emulating(threads: 2, level);
        backend.WarmUp(weightType);
    }

    [Theory]
    [MemberData(nameof(Checks))]
    public void Operation_matches_float64_reference(string check, SimdLevel level)
    {
        using var backend = CpuBackend.Emulating(threads: 2, level);
        BackendChecks.All[check](backend);
    }

    /// <summary>
    /// A buffer larger than the machine's memory fails at once with a clear error, rather than being granted by the
    /// kernel and thrashing while it is zeroed. (A sum of buffers past it fails the same way: not tested here, since
    /// that would take the machine's memory.)
    /// </summary>
    [Fact]
    public void A_buffer_beyond_the_machines_memory_is_a_clear_error()
    {
        using var backend = new CpuBackend(1);
        long floats = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / sizeof(float) + 1;
        Assert.Contains("out of memory", Assert.Throws<Gpt2Exception>(() => backend.Allocate(floats)).Message);
        Assert.Contains("out of memory", Assert.Throws<Gpt2Exception>(() => backend.Allocate(long.MaxValue / 2)).Message);
        backend.Free(backend.Allocate(1024)); // and the backend still allocates
    }
}
