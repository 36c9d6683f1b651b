using System.Globalization;

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

    /// <summary>Opens the log of <paramref name="directory"/> for a run that has finished <paramref name="step"/> steps:
    /// rows after that step (logged after the last checkpoint of a killed run) are dropped, so a resumed run continues it.</summary>
    public MetricsLog(string directory, int step)
    {
        _path = Path.Combine(directory, FileName);
        Directory.CreateDirectory(directory);
        var kept = new List<string> { Header };
        if (step > 0 && File.Exists(_path))
            kept.AddRange(File.ReadLines(_path).Skip(1).Where(line => int.TryParse(line.Split(',')[0], CultureInfo.InvariantCulture, out int s) && s <= step));
        File.WriteAllLines(_path, kept);
    }

    public void Append(TrainingStep s)
    {
        string validation = float.IsNaN(s.ValidationLoss) ? "" : s.ValidationLoss.ToString("R", CultureInfo.InvariantCulture);
        File.AppendAllText(_path, string.Create(CultureInfo.InvariantCulture, $"{s.Step},{s.Loss:R},{validation},{s.LearningRate:R},{s.Milliseconds:F1}\n"));
    }
}
