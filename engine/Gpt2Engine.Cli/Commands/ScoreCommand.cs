using System.CommandLine;

namespace Gpt2Engine.Cli.Commands;

internal static class ScoreCommand
{
    public static Command Create()
    {
        var command = new Command("score", "Loss, perplexity and bits per byte of text.");
        command.SetAction(new Func<ParseResult, int>(_ => throw new Gpt2Exception("'score' is not implemented yet")));
        return command;
    }
}
