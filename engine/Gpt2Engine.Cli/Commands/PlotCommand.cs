using System.CommandLine;
using Gpt2Engine.Plotting;

namespace Gpt2Engine.Cli.Commands;

internal static class PlotCommand
{
    public static Command Create()
    {
        var run = new Option<string?>("--run") { Description = $"A training run directory: plots the loss curves of its {Gpt2Engine.Training.MetricsLog.FileName}" };
        var bench = new Option<string?>("--bench") { Description = "A sweep from 'gpt2-engine bench --profile --json': plots decode time per token" };
        var output = new Option<string>("--out") { Description = "The SVG file to write", Required = true };
        var command = new Command("plot", "Draw training loss curves or a bench sweep as an SVG chart.");
        command.Options.Add(run);
        command.Options.Add(bench);
        command.Options.Add(output);
        command.SetAction(new Func<ParseResult, int>(parse =>
        {
            string? runDirectory = parse.GetValue(run), benchReport = parse.GetValue(bench);
            if ((runDirectory is null) == (benchReport is null)) throw new Gpt2Exception("give exactly one of --run DIR or --bench FILE");
            string svg = runDirectory is not null ? Plots.LossChart(runDirectory) : Plots.BenchChart(benchReport!);
            string path = parse.GetValue(output)!;
            Plots.WriteAtomically(path, svg);
            parse.InvocationConfiguration.Output.WriteLine($"wrote {path}");
            return 0;
        }));
        return command;
    }
}
