using System.CommandLine;
using Gpt2Engine.Tokenization;

namespace Gpt2Engine.Cli.Commands;

internal static class TokenizeCommand
{
    public static Command Create()
    {
        var options = new TokenizerOptions();
        var noSpecial = new Option<bool>("--no-special") { Description = "Treat <|endoftext|> in the text as plain text, not as token 50256" };
        var command = new Command("tokenize", "Encode text to GPT-2 token ids: one line of space-separated ids per input.");
        options.AddTo(command);
        command.Options.Add(noSpecial);
        command.SetAction(new Func<ParseResult, int>(parse =>
        {
            var tokenizer = options.Tokenizer(parse);
            TextWriter output = parse.InvocationConfiguration.Output, error = parse.InvocationConfiguration.Error;
            foreach (var (name, bytes) in options.Inputs(parse))
            {
                string text = TokenIdText.DecodeUtf8(bytes, name, error);
                TokenIdText.Write(tokenizer.EncodeParallel(text, allowSpecial: !parse.GetValue(noSpecial)), output);
                output.WriteLine();
            }
            return 0;
        }));
        return command;
    }
}
