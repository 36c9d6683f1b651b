using System.CommandLine;
using Gpt2Engine.Model;
using Gpt2Engine.Training;
using Spectre.Console;

namespace Gpt2Engine.Cli.Commands;

internal static class TrainCommand
{
    public static Command Create()
    {
        var command = new Command("train", "Train GPT-2 from scratch or fine-tune it on prepared token shards (see 'prepare').");
        var weights = new Option<string>("--weights") { Description = "Weights to fine-tune: a size name, directory or .safetensors file" };
        var config = new Option<string>("--config") { Description = $"Train from scratch at a size: {Gpt2Sizes.Names}; or give --layers/--channels/--heads" };
        var layers = new Option<int?>("--layers") { Description = "From scratch: number of layers" };
        var channels = new Option<int?>("--channels") { Description = "From scratch: embedding width" };
        var heads = new Option<int?>("--heads") { Description = "From scratch: attention heads" };
        var context = new Option<int?>("--context") { Description = "From scratch: context length (default 1024)" };
        var data = new Option<string>("--data") { Description = "Directory written by 'prepare'", Required = true };
        var output = new Option<string>("--out") { Description = "Directory for checkpoints (model.safetensors, config.json, training-state.safetensors); without --resume it must hold none", Required = true };
        var d = new TrainingOptions { DataDirectory = "", OutputDirectory = "" };
        var steps = new Option<int>("--steps") { Description = "Optimizer steps in all", DefaultValueFactory = _ => d.Steps };
        var batch = new Option<int>("--batch") { Description = "Sequences per micro-batch (B)", DefaultValueFactory = _ => d.BatchSize };
        var seq = new Option<int>("--seq") { Description = "Tokens per sequence (T)", DefaultValueFactory = _ => d.SequenceLength };
        var accumulation = new Option<int>("--grad-accum") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => d.GradientAccumulation };
        var lr = new Option<float>("--lr") { Description = "Peak learning rate (at most 1)", DefaultValueFactory = _ => d.LearningRate };
        var minLr = new Option<float?>("--min-lr") { Description = "Learning rate at the last step (cosine decay; default lr/10)" };
        var warmup = new Option<int>("--warmup") { Description = "Linear warmup steps (at most --steps)", DefaultValueFactory = _ => d.WarmupSteps };
        var beta1 = new Option<float>("--beta1") { Description = "AdamW beta1", DefaultValueFactory = _ => d.Beta1 };
        var beta2 = new Option<float>("--beta2") { Description = "AdamW beta2", DefaultValueFactory = _ => d.Beta2 };
        var weightDecay = new Option<float>("--weight-decay") { Description = "AdamW decoupled weight decay (applies to every parameter; below 1/lr)", DefaultValueFactory = _ => d.WeightDecay };
        var clip = new Option<float>("--clip") { Description = "Clip the global gradient norm to this (0: off)", DefaultValueFactory = _ => d.Clip };
        var evalEvery = new Option<int>("--eval-every") { Description = "Validation loss every K steps (0: at the end only)", DefaultValueFactory = _ => d.EvalEvery };
        var evalBatches = new Option<int>("--eval-batches") { Description = "Validation batches per evaluation", DefaultValueFactory = _ => d.EvalBatches };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Checkpoint every K steps (0: at the end only)", DefaultValueFactory = _ => d.CheckpointEvery };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its last checkpoint" };
        var seed = new Option<ulong?>("--seed") { Description = $"Seed for initialisation and data order (default {TrainingOptions.DefaultSeed}; --resume keeps the run's)" };
        var threads = new Option<int>("--threads") { Description = "CPU threads (default: all cores)" };
        var device = new Option<string>("--device") { Description = BackendFactory.Help, DefaultValueFactory = _ => "cpu" };
        foreach (var option in new Option[] { weights, config, layers, channels, heads, context, data, output, steps, batch, seq, accumulation, lr, minLr, warmup, beta1, beta2, weightDecay, clip, evalEvery, evalBatches, checkpointEvery, resume, seed, threads, device })
            command.Options.Add(option);

        command.SetAction(new Func<ParseResult, int>(parse =>
        {
            var options = new TrainingOptions
            {
                DataDirectory = parse.GetValue(data)!,
                OutputDirectory = parse.GetValue(output)!,
                Weights = parse.GetValue(weights),
                Config = ModelShape(parse.GetValue(config), parse.GetValue(layers), parse.GetValue(channels), parse.GetValue(heads), parse.GetValue(context)),
                Resume = parse.GetValue(resume),
                Steps = parse.GetValue(steps),
                BatchSize = parse.GetValue(batch),
                SequenceLength = parse.GetValue(seq),
                GradientAccumulation = parse.GetValue(accumulation),
                LearningRate = parse.GetValue(lr),
                MinLearningRate = parse.GetValue(minLr),
                WarmupSteps = parse.GetValue(warmup),
                Beta1 = parse.GetValue(beta1),
                Beta2 = parse.GetValue(beta2),
                WeightDecay = parse.GetValue(weightDecay),
                Clip = parse.GetValue(clip),
                EvalEvery = parse.GetValue(evalEvery),
                EvalBatches = parse.GetValue(evalBatches),
                CheckpointEvery = parse.GetValue(checkpointEvery),
                Seed = parse.GetValue(seed),
            };
            if (options.Weights is not null && options.Config is not null) throw new Gpt2Exception("give either --weights (fine-tune) or --config/--layers (from scratch), not both");
            using var cancel = new CancellationTokenSource();
            using var graceful = Interruption.Graceful(cancel); // Ctrl-C: finish the step, checkpoint, then stop
            using var trainer = Trainer.Open(options, BackendFactory.Create(parse.GetValue(device)!, parse.InvocationConfiguration.Error, parse.GetValue(threads)));
            var writer = parse.InvocationConfiguration.Output;
            writer.WriteLine($"model {trainer.Model.Config} ({trainer.Model.Config.ParameterCount:N0} parameters) from {trainer.Model.Source}, {trainer.Model.Backend.Name}");
            writer.WriteLine($"data {options.DataDirectory}: {trainer.TrainTokens:N0} train tokens, {trainer.ValidationTokens:N0} validation tokens; starting at step {trainer.Step}");
            if (writer == Console.Out && !Console.IsOutputRedirected) RunWithProgressBar(trainer, options.Steps, cancel.Token);
            else trainer.Run(step => writer.WriteLine(Describe(step)), cancel.Token);
            return 0;
        }));
        return command;
    }

    private static Gpt2Config? ModelShape(string? size, int? layers, int? channels, int? heads, int? context)
    {
        Gpt2Config? config = null;
        if (size is not null && !Gpt2Sizes.TryFind(size, out _, out config))
            throw new Gpt2Exception($"--config '{size}' is not a GPT-2 size ({Gpt2Sizes.Names})");
        if (config is null && layers is null && channels is null && heads is null && context is null) return null;
        if (config is null && (layers is null || channels is null || heads is null))
            throw new Gpt2Exception("a custom model shape needs --layers, --channels and --heads (or --config SIZE)");
        config ??= new Gpt2Config(Gpt2Config.Gpt2VocabSize, 1024, channels!.Value, layers!.Value, heads!.Value);
        config = config with
        {
            Layers = layers ?? config.Layers,
            Channels = channels ?? config.Channels,
            Heads = heads ?? config.Heads,
            ContextLength = context ?? config.ContextLength,
        };
        config.Validate("--config");
        return config;
    }

    private static string Describe(TrainingStep s)
    {
        string line = $"step {s.Step,6}/{s.TotalSteps} | loss {s.Loss:F4} | lr {s.LearningRate:0.00e+00} | norm {s.GradientNorm:F3} | {s.Milliseconds:F0} ms | {s.TokensPerSecond:F0} tok/s";
        if (!float.IsNaN(s.ValidationLoss)) line += $" | val loss {s.ValidationLoss:F4}";
        if (s.Checkpoint is not null) line += $" | saved {s.Checkpoint}";
        return line;
    }

    private static void RunWithProgressBar(Trainer trainer, int steps, CancellationToken cancellation) =>
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask("training", maxValue: steps);
                task.Value = trainer.Step;
                trainer.Run(s =>
                {
                    task.Description = $"step {s.Step}/{s.TotalSteps} loss {s.Loss:F4} {s.Milliseconds:F0} ms {s.TokensPerSecond:F0} tok/s";
                    task.Value = s.Step;
                    if (!float.IsNaN(s.ValidationLoss) || s.Checkpoint is not null) AnsiConsole.WriteLine(Describe(s));
                }, cancellation);
            });
}
