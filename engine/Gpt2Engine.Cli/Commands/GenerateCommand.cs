using System.CommandLine;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Generation;
using Gpt2Engine.Model;
using Gpt2Engine.Tokenization;

namespace Gpt2Engine.Cli.Commands;

internal static class GenerateCommand
{
    private static readonly Option<string?> Weights = new("--weights") { Description = "Weights: a size (124M, 355M, 774M, 1558M or 117M, 345M, 762M, 1542M), a directory or a .safetensors file (default: weights/124M if present, else the demo model)" };
    private static readonly Option<string?> Prompt = new("--prompt") { Description = "The prompt text (default: standard input when redirected, else an unconditional sample)" };
    private static readonly Option<FileInfo?> PromptFile = new("--prompt-file") { Description = "Read the prompt from this UTF-8 file (its final line break dropped, as from standard input)" };
    private static readonly Option<string?> PromptIds = new("--prompt-ids") { Description = "The prompt as token ids separated by spaces or commas, e.g. \"464 2068\"" };
    private static readonly Option<bool> Ids = new("--ids") { Description = "Print the new token ids, one per line, instead of text" };
    private static readonly Option<int> MaxTokens = new("--max-tokens") { Description = "New tokens per sample at most", DefaultValueFactory = _ => 128 };
    private static readonly Option<bool> Greedy = new("--greedy") { Description = "Always take the most likely token (same as --temperature 0)" };
    private static readonly Option<float> Temperature = new("--temperature") { Description = "Sampling temperature (0 = greedy)", DefaultValueFactory = _ => 1f };
    private static readonly Option<int> TopK = new("--top-k") { Description = "Sample among the k most likely tokens (0 = all)", DefaultValueFactory = _ => 40 };
    private static readonly Option<float> TopP = new("--top-p") { Description = "Sample within the nucleus holding this probability (1 = all)", DefaultValueFactory = _ => 1f };
    private static readonly Option<ulong?> Seed = new("--seed") { Description = "Seed for reproducible samples (default: random, printed in the summary)" };
    private static readonly Option<int> Samples = new("--samples") { Description = "Continuations of the prompt, decoded as one batch and printed at the end under headers", DefaultValueFactory = _ => 1 };
    private static readonly Option<string[]> Stop = new("--stop") { Description = "End a sample once its text contains this (it is printed); repeat the option for several" };
    private static readonly Option<bool> NoSpecial = new("--no-special") { Description = "Treat <|endoftext|> in the prompt as plain text" };
    private static readonly Option<bool> Truncate = new("--truncate") { Description = "Drop a long prompt's first tokens to leave room for --max-tokens (keeping at least half the context), instead of failing or stopping early" };
    private static readonly Option<bool> SlidingWindow = new("--sliding-window") { Description = "At the end of the context, continue from its last half (re-fed) instead of stopping" };
    private static readonly Option<int> Threads = new("--threads") { Description = "CPU threads (0 = all cores)", DefaultValueFactory = _ => 0 };
    private static readonly Option<string> Device = new("--device") { Description = BackendFactory.Help, DefaultValueFactory = _ => "auto" };
    private static readonly Option<bool> Quiet = new("--quiet") { Description = "No timing summary on standard error" };

    public static Command Create()
    {
        var command = new Command("generate", "Generate text from a prompt, streaming tokens to stdout.");
        foreach (var option in new Option[] { Weights, Prompt, PromptFile, PromptIds, Ids, MaxTokens, Greedy, Temperature, TopK, TopP, Seed, Samples, Stop, NoSpecial, Truncate, SlidingWindow, Threads, Device, Quiet })
            command.Options.Add(option);
        command.SetAction(new Func<ParseResult, int>(Run));
        return command;
    }

    private static int Run(ParseResult parse)
    {
        var error = parse.InvocationConfiguration.Error;
        bool quiet = parse.GetValue(Quiet);
        ulong seed = parse.GetValue(Seed) ?? (ulong)Random.Shared.NextInt64();
        var options = new GenerationOptions
        {
            MaxTokens = parse.GetValue(MaxTokens),
            Samples = parse.GetValue(Samples),
            Greedy = parse.GetValue(Greedy),
            Temperature = parse.GetValue(Temperature),
            TopK = parse.GetValue(TopK),
            TopP = parse.GetValue(TopP),
            Seed = seed,
            StopTexts = parse.GetValue(Stop) ?? [],
            Truncate = parse.GetValue(Truncate),
            SlidingWindow = parse.GetValue(SlidingWindow),
        };
        options.Validate();
        using var stdout = StandardStreams.OpenOutput(parse.InvocationConfiguration.Output);

        // Notes (which weights, which device) wait until the prompt has been read and checked, so that an error is
        // the only line on stderr.
        var notes = new StringWriter();
        string weights = parse.GetValue(Weights) ?? DefaultWeights(notes, quiet);
        using var backend = BackendFactory.Create(parse.GetValue(Device)!, quiet ? null : notes, parse.GetValue(Threads));
        using var model = Gpt2Model.Load(weights, backend);
        var warming = Task.Run(model.WarmUp); // the kernels' JIT on the other core while the vocabulary loads
        var tokenizer = Gpt2Tokenizer.ForWeightsDirectory(CheckpointLoader.ResolveDirectory(weights), out _);
        int[] prompt = ReadPrompt(parse, tokenizer);
        warming.GetAwaiter().GetResult();
        var generator = new Generator(model, tokenizer);
        bool ids = parse.GetValue(Ids);

        using var cancel = new CancellationTokenSource();
        using var graceful = Interruption.Graceful(cancel); // Ctrl-C: stop after the current token
        var pipe = PipeWriter.Create(stdout, new StreamPipeWriterOptions(leaveOpen: true));
        var writer = new GeneratedTextWriter(pipe, tokenizer, options.Samples, ids);
        var stops = new List<GeneratedToken>();
        var tokens = generator.Generate(prompt, options, cancel.Token); // checks the prompt against the model
        error.Write(notes.ToString());
        try
        {
            foreach (var token in tokens)
            {
                if (!Wait(writer.WriteAsync(token))) return 0;
                if (token.Stop != StopReason.None) stops.Add(token);
            }
        }
        catch (OperationCanceledException)
        {
            Wait(writer.CompleteAsync());
            throw;
        }
        if (!Wait(writer.CompleteAsync())) return 0;

        var stats = generator.Statistics;
        if (stats.TruncatedTokens > 0) error.WriteLine($"gpt2-engine: the prompt was truncated to its last {prompt.Length - stats.TruncatedTokens} tokens");
        if (stops.Any(t => t.Stop == StopReason.ContextFull))
            error.WriteLine($"gpt2-engine: stopped at the end of the model's context ({model.Config.ContextLength} positions); --sliding-window continues past it");
        if (!quiet)
        {
            string work = options.MaxTokens == 0
                ? $"prompt: {stats.PromptTokens} tokens, not run (--max-tokens 0); "
                : $"prompt: {stats.PromptTokens} tokens in {stats.PromptSeconds:0.000} s ({stats.PromptTokensPerSecond:0.0} tokens/s); " +
                  $"generated: {stats.GeneratedTokens} tokens, {stats.DecodedPositions} positions in {stats.GenerationSeconds:0.000} s ({stats.DecodedPositionsPerSecond:0.0} tokens/s); ";
            error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{work}seed {seed}; {backend.Name}{(stats.WindowSlides > 0 ? $"; window slid {stats.WindowSlides} times" : "")}"));
        }
        return 0;
    }

    private static bool Wait(ValueTask<bool> task) => task.IsCompletedSuccessfully ? task.Result : task.AsTask().GetAwaiter().GetResult();

    /// <summary>weights/124M when it has been downloaded, else the small demo model shipped beside the executable.</summary>
    private static string DefaultWeights(TextWriter error, bool quiet)
    {
        string gpt2 = ModelCatalog.DirectoryFor("124M");
        string demo = Path.Combine(AppContext.BaseDirectory, "DemoModel", CheckpointLoader.SafetensorsFileName);
        bool downloaded = Directory.Exists(gpt2) && Directory.EnumerateFileSystemEntries(gpt2).Any(); // not a folder a failed download left
        string chosen = downloaded ? gpt2 : File.Exists(demo) ? demo
            : throw new Gpt2Exception($"no --weights given, {gpt2} is not there ('gpt2-engine download 124M' fetches it) and this build has no demo model");
        if (!quiet) error.WriteLine(chosen == gpt2 ? $"gpt2-engine: using {gpt2}" : $"gpt2-engine: using the small demo model ({demo}); 'gpt2-engine download 124M' fetches GPT-2 itself");
        return chosen;
    }

    private static int[] ReadPrompt(ParseResult parse, Gpt2Tokenizer tokenizer)
    {
        string? text = parse.GetValue(Prompt);
        var file = parse.GetValue(PromptFile);
        string? idText = parse.GetValue(PromptIds);
        int given = (text is null ? 0 : 1) + (file is null ? 0 : 1) + (idText is null ? 0 : 1);
        if (given > 1) throw new Gpt2Exception("give the prompt one way: --prompt, --prompt-file or --prompt-ids");
        if (idText is not null) return ParseIds(idText);
        if (file is not null)
        {
            if (!file.Exists) throw new Gpt2Exception($"{file.FullName}: {(Directory.Exists(file.FullName) ? "is a folder, not a prompt file" : "prompt file not found")}");
            text = WithoutFinalLineBreak(File.ReadAllText(file.FullName, Encoding.UTF8));
        }
        else if (text is null && Console.IsInputRedirected && ReferenceEquals(parse.InvocationConfiguration.Output, Console.Out))
        {
            StandardStreams.EnsureInputReadable();
            text = WithoutFinalLineBreak(Console.In.ReadToEnd());
        }
        return tokenizer.Encode(text ?? "", allowSpecial: !parse.GetValue(NoSpecial));
    }

    /// <summary>
    /// A file's or standard input's text without its one final line break, which editors and <c>echo</c> add: the
    /// model should continue "Once upon a time", not start a new line after it. A blank line at the end keeps one.
    /// </summary>
    internal static string WithoutFinalLineBreak(string text) =>
        text.EndsWith("\r\n", StringComparison.Ordinal) ? text[..^2] : text.EndsWith('\n') ? text[..^1] : text;

    private static int[] ParseIds(string text)
    {
        var parts = text.Split([' ', ',', '\t', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries);
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out ids[i]))
                throw new Gpt2Exception($"--prompt-ids: '{parts[i]}' (position {i}) is not a token id");
        return ids;
    }
}
