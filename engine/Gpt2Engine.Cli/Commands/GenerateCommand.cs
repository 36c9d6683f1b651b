using System.CommandLine;

namespace Gpt2Engine.Cli.Commands;

internal static class GenerateCommand
{
    public static Command Create()
    {
        var command = new Command("generate", "Generate text from a prompt, streaming tokens to stdout.");
        command.SetAction(new Func<ParseResult, int>(_ => throw new Gpt2Exception("'generate' is not implemented yet")));
        return command;
    }
}
