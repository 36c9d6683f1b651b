using System.CommandLine;
using Gpt2Engine.Tokenization;

namespace Gpt2Engine.Cli.Commands;

internal static class DetokenizeCommand
{
    public static Command Create()
    {
        var options = new TokenizerOptions();
        var command = new Command("detokenize", "Decode GPT-2 token ids (whitespace-separated) to text; invalid UTF-8 is written as U+FFFD.");
        options.AddTo(command);
        command.SetAction(new Func<ParseResult, int>(parse =>
        {
            var tokenizer = options.Tokenizer(parse);
            foreach (var (name, bytes) in options.Inputs(parse))
            {
                int[] ids = TokenIdText.Parse(TokenIdText.DecodeUtf8(bytes, out _), name);
                string text;
                try
                {
                    text = tokenizer.Decode(ids);
                }
                catch (Gpt2Exception e)
                {
                    throw new Gpt2Exception($"{name}: {e.Message}", e);
                }
                parse.InvocationConfiguration.Output.Write(text);
            }
            return 0;
        }));
        return command;
    }
}
