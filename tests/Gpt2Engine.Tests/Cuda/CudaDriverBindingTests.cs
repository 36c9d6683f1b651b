using Gpt2Engine.Cuda;
using Xunit;

namespace Gpt2Engine.Tests.Cuda;

/// <summary>
/// The real binding (<see cref="CudaDriverApi"/>: library loading, symbol binding, calls through the function
/// pointers, error names) against stub driver libraries compiled here, so it runs without NVIDIA's driver.
/// </summary>
public sealed class CudaDriverBindingTests
{
    // The exported symbols the binding needs (cuda.h maps several API names to these versioned ones).
    private static readonly string[] DriverSymbols =
    [
        "cuInit", "cuDriverGetVersion", "cuDeviceGetCount", "cuDeviceGet", "cuDeviceGetName", "cuDeviceTotalMem_v2",
        "cuDevicePrimaryCtxRetain", "cuDevicePrimaryCtxRelease_v2", "cuCtxSetCurrent", "cuModuleLoadData", "cuModuleGetFunction",
        "cuModuleUnload", "cuMemGetInfo_v2", "cuMemAlloc_v2", "cuMemFree_v2", "cuMemAllocHost_v2", "cuMemFreeHost", "cuMemcpyHtoDAsync_v2",
        "cuMemcpyDtoHAsync_v2", "cuMemcpyDtoDAsync_v2", "cuMemsetD32Async", "cuStreamCreate", "cuStreamSynchronize",
        "cuStreamDestroy_v2", "cuEventCreate", "cuEventRecord", "cuEventSynchronize", "cuEventDestroy_v2", "cuLaunchKernel",
    ];

    /// <summary>A driver stub exporting <paramref name="symbols"/>, each answering CUDA_ERROR_NO_DEVICE (100), plus cuGetErrorName.</summary>
    private static string StubDriver(IEnumerable<string> symbols)
    {
        string text = "extern \"C\" {\n"
            + "int cuGetErrorName(int error, const char** name) { *name = error == 100 ? \"CUDA_ERROR_NO_DEVICE\" : \"CUDA_ERROR_UNKNOWN\"; return 0; }\n"
            + string.Concat(symbols.Select(s => $"int {s}() {{ return 100; }}\n")) + "}\n";
        string source = Path.Combine(Path.GetTempPath(), $"gpt2-engine-stub-{Guid.NewGuid():N}.cpp");
        File.WriteAllText(source, text);
        try
        {
            var (library, errors) = HostKernels.Compile(source, "libcuda-stub.so", [source]);
            return library ?? throw new InvalidOperationException(errors);
        }
        finally
        {
            File.Delete(source);
        }
    }

    [HostKernelFact]
    public void A_driver_without_a_gpu_fails_with_the_call_and_the_error_name()
    {
        Assert.True(CudaDriverApi.TryLoad([StubDriver(DriverSymbols)], out var api, out string reason), reason);
        var e = Assert.Throws<CudaException>(() => new CudaBackend(api!));
        Assert.Equal("CUDA: cuInit failed with CUDA_ERROR_NO_DEVICE (100)", e.Message);
        Assert.Equal("cuInit", e.Call);
    }

    [HostKernelFact]
    public void A_library_missing_a_symbol_is_not_taken_for_a_driver()
    {
        string stub = StubDriver(DriverSymbols.Where(s => s != "cuMemAlloc_v2"));
        Assert.False(CudaDriverApi.TryLoad([stub], out _, out string reason));
        Assert.Equal($"{stub} has no cuMemAlloc_v2: the NVIDIA driver is too old or not a real driver", reason);
    }

    [Fact]
    public void Without_any_loadable_library_the_reason_names_the_first_candidate()
    {
        Assert.False(CudaDriverApi.TryLoad(["/nonexistent/libcuda.so.1", "/nonexistent/libcuda.so"], out _, out string reason));
        Assert.Equal("no NVIDIA driver found (/nonexistent/libcuda.so.1)", reason);
    }
}
