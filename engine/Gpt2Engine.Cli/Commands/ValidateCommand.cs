using System.CommandLine;

namespace Gpt2Engine.Cli.Commands;

internal static class ValidateCommand
{
    public static Command Create()
    {
        var command = new Command("validate", "Check the engine against reference outputs.");
        command.SetAction(new Func<ParseResult, int>(_ => throw new Gpt2Exception("'validate' is not implemented yet")));
        return command;
    }
}
