using System.Diagnostics;
using Gpt2Engine.Cuda;
using Xunit;

namespace Gpt2Engine.Tests.Cuda;

public sealed class Clang14FactAttribute : FactAttribute
{
    public Clang14FactAttribute()
    {
        string[] path = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator);
        if (!path.Any(p => File.Exists(Path.Combine(p, "clang-14")))) Skip = "clang-14 is not installed (it builds native/ptx)";
    }
}

/// <summary>The PTX the library embeds is what native/build-ptx.sh makes of native/kernels, and matches the host kernels.</summary>
public sealed class PtxTests
{
    private static readonly string[] Modules = ["attention", "crossentropy", "elementwise", "encoder", "layernorm", "optimizer"];

    [Fact]
    public void Every_kernel_source_has_its_embedded_ptx()
    {
        var sources = Directory.GetFiles(Path.Combine(HostKernels.NativeDirectory, "kernels"), "*.cu").Select(Path.GetFileNameWithoutExtension).Order();
        Assert.Equal(sources, Modules);
        foreach (string module in Modules)
        {
            string ptx = CudaModule.ReadPtx(module);
            Assert.Contains(".target sm_80", ptx);
            Assert.NotEmpty(CudaModule.EntryNames(ptx));
        }
    }

    /// <summary>Rebuilds the PTX with clang-14 and fails if the committed (embedded) PTX differs: run native/build-ptx.sh.</summary>
    [Clang14Fact]
    public void Committed_ptx_is_up_to_date()
    {
        string output = Path.Combine(Path.GetTempPath(), "gpt2-engine-ptx-" + Guid.NewGuid().ToString("N"));
        try
        {
            var start = new ProcessStartInfo("sh", [Path.Combine(HostKernels.NativeDirectory, "build-ptx.sh"), output]) { RedirectStandardError = true };
            using var process = Process.Start(start)!;
            string errors = process.StandardError.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, $"build-ptx.sh failed: {errors}");
            foreach (string module in Modules)
            {
                string fresh = File.ReadAllText(Path.Combine(output, module + ".ptx")).ReplaceLineEndings("\n");
                Assert.True(fresh == CudaModule.ReadPtx(module).ReplaceLineEndings("\n"), $"native/ptx/{module}.ptx is stale: run native/build-ptx.sh");
            }
        }
        finally
        {
            if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
        }
    }

    /// <summary>The stand-in launches the host build of each kernel with the argument array built for the PTX one,
    /// so both must take the same parameters (count and sizes).</summary>
    [HostKernelFact]
    public void Every_ptx_kernel_has_a_host_twin_with_the_same_parameter_sizes()
    {
        foreach (string module in Modules)
        {
            string ptx = CudaModule.ReadPtx(module);
            foreach (string kernel in CudaModule.EntryNames(ptx))
            {
                int[]? host = HostKernels.ParameterSizes(kernel);
                Assert.True(host is not null, $"{kernel} is not registered in native/host/host_kernels.cpp");
                int start = ptx.IndexOf($".entry {kernel}(", StringComparison.Ordinal);
                string parameters = ptx[start..ptx.IndexOf(')', start)];
                int[] sizes = parameters.Split('\n').Where(l => l.Contains(".param ")).Select(l => l.Contains(".u64") || l.Contains(".b64") ? 8 : 4).ToArray();
                Assert.Equal(sizes, host);
            }
        }
    }
}
