using Gpt2Engine.Model;

namespace Gpt2Engine.Training;

/// <summary>
/// Everything a training run needs. Defaults follow nanoGPT/llm.c: AdamW lr 3e-4 with betas 0.9/0.95, eps 1e-8,
/// no weight decay (the backend's AdamW decays every parameter, LayerNorm gains included), clipping at norm 1.0,
/// cosine decay to a tenth of the peak.
/// </summary>
public sealed record TrainingOptions
{
    public required string DataDirectory { get; init; }
    public required string OutputDirectory { get; init; }
    /// <summary>Weights to fine-tune (a size name, directory or file); when null, <see cref="Config"/> is trained from scratch.</summary>
    public string? Weights { get; init; }
    public Gpt2Config? Config { get; init; }
    public bool Resume { get; init; }

    public int Steps { get; init; } = 100;
    public int BatchSize { get; init; } = 4;
    public int SequenceLength { get; init; } = 64;
    public int GradientAccumulation { get; init; } = 1;

    public float LearningRate { get; init; } = 3e-4f;
    /// <summary>The learning rate at the last step; a tenth of <see cref="LearningRate"/> when null.</summary>
    public float? MinLearningRate { get; init; }
    public int WarmupSteps { get; init; }
    public float Beta1 { get; init; } = 0.9f;
    public float Beta2 { get; init; } = 0.95f;
    public float Epsilon { get; init; } = 1e-8f;
    public float WeightDecay { get; init; }
    /// <summary>Clip the global gradient norm to this; 0 turns clipping off.</summary>
    public float Clip { get; init; } = 1.0f;

    /// <summary>Validation loss every this many steps (and at the end); 0 only at the end.</summary>
    public int EvalEvery { get; init; }
    public int EvalBatches { get; init; } = 20;
    /// <summary>Checkpoint every this many steps (and always at the end); 0 only at the end.</summary>
    public int CheckpointEvery { get; init; }
    /// <summary>Seed for initialisation and data order; null: <see cref="DefaultSeed"/>, or on resume the checkpoint's (which a given seed must equal).</summary>
    public ulong? Seed { get; init; }
    internal const ulong DefaultSeed = 1337;

    public LearningRateSchedule Schedule => new(LearningRate, MinLearningRate ?? LearningRate / 10, WarmupSteps, Steps);

    /// <summary>Throws a <see cref="Gpt2Exception"/> naming the first flag with an impossible value.</summary>
    public void Validate()
    {
        static void Require(bool ok, string message)
        {
            if (!ok) throw new Gpt2Exception(message);
        }
        Require(!string.IsNullOrWhiteSpace(DataDirectory) && !string.IsNullOrWhiteSpace(OutputDirectory), "--data and --out must not be empty");
        Require(Steps > 0, $"--steps {Steps} must be positive");
        Require(BatchSize > 0, $"--batch {BatchSize} must be positive");
        Require(SequenceLength > 0, $"--seq {SequenceLength} must be positive");
        // The model takes a micro-batch as one array of B x T token ids.
        Require((long)BatchSize * SequenceLength <= Array.MaxLength, $"--batch {BatchSize} x --seq {SequenceLength} tokens are more than a micro-batch holds ({Array.MaxLength:N0})");
        Require(GradientAccumulation > 0, $"--grad-accum {GradientAccumulation} must be positive");
        // AdamW moves every parameter by about lr per step (its update m/sqrt(v) is of size ~1), and GPT-2's weights are
        // of size 0.02 to 1: a rate above 1 overshoots them all at once, so it is a typo, not a setting (GPT-2: 1e-4 to 1e-3).
        Require(float.IsFinite(LearningRate) && LearningRate is > 0 and <= 1, $"--lr {LearningRate} must be a number in (0, 1]");
        Require(MinLearningRate is null || (MinLearningRate >= 0 && MinLearningRate <= LearningRate), $"--min-lr {MinLearningRate} must be in [0, --lr]");
        Require(WarmupSteps >= 0 && WarmupSteps <= Steps, $"--warmup {WarmupSteps} must be between 0 and --steps {Steps} (the learning rate reaches --lr at its end)");
        Require(Beta1 is >= 0 and < 1 && Beta2 is >= 0 and < 1, $"--beta1 {Beta1} and --beta2 {Beta2} must be in [0, 1)");
        Require(float.IsFinite(Epsilon) && Epsilon > 0, $"AdamW epsilon {Epsilon} must be a positive number");
        // Decoupled decay multiplies every weight by 1 - lr x weight decay per step: at lr x weight decay >= 1 a step
        // wipes the weights out (or flips their sign) instead of shrinking them.
        Require(float.IsFinite(WeightDecay) && WeightDecay >= 0 && LearningRate * WeightDecay < 1,
            $"--weight-decay {WeightDecay} must be at least 0 and below 1 / --lr ({1 / LearningRate:G3}): each step multiplies the weights by 1 - lr x weight decay");
        Require(float.IsFinite(Clip) && Clip >= 0, $"--clip {Clip} must be a number >= 0 (0: no clipping)");
        Require(EvalEvery >= 0 && CheckpointEvery >= 0 && EvalBatches > 0, "--eval-every and --checkpoint-every must not be negative, --eval-batches must be positive");
        Config?.Validate("--config");
        Require(Resume || Weights is not null || Config is not null, "give --weights to fine-tune, --config to train from scratch, or --resume");
        Require(!Resume || (Weights is null && Config is null), "--resume continues the model saved in --out: drop --weights and --config/--layers/--channels/--heads/--context");
    }
}
