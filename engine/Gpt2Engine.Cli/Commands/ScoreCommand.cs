using System.CommandLine;
using System.Globalization;
using Gpt2Engine.Evaluation;
using Gpt2Engine.Model;
using Gpt2Engine.Tokenization;

namespace Gpt2Engine.Cli.Commands;

internal static class ScoreCommand
{
    public static Command Create()
    {
        var weights = new Option<string>("--weights") { Description = "A model size (124M...), a checkpoint directory or a .safetensors file", Required = true };
        var window = new Option<int?>("--window") { Description = "Tokens per window (default: the model's context)" };
        var stride = new Option<int?>("--stride") { Description = "Tokens between window starts; each window scores only tokens no earlier window scored (default: half the window)" };
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var files = new Argument<string[]>("FILE") { Description = "UTF-8 text files", Arity = ArgumentArity.OneOrMore };
        var command = new Command("score", "Loss, perplexity and bits per byte of text, with a sliding window.");
        command.Options.Add(weights);
        command.Options.Add(window);
        command.Options.Add(stride);
        command.Options.Add(json);
        command.Arguments.Add(files);
        command.SetAction(new Func<ParseResult, int>(parse =>
        {
            using var model = Gpt2Model.Load(parse.GetValue(weights)!);
            int w = parse.GetValue(window) ?? model.Config.ContextLength;
            int s = parse.GetValue(stride) ?? Math.Max(1, w / 2);
            SlidingWindowScorer.Validate(model.Config, w, s);
            var scores = parse.GetValue(files)!.Select(f => TextScore.ScoreFile(model, Gpt2Tokenizer.Default, f, w, s)).ToList();
            var total = TextScore.Sum("total", scores);
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json)) output.WriteLine(Json(model.Source, w, s, scores, total));
            else
            {
                foreach (var score in scores) output.WriteLine(Line(score));
                if (scores.Count > 1) output.WriteLine(Line(total));
            }
            return 0;
        }));
        return command;
    }

    private static string Line(TextScore s) => string.Create(CultureInfo.InvariantCulture,
        $"{s.Name}: {s.Tokens:N0} tokens, {s.Bytes:N0} bytes: loss {s.Loss:F4} nats/token, perplexity {s.Perplexity:F3}, {s.BitsPerByte:F4} bits/byte");

    private static string Json(string weights, int window, int stride, List<TextScore> scores, TextScore total) => JsonText.Write(w =>
    {
        void Score(TextScore s)
        {
            w.WriteStartObject();
            w.WriteString("file", s.Name);
            w.WriteNumber("tokens", s.Tokens);
            w.WriteNumber("bytes", s.Bytes);
            w.WriteNumber("nats", s.Nats);
            w.WriteNumber("loss", s.Loss);
            w.WriteNumber("perplexity", s.Perplexity);
            w.WriteNumber("bits_per_byte", s.BitsPerByte);
            w.WriteEndObject();
        }
        w.WriteStartObject();
        w.WriteString("weights", weights);
        w.WriteNumber("window", window);
        w.WriteNumber("stride", stride);
        w.WriteStartArray("files");
        scores.ForEach(Score);
        w.WriteEndArray();
        w.WritePropertyName("total");
        Score(total);
        w.WriteEndObject();
    }, indented: true);
}
