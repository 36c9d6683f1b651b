using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Gpt2Engine.Cli.Commands;

namespace Gpt2Engine.Cli;

/// <summary>The <c>gpt2-engine</c> command: one subcommand per file in Commands/, errors as one line on stderr.</summary>
internal static class CliApp
{
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("gpt2-engine: run, train and evaluate OpenAI's GPT-2 on the CPU and on NVIDIA GPUs.");
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(ValidateCommand.Create());
        root.Subcommands.Add(ConvertCommand.Create());
        root.Subcommands.Add(InspectCommand.Create());
        root.Subcommands.Add(DownloadCommand.Create());
        root.Subcommands.Add(TokenizeCommand.Create());
        root.Subcommands.Add(DetokenizeCommand.Create());
        root.Subcommands.Add(PrepareCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(ScoreCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(PlotCommand.Create());
        return root;
    }

    /// <summary>The process's entry point: the console's streams, and Ctrl-C handled (see <see cref="Interruption"/>).</summary>
    public static int Run(string[] args)
    {
        Interruption.Install();
        var error = StandardStreams.Error();
        try
        {
            StandardStreams.EnsureOutputWritable(Console.Out); // every command reports there, if only a line
        }
        catch (Gpt2Exception e)
        {
            return Report(error, $"gpt2-engine: error: {e.Message}", 1);
        }
        return Run(args, Console.Out, error);
    }

    /// <summary>Runs the command line; user errors become "gpt2-engine: error: ..." and exit code 1 (2 for usage errors).</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var parse = BuildRoot().Parse(args);
        if ((BadNumber(parse) ?? OptionTakenForArgument(parse) ?? FirstParseError(parse)) is string usage)
            return Report(error, $"gpt2-engine: error: {usage} (see '{CommandPath(parse.CommandResult)} --help')", 2);
        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (Gpt2Exception e)
        {
            return Report(error, $"gpt2-engine: error: {e.Message}", 1);
        }
        catch (OperationCanceledException)
        {
            return Report(error, "gpt2-engine: cancelled", 130);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or OutOfMemoryException or InvalidDataException)
        {
            return Report(error, $"gpt2-engine: error: {e.Message}", 1);
        }
        catch (Exception e)
        {
            // A bug of ours, not the user's: still one line, with what a report needs, and no stack trace.
            return Report(error, $"gpt2-engine: internal error: {e.GetType().Name}: {e.Message.Split('\n')[0]}", 70);
        }
    }

    /// <summary>Writes the line that says why the command failed and returns its exit code.</summary>
    private static int Report(TextWriter error, string line, int code)
    {
        error.WriteLine(line);
        return code;
    }

    /// <summary>
    /// A numeric option's value that is not a plain invariant number. The parser would read "1,5" as 15 (a thousands
    /// separator), and name a .NET type when a value does not parse at all.
    /// </summary>
    private static string? BadNumber(ParseResult parse)
    {
        foreach (var result in parse.CommandResult.Children.OfType<OptionResult>())
        {
            var type = Nullable.GetUnderlyingType(result.Option.ValueType) ?? result.Option.ValueType;
            foreach (var token in result.Tokens)
            {
                string value = token.Value;
                string? expected =
                    type == typeof(float) || type == typeof(double) ? (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _) ? null : "a number, such as 0.9") :
                    type == typeof(int) ? (int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _) ? null : "a whole number") :
                    type == typeof(ulong) ? (ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out _) ? null : $"a whole number from 0 to {ulong.MaxValue}") :
                    null;
                if (expected is not null) return $"{result.Option.Name}: '{value}' is not {expected}";
            }
        }
        return null;
    }

    /// <summary>The command as typed: "gpt2-engine", "gpt2-engine generate", "gpt2-engine eval lambada".</summary>
    private static string CommandPath(CommandResult command)
    {
        var names = new List<string>();
        for (SymbolResult? result = command; result is CommandResult { Command: var c } current; result = current.Parent)
            names.Insert(0, c is RootCommand ? "gpt2-engine" : c.Name);
        return string.Join(' ', names);
    }

    /// <summary>
    /// An unknown flag that the parser took for a file name (prepare, score, tokenize take any number of files). A file
    /// whose name starts with '-' can be given as ./-name; "-" alone is standard input.
    /// </summary>
    private static string? OptionTakenForArgument(ParseResult parse) =>
        parse.CommandResult.Children.OfType<ArgumentResult>().SelectMany(a => a.Tokens)
            .Select(t => t.Value).FirstOrDefault(value => value.StartsWith('-') && value != "-") is string word ? $"unknown option '{word}'" : null;

    /// <summary>The first parse error, with an unknown word named as such (not as "a command is required").</summary>
    private static string? FirstParseError(ParseResult parse)
    {
        if (parse.Errors.Count == 0) return null;
        if (parse.UnmatchedTokens is [var word, ..])
            return word.StartsWith('-') ? $"unknown option '{word}'"
                : parse.CommandResult.Command is RootCommand ? $"unknown command '{word}'"
                : $"unexpected argument '{word}'";
        return parse.Errors[0].Message;
    }
}
