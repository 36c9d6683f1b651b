using System.Diagnostics;
using Xunit;

namespace Gpt2Engine.Tests.Evaluation;

/// <summary>Every tools/*.fsx script starts and answers --help (usage, exit 0): they compile against the current library.</summary>
public sealed class ToolScriptTests
{
    [FsiFact]
    public void Every_script_prints_its_usage()
    {
        var scripts = Directory.GetFiles(Path.Combine(FsiFactAttribute.RepositoryRoot!, "tools"), "*.fsx").Order().ToList();
        Assert.NotEmpty(scripts);
        foreach (string script in scripts)
        {
            // fsi takes --help for itself; "--" hands it to the script.
            var (code, output) = FsiFactAttribute.Run($"fsi \"{script}\" -- --help", TimeSpan.FromMinutes(2));
            Assert.True(code == 0, $"{Path.GetFileName(script)} --help exited {code}:\n{output}");
            Assert.Contains("usage", output, StringComparison.OrdinalIgnoreCase);
        }
    }
}

/// <summary>A fact that is skipped, with the reason, when `dotnet fsi` or the Release build of the library is missing.</summary>
public sealed class FsiFactAttribute : FactAttribute
{
    /// <summary>The folder holding Gpt2Engine.sln above the test assembly, or null (tests run from a copy).</summary>
    public static readonly string? RepositoryRoot = FindRoot();

    private static readonly Lazy<string?> SkipReason = new(() =>
    {
        if (RepositoryRoot is null) return "the repository (Gpt2Engine.sln) is not above the test assembly";
        if (!File.Exists(Path.Combine(RepositoryRoot, "engine", "Gpt2Engine", "bin", "Release", "net10.0", "Gpt2Engine.dll")))
            return "the scripts #r the Release build of the library: run the tests with -c Release";
        try
        {
            return Run("fsi --help", TimeSpan.FromMinutes(1)).Code == 0 ? null : "dotnet fsi is not available";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "dotnet fsi is not available";
        }
    });

    public FsiFactAttribute()
    {
        if (SkipReason.Value is { } reason) Skip = reason;
    }

    private static string? FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Gpt2Engine.sln"))) return dir.FullName;
        return null;
    }

    /// <summary>Runs `dotnet ARGS` and returns its exit code and combined output; killed after <paramref name="timeout"/>.</summary>
    public static (int Code, string Output) Run(string arguments, TimeSpan timeout)
    {
        var start = new ProcessStartInfo("dotnet", arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            return (-1, $"timed out after {timeout.TotalSeconds} s");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
