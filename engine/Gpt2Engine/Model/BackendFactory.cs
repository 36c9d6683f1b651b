using Gpt2Engine.Cpu;
using Gpt2Engine.Cuda;

namespace Gpt2Engine.Model;

/// <summary>The backend for a <c>--device</c> value: cpu, cuda (or cuda:N for the N-th GPU), or auto.</summary>
public static class BackendFactory
{
    public const string Help = "cpu, cuda (cuda:N for GPU N) or auto (CUDA if a GPU is usable, else the CPU)";

    /// <summary>
    /// Creates the backend. "cuda" fails with a Gpt2Exception saying why ("no NVIDIA driver found (libcuda.so.1)");
    /// "auto" falls back to the CPU and says so on <paramref name="log"/>. <paramref name="threads"/> is for the CPU (0 = all cores).
    /// </summary>
    public static Backend Create(string device, TextWriter? log = null, int threads = 0)
    {
        CpuBackend.CheckThreads(threads); // before a GPU that ignores it is chosen: a bad count is an error on every machine
        string name = device.Trim().ToLowerInvariant();
        if (name == "cpu") return new CpuBackend(threads);
        if (name == "auto")
        {
            if (CudaBackend.TryCreate(out var gpu, out string reason))
            {
                log?.WriteLine($"gpt2-engine: device: cuda ({gpu.DeviceName})");
                return gpu;
            }
            log?.WriteLine($"gpt2-engine: device: cpu (CUDA unavailable: {reason})");
            return new CpuBackend(threads);
        }
        if (name == "cuda") return CudaBackend.Create();
        if (name.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(name.AsSpan(5), out int ordinal) && ordinal >= 0)
            return CudaBackend.Create(ordinal);
        throw new Gpt2Exception($"unknown device '{device}' (expected {Help})");
    }
}
