using System.CommandLine;

namespace Gpt2Engine.Cli.Commands;

internal static class BenchCommand
{
    public static Command Create()
    {
        var command = new Command("bench", "Measure generation and training speed.");
        command.SetAction(new Func<ParseResult, int>(_ => throw new Gpt2Exception("'bench' is not implemented yet")));
        return command;
    }
}
