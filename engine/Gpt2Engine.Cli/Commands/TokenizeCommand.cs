using System.CommandLine;

namespace Gpt2Engine.Cli.Commands;

internal static class TokenizeCommand
{
    public static Command Create()
    {
        var command = new Command("tokenize", "Encode text to GPT-2 token ids.");
        command.SetAction(new Func<ParseResult, int>(_ => throw new Gpt2Exception("'tokenize' is not implemented yet")));
        return command;
    }
}
