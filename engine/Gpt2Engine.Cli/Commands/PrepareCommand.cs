using System.CommandLine;

namespace Gpt2Engine.Cli.Commands;

internal static class PrepareCommand
{
    public static Command Create()
    {
        var command = new Command("prepare", "Tokenize text into training shards.");
        command.SetAction(new Func<ParseResult, int>(_ => throw new Gpt2Exception("'prepare' is not implemented yet")));
        return command;
    }
}
