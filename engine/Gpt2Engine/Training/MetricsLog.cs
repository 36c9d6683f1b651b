using System.Globalization;
using System.Text;

namespace Gpt2Engine.Training;

/// <summary>
/// The per-step log of a training run, <c>metrics.csv</c> in its output directory: step,train_loss,val_loss,lr,ms with
/// an empty val_loss where none was measured. `gpt2-engine plot --run DIR` draws it.
/// </summary>
public sealed class MetricsLog
{
    public const string FileName = "metrics.csv";
    private const string Header = "step,train_loss,val_loss,lr,ms";
    private readonly string _path;

    /// <summary>
    /// Opens the log of <paramref name="directory"/> for a run that has finished <paramref name="step"/> steps: rows
    /// after that step (logged after the last checkpoint of a killed run) are dropped, as is a row cut short by a crash,
    /// so a resumed run continues it. The kept rows are rewritten atomically; each step then appends its row in one write.
    /// </summary>
    public MetricsLog(string directory, int step)
    {
        _path = Path.Combine(directory, FileName);
        Directory.CreateDirectory(directory);
        var kept = new List<string> { Header };
        if (step > 0 && File.Exists(_path))
            Io("read", () => kept.AddRange(File.ReadLines(_path).Skip(1).Where(line => IsRowUpTo(line, step))));
        AtomicFile.Write(_path, Encoding.UTF8.GetBytes(string.Concat(kept.Select(line => line + "\n"))));
    }

    /// <summary>A whole row (five cells, the step and the training loss numbers) of a step at or before <paramref name="step"/>.</summary>
    private static bool IsRowUpTo(string line, int step)
    {
        var cells = line.Split(',');
        return cells.Length == 5 && int.TryParse(cells[0], CultureInfo.InvariantCulture, out int s) && s <= step
            && float.TryParse(cells[1], CultureInfo.InvariantCulture, out _) && double.TryParse(cells[4], CultureInfo.InvariantCulture, out _);
    }

    public void Append(TrainingStep s)
    {
        string validation = float.IsNaN(s.ValidationLoss) ? "" : s.ValidationLoss.ToString("R", CultureInfo.InvariantCulture);
        string row = string.Create(CultureInfo.InvariantCulture, $"{s.Step},{s.Loss:R},{validation},{s.LearningRate:R},{s.Milliseconds:F1}\n");
        Io("write", () => File.AppendAllText(_path, row));
    }

    /// <summary>Runs <paramref name="access"/>, a file error becoming a one-line error that names the log.</summary>
    private void Io(string verb, Action access)
    {
        try
        {
            access();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new Gpt2Exception($"{_path}: cannot {verb} ({e.Message})", e);
        }
    }
}
