using System.CommandLine;

namespace Gpt2Engine.Cli.Commands;

internal static class ConvertCommand
{
    public static Command Create()
    {
        var command = new Command("convert", "Convert weights (e.g. to bf16 safetensors).");
        command.SetAction(new Func<ParseResult, int>(_ => throw new Gpt2Exception("'convert' is not implemented yet")));
        return command;
    }
}
