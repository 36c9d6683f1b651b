using System.CommandLine;

namespace Gpt2Engine.Cli.Commands;

internal static class DownloadCommand
{
    public static Command Create()
    {
        var command = new Command("download", "Download an official OpenAI GPT-2 checkpoint.");
        command.SetAction(new Func<ParseResult, int>(_ => throw new Gpt2Exception("'download' is not implemented yet")));
        return command;
    }
}
