using System.CommandLine;
using System.Globalization;
using Gpt2Engine.Evaluation;
using Gpt2Engine.Model;
using Gpt2Engine.Tokenization;

namespace Gpt2Engine.Cli.Commands;

internal static class EvalCommand
{
    public static Command Create()
    {
        var command = new Command("eval", "Run a benchmark task.");
        command.Subcommands.Add(Lambada());
        return command;
    }

    private static Command Lambada()
    {
        var weights = new Option<string>("--weights") { Description = "A model size (124M...), a checkpoint directory or a .safetensors file", Required = true };
        var data = new Option<string>("--data") { Description = "LAMBADA jsonl, one {\"text\": ...} per line (OpenAI's lambada_test.jsonl)", Required = true };
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var command = new Command("lambada", "LAMBADA last-word prediction: perplexity and accuracy, plain and stop-word filtered.");
        command.Options.Add(weights);
        command.Options.Add(data);
        command.Options.Add(json);
        command.SetAction(new Func<ParseResult, int>(parse =>
        {
            using var model = Gpt2Model.Load(parse.GetValue(weights)!);
            var error = parse.InvocationConfiguration.Error;
            var result = Evaluation.Lambada.EvaluateFile(model, Gpt2Tokenizer.Default, parse.GetValue(data)!, (done, total) =>
            {
                if (done % 100 == 0 || done == total) error.Write($"\rlambada: {done}/{total} passages");
                if (done == total) error.WriteLine();
            });
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json)) output.WriteLine(Json(model.Source, result));
            else
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"lambada: {result.Examples} passages: perplexity {result.Perplexity:F2} (per word; {result.TokenPerplexity:F2} per token), accuracy {100 * result.Accuracy:F2}%, stop-word filtered accuracy {100 * result.FilteredAccuracy:F2}%"));
            return 0;
        }));
        return command;
    }

    private static string Json(string weights, LambadaResult r) => JsonText.Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("task", "lambada");
        w.WriteString("weights", weights);
        w.WriteNumber("passages", r.Examples);
        w.WriteNumber("target_tokens", r.TargetTokens);
        w.WriteNumber("nats", r.Nats);
        w.WriteNumber("perplexity", r.Perplexity);
        w.WriteNumber("token_perplexity", r.TokenPerplexity);
        w.WriteNumber("accuracy", r.Accuracy);
        w.WriteNumber("filtered_accuracy", r.FilteredAccuracy);
        w.WriteEndObject();
    }, indented: true);
}
