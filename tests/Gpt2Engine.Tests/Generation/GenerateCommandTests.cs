using Gpt2Engine.Cli;
using Gpt2Engine.Cli.Commands;
using Xunit;

namespace Gpt2Engine.Tests.Generation;

public class GenerateCommandTests
{
    /// <summary>Runs the command on the CPU (the default, auto, would take a GPU where there is one and say so).</summary>
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Run([args[0], "--device", "cpu", .. args[1..]], output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static void AssertOneLineError((int Code, string Out, string Err) result, string expected)
    {
        Assert.NotEqual(0, result.Code);
        Assert.StartsWith("gpt2-engine: error: ", result.Err);
        Assert.Single(result.Err.TrimEnd('\n').Split('\n'));
        Assert.Contains(expected, result.Err);
    }

    [Fact]
    public void Greedy_ids_match_the_reference_continuation()
    {
        string prompt = string.Join(' ', TinyFixture.Ints("prompt"));
        var result = Run("generate", "--weights", TinyFixture.ModelPath, "--prompt-ids", prompt, "--greedy", "--max-tokens", "12", "--ids", "--quiet");
        Assert.Equal(0, result.Code);
        Assert.Equal("", result.Err);
        Assert.Equal(TinyFixture.Ints("greedy"), result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse));
    }

    [Fact]
    public void Text_with_a_seed_is_reproducible_and_the_summary_goes_to_stderr()
    {
        string[] args = ["generate", "--weights", TinyFixture.ModelPath, "--prompt", "@", "--max-tokens", "10", "--seed", "5", "--samples", "2"];
        var first = Run(args);
        var second = Run(args);
        Assert.Equal(0, first.Code);
        Assert.Equal(first.Out, second.Out);
        Assert.StartsWith("======== SAMPLE 1 ========\n", first.Out);
        Assert.Contains("\n======== SAMPLE 2 ========\n", first.Out);
        Assert.Contains("seed 5", first.Err);
        Assert.Contains("tokens/s", first.Err);
    }

    /// <summary>--max-tokens 0 prints an empty text, and its summary counts the prompt's 4 tokens (it said 0) without a rate for work not done.</summary>
    [Fact]
    public void Zero_max_tokens_reports_the_prompt_length()
    {
        var result = Run("generate", "--weights", TinyFixture.ModelPath, "--prompt-ids", "1 2 3 4", "--max-tokens", "0");
        Assert.Equal((0, "\n"), (result.Code, result.Out)); // the empty text's line
        Assert.StartsWith("prompt: 4 tokens, not run (--max-tokens 0); seed ", result.Err.Split('\n').Single(line => line.StartsWith("prompt: ")));
    }

    /// <summary>--stop may be repeated: a sample ends at the first token that completes any of the texts.</summary>
    [Fact]
    public void Repeated_stop_options_end_at_the_first_text_completed()
    {
        string[] run = ["generate", "--weights", TinyFixture.ModelPath, "--prompt-ids", "10 20 30", "--max-tokens", "20", "--seed", "3", "--top-k", "0", "--ids", "--quiet"];
        int[] free = [.. Run(run).Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse)];
        var tokenizer = Gpt2Engine.Tokenization.Gpt2Tokenizer.Default;
        string early = tokenizer.Decode(free.AsSpan(4, 2)), late = tokenizer.Decode(free.AsSpan(17, 3));
        int end = Enumerable.Range(1, free.Length).First(n => tokenizer.Decode(free.AsSpan(0, n)).Contains(early));
        Assert.DoesNotContain(late, tokenizer.Decode(free.AsSpan(0, end + 2))); // so that each stop text ends the sample elsewhere

        const string absent = "a text the sample never writes";
        Assert.DoesNotContain(absent, tokenizer.Decode(free));
        var stopped = Run([.. run, "--stop", absent, "--stop", early, "--stop", late]);
        Assert.Equal(0, stopped.Code);
        Assert.Equal(free[..end], stopped.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse));
        AssertOneLineError(Run([.. run, "--stop", ""]), "a stop text must not be empty");
    }

    [Fact]
    public void Running_past_the_context_stops_with_a_message()
    {
        var result = Run("generate", "--weights", TinyFixture.ModelPath, "--prompt-ids", "1 2 3", "--max-tokens", "100", "--ids", "--quiet");
        Assert.Equal(0, result.Code);
        Assert.Equal(32 - 3 + 1, result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("context", result.Err);
    }

    [Fact]
    public void An_unknown_flag_is_a_usage_error()
    {
        var result = Run("generate", "--weights", TinyFixture.ModelPath, "--bogus");
        Assert.Equal(2, result.Code);
        Assert.Single(result.Err.TrimEnd('\n').Split('\n'));
        Assert.Contains("--bogus", result.Err);
    }

    [Fact]
    public void A_prompt_longer_than_the_context_needs_truncate()
    {
        string prompt = string.Join(' ', Enumerable.Range(0, 40));
        AssertOneLineError(Run("generate", "--weights", TinyFixture.ModelPath, "--prompt-ids", prompt), "--truncate");
        var truncated = Run("generate", "--weights", TinyFixture.ModelPath, "--prompt-ids", prompt, "--truncate", "--ids");
        Assert.Equal(0, truncated.Code);
        Assert.Contains("truncated", truncated.Err);
    }

    [Fact]
    public void Missing_weights_are_a_one_line_error()
    {
        string missing = Path.Combine(Path.GetTempPath(), "no-such-dir-" + Guid.NewGuid(), "model.safetensors");
        AssertOneLineError(Run("generate", "--weights", missing, "--prompt-ids", "1"), "no-such-dir-");
    }

    [Theory]
    [InlineData("1 2 96", "96")]
    [InlineData("1 x 3", "'x'")]
    [InlineData("1 -5", "'-5'")]
    public void Bad_prompt_ids_are_one_line_errors(string ids, string named)
    {
        AssertOneLineError(Run("generate", "--weights", TinyFixture.ModelPath, "--prompt-ids", ids), named);
    }

    /// <summary>A prompt file (and standard input) loses its one final line break, which editors and echo add, and keeps any other.</summary>
    [Theory]
    [InlineData("\n", "")]
    [InlineData("\r\n", "")]
    [InlineData("\n\n", "\n")]
    [InlineData("", "")]
    public void A_prompt_files_final_line_break_is_dropped(string ending, string kept)
    {
        using var model = new Evaluation.RandomGpt2Model(); // the tiny fixture's 96 tokens cannot spell text
        string file = model.WriteFile("prompt.txt", "Once upon a time" + ending);
        string[] greedy = ["--weights", model.WeightsPath, "--greedy", "--max-tokens", "3", "--ids", "--quiet"];
        var fromFile = Run(["generate", "--prompt-file", file, .. greedy]);
        var fromText = Run(["generate", "--prompt", "Once upon a time" + kept, .. greedy]);
        Assert.Equal(0, fromFile.Code);
        Assert.Equal(fromText.Out, fromFile.Out);
        Assert.Equal("Once upon a time" + kept, GenerateCommand.WithoutFinalLineBreak("Once upon a time" + ending));
    }

    [Fact]
    public void Two_prompts_are_an_error()
    {
        AssertOneLineError(Run("generate", "--weights", TinyFixture.ModelPath, "--prompt", "a", "--prompt-ids", "1"), "one way");
    }

    [Fact]
    public async Task A_reader_that_goes_away_ends_generation_quietly()
    {
        // The built CLI in a child process, piped into a reader that takes a few bytes and closes the pipe: the
        // writes then fail with EPIPE, and the command must stop at once, exit 0 and say nothing.
        using var process = CliProcess.Start("generate", "--weights", TinyFixture.ModelPath, "--prompt-ids", "1 2 3", "--max-tokens", "1000000",
            "--sliding-window", "--threads", "1", "--device", "cpu", "--seed", "1");
        var error = process.StandardError.ReadToEndAsync();
        var buffer = new char[10];
        using var timeout = new CancellationTokenSource(CliProcess.Timeout);
        for (int read = 0, n; read < buffer.Length; read += n)
        {
            n = await process.StandardOutput.ReadAsync(buffer.AsMemory(read), timeout.Token);
            Assert.True(n > 0, "the command ended before writing 10 characters");
        }
        process.StandardOutput.Close();
        if (!process.WaitForExit(60_000))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("the command kept generating after its reader went away");
        }
        Assert.Equal("", await error);
        Assert.Equal(0, process.ExitCode);
    }

    [LinuxFact]
    public async Task A_closed_standard_output_is_a_one_line_error()
    {
        // Alone, descriptor 1 goes to a file the runtime reads; with standard input closed too, to its own pipe.
        foreach (string closed in new[] { ">&-", "<&- >&-" })
        {
            var result = await CliProcess.FinishAsync(CliProcess.StartInShell(closed, "generate", "--weights", TinyFixture.ModelPath, "--prompt-ids", "1 2", "--device", "cpu"));
            AssertOneLineError(result, "standard output is closed");
        }
    }

    /// <summary>
    /// With standard error closed (or full) the error line has nowhere to go, but the process still ends with the
    /// command's exit code (not 134, an unhandled exception writing the line) and writes nothing to standard output.
    /// </summary>
    [LinuxFact]
    public async Task A_closed_standard_error_keeps_the_exit_code()
    {
        // Alone, descriptor 2 is one end of the runtime's own pipe; with standard input closed too, its other end.
        foreach (string closed in new[] { "2>&-", "<&- 2>&-", "2>/dev/full" })
        {
            var result = await CliProcess.FinishAsync(CliProcess.StartInShell(closed, "generate", "--weights", "nonexistent", "--device", "cpu"));
            Assert.Equal((1, ""), (result.Code, result.Out));
            var usage = await CliProcess.FinishAsync(CliProcess.StartInShell(closed, "generate", "--no-such-flag"));
            Assert.Equal((2, ""), (usage.Code, usage.Out));
        }
    }

    /// <summary>A run that succeeds still succeeds when its notes and summary cannot be written.</summary>
    [LinuxFact]
    public async Task A_full_standard_error_does_not_fail_a_run()
    {
        var result = await CliProcess.FinishAsync(CliProcess.StartInShell("2>/dev/full", "generate", "--weights", TinyFixture.ModelPath,
            "--prompt-ids", "1 2", "--max-tokens", "3", "--greedy", "--ids", "--device", "cpu"));
        Assert.Equal(0, result.Code);
        Assert.Equal(3, result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    /// <summary>A closed standard input is said to be closed, not waited on forever (the runtime reuses descriptor 0 for a pipe of its own).</summary>
    [LinuxFact]
    public async Task A_closed_standard_input_is_a_one_line_error()
    {
        AssertOneLineError(await CliProcess.FinishAsync(CliProcess.StartInShell("<&-", "generate", "--weights", TinyFixture.ModelPath, "--device", "cpu")), "standard input is closed");
        AssertOneLineError(await CliProcess.FinishAsync(CliProcess.StartInShell("<&-", "tokenize")), "standard input is closed");
    }

    [LinuxFact]
    public async Task A_full_disk_is_an_error_not_a_reader_gone()
    {
        var result = await CliProcess.FinishAsync(CliProcess.StartInShell(">/dev/full", "generate", "--weights", TinyFixture.ModelPath, "--prompt-ids", "1 2",
            "--max-tokens", "5", "--device", "cpu", "--quiet"));
        AssertOneLineError(result, "No space left on device");
    }

    /// <summary>Options are checked before the model loads, so their error is the only line (no note about weights or device before it).</summary>
    [Theory]
    [InlineData("--samples", "-1", "samples -1")]
    [InlineData("--samples", "100000", "samples 100000")]
    [InlineData("--max-tokens", "-5", "max tokens -5")]
    [InlineData("--temperature", "-1", "temperature -1")]
    [InlineData("--top-p", "0", "top-p 0")]
    [InlineData("--top-k", "-1", "top-k -1")]
    [InlineData("--threads", "-3", "threads -3")]
    [InlineData("--threads", "100000", "threads 100000")]
    public void Bad_options_are_one_line_errors_without_notes(string option, string value, string named)
    {
        // No --weights: the default-weights note would come first if the options were checked after loading.
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Run(["generate", "--device", "auto", "--prompt-ids", "1", option, value], output, error);
        AssertOneLineError((code, output.ToString(), error.ToString()), named);
    }

    [Theory]
    [InlineData("--temperature", "1,5", "'1,5' is not a number")]
    [InlineData("--seed", "-1", "'-1' is not a whole number from 0")]
    [InlineData("--max-tokens", "ten", "'ten' is not a whole number")]
    public void Numbers_are_read_invariantly_and_named_in_words(string option, string value, string expected)
    {
        var result = Run("generate", "--weights", TinyFixture.ModelPath, "--prompt-ids", "1", option, value);
        Assert.Equal(2, result.Code);
        AssertOneLineError(result, expected);
        Assert.Contains(option, result.Err);
    }

    [Fact]
    public void An_unknown_command_is_named()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(2, CliApp.Run(["bogus"], output, error));
        AssertOneLineError((2, "", error.ToString()), "unknown command 'bogus'");
    }

    [Fact]
    public void A_prompt_error_after_loading_is_still_the_only_line()
    {
        // Without --quiet and with the device chosen automatically, the notes would precede it if printed at once.
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Run(["generate", "--weights", TinyFixture.ModelPath, "--device", "auto", "--prompt-ids", "1 2 96"], output, error);
        AssertOneLineError((code, output.ToString(), error.ToString()), "96");
    }

    [Fact]
    public void Half_a_vocabulary_beside_the_weights_is_an_error_not_the_built_in_one()
    {
        using var directory = new TempDir();
        foreach (string file in new[] { "model.safetensors", "config.json" }) File.Copy(Path.Combine(TinyFixture.Directory, file), Path.Combine(directory.Path, file));
        File.WriteAllText(Path.Combine(directory.Path, "vocab.bpe"), "#version: 0.2\n");
        AssertOneLineError(Run("generate", "--weights", directory.Path, "--prompt", "hi"), "encoder.json");
    }
}
