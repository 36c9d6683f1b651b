using System.CommandLine;
using Gpt2Engine.Training;

namespace Gpt2Engine.Cli.Commands;

internal static class PrepareCommand
{
    public static Command Create()
    {
        var command = new Command("prepare", "Tokenize text files into train/validation token shards for 'train'.");
        var files = new Argument<string[]>("FILE") { Description = "UTF-8 text files; each is a document (<|endoftext|> inside one separates more)", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out") { Description = "Directory for train_*.bin and val_*.bin", Required = true };
        var valFraction = new Option<double>("--val-fraction") { Description = "Share of the tokens (the end of the stream) kept for validation", DefaultValueFactory = _ => 0.1 };
        command.Arguments.Add(files);
        command.Options.Add(output);
        command.Options.Add(valFraction);
        command.SetAction(new Func<ParseResult, int>(parse =>
        {
            var result = DataPreparation.Prepare(parse.GetValue(files)!, parse.GetValue(output)!, parse.GetValue(valFraction), parse.InvocationConfiguration.Error);
            var writer = parse.InvocationConfiguration.Output;
            writer.WriteLine($"{result.Documents} documents: {result.TrainTokens:N0} train tokens, {result.ValidationTokens:N0} validation tokens");
            foreach (string file in result.Files) writer.WriteLine($"wrote {file}");
            return 0;
        }));
        return command;
    }
}
