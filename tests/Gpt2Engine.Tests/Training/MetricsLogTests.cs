using Gpt2Engine.Training;
using Xunit;

namespace Gpt2Engine.Tests.Training;

public sealed class MetricsLogTests
{
    private const string Header = "step,train_loss,val_loss,lr,ms";

    [Fact]
    public void A_resumed_log_keeps_the_whole_rows_up_to_the_checkpoint_step()
    {
        using var run = new TempDir();
        File.WriteAllText(run["metrics.csv"], $"{Header}\n1,10.5,,0.001,12.0\n2,9.75,9.5,0.001,11.0\n3,9.2,,0.001,11.5\n4,9.1");
        var log = new MetricsLog(run.Path, step: 3);
        log.Append(new TrainingStep(4, 5, 8.5f, 1f, 0.0005f, 10.5, 100, float.NaN, null));
        // Row 4, cut short by the crash, is gone; the new row 4 follows row 3.
        Assert.Equal([Header, "1,10.5,,0.001,12.0", "2,9.75,9.5,0.001,11.0", "3,9.2,,0.001,11.5", "4,8.5,,0.0005,10.5"], File.ReadAllLines(run["metrics.csv"]));
    }

    [Fact]
    public void Rows_past_the_checkpoint_or_cut_short_are_dropped()
    {
        using var run = new TempDir();
        File.WriteAllText(run["metrics.csv"], $"{Header}\n1,10.5,,0.001,12.0\n2,9.7\n3,9.2,,0.001,11.5\n");
        _ = new MetricsLog(run.Path, step: 2);
        Assert.Equal([Header, "1,10.5,,0.001,12.0"], File.ReadAllLines(run["metrics.csv"]));
        Assert.Empty(Directory.GetFiles(run.Path, "*.tmp-*"));
    }

    [Fact]
    public void A_row_that_cannot_be_written_is_a_one_line_error_naming_the_log()
    {
        using var run = new TempDir();
        var log = new MetricsLog(run.Path, step: 0);
        File.Delete(run["metrics.csv"]);
        Directory.CreateDirectory(run["metrics.csv"]);
        var e = Assert.Throws<Gpt2Exception>(() => log.Append(new TrainingStep(1, 2, 8.5f, 1f, 0.0005f, 10.5, 100, float.NaN, null)));
        Assert.StartsWith($"{run["metrics.csv"]}: cannot write (", e.Message);
    }

    [Fact]
    public void A_new_run_starts_an_empty_log()
    {
        using var run = new TempDir();
        File.WriteAllText(run["metrics.csv"], $"{Header}\n1,10.5,,0.001,12.0\n");
        _ = new MetricsLog(run.Path, step: 0);
        Assert.Equal([Header], File.ReadAllLines(run["metrics.csv"]));
    }
}
