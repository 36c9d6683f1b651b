using System.CommandLine;

namespace Gpt2Engine.Cli.Commands;

internal static class EvalCommand
{
    public static Command Create()
    {
        var command = new Command("eval", "Run an evaluation task (lambada).");
        command.SetAction(new Func<ParseResult, int>(_ => throw new Gpt2Exception("'eval' is not implemented yet")));
        return command;
    }
}
