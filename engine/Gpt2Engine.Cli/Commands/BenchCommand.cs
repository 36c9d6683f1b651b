using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text;
using Gpt2Engine.Benchmarks;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cpu;
using Gpt2Engine.Model;
using Gpt2Engine.Profiling;
using Gpt2Engine.Tokenization;
using Gpt2Engine.Training;

namespace Gpt2Engine.Cli.Commands;

internal static class BenchCommand
{
    public static Command Create()
    {
        var weights = new Option<string>("--weights") { Description = "Weights: a size name (124M...), a checkpoint directory or a .safetensors file (tools/random-model.fsx writes random ones)" };
        var device = new Option<string>("--device") { Description = "Where to run: " + BackendFactory.Help, DefaultValueFactory = _ => "cpu" };
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length to time", DefaultValueFactory = _ => 64 };
        var genTokens = new Option<int>("--gen-tokens") { Description = "Tokens to generate, one at a time", DefaultValueFactory = _ => 128 };
        var threads = new Option<int[]>("--threads") { Description = "CPU threads (default: one per processor); with --profile a list to sweep, e.g. 1,2", DefaultValueFactory = _ => [0], CustomParser = IntList };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text" };
        var profile = new Option<bool>("--profile") { Description = "Time every operation of generation and of a training step (4 x 64 tokens) through the profiling backend" };
        var train = new Option<bool>("--train") { Description = "Time training steps instead: a randomly initialised model (the size --weights names, default 124M), fp32" };
        var trainBatch = new Option<int>("--batch") { Description = "With --train: sequences per step", DefaultValueFactory = _ => 4 };
        var trainSeq = new Option<int>("--seq") { Description = "With --train: tokens per sequence", DefaultValueFactory = _ => 64 };
        var trainSteps = new Option<int>("--steps") { Description = "With --train: timed steps (after one warm-up step)", DefaultValueFactory = _ => 5 };
        var compare = new Option<string?>("--compare") { Description = "Other weights to time side by side, turn by turn (e.g. the bf16 conversion of --weights), for a ratio that the machine's drift does not blur" };
        var promptSweep = new Option<int[]?>("--prompt-sweep") { Description = "With --profile: prompt lengths to sweep, e.g. 16,64,256 (default: --prompt-tokens)", CustomParser = IntList };
        var command = new Command("bench", "Measure generation speed (prompt tokens/s, ms/token) against the machine's memory-bandwidth roof.");
        foreach (var option in (Option[])[weights, compare, device, promptTokens, genTokens, threads, json, profile, promptSweep, train, trainBatch, trainSeq, trainSteps]) command.Options.Add(option);
        command.SetAction(new Func<ParseResult, int>(parse =>
        {
            // A flag of the other mode would be ignored without a word: say so instead.
            bool Given(Option option) => parse.GetResult(option) is { Implicit: false };
            var (mode, others) = parse.GetValue(train) ? ("--train", new Option[] { profile, promptSweep, promptTokens, genTokens, compare })
                : ("timing generation", new Option[] { trainBatch, trainSeq, trainSteps });
            if (others.FirstOrDefault(Given) is { } ignored) throw new Gpt2Exception($"{ignored.Name} does not apply to {mode}");
            if (Given(compare) && parse.GetValue(profile)) throw new Gpt2Exception("--compare does not apply to --profile");
            if (Given(promptSweep) && !parse.GetValue(profile)) throw new Gpt2Exception("--prompt-sweep is for --profile");
            if (parse.GetValue(train))
            {
                if (parse.GetValue(threads)!.Length != 1) throw new Gpt2Exception("--train takes one --threads count");
                string size = parse.GetValue(weights) ?? "124M";
                if (!Gpt2Sizes.TryFind(size, out _, out var config)) throw new Gpt2Exception($"--train times a random model: --weights must be a size name ({Gpt2Sizes.Names}), not '{size}'");
                var trainBackend = BackendFactory.Create(parse.GetValue(device)!, parse.InvocationConfiguration.Error, parse.GetValue(threads)![0]);
                var trained = TrainingBenchmark.Run(config, parse.GetValue(trainBatch), parse.GetValue(trainSeq), parse.GetValue(trainSteps), trainBackend); // owns the backend
                parse.InvocationConfiguration.Output.WriteLine(parse.GetValue(json) ? trained.ToJson() : trained.ToString());
                return 0;
            }
            string weightsPath = parse.GetValue(weights) ?? throw new Gpt2Exception("bench needs --weights (a checkpoint, or random weights from tools/random-model.fsx)");
            int[] threadCounts = parse.GetValue(threads)!;
            if (threadCounts.Any(t => t < 0)) throw new Gpt2Exception($"--threads {string.Join(',', threadCounts)}: expected positive counts (or 0 for one per processor)");
            string deviceName = parse.GetValue(device)!;
            if (parse.GetValue(profile))
            {
                var output = parse.InvocationConfiguration.Output;
                int[] prompts = parse.GetValue(promptSweep) is { Length: > 0 } sweep ? sweep : [parse.GetValue(promptTokens)];
                if (prompts.Any(p => p < 1)) // said before the model loads, naming the option
                    throw new Gpt2Exception($"{(Given(promptSweep) ? "--prompt-sweep" : "--prompt-tokens")} {string.Join(',', prompts)}: a prompt length must be at least 1 token");
                using var loaded = CheckpointLoader.Load(weightsPath);
                // The profiled training step (4 x 64 tokens) holds parameters, gradients, both AdamW moments and the
                // activations: skip it where that would not fit in half the machine's memory.
                const int profileBatch = 4;
                int profileLength = Math.Min(64, loaded.Config.ContextLength);
                long trainingBytes = Gpt2Model.TrainingBytes(loaded.Config, profileBatch, profileLength);
                bool trainingFits = trainingBytes < GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2;
                if (!trainingFits)
                    parse.InvocationConfiguration.Error.WriteLine($"gpt2-engine: not profiling a training step: its {trainingBytes / (double)(1L << 30):F1} GiB would not fit in memory");
                var settings = new ProfileSettings(threadCounts, prompts, parse.GetValue(genTokens), TrainBatch: trainingFits ? profileBatch : 0, TrainLength: profileLength);
                var report = Profiler.Run(loaded, t => BackendFactory.Create(deviceName, parse.InvocationConfiguration.Error, t), settings, Gpt2Tokenizer.Default);
                if (!parse.GetValue(json)) report.WriteText(output);
                else
                {
                    var stream = new MemoryStream();
                    report.WriteJson(stream);
                    output.WriteLine(Encoding.UTF8.GetString(stream.ToArray()));
                }
                return 0;
            }
            if (threadCounts.Length != 1) throw new Gpt2Exception("a list of --threads is a sweep: add --profile");
            int threadCount = threadCounts[0];
            using var backend = BackendFactory.Create(deviceName, parse.InvocationConfiguration.Error, threadCount);
            // The host's read bandwidth: the roof of CPU decoding (on a GPU it is only a point of reference); and on the
            // CPU its multiply-add peak, the roof of prompt processing.
            int probeThreads = backend is CpuBackend cpu ? cpu.Threads : Environment.ProcessorCount;
            var models = new List<(string, Func<Gpt2Model>)> { (weightsPath, () => Gpt2Model.Load(weightsPath, backend)) };
            if (parse.GetValue(compare) is string other) models.Add((other, () => Gpt2Model.Load(other, backend)));
            var results = InferenceBenchmark.Run(models, parse.GetValue(promptTokens), parse.GetValue(genTokens),
                () => MemoryBandwidth.MeasureRead(probeThreads), backend is CpuBackend ? () => ComputePeak.MeasureFma(probeThreads) : null);
            var comparison = results.Length == 2 ? new SideBySideResult(results[0], results[1]) : null;
            parse.InvocationConfiguration.Output.WriteLine((parse.GetValue(json), comparison) switch
            {
                (true, null) => results[0].ToJson(),
                (true, _) => comparison.ToJson(),
                (false, null) => results[0].ToString(),
                (false, _) => comparison.ToString(),
            });
            return 0;
        }));
        return command;
    }

    /// <summary>A comma-separated list of integers ("1,2").</summary>
    private static int[] IntList(ArgumentResult result)
    {
        if (result.Tokens.Count == 0) return []; // the option is absent: its default
        string text = string.Join(',', result.Tokens.Select(t => t.Value));
        var values = text.Split(',', StringSplitOptions.RemoveEmptyEntries);
        if (values.Length > 0 && values.All(v => int.TryParse(v, out _))) return [.. values.Select(int.Parse)];
        result.AddError($"'{text}' is not a comma-separated list of integers");
        return [];
    }
}
