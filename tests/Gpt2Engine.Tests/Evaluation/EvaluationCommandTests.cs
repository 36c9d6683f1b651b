using System.Text.Json;
using Xunit;
using Gpt2Engine.Cli;
using Gpt2Engine.Tokenization;

namespace Gpt2Engine.Tests.Evaluation;

/// <summary>`gpt2-engine score` and `eval lambada` end to end on a small random model with GPT-2's vocabulary.</summary>
public sealed class EvaluationCommandTests(RandomGpt2Model model) : IClassFixture<RandomGpt2Model>
{
    private const string Text = "The cat sat on the mat. It was a sunny day, and the birds were singing in the trees.";

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static JsonElement Json(string output) => JsonDocument.Parse(output).RootElement;

    [Fact]
    public void Score_reports_every_token_and_byte_of_the_file()
    {
        string file = model.WriteFile("text.txt", Text);
        var (code, output, error) = Run("score", "--weights", model.WeightsPath, "--json", file);
        Assert.True(code == 0, error);
        var score = Json(output).GetProperty("files")[0];
        long tokens = score.GetProperty("tokens").GetInt64(), bytes = score.GetProperty("bytes").GetInt64();
        double nats = score.GetProperty("nats").GetDouble();
        // <|endoftext|> comes first, so every token of the text is predicted.
        Assert.Equal(Gpt2Tokenizer.Default.Encode(Text).Length, tokens);
        Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(Text), bytes);
        Assert.Equal(nats / tokens, score.GetProperty("loss").GetDouble(), 9);
        Assert.Equal(Math.Exp(nats / tokens), score.GetProperty("perplexity").GetDouble(), 6);
        Assert.Equal(nats / Math.Log(2) / bytes, score.GetProperty("bits_per_byte").GetDouble(), 9);
        // A random model is close to uniform over 50257 tokens: about ln 50257 = 10.8 nats per token.
        Assert.InRange(nats / tokens, 9.5, 12);
    }

    [Fact]
    public void Stride_does_not_matter_when_the_text_fits_one_window_and_does_when_it_does_not()
    {
        string file = model.WriteFile("short.txt", Text);
        double Nats(params string[] extra) => Json(Run(["score", "--weights", model.WeightsPath, "--json", .. extra, file]).Output).GetProperty("total").GetProperty("nats").GetDouble();
        double whole = Nats();
        Assert.Equal(whole, Nats("--stride", "3"), 4);
        Assert.NotEqual(whole, Nats("--window", "8", "--stride", "4"), 4);
    }

    [Fact]
    public void Score_prints_one_line_per_file_and_a_total()
    {
        string a = model.WriteFile("a.txt", Text), b = model.WriteFile("b.txt", "Hello, world!");
        var (code, output, _) = Run("score", "--weights", model.WeightsPath, a, b);
        Assert.Equal(0, code);
        var lines = output.TrimEnd().Split('\n');
        Assert.Equal(3, lines.Length);
        Assert.StartsWith(a + ":", lines[0]);
        Assert.StartsWith("total:", lines[2]);
        Assert.Contains("bits/byte", lines[2]);
    }

    [Theory]
    [InlineData("empty.txt", "", new string[0], "the file is empty")]
    [InlineData("ok.txt", Text, new[] { "--window", "65" }, "a window of 65 tokens is larger than the model's context of 64 positions")]
    [InlineData("ok.txt", Text, new[] { "--stride", "0" }, "the stride must be between 1 and the window of 64 tokens (got 0)")]
    [InlineData(null, null, new string[0], "no such file")]
    public void Score_bad_input_is_one_line_and_exit_1(string? name, string? content, string[] extra, string message)
    {
        string file = name is null ? Path.Combine(model.Directory, "missing.txt") : model.WriteFile(name, content!);
        var (code, output, error) = Run(["score", "--weights", model.WeightsPath, .. extra, file]);
        Assert.Equal(1, code);
        Assert.Equal("", output);
        Assert.StartsWith("gpt2-engine: error: ", error);
        Assert.Contains(message, error);
        Assert.Single(error.TrimEnd().Split('\n'));
    }

    [Fact]
    public void Lambada_runs_a_small_jsonl()
    {
        string data = model.WriteFile("lambada.jsonl", """
            {"text": "She opened the box and found a small silver key"}
            {"text": "He could not remember where he had parked the car"}

            {"text": "The children ran across the field toward the old oak tree"}
            """);
        var (code, output, error) = Run("eval", "lambada", "--weights", model.WeightsPath, "--data", data, "--json");
        Assert.True(code == 0, error);
        var result = Json(output);
        Assert.Equal(3, result.GetProperty("passages").GetInt32());
        int targetTokens = new[] { " key", " car", " tree" }.Sum(w => Gpt2Tokenizer.Default.Encode(w).Length);
        Assert.Equal(targetTokens, result.GetProperty("target_tokens").GetInt32());
        Assert.InRange(result.GetProperty("accuracy").GetDouble(), 0, 1);
        Assert.Equal(Math.Exp(result.GetProperty("nats").GetDouble() / 3), result.GetProperty("perplexity").GetDouble(), 6);
        Assert.Contains("3/3 passages", error);
    }

    /// <summary>Malformed JSON on a line, and a lone surrogate escape (which the JSON reader accepts until the string is read).</summary>
    [Theory]
    [InlineData("{\"text\": oops}")]
    [InlineData("{\"text\": \"\\ud800 world\"}")]
    public void Lambada_malformed_line_names_the_line(string line)
    {
        string data = model.WriteFile("bad.jsonl", $"{{\"text\": \"a b c\"}}\n{line}\n");
        var (code, _, error) = Run("eval", "lambada", "--weights", model.WeightsPath, "--data", data);
        Assert.Equal(1, code);
        Assert.Contains($"{data}:2: malformed JSON", error);
        Assert.Single(error.TrimEnd().Split('\n'));
    }

    /// <summary>An unknown flag among file arguments is named as an unknown option, not read as a missing file.</summary>
    [Theory]
    [InlineData("score", "--weights", "x")]
    [InlineData("prepare", "--out", "x")]
    [InlineData("tokenize")]
    public void An_unknown_flag_among_files_is_an_unknown_option(params string[] command)
    {
        var (code, _, error) = Run([.. command, "--bogus", "file.txt"]);
        Assert.Equal(2, code);
        Assert.StartsWith($"gpt2-engine: error: unknown option '--bogus' (see 'gpt2-engine {command[0]} --help')", error);
    }

    [Fact]
    public void A_usage_error_names_the_whole_command()
    {
        var (code, _, error) = Run("eval", "lambada", "--bogus");
        Assert.Equal(2, code);
        Assert.Contains("(see 'gpt2-engine eval lambada --help')", error);
    }

    [Fact]
    public void Text_commands_refuse_a_model_without_the_gpt2_vocabulary()
    {
        string file = model.WriteFile("tiny.txt", Text);
        var (code, _, error) = Run("score", "--weights", TestFixtures.TinyModel, file);
        Assert.Equal(1, code);
        Assert.Contains("the model's vocabulary has 96 tokens", error);
    }
}
