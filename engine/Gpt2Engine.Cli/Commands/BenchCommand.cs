using System.CommandLine;
using Gpt2Engine.Benchmarks;
using Gpt2Engine.Cpu;
using Gpt2Engine.Model;

namespace Gpt2Engine.Cli.Commands;

internal static class BenchCommand
{
    public static Command Create()
    {
        var weights = new Option<string>("--weights") { Description = "Weights: a size name (124M...), a checkpoint directory or a .safetensors file (tools/random-model.fsx writes random ones)" };
        var device = new Option<string>("--device") { Description = "Where to run: cpu", DefaultValueFactory = _ => "cpu" };
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length to time", DefaultValueFactory = _ => 64 };
        var genTokens = new Option<int>("--gen-tokens") { Description = "Tokens to generate, one at a time", DefaultValueFactory = _ => 128 };
        var threads = new Option<int>("--threads") { Description = "CPU threads (default: one per processor)", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text" };
        var command = new Command("bench", "Measure generation speed (prompt tokens/s, ms/token) against the machine's memory-bandwidth roof.");
        foreach (var option in (Option[])[weights, device, promptTokens, genTokens, threads, json]) command.Options.Add(option);
        command.SetAction(new Func<ParseResult, int>(parse =>
        {
            string weightsPath = parse.GetValue(weights) ?? throw new Gpt2Exception("bench needs --weights (a checkpoint, or random weights from tools/random-model.fsx)");
            int threadCount = parse.GetValue(threads);
            if (threadCount < 0) throw new Gpt2Exception($"--threads {threadCount}: expected a positive count (or 0 for one per processor)");
            string deviceName = parse.GetValue(device)!;
            if (deviceName != "cpu") throw new Gpt2Exception($"--device {deviceName}: this build benchmarks 'cpu' only");
            var backend = new CpuBackend(threadCount);
            double roof = MemoryBandwidth.MeasureRead(backend.Threads);
            var result = InferenceBenchmark.Run(weightsPath, () => Gpt2Model.Load(weightsPath, backend), parse.GetValue(promptTokens), parse.GetValue(genTokens), roof);
            backend.Dispose();
            parse.InvocationConfiguration.Output.WriteLine(parse.GetValue(json) ? result.ToJson() : result.ToString());
            return 0;
        }));
        return command;
    }
}
