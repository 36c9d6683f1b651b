using System.Globalization;
using System.Xml.Linq;
using Xunit;
using Gpt2Engine.Cli;
using Gpt2Engine.Plotting;
using Gpt2Engine.Profiling;

namespace Gpt2Engine.Tests.Evaluation;

/// <summary>The SVG chart writer and `gpt2-engine plot`: well-formed SVG, points where the axes say, clear errors.</summary>
public sealed class PlotTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    private static List<(double X, double Y)> Points(XElement polyline) => [.. polyline.Attribute("points")!.Value.Split(' ')
        .Select(p => p.Split(',')).Select(p => (double.Parse(p[0], CultureInfo.InvariantCulture), double.Parse(p[1], CultureInfo.InvariantCulture)))];

    [Theory]
    [InlineData(0, 10)]
    [InlineData(2.9, 11.1)]
    [InlineData(0.0123, 0.0456)]
    [InlineData(-3, 250)]
    [InlineData(5, 5)]
    public void Ticks_are_round_evenly_spaced_and_cover_the_data(double min, double max)
    {
        var ticks = SvgLineChart.NiceTicks(min, max);
        Assert.InRange(ticks.Length, 3, 12);
        Assert.True(ticks[0] <= min && ticks[^1] >= max);
        double step = ticks[1] - ticks[0];
        double mantissa = step / Math.Pow(10, Math.Floor(Math.Log10(step) + 1e-9));
        Assert.Contains(Math.Round(mantissa, 6), new[] { 1.0, 2.0, 5.0 });
        for (int i = 1; i < ticks.Length; i++) Assert.Equal(step, ticks[i] - ticks[i - 1], 9);
    }

    /// <summary>
    /// The y tick labels stay short whatever the magnitude (a loss of 1e300 had 301-digit labels), and each still reads
    /// back as its tick.
    /// </summary>
    [Theory]
    [InlineData(2.5, 1e300)]
    [InlineData(1.234e-5, 1.236e-5)]
    [InlineData(0, 3e7)]
    [InlineData(2.9, 11.1)]
    public void Tick_labels_are_short_and_read_back_as_the_ticks(double min, double max)
    {
        var svg = XDocument.Parse(SvgLineChart.Render("t", "x", "y", [new ChartSeries("s", [(0, min), (1, max)])])).Root!;
        var labels = svg.Elements(Svg + "text").Where(t => (string?)t.Attribute("text-anchor") == "end").Select(t => t.Value).ToList();
        var ticks = SvgLineChart.NiceTicks(min, max);
        Assert.Equal(ticks.Length, labels.Count);
        double step = ticks[1] - ticks[0];
        for (int i = 0; i < ticks.Length; i++)
        {
            Assert.InRange(labels[i].Length, 1, 10);
            Assert.True(Math.Abs(double.Parse(labels[i], CultureInfo.InvariantCulture) - ticks[i]) <= step * 1e-6, $"label {labels[i]} for tick {ticks[i]}");
        }
    }

    [Fact]
    public void Loss_chart_draws_each_loss_column_with_values_placed_linearly()
    {
        using var directory = new TempDir();
        File.WriteAllText(Path.Combine(directory.Path, "metrics.csv"),
            "step,train_loss,val_loss,lr,ms\n1,10.5,,0.001,100\n2,8.0,,0.001,100\n3,6.5,7.0,0.001,100\n4,5.0,,0.001,100\n5,4.5,5.5,0.001,100\n");

        var svg = XDocument.Parse(Plots.LossChart(directory.Path)).Root!;

        var lines = svg.Elements(Svg + "polyline").ToList();
        Assert.Equal(2, lines.Count);
        var legend = svg.Elements(Svg + "text").Select(t => t.Value).ToList();
        Assert.Contains("train loss", legend);
        Assert.Contains("val loss", legend);
        var train = Points(lines[0]);
        Assert.Equal(5, train.Count);
        Assert.Equal(2, Points(lines[1]).Count);
        // Screen x grows with the step by equal amounts; screen y is linear in the loss (and up is smaller y).
        double dx = train[1].X - train[0].X, perLoss = (train[1].Y - train[0].Y) / (8.0 - 10.5);
        double[] losses = [10.5, 8.0, 6.5, 5.0, 4.5];
        for (int i = 1; i < 5; i++)
        {
            Assert.Equal(dx, train[i].X - train[i - 1].X, 0.11);
            Assert.Equal(perLoss * (losses[i] - losses[0]), train[i].Y - train[0].Y, 0.2);
        }
        Assert.True(perLoss < 0);
    }

    [Theory]
    [InlineData(null, "no such file")]
    [InlineData("", "the file is empty")]
    [InlineData("step,lr\n1,0.1\n", ":1: expected a header with a 'step' column")]
    [InlineData("step,train_loss\n1,2.5\n2,abc\n", ":3: 'abc' is not a number")]
    [InlineData("step,train_loss\n1,2.5,7\n", ":2: 3 columns, the header has 2")]
    public void Bad_metrics_file_is_a_one_line_error(string? content, string message)
    {
        using var directory = new TempDir();
        if (content is not null) File.WriteAllText(Path.Combine(directory.Path, "metrics.csv"), content);
        var e = Assert.Throws<Gpt2Exception>(() => Plots.LossChart(directory.Path));
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Bench_chart_has_a_line_per_thread_count()
    {
        using var directory = new TempDir();
        OpTime[] ops = [new("matmul qkv", 1, 1)];
        var report = new ProfileReport("m", "cpu", [
            new GenerationProfile(1, 16, 9, 5, 80, ops), new GenerationProfile(1, 64, 9, 9, 96, ops),
            new GenerationProfile(2, 16, 9, 3, 40, ops), new GenerationProfile(2, 64, 9, 5, 48, ops)], []);
        string json = Path.Combine(directory.Path, "sweep.json");
        using (var stream = File.Create(json)) report.WriteJson(stream);

        var svg = XDocument.Parse(Plots.BenchChart(json)).Root!;

        var lines = svg.Elements(Svg + "polyline").Select(Points).ToList();
        Assert.Equal(2, lines.Count);
        // 2 threads decode at 5-6 ms/token, below (larger screen y than) 1 thread's 10-12 ms/token.
        Assert.True(lines[1].All(p => p.Y > lines[0].Max(q => q.Y)));
        Assert.Contains("2 threads", svg.Elements(Svg + "text").Select(t => t.Value));
    }

    [Fact]
    public void Plot_command_writes_the_svg_and_leaves_no_temporary_file()
    {
        using var directory = new TempDir();
        File.WriteAllText(Path.Combine(directory.Path, "metrics.csv"), "step,train_loss\n1,3\n2,2\n");
        string output = Path.Combine(directory.Path, "loss.svg");
        var stdout = new StringWriter();
        Assert.Equal(0, CliApp.Run(["plot", "--run", directory.Path, "--out", output], stdout, new StringWriter()));
        Assert.Equal("svg", XDocument.Load(output).Root!.Name.LocalName);
        Assert.Equal(["loss.svg", "metrics.csv"], Directory.GetFiles(directory.Path).Select(Path.GetFileName).Order());
    }

    [Theory]
    [InlineData(new[] { "--out", "x.svg" }, "give exactly one of --run DIR or --bench FILE")]
    [InlineData(new[] { "--run", ".", "--bench", "b.json", "--out", "x.svg" }, "give exactly one of --run DIR or --bench FILE")]
    [InlineData(new[] { "--bench", "/nonexistent/sweep.json", "--out", "x.svg" }, "/nonexistent/sweep.json: no such file")]
    public void Plot_command_bad_input_is_one_line_and_exit_1(string[] args, string message)
    {
        var error = new StringWriter();
        Assert.Equal(1, CliApp.Run(["plot", .. args], new StringWriter(), error));
        Assert.Contains(message, error.ToString());
        Assert.Single(error.ToString().TrimEnd().Split('\n'));
    }
}
