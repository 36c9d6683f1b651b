using System.Diagnostics;
using Xunit;

namespace Gpt2Engine.Tests.Cuda;

/// <summary>The CPU emulation of CUDA (native/host/cuda_host.h) on its own: emulator_checks.cpp, built and run here.</summary>
public sealed class EmulatorTests
{
    /// <param name="define">Empty for the default fiber switch; CUDA_HOST_UCONTEXT for the portable ucontext one.</param>
    [HostKernelTheory]
    [InlineData("")]
    [InlineData("CUDA_HOST_UCONTEXT")]
    public void Indices_barriers_shuffles_shared_memory_and_atomics_behave_as_on_a_gpu(string define)
    {
        string source = Path.Combine(HostKernels.NativeDirectory, "..", "tests", "Gpt2Engine.Tests", "Cuda", "emulator_checks.cpp");
        string[] inputs = [source, Path.Combine(HostKernels.NativeDirectory, "host", "cuda_host.h")];
        var (program, errors) = HostKernels.Compile(source, "emulator_checks", inputs, executable: true, defines: define.Length > 0 ? [define] : []);
        Assert.True(program is not null, errors);
        using var process = Process.Start(new ProcessStartInfo(program) { RedirectStandardOutput = true })!;
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, output);
        Assert.Contains("0 failures", output);
    }
}
