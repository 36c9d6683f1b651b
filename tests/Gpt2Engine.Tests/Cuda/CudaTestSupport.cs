using Gpt2Engine.Cuda;
using Gpt2Engine.Model;
using Xunit;

namespace Gpt2Engine.Tests.Cuda;

/// <summary>A fact that needs the host-compiled kernels (a C++ compiler); skipped with the reason if there is none.</summary>
public sealed class HostKernelFactAttribute : FactAttribute
{
    public HostKernelFactAttribute() => Skip = HostKernels.SkipReason;
}

public sealed class HostKernelTheoryAttribute : TheoryAttribute
{
    public HostKernelTheoryAttribute() => Skip = HostKernels.SkipReason;
}

/// <summary>A test for real NVIDIA hardware (Category=Gpu); skipped with the reason where there is no usable driver/GPU.</summary>
public sealed class GpuTheoryAttribute : TheoryAttribute
{
    public GpuTheoryAttribute() => Skip = Gpu.SkipReason;
}

public sealed class GpuFactAttribute : FactAttribute
{
    public GpuFactAttribute() => Skip = Gpu.SkipReason;
}

/// <summary>
/// Whether GPU tests can run. Only the driver library is loaded here, no CUDA call is made, so that test discovery
/// never touches a GPU; a machine with the driver but no usable GPU fails the Gpu tests with the driver's error.
/// </summary>
internal static class Gpu
{
    private static readonly Lazy<string?> Reason = new(() => CudaDriverApi.TryLoad(out _, out string reason) ? null : reason);

    public static string? SkipReason => Reason.Value;

    public static bool DriverLibraryPresent => SkipReason is null;
}

/// <summary>A CUDA backend over the CPU stand-in; disposing it disposes both.</summary>
internal sealed class HostCuda : IDisposable
{
    public HostCudaApi Api { get; } = new();
    public CudaBackend Backend { get; }

    public HostCuda() => Backend = new CudaBackend(Api);

    public void Dispose()
    {
        Backend.Dispose();
        Api.Dispose();
    }
}

internal static class Buffers
{
    public static DeviceBuffer Put(this Backend backend, float[] data)
    {
        var buffer = backend.Allocate(data.Length);
        backend.Upload<float>(buffer, data);
        return buffer;
    }

    public static DeviceBuffer Put(this Backend backend, int[] data)
    {
        var buffer = backend.Allocate(data.Length, Gpt2Engine.Checkpoints.TensorDType.I32);
        backend.Upload<int>(buffer, data);
        return buffer;
    }

    public static float[] Get(this Backend backend, DeviceBuffer buffer)
    {
        var result = new float[buffer.Count];
        backend.Download<float>(buffer, result);
        return result;
    }

    public static float[] Random(int n, int seed, float scale = 1f)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2 - 1) * scale).ToArray();
    }

    /// <summary>|expected - actual| &lt;= tolerance * (1 + |expected|) everywhere, else a message naming the first offender.</summary>
    public static void Close(double[] expected, float[] actual, double tolerance = 1e-5, string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs(expected[i] - actual[i]) <= tolerance * (1 + Math.Abs(expected[i]))))
                Assert.Fail($"{what}[{i}]: expected {expected[i]:G9}, got {actual[i]:G9}");
    }
}
