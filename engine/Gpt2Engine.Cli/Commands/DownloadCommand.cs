using System.CommandLine;
using System.Diagnostics;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;
using Spectre.Console;

namespace Gpt2Engine.Cli.Commands;

internal static class DownloadCommand
{
    public static Command Create()
    {
        var size = new Argument<string>("size") { Description = $"Model size: {Gpt2Sizes.Names}" };
        var baseUrl = new Option<string>("--base-url") { Description = "Where the release folders are", DefaultValueFactory = _ => ModelCatalog.DefaultBaseUrl };
        var weightsDir = new Option<string?>("--weights-dir") { Description = $"Weights root (default: ${ModelCatalog.WeightsDirVariable}, else the nearest weights/ folder, else ./weights)" };
        var command = new Command("download", "Download an official OpenAI GPT-2 checkpoint (resumable).");
        command.Arguments.Add(size);
        command.Options.Add(baseUrl);
        command.Options.Add(weightsDir);
        command.SetAction(new Func<ParseResult, int>(parse =>
        {
            var options = new DownloadOptions { BaseUrl = parse.GetValue(baseUrl)!, WeightsRoot = parse.GetValue(weightsDir) };
            string release = ModelCatalog.ReleaseName(parse.GetValue(size)!);
            var error = parse.InvocationConfiguration.Error;
            bool terminal = StandardStreams.IsErrorTerminal(error);
            using var cancel = new CancellationTokenSource();
            using var graceful = Interruption.Graceful(cancel); // Ctrl-C: keep what arrived, for the next run to resume
            string directory = terminal
                ? WithProgressBars(release, options, cancel.Token)
                : CheckpointDownloader.DownloadReleaseAsync(release, options, new PlainProgress(error), cancel.Token).GetAwaiter().GetResult();
            parse.InvocationConfiguration.Output.WriteLine($"GPT-2 {release} is in {directory}");
            return 0;
        }));
        return command;
    }

    private static string WithProgressBars(string release, DownloadOptions options, CancellationToken cancel)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        return console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(context => CheckpointDownloader.DownloadReleaseAsync(release, options, new BarProgress(context), cancel))
            .GetAwaiter().GetResult();
    }

    /// <summary>One Spectre progress bar per file.</summary>
    private sealed class BarProgress(ProgressContext context) : IProgress<DownloadProgress>
    {
        private readonly Dictionary<string, ProgressTask> _bars = [];

        public void Report(DownloadProgress p)
        {
            if (!_bars.TryGetValue(p.File, out var bar))
                _bars[p.File] = bar = context.AddTask(Markup.Escape(p.File), maxValue: Math.Max(1, p.Total ?? 1));
            if (p.Total is { } total) bar.MaxValue = Math.Max(1, total);
            bar.Value = p.Received;
            if (p.Status is DownloadStatus.Completed or DownloadStatus.AlreadyPresent)
            {
                bar.Value = bar.MaxValue;
                bar.StopTask();
            }
        }
    }

    /// <summary>Progress as plain lines (a log or a pipe): each file's start and end, and a line every few seconds.</summary>
    private sealed class PlainProgress(TextWriter error) : IProgress<DownloadProgress>
    {
        private readonly Stopwatch _sinceLine = Stopwatch.StartNew();

        public void Report(DownloadProgress p)
        {
            string amount = $"{Bytes(p.Received)}{(p.Total is { } t ? $" / {Bytes(t)}" : "")}";
            switch (p.Status)
            {
                case DownloadStatus.AlreadyPresent: error.WriteLine($"{p.File}: already present ({Bytes(p.Received)})"); break;
                case DownloadStatus.Started: error.WriteLine($"{p.File}: {(p.Received > 0 ? $"resuming at {amount}" : $"downloading {amount}")}"); break;
                case DownloadStatus.Retrying: error.WriteLine($"{p.File}: interrupted at {amount} ({p.Message}); resuming"); break;
                case DownloadStatus.Completed: error.WriteLine($"{p.File}: done ({Bytes(p.Received)})"); break;
                case DownloadStatus.Receiving when _sinceLine.Elapsed >= TimeSpan.FromSeconds(5):
                    error.WriteLine($"{p.File}: {amount}{(p.Total is > 0 ? $" ({100.0 * p.Received / p.Total:0}%)" : "")} at {Bytes((long)p.BytesPerSecond)}/s");
                    break;
                default: return;
            }
            _sinceLine.Restart();
        }

        private static string Bytes(long n) => n >= 1 << 20 ? $"{n / 1048576.0:0.0} MiB" : n >= 1 << 10 ? $"{n / 1024.0:0.0} KiB" : $"{n} B";
    }
}
