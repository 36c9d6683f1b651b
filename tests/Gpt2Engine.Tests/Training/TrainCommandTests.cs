using System.Buffers.Binary;
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

        string[] flags = ["--batch", "2", "--seq", "8", "--eval-every", "2", "--eval-batches", "1", "--threads", "1"];
        string[] train = ["train", "--data", data.File("data"), "--out", data.File("run"), .. flags];
        string[] shape = ["--layers", "1", "--channels", "8", "--heads", "2", "--context", "16"];
        var first = Run([.. train, .. shape, "--steps", "2"]);
        Assert.True(first.Exit == 0, first.Error);
        Assert.Contains("starting at step 0", first.Output);
        Assert.Matches(@"step +2/2 \| loss \d+\.\d{4} \| lr .* ms \| \d+ tok/s \| val loss \d+\.\d{4} \| saved ", first.Output);

        // A new run does not overwrite the checkpoint of another (an empty folder is fine).
        byte[] checkpoint = File.ReadAllBytes(data.File("run", "model.safetensors"));
        AssertOneError("--out " + data.File("run") + " holds a training run; continue it with --resume, or choose another --out", Run([.. train, .. shape, "--steps", "2"]));
        Assert.Equal(checkpoint, File.ReadAllBytes(data.File("run", "model.safetensors")));
        Directory.CreateDirectory(data.File("empty"));
        Assert.Equal(0, Run(["train", "--data", data.File("data"), "--out", data.File("empty"), .. flags, .. shape, "--steps", "1"]).Exit);

        // The resumed run takes its model, seed and data order from the checkpoint; other values given are refused, not ignored.
        AssertOneError("--resume continues the model saved in --out", Run([.. train, .. shape, "--steps", "3", "--resume"]));
        AssertOneError("--seed 7 differs from the checkpoint's 1337", Run([.. train, "--steps", "3", "--resume", "--seed", "7"]));
        var other = Run("prepare", "--out", data.File("other"), data.File("text.txt"), data.File("text.txt"));
        AssertOneError($"holds {TrainTokens(other.Output)} train tokens, but the checkpoint's run trained on {TrainTokens(prepared.Output)} (in {data.File("data")})",
            Run(["train", "--data", data.File("other"), "--out", data.File("run"), .. flags, "--steps", "3", "--resume"]));
        // As many tokens, one of them another id: the checkpoint's data position would count other windows.
        string copy = CopyOf(data.File("data"), data.File("copy")), altered = CopyOf(data.File("data"), data.File("altered"));
        string shard = Directory.GetFiles(altered, "train_*.bin").Order(StringComparer.Ordinal).First();
        byte[] tokens = File.ReadAllBytes(shard);
        var firstToken = tokens.AsSpan(32, 2); // the first token, after the 32-byte header
        BinaryPrimitives.WriteUInt16LittleEndian(firstToken, BinaryPrimitives.ReadUInt16LittleEndian(firstToken) == 198 ? (ushort)199 : (ushort)198);
        File.WriteAllBytes(shard, tokens);
        AssertOneError($"holds {TrainTokens(prepared.Output)} train tokens, as many as the checkpoint's run trained on, but not the same ones (in {data.File("data")})",
            Run(["train", "--data", altered, "--out", data.File("run"), .. flags, "--steps", "3", "--resume"]));
        Assert.Equal(checkpoint, File.ReadAllBytes(data.File("run", "model.safetensors")));
        // The same tokens in another folder are the run's data.
        var resumed = Run(["train", "--data", copy, "--out", data.File("run"), .. flags, "--steps", "3", "--resume", "--seed", "1337"]);
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
    [InlineData("--config tiny", "--config 'tiny' is not a GPT-2 size")]
    [InlineData("--layers 2", "needs --layers, --channels and --heads")]
    [InlineData("--layers 2000000000 --channels 768 --heads 12", "training keeps them in one array of at most")] // 2 billion layers: refused before building their layout
    // Hyperparameters no run can use, refused before the model is built:
    [InlineData("--config 124M --lr 1e30", "must be a number in (0, 1]")]
    [InlineData("--config 124M --lr 1e40", "--lr Infinity must be a number in (0, 1]")] // the parser reads 1e40 as infinity
    [InlineData("--config 124M --lr 2", "--lr 2 must be a number in (0, 1]")]
    [InlineData("--config 124M --lr 0.1 --weight-decay 10", "--weight-decay 10 must be at least 0 and below 1 / --lr")]
    [InlineData("--config 124M --weight-decay 1e40", "--weight-decay Infinity must be at least 0")]
    [InlineData("--config 124M --steps 10 --warmup 11", "--warmup 11 must be between 0 and --steps 10")]
    [InlineData("--config 124M --clip 1e40", "--clip Infinity must be a number >= 0")]
    [InlineData("--config 124M --batch 300000000 --seq 16", "--batch 300000000 x --seq 16 tokens are more than a micro-batch holds")]
    public void Bad_flags_print_one_error_line(string flags, string message)
    {
        using var data = new TrainingData();
        AssertOneError(message, Run(["train", "--data", data.Directory, "--out", data.File("run"), .. flags.Split(' ')]));
    }

    private static string CopyOf(string directory, string copy)
    {
        Directory.CreateDirectory(copy);
        foreach (string file in Directory.GetFiles(directory)) File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        return copy;
    }

    /// <summary>The train token count that 'prepare' printed.</summary>
    private static string TrainTokens(string prepareOutput) => System.Text.RegularExpressions.Regex.Match(prepareOutput, @"([\d,]+) train tokens").Groups[1].Value;

    private static void AssertOneError(string message, (int Exit, string Output, string Error) result)
    {
        Assert.Equal(1, result.Exit);
        Assert.Contains(message, result.Error);
        Assert.Single(result.Error.Trim().Split('\n'));
        Assert.StartsWith("gpt2-engine: error: ", result.Error);
    }
}
