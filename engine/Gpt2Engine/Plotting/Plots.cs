using System.Globalization;
using System.Text;
using Gpt2Engine.Profiling;

namespace Gpt2Engine.Plotting;

/// <summary>The charts <c>gpt2-engine plot</c> draws: a training run's loss curves and a bench sweep.</summary>
public static class Plots
{

    /// <summary>
    /// Loss curves from <c>runDirectory/metrics.csv</c>: a header row naming the columns, one row per step, comma
    /// separated, empty cells for values not measured at that step (e.g. step,train_loss,val_loss,lr,ms).
    /// The "step" column is the x axis and every column whose name ends in "loss" is a line.
    /// </summary>
    public static string LossChart(string runDirectory)
    {
        string path = Path.Combine(runDirectory, Training.MetricsLog.FileName);
        if (!File.Exists(path)) throw new Gpt2Exception($"{path}: no such file (a training run directory has a {Training.MetricsLog.FileName})");
        var lines = File.ReadAllLines(path).Where(l => l.Trim().Length > 0).ToList();
        if (lines.Count == 0) throw new Gpt2Exception($"{path}: the file is empty");
        var header = lines[0].Split(',').Select(h => h.Trim()).ToArray();
        int stepColumn = Array.IndexOf(header, "step");
        var lossColumns = Enumerable.Range(0, header.Length).Where(i => header[i].EndsWith("loss", StringComparison.Ordinal)).ToList();
        if (stepColumn < 0 || lossColumns.Count == 0)
            throw new Gpt2Exception($"{path}:1: expected a header with a 'step' column and at least one '...loss' column (got '{lines[0]}')");
        var series = lossColumns.ToDictionary(c => c, _ => new List<(double, double)>());
        for (int row = 1; row < lines.Count; row++)
        {
            var cells = lines[row].Split(',');
            if (cells.Length != header.Length) throw new Gpt2Exception($"{path}:{row + 1}: {cells.Length} columns, the header has {header.Length}");
            double step = Number(cells[stepColumn], path, row + 1);
            foreach (int c in lossColumns)
                if (cells[c].Trim().Length > 0) series[c].Add((step, Number(cells[c], path, row + 1)));
        }
        return SvgLineChart.Render($"Training loss: {Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(runDirectory)))}", "step", "loss (nats/token)",
            [.. lossColumns.Select(c => new ChartSeries(header[c].Replace('_', ' '), series[c]))]);
    }

    private static double Number(string cell, string path, int line) =>
        double.TryParse(cell.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double value)
            ? value : throw new Gpt2Exception($"{path}:{line}: '{cell}' is not a number");

    /// <summary>
    /// A bench sweep (<see cref="ProfileReport"/> JSON): decode milliseconds per token against prompt length, one line
    /// per thread count (or against thread count when only one prompt length was measured).
    /// </summary>
    public static string BenchChart(string reportPath)
    {
        var report = ProfileReport.ReadJson(reportPath);
        if (report.Generation.Count == 0) throw new Gpt2Exception($"{reportPath}: the report has no generation runs to plot");
        string title = $"Generation speed, {report.Generation[0].NewTokens} new tokens";
        var byThreads = report.Generation.GroupBy(g => g.Threads).ToList();
        if (report.Generation.Select(g => g.PromptTokens).Distinct().Count() > 1)
            return SvgLineChart.Render(title, "prompt length (tokens)", "decode ms per token",
                [.. byThreads.Select(group => new ChartSeries($"{group.Key} thread{(group.Key == 1 ? "" : "s")}", [.. group.Select(g => ((double)g.PromptTokens, g.MsPerToken))]))]);
        return SvgLineChart.Render(title, "threads", "ms",
        [
            new ChartSeries("decode ms/token", [.. report.Generation.Select(g => ((double)g.Threads, g.MsPerToken))]),
            new ChartSeries("prefill ms", [.. report.Generation.Select(g => ((double)g.Threads, g.PrefillMs))]),
            new ChartSeries("train step ms", [.. report.Training.Select(t => ((double)t.Threads, t.StepMs))]),
        ]);
    }

    /// <summary>Writes <paramref name="svg"/> to <paramref name="path"/> atomically (a temporary file, then a rename).</summary>
    public static void WriteAtomically(string path, string svg) => AtomicFile.Write(path, Encoding.UTF8.GetBytes(svg));
}
