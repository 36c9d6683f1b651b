using System.Diagnostics;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;

namespace Gpt2Engine.Training;

/// <summary>One finished step, as the trainer reports it.</summary>
/// <param name="ValidationLoss">The validation loss when it was measured after this step; NaN otherwise.</param>
/// <param name="Checkpoint">The directory a checkpoint was written to after this step; null otherwise.</param>
public sealed record TrainingStep(int Step, int TotalSteps, float Loss, float GradientNorm, float LearningRate,
    double Milliseconds, double TokensPerSecond, float ValidationLoss, string? Checkpoint);

/// <summary>
/// Trains a <see cref="Gpt2Model"/> on prepared token shards: per step K micro-batches of B x T tokens (gradients
/// accumulated, then divided by K), clipping by global norm, AdamW under a warmup + cosine schedule, validation
/// and atomic checkpoints. Deterministic: the same options give bit-identical weights, also across a resume.
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly TrainingOptions _options;
    private readonly ulong _seed;
    private readonly TokenDataset _train;
    private readonly TokenDataset? _validation;
    private readonly DataLoader _loader;
    private readonly int[] _inputs, _targets;
    private int _savedStep; // the step of the checkpoint in the output directory (0: none, or nothing to save)

    public Gpt2Model Model { get; }
    /// <summary>Steps completed so far (the checkpoint's step after a resume).</summary>
    public int Step { get; private set; }
    public long TrainTokens => _train.TokenCount;
    public long ValidationTokens => _validation?.TokenCount ?? 0;

    private Trainer(TrainingOptions options, ulong seed, Gpt2Model model, TokenDataset train, TokenDataset? validation, int step, long dataPosition)
    {
        _options = options;
        _seed = seed;
        Model = model;
        _train = train;
        _validation = validation;
        Step = _savedStep = step;
        _loader = new DataLoader(train, seed, dataPosition);
        _inputs = new int[options.BatchSize * options.SequenceLength];
        _targets = new int[_inputs.Length];
    }

    /// <summary>
    /// Checks the options against the checkpoint, the data and the backend's memory, then builds the model: resumed
    /// from the output directory, loaded from weights, or initialised from a config, with everything a step needs
    /// allocated. The trainer owns <paramref name="backend"/> (disposed with it, or here if opening fails).
    /// </summary>
    public static Trainer Open(TrainingOptions options, Backend backend)
    {
        try
        {
            return OpenOn(options, backend);
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }

    private static Trainer OpenOn(TrainingOptions options, Backend backend)
    {
        options.Validate();
        int B = options.BatchSize, T = options.SequenceLength;
        SafetensorsFile? stateFile = null; // on resume: its header gives the config and state, then its tensors the model
        Gpt2Weights? weights = null;
        Gpt2Model? model = null;
        TokenDataset? train = null, validation = null;
        try
        {
            Gpt2Config config;
            TrainingCheckpoint.State? resumed = null;
            if (options.Resume)
            {
                stateFile = TrainingCheckpoint.OpenState(options.OutputDirectory);
                (config, resumed) = TrainingCheckpoint.Describe(stateFile);
                if (resumed.SequenceLength != T) throw new Gpt2Exception($"--seq {T} differs from the checkpoint's {resumed.SequenceLength}; resume with --seq {resumed.SequenceLength}");
                if (options.Seed is ulong given && given != resumed.Seed) throw new Gpt2Exception($"--seed {given} differs from the checkpoint's {resumed.Seed}; resume without --seed (or with --seed {resumed.Seed})");
                if (resumed.Step >= options.Steps) throw new Gpt2Exception($"the checkpoint in {options.OutputDirectory} is at step {resumed.Step}; --steps {options.Steps} leaves nothing to do");
            }
            else
            {
                TrainingCheckpoint.RequireNoCheckpoint(options.OutputDirectory);
                if (options.Weights is not null) weights = CheckpointLoader.Load(options.Weights);
                config = weights?.Config ?? options.Config!;
                HostParameters.RequireFits(config, weights?.Source ?? "--config");
            }
            if (T > config.ContextLength) throw new Gpt2Exception($"--seq {T} is larger than the model's context of {config.ContextLength} positions");
            // All the memory of the run before the slow part (scanning the data, initialisation, copying the weights in):
            // a run that does not fit fails at once. The initial weights' host array counts where the buffers are host memory.
            bool initialises = stateFile is null && weights is null;
            backend.RequireAvailable(RequiredBytes(config, B, T, initialises && backend.BuffersAreHostMemory, backend.TrainingScratchBytes(config, B, T)),
                $"training {config} on {B} x {T} tokens");
            train = TokenDataset.Open(options.DataDirectory, "train", T, config.VocabSize);
            // The checkpoint's data position counts windows of its run's data: other data would be read in another order.
            if (resumed is not null) RequireSameData(options.DataDirectory, train, resumed);
            if (TokenDataset.ShardPaths(options.DataDirectory, "val").Length > 0) validation = TokenDataset.Open(options.DataDirectory, "val", T, config.VocabSize);

            ulong seed = resumed?.Seed ?? options.Seed ?? TrainingOptions.DefaultSeed;
            if (stateFile is not null) model = TrainingCheckpoint.Load(stateFile, config, backend);
            else
            {
                weights ??= ModelInitializer.RandomWeights(config, seed);
                model = new Gpt2Model(weights, backend, trainable: true);
            }
            model.AllocateForTraining(B, T);
            return new Trainer(options, seed, model, train, validation, resumed?.Step ?? 0, resumed?.DataPosition ?? 0);
        }
        catch
        {
            train?.Dispose();
            validation?.Dispose();
            model?.Dispose();
            throw;
        }
        finally
        {
            weights?.Dispose(); // the trainable model holds its own copy
            stateFile?.Dispose();
        }
    }

    /// <summary>Throws unless <paramref name="train"/> holds the tokens the checkpoint's run trained on (as far as the checkpoint recorded them).</summary>
    private static void RequireSameData(string directory, TokenDataset train, TrainingCheckpoint.State resumed)
    {
        string? difference = resumed.TrainTokens is long tokens && tokens != train.TokenCount ? $", but the checkpoint's run trained on {tokens:N0}"
            : resumed.TrainHash is ulong hash && hash != train.ContentHash ? ", as many as the checkpoint's run trained on, but not the same ones"
            : null;
        if (difference is not null)
            throw new Gpt2Exception($"--data {directory} holds {train.TokenCount:N0} train tokens{difference} (in {resumed.DataDirectory}); resume with its data, or start a new run in another --out");
    }

    /// <summary>
    /// The memory a run needs: what a step holds (<see cref="Gpt2Model.TrainingBytes"/>), the backend's own
    /// <paramref name="scratch"/>, and when <paramref name="initialises"/> is set (a model initialised from a config on a
    /// backend whose buffers are host memory), the host array of the random weights (4 bytes a parameter), alive until
    /// the step's buffers are allocated. <see cref="long.MaxValue"/> if that does not fit in 64 bits.
    /// </summary>
    internal static long RequiredBytes(Gpt2Config config, int B, int T, bool initialises, long scratch = 0)
    {
        long step = Gpt2Model.TrainingBytes(config, B, T), initial = initialises ? sizeof(float) * config.ParameterCount : 0;
        try
        {
            return checked(step + initial + scratch);
        }
        catch (OverflowException)
        {
            return long.MaxValue;
        }
    }

    /// <summary>
    /// Runs the remaining steps, reporting each and logging it to <see cref="MetricsLog"/> in the output directory.
    /// On cancellation it finishes the step, checkpoints it (its report says so) and throws.
    /// </summary>
    public void Run(Action<TrainingStep> report, CancellationToken cancellation = default)
    {
        var o = _options;
        var log = new MetricsLog(o.OutputDirectory, Step);
        while (Step < o.Steps)
        {
            // Stop once the last step is saved. A cancellation that came while a step was being reported, after the
            // check below, costs one more step, which is then saved: every checkpoint shows in its step's report.
            if (cancellation.IsCancellationRequested && Step == _savedStep) cancellation.ThrowIfCancellationRequested();
            var (loss, norm, lr, ms) = TrainStep();
            // Diverged: the weights are NaN or infinite now, and saving them would replace the last good checkpoint.
            if (!float.IsFinite(loss) || !float.IsFinite(norm))
                throw new Gpt2Exception($"training diverged at step {Step} (loss {loss}, gradient norm {norm}); stopped without saving it (a lower --lr may help)");
            bool last = Step == o.Steps;
            float validationLoss = (last || (o.EvalEvery > 0 && Step % o.EvalEvery == 0)) && _validation is not null ? Evaluate() : float.NaN;
            bool save = last || (o.CheckpointEvery > 0 && Step % o.CheckpointEvery == 0) || cancellation.IsCancellationRequested;
            double tokens = (double)o.BatchSize * o.SequenceLength * o.GradientAccumulation;
            var finished = new TrainingStep(Step, o.Steps, loss, norm, lr, ms, tokens / (ms / 1000), validationLoss, save ? o.OutputDirectory : null);
            // Logged before the checkpoint: a run killed between the two has logged a step it will redo, which the
            // resumed run's log drops, rather than saved a step it never logged.
            log.Append(finished);
            if (save) SaveCheckpoint();
            report(finished);
        }
    }

    /// <summary>One optimizer step: returns the mean training loss, the gradient norm before clipping, the learning rate and the time taken.</summary>
    public (float Loss, float GradientNorm, float LearningRate, double Milliseconds) TrainStep()
    {
        var o = _options;
        var clock = Stopwatch.StartNew();
        int B = o.BatchSize, T = o.SequenceLength, K = o.GradientAccumulation;
        Model.ZeroGradients();
        double loss = 0;
        for (int k = 0; k < K; k++)
        {
            _loader.NextBatch(_inputs, _targets, B);
            loss += Model.Forward(_inputs, _targets, B, T);
            Model.Backward();
        }
        // Each micro-batch's backward is the gradient of its own mean loss: the step's loss is their mean.
        if (K > 1) Model.Backend.Scale(Model.GradientMemory, 1f / K);
        float norm = Model.GradientNorm();
        if (o.Clip > 0 && norm > o.Clip) Model.Backend.Scale(Model.GradientMemory, o.Clip / norm);
        float lr = o.Schedule.At(Step + 1);
        Model.Update(lr, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay, Step + 1);
        Model.Backend.Synchronize();
        Step++;
        return ((float)(loss / K), norm, lr, clock.Elapsed.TotalMilliseconds);
    }

    /// <summary>The mean loss over the first EvalBatches batches of the validation split (in order, wrapping around); NaN without one.</summary>
    public float Evaluate()
    {
        if (_validation is null) return float.NaN;
        int B = _options.BatchSize, T = _options.SequenceLength;
        double sum = 0;
        for (int batch = 0; batch < _options.EvalBatches; batch++)
        {
            for (int b = 0; b < B; b++)
                _validation.ReadWindow(((long)batch * B + b) % _validation.WindowCount, _inputs.AsSpan(b * T, T), _targets.AsSpan(b * T, T));
            sum += Model.Forward(_inputs, _targets, B, T);
        }
        return (float)(sum / _options.EvalBatches);
    }

    public void SaveCheckpoint()
    {
        TrainingCheckpoint.Save(_options.OutputDirectory, Model,
            new TrainingCheckpoint.State(Step, _loader.Position, _seed, _options.SequenceLength, Path.GetFullPath(_options.DataDirectory), _train.TokenCount, _train.ContentHash));
        _savedStep = Step;
    }

    public void Dispose()
    {
        Model.Dispose();
        Model.Backend.Dispose();
        _train.Dispose();
        _validation?.Dispose();
    }
}
