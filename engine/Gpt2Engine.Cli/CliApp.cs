using System.CommandLine;
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

    public static int Run(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs the command line; user errors become "gpt2-engine: error: ..." and exit code 1 (2 for usage errors).</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var parse = BuildRoot().Parse(args);
        if (parse.Errors.Count > 0)
        {
            error.WriteLine($"gpt2-engine: error: {parse.Errors[0].Message} (see 'gpt2-engine {parse.CommandResult.Command.Name} --help')".Replace("gpt2-engine gpt2-engine", "gpt2-engine"));
            return 2;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (Gpt2Exception e)
        {
            error.WriteLine($"gpt2-engine: error: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("gpt2-engine: cancelled");
            return 130;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or OutOfMemoryException or InvalidDataException)
        {
            error.WriteLine($"gpt2-engine: error: {e.Message}");
            return 1;
        }
    }
}
