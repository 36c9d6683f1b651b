using System.Globalization;
using System.Security;
using System.Text;

namespace Gpt2Engine.Plotting;

/// <summary>One line of a chart; points with a NaN coordinate are left out.</summary>
public sealed record ChartSeries(string Name, IReadOnlyList<(double X, double Y)> Points);

/// <summary>
/// A self-contained SVG line chart: title, axes with round-number ticks and grid lines, axis labels, one coloured
/// line per series (with markers when the points are few) and a legend to the right.
/// </summary>
public static class SvgLineChart
{
    private const int Width = 800, Height = 460, Left = 72, Right = 190, Top = 44, Bottom = 56;
    private static readonly string[] Palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

    public static string Render(string title, string xLabel, string yLabel, IReadOnlyList<ChartSeries> series)
    {
        var points = series.SelectMany(s => s.Points).Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToList();
        if (points.Count == 0) throw new Gpt2Exception($"{title}: nothing to plot (no data points)");
        var xTicks = NiceTicks(points.Min(p => p.X), points.Max(p => p.X));
        var yTicks = NiceTicks(points.Min(p => p.Y), points.Max(p => p.Y));
        double x0 = xTicks[0], x1 = xTicks[^1], y0 = yTicks[0], y1 = yTicks[^1];
        double plotWidth = Width - Left - Right, plotHeight = Height - Top - Bottom;
        double X(double x) => Left + (x - x0) / (x1 - x0) * plotWidth;
        double Y(double y) => Top + plotHeight - (y - y0) / (y1 - y0) * plotHeight;

        var svg = new StringBuilder();
        void Line(FormattableString text) => svg.AppendLine(text.ToString(CultureInfo.InvariantCulture));
        Line($"""<svg xmlns="http://www.w3.org/2000/svg" width="{Width}" height="{Height}" viewBox="0 0 {Width} {Height}" font-family="sans-serif" font-size="12">""");
        Line($"""<rect width="{Width}" height="{Height}" fill="white"/>""");
        Line($"""<text x="{Left + plotWidth / 2:F1}" y="24" text-anchor="middle" font-size="16">{Escape(title)}</text>""");
        string xStep = TickFormat(xTicks), yStep = TickFormat(yTicks);
        foreach (double t in xTicks)
        {
            Line($"""<line x1="{X(t):F1}" y1="{Top}" x2="{X(t):F1}" y2="{Top + plotHeight}" stroke="#e5e5e5"/>""");
            Line($"""<text x="{X(t):F1}" y="{Top + plotHeight + 18}" text-anchor="middle">{t.ToString(xStep, CultureInfo.InvariantCulture)}</text>""");
        }
        foreach (double t in yTicks)
        {
            Line($"""<line x1="{Left}" y1="{Y(t):F1}" x2="{Left + plotWidth}" y2="{Y(t):F1}" stroke="#e5e5e5"/>""");
            Line($"""<text x="{Left - 8}" y="{Y(t) + 4:F1}" text-anchor="end">{t.ToString(yStep, CultureInfo.InvariantCulture)}</text>""");
        }
        Line($"""<rect x="{Left}" y="{Top}" width="{plotWidth}" height="{plotHeight}" fill="none" stroke="black"/>""");
        Line($"""<text x="{Left + plotWidth / 2:F1}" y="{Height - 14}" text-anchor="middle">{Escape(xLabel)}</text>""");
        Line($"""<text transform="translate(18 {Top + plotHeight / 2:F1}) rotate(-90)" text-anchor="middle">{Escape(yLabel)}</text>""");

        for (int i = 0; i < series.Count; i++)
        {
            string color = Palette[i % Palette.Length];
            var shown = series[i].Points.Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToList();
            string path = string.Join(" ", shown.Select(p => string.Create(CultureInfo.InvariantCulture, $"{X(p.X):F1},{Y(p.Y):F1}")));
            if (shown.Count > 1) Line($"""<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>""");
            if (shown.Count <= 40)
                foreach (var p in shown) Line($"""<circle cx="{X(p.X):F1}" cy="{Y(p.Y):F1}" r="3" fill="{color}"/>""");
            double legendY = Top + 10 + 20 * i;
            Line($"""<line x1="{Width - Right + 16}" y1="{legendY:F1}" x2="{Width - Right + 40}" y2="{legendY:F1}" stroke="{color}" stroke-width="3"/>""");
            Line($"""<text x="{Width - Right + 46}" y="{legendY + 4:F1}">{Escape(series[i].Name)}</text>""");
        }
        svg.AppendLine("</svg>");
        return svg.ToString();
    }

    /// <summary>Round tick values (1, 2 or 5 times a power of ten apart) from at or below min to at or above max.</summary>
    internal static double[] NiceTicks(double min, double max, int target = 6)
    {
        if (max <= min)
        {
            double pad = min == 0 ? 1 : Math.Abs(min) * 0.1;
            (min, max) = (min - pad, max + pad);
        }
        double rough = (max - min) / target;
        double magnitude = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        double step = new[] { 1.0, 2, 5, 10 }.Select(m => m * magnitude).First(s => s >= rough);
        double first = Math.Floor(min / step + 1e-9) * step, last = Math.Ceiling(max / step - 1e-9) * step;
        int count = (int)Math.Round((last - first) / step) + 1;
        return [.. Enumerable.Range(0, count).Select(i => Math.Round(first + i * step, 12))];
    }

    /// <summary>
    /// A number format for tick labels that tells the ticks apart and stays short: fixed, with as many decimals as the
    /// step needs, for steps from 0.0001 and values below a million; otherwise exponent notation with as many mantissa
    /// decimals as the step needs (a loss of 1e300 is "1.0E+300", not 301 digits).
    /// </summary>
    private static string TickFormat(double[] ticks)
    {
        double step = ticks.Length > 1 ? ticks[1] - ticks[0] : 1;
        int stepExponent = Exponent(step), largestExponent = Exponent(ticks.Max(Math.Abs));
        if (stepExponent >= -4 && largestExponent < 6) return "F" + Math.Max(0, -stepExponent);
        return "0." + new string('0', Math.Clamp(largestExponent - stepExponent, 1, 15)) + "E+0";
    }

    private static int Exponent(double value) => (int)Math.Floor(Math.Log10(value) + 1e-9);

    private static string Escape(string text) => SecurityElement.Escape(text);
}
