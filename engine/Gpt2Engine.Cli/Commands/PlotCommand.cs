using System.CommandLine;

namespace Gpt2Engine.Cli.Commands;

internal static class PlotCommand
{
    public static Command Create()
    {
        var command = new Command("plot", "Draw training curves and bench sweeps as SVG.");
        command.SetAction(new Func<ParseResult, int>(_ => throw new Gpt2Exception("'plot' is not implemented yet")));
        return command;
    }
}
