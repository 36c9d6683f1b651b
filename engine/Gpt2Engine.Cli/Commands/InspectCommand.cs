using System.CommandLine;

namespace Gpt2Engine.Cli.Commands;

internal static class InspectCommand
{
    public static Command Create()
    {
        var command = new Command("inspect", "Describe a checkpoint: format, hyperparameters, tensors.");
        command.SetAction(new Func<ParseResult, int>(_ => throw new Gpt2Exception("'inspect' is not implemented yet")));
        return command;
    }
}
