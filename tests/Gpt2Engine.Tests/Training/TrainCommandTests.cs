using Xunit;
using Gpt2Engine.Cli;

namespace Gpt2Engine.Tests.Training;

/// <summary>The prepare and train commands end to end, with output piped (plain lines, no progress bar).</summary>
public sealed class TrainCommandTests
{
    private static (int Exit, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = CliApp.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void Prepare_then_train_from_scratch_then_resume()
    {
        using var data = new TrainingData();
        File.WriteAllText(data.File("text.txt"), string.Concat(Enumerable.Repeat("In the beginning was the word, and the word was short. ", 40)));
        var prepared = Run("prepare", "--out", data.File("data"), "--val-fraction", "0.2", data.File("text.txt"));
        Assert.Equal(0, prepared.Exit);
        Assert.Contains("1 documents", prepared.Output);

        string[] train = ["train", "--data", data.File("data"), "--out", data.File("run"), "--batch", "2", "--seq", "8", "--eval-every", "2", "--eval-batches", "1", "--threads", "1"];
        string[] shape = ["--layers", "1", "--channels", "8", "--heads", "2", "--context", "16"];
        var first = Run([.. train, .. shape, "--steps", "2"]);
        Assert.True(first.Exit == 0, first.Error);
        Assert.Contains("starting at step 0", first.Output);
        Assert.Matches(@"step +2/2 \| loss \d+\.\d{4} \| lr .* ms \| \d+ tok/s \| val loss \d+\.\d{4} \| saved ", first.Output);

        // The resumed run takes its model from the checkpoint; a shape given with --resume is refused, not ignored.
        Assert.Contains("--resume continues the model saved in --out", Run([.. train, .. shape, "--steps", "3", "--resume"]).Error);
        var resumed = Run([.. train, "--steps", "3", "--resume"]);
        Assert.True(resumed.Exit == 0, resumed.Error);
        Assert.Contains("starting at step 2", resumed.Output);
        Assert.Contains("step      3/3", resumed.Output);

        // The run's metrics.csv continues across the resume (one row per step, validation where measured) and plots.
        var rows = File.ReadAllLines(data.File("run", "metrics.csv"));
        Assert.Equal("step,train_loss,val_loss,lr,ms", rows[0]);
        Assert.Equal(["1", "2", "3"], rows.Skip(1).Select(r => r.Split(',')[0]));
        Assert.Equal("", rows[1].Split(',')[2]);
        Assert.NotEqual("", rows[2].Split(',')[2]);
        var plotted = Run("plot", "--run", data.File("run"), "--out", data.File("loss.svg"));
        Assert.True(plotted.Exit == 0, plotted.Error);
        Assert.StartsWith("<svg", File.ReadAllText(data.File("loss.svg")).TrimStart());
    }

    [Theory]
    [InlineData("--resume", "no training checkpoint to resume from")]
    [InlineData("--config", "--config 'tiny' is not a GPT-2 size")]
    [InlineData("--layers", "needs --layers, --channels and --heads")]
    [InlineData("--channels", "training keeps them in one array of at most")] // 2 billion layers: refused before building their layout
    public void Bad_flags_print_one_error_line(string flag, string message)
    {
        using var data = new TrainingData();
        string[] extra = flag switch
        {
            "--resume" => ["--resume"],
            "--config" => ["--config", "tiny"],
            "--channels" => ["--layers", "2000000000", "--channels", "768", "--heads", "12"],
            _ => ["--layers", "2"],
        };
        var result = Run(["train", "--data", data.Directory, "--out", data.File("run"), .. extra]);
        Assert.Equal(1, result.Exit);
        Assert.Contains(message, result.Error);
        Assert.Single(result.Error.Trim().Split('\n'));
        Assert.StartsWith("gpt2-engine: error: ", result.Error);
    }
}
