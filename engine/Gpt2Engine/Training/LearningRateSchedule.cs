namespace Gpt2Engine.Training;

/// <summary>
/// Linear warmup to the peak over <c>Warmup</c> steps, then cosine decay to <c>Min</c> at the last step
/// (a run with a single step after warmup keeps the peak).
/// </summary>
public sealed record LearningRateSchedule(float Peak, float Min, int Warmup, int TotalSteps)
{
    /// <summary>The learning rate of step <paramref name="step"/> (counting from 1).</summary>
    public float At(int step)
    {
        if (step <= Warmup) return Peak * step / Warmup;
        if (TotalSteps - Warmup <= 1) return Peak;
        double progress = Math.Min(1.0, (double)(step - Warmup) / (TotalSteps - Warmup));
        return (float)(Min + 0.5 * (Peak - Min) * (1 + Math.Cos(Math.PI * progress)));
    }
}
