using System.Diagnostics;
using Xunit;

namespace Gpt2Engine.Tests;

/// <summary>
/// The built gpt2-engine in a child process, for what <c>CliApp.Run</c>'s writers cannot show: standard input, a
/// pipe whose reader goes away, a closed or full standard output.
/// </summary>
internal static class CliProcess
{
    /// <summary>How long a child may run before a test fails instead of hanging.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    public static Process Start(params string[] args) => Start(Host(), [Path.Combine(AppContext.BaseDirectory, "gpt2-engine.dll"), .. args]);

    /// <summary>
    /// Through <c>sh -c</c>, with <paramref name="redirection"/> (e.g. <c>&gt;&amp;-</c>) applied to the command;
    /// standard output and error are still captured unless the redirection replaces them.
    /// </summary>
    public static Process StartInShell(string redirection, params string[] args) =>
        Start("/bin/sh", ["-c", $"exec \"$0\" \"$@\" {redirection}", Host(), Path.Combine(AppContext.BaseDirectory, "gpt2-engine.dll"), .. args]);

    /// <summary>Waits for the exit; kills the child and fails the test if it runs past <see cref="Timeout"/>.</summary>
    public static async Task<(int Code, string Out, string Err)> FinishAsync(Process process)
    {
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(Timeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"the command ran for more than {Timeout}");
        }
        return (process.ExitCode, await output, await error);
    }

    private static Process Start(string program, string[] args)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args) start.ArgumentList.Add(arg);
        return Process.Start(start)!;
    }

    /// <summary>The dotnet host running the tests (the test platform names it in DOTNET_HOST_PATH), else the one on the PATH.</summary>
    private static string Host() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } path ? path
        : Environment.ProcessPath is { } host && Path.GetFileNameWithoutExtension(host) == "dotnet" ? host
        : "dotnet";
}

/// <summary>A fact that needs Linux: /bin/sh redirections, /dev/full, /proc, FIFOs, statx(2), signals: skipped elsewhere.</summary>
public sealed class LinuxFactAttribute : FactAttribute
{
    public LinuxFactAttribute()
    {
        if (!OperatingSystem.IsLinux()) Skip = "needs Linux";
    }
}
