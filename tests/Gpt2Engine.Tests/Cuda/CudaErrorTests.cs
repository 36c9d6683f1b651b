using Gpt2Engine.Cpu;
using Gpt2Engine.Cuda;
using Gpt2Engine.Model;
using Xunit;

namespace Gpt2Engine.Tests.Cuda;

/// <summary>A fact for machines without the NVIDIA driver library (it checks what happens there).</summary>
public sealed class NoDriverFactAttribute : FactAttribute
{
    public NoDriverFactAttribute()
    {
        if (Gpu.DriverLibraryPresent) Skip = "an NVIDIA driver library is installed here";
    }
}

/// <summary>Failures surface as one-line Gpt2Exceptions naming the call and the error, never as crashes.</summary>
public sealed class CudaErrorTests
{
    [NoDriverFact]
    public void Without_a_driver_cuda_fails_with_one_clear_line_and_auto_falls_back_to_the_cpu()
    {
        string library = OperatingSystem.IsWindows() ? "nvcuda.dll" : "libcuda.so.1";
        Assert.False(CudaBackend.TryCreate(out _, out string reason));
        Assert.Equal($"no NVIDIA driver found ({library})", reason);
        var e = Assert.Throws<Gpt2Exception>(() => BackendFactory.Create("cuda"));
        Assert.Equal($"no NVIDIA driver found ({library})", e.Message);

        var log = new StringWriter();
        using var backend = BackendFactory.Create("auto", log);
        Assert.IsType<CpuBackend>(backend);
        Assert.Contains("CUDA unavailable: no NVIDIA driver found", log.ToString());
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:x")]
    [InlineData("cuda:-1")]
    public void Unknown_device_names_are_rejected(string device)
    {
        var e = Assert.Throws<Gpt2Exception>(() => BackendFactory.Create(device));
        Assert.StartsWith($"unknown device '{device}'", e.Message);
    }

    [Fact]
    public void Cpu_device_is_the_cpu_backend()
    {
        using var backend = BackendFactory.Create(" CPU ", threads: 1);
        Assert.IsType<CpuBackend>(backend);
    }

    [HostKernelFact]
    public void Out_of_device_memory_is_a_one_line_error_naming_the_size()
    {
        using var cuda = new HostCuda();
        cuda.Api.MemoryLimit = cuda.Api.MemoryInUse + (1 << 20);
        var e = Assert.Throws<Gpt2Exception>(() => cuda.Backend.Allocate(1 << 20));
        Assert.Equal("out of GPU memory allocating 4.0 MiB on CPU stand-in", e.Message);
    }

    [HostKernelFact]
    public void Driver_and_cublas_failures_name_the_call_and_the_error()
    {
        using var cuda = new HostCuda();
        var small = cuda.Backend.Allocate(4);
        // A copy past the end of a device allocation: the stand-in refuses it as the driver would.
        var e = Assert.Throws<CudaException>(() => cuda.Backend.Copy(new DeviceBuffer(small.Address + 8, 4), small));
        Assert.Equal("CUDA: cuMemcpyDtoDAsync_v2 failed with CUDA_ERROR_INVALID_VALUE (1)", e.Message);
        // A GEMM whose operand runs past its buffer.
        var blasError = Assert.Throws<CudaException>(() => cuda.Backend.Matmul(small, small, small, default, 2, 3, 2));
        Assert.Equal("CUDA: cublasGemmEx failed with CUBLAS_STATUS_INVALID_VALUE (7)", blasError.Message);
        Assert.IsAssignableFrom<Gpt2Exception>(blasError);
    }

    [HostKernelFact]
    public void Freeing_a_foreign_buffer_is_refused()
    {
        using var cuda = new HostCuda();
        var buffer = cuda.Backend.Allocate(4);
        cuda.Backend.Free(buffer);
        Assert.Throws<ArgumentException>(() => cuda.Backend.Free(buffer));
    }
}
