using System.CommandLine;

namespace Gpt2Engine.Cli.Commands;

internal static class TrainCommand
{
    public static Command Create()
    {
        var command = new Command("train", "Train or fine-tune GPT-2.");
        command.SetAction(new Func<ParseResult, int>(_ => throw new Gpt2Exception("'train' is not implemented yet")));
        return command;
    }
}
