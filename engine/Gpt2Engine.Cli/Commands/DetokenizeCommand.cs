using System.CommandLine;

namespace Gpt2Engine.Cli.Commands;

internal static class DetokenizeCommand
{
    public static Command Create()
    {
        var command = new Command("detokenize", "Decode GPT-2 token ids to text.");
        command.SetAction(new Func<ParseResult, int>(_ => throw new Gpt2Exception("'detokenize' is not implemented yet")));
        return command;
    }
}
