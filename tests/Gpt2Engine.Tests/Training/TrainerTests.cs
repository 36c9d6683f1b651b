using Xunit;
using Gpt2Engine.Cpu;
using Gpt2Engine.Model;
using Gpt2Engine.Tests.Cuda;
using Gpt2Engine.Training;

namespace Gpt2Engine.Tests.Training;

/// <summary>The training loop on a small random model: accumulation, clipping, resume, checkpoints, bad input.</summary>
public sealed class TrainerTests : IDisposable
{
    private static readonly Gpt2Config Small = new(VocabSize: 64, ContextLength: 16, Channels: 16, Layers: 2, Heads: 2);
    private readonly TrainingData _data = new();

    public TrainerTests()
    {
        // A cycle of 13 tokens: learnable, so a few steps must lower the loss.
        _data.WriteSplit("train", Cycle(700), Cycle(300));
        _data.WriteSplit("val", TrainingData.RandomTokens(200, Small.VocabSize, seed: 3));
    }

    public void Dispose() => _data.Dispose();

    private static ushort[] Cycle(int count) => Enumerable.Range(0, count).Select(i => (ushort)(i % 13 * 4)).ToArray();

    private TrainingOptions Options(string run, int steps = 6) => new()
    {
        DataDirectory = _data.Directory,
        OutputDirectory = _data.File(run),
        Config = Small,
        Steps = steps,
        BatchSize = 2,
        SequenceLength = 8,
        GradientAccumulation = 2,
        LearningRate = 1e-2f,
        WarmupSteps = 2,
        Clip = 0.5f,
        WeightDecay = 0.01f,
        EvalBatches = 3,
        Seed = 5,
    };

    private static float[] Download(Gpt2Model model, DeviceBuffer buffer)
    {
        var values = new float[buffer.Count];
        model.Backend.Download<float>(buffer, values);
        return values;
    }

    private static double Norm(float[] values) => Math.Sqrt(values.Sum(v => (double)v * v));

    [Fact]
    public void Resumed_run_is_bit_identical_to_a_straight_run()
    {
        var straightLosses = new List<float>();
        float[] straight;
        using (var trainer = Trainer.Open(Options("straight"), new CpuBackend(2)))
        {
            trainer.Run(s => straightLosses.Add(s.Loss));
            straight = Download(trainer.Model, trainer.Model.ParameterMemory);
        }

        var resumedLosses = new List<float>();
        using (var trainer = Trainer.Open(Options("resumed"), new CpuBackend(2)))
        {
            for (int i = 0; i < 3; i++) resumedLosses.Add(trainer.TrainStep().Loss);
            trainer.SaveCheckpoint();
        }
        using (var trainer = Trainer.Open(Options("resumed") with { Resume = true, Config = null, Seed = null /* the checkpoint's */ }, new CpuBackend(2)))
        {
            Assert.Equal(3, trainer.Step);
            trainer.Run(s => resumedLosses.Add(s.Loss));
            Assert.Equal(straight, Download(trainer.Model, trainer.Model.ParameterMemory));
            var (m, v) = trainer.Model.OptimizerState;
            Assert.All(Download(trainer.Model, v), x => Assert.True(x >= 0));
        }
        Assert.Equal(straightLosses, resumedLosses);
        Assert.True(straightLosses[^1] < straightLosses[0], "the loss should fall on a few steps of lr 1e-2");
    }

    [Fact]
    public void Accumulated_micro_batches_give_the_gradient_of_the_whole_batch()
    {
        // K=2 micro-batches of B=1 read the same two windows as one batch of B=2: same mean loss, same gradient.
        float[] Gradient(int B, int K, out float loss)
        {
            using var trainer = Trainer.Open(Options("accumulate") with { BatchSize = B, GradientAccumulation = K, Clip = 0 }, new CpuBackend(1));
            loss = trainer.TrainStep().Loss;
            return Download(trainer.Model, trainer.Model.GradientMemory);
        }
        var whole = Gradient(2, 1, out float wholeLoss);
        var accumulated = Gradient(1, 2, out float accumulatedLoss);
        Assert.Equal(wholeLoss, accumulatedLoss, 1e-5f);
        double largest = whole.Max(Math.Abs);
        Assert.All(whole.Zip(accumulated), p => Assert.True(Math.Abs(p.First - p.Second) <= 1e-5 * largest, $"{p.First} vs {p.Second}"));
    }

    [Fact]
    public void Clipping_scales_the_gradient_to_the_clip_norm()
    {
        using var trainer = Trainer.Open(Options("clip") with { Clip = 1e-3f }, new CpuBackend(2));
        var (_, normBefore, _, _) = trainer.TrainStep();
        Assert.True(normBefore > 1e-2, $"norm {normBefore} should exceed the clip");
        Assert.Equal(1e-3, Norm(Download(trainer.Model, trainer.Model.GradientMemory)), 1e-7);
    }

    /// <summary>A run whose loss turns NaN stops with an error and saves nothing, so the last good checkpoint stays.</summary>
    [Fact]
    public void A_diverging_run_stops_without_replacing_its_checkpoint()
    {
        var options = Options("diverge", steps: 2);
        using (var trainer = Trainer.Open(options, new CpuBackend(2))) trainer.Run(_ => { });
        // Second moments below zero (no real run has them) make the next AdamW update NaN, and so the loss of the step
        // after it: a run that diverges within the flags' limits.
        var (_, state) = TrainingCheckpoint.ReadState(options.OutputDirectory);
        using (var backend = new CpuBackend(1))
        using (var model = TrainingCheckpoint.Load(options.OutputDirectory, backend))
        {
            var m = Download(model, model.OptimizerState.M);
            model.SetOptimizerState(m, Enumerable.Repeat(-1f, m.Length).ToArray());
            TrainingCheckpoint.Save(options.OutputDirectory, model, state);
        }
        byte[] saved = File.ReadAllBytes(Path.Combine(options.OutputDirectory, "model.safetensors"));

        using var resumed = Trainer.Open(options with { Resume = true, Config = null, Steps = 8 }, new CpuBackend(2));
        var steps = new List<TrainingStep>();
        var e = Assert.Throws<Gpt2Exception>(() => resumed.Run(steps.Add));
        Assert.Contains("diverged at step 4", e.Message);
        Assert.All(steps, s => Assert.True(float.IsFinite(s.Loss)));
        Assert.Equal(saved, File.ReadAllBytes(Path.Combine(options.OutputDirectory, "model.safetensors")));
    }

    /// <summary>
    /// Ctrl-C while step 2 is reported, after the trainer looked for it. Step 2 not saved: step 3 runs, is saved, and
    /// stops the run. Step 2 saved (a checkpoint every 2 steps): the run stops at once. Either way the last report says
    /// that its step was saved.
    /// </summary>
    [Theory]
    [InlineData(0, 3)]
    [InlineData(2, 2)]
    public void A_cancelled_run_stops_once_its_last_step_is_saved_and_reported(int checkpointEvery, int lastStep)
    {
        var options = Options($"cancel-{checkpointEvery}") with { CheckpointEvery = checkpointEvery };
        using var cancel = new CancellationTokenSource();
        var reports = new List<TrainingStep>();
        using (var trainer = Trainer.Open(options, new CpuBackend(1)))
        {
            Assert.Throws<OperationCanceledException>(() => trainer.Run(s =>
            {
                reports.Add(s);
                if (s.Step == 2) cancel.Cancel();
            }, cancel.Token));
            Assert.Equal(lastStep, trainer.Step);
        }
        Assert.Equal(Enumerable.Range(1, lastStep), reports.Select(s => s.Step));
        Assert.Equal(options.OutputDirectory, reports[^1].Checkpoint);
        Assert.Equal(lastStep, TrainingCheckpoint.ReadState(options.OutputDirectory).State.Step);
    }

    /// <summary>
    /// Everything a step needs is on the backend once the trainer is open: the memory check then covers it before the
    /// first step (and before the slow initialisation), instead of failing a run after its first forward and backward.
    /// </summary>
    // Small's shapes, counted by hand (llm.c's ParameterTensors and ActivationTensors), with B=2, T=8, so N=16 positions.
    private const long V = 64, MaxT = 16, C = 16, L = 2, NH = 2, B = 2, T = 8, N = B * T;
    private const long SmallParameters = (V + MaxT) * C + L * (12 * C * C + 13 * C) + 2 * C;

    /// <summary>What a step of Small on B x T holds: parameters, gradients, AdamW m and v; activations and their gradients; I32 inputs and targets.</summary>
    private static long SmallStepBytes()
    {
        long perLayer = 18 * N * C + 4 * N + B * NH * T * T; // ln1, qkv, att, atty, attproj, residual2, ln2, fch, fch_gelu, fcproj, residual3; LayerNorm mean and rstd
        long activations = N * C + L * perLayer + N * C + 2 * N + N * V + N; // encoded, layers, lnf (+ mean, rstd), logits, losses
        return 4 * (4 * SmallParameters + 2 * activations) + 4 * 2 * N;
    }

    [Fact]
    public void Opening_allocates_all_the_memory_of_a_step()
    {
        var backend = new CpuBackend(1);
        using var trainer = Trainer.Open(Options("memory"), backend);
        long expected = SmallStepBytes();
        Assert.Equal(expected, backend.AllocatedBytes);
        Assert.Equal(expected, Gpt2Model.TrainingBytes(Small, (int)B, (int)T));
        trainer.TrainStep();
        trainer.Evaluate();
        Assert.Equal(expected, backend.AllocatedBytes);
    }

    /// <summary>
    /// A run from --config also holds the host array its random weights are initialised in (4 bytes a parameter) until
    /// the step's buffers are allocated: the memory check counts it, so that such a run too fails before the slow
    /// initialisation. Weights loaded or resumed are mapped files, not such an array.
    /// </summary>
    [Fact]
    public void The_memory_check_counts_the_initial_weights_of_a_run_from_a_config()
    {
        Assert.Equal(SmallStepBytes() + 4 * SmallParameters, Trainer.RequiredBytes(Small, (int)B, (int)T, initialises: true));
        Assert.Equal(SmallStepBytes(), Trainer.RequiredBytes(Small, (int)B, (int)T, initialises: false));
    }

    [Fact]
    public void A_run_too_large_for_memory_fails_before_its_model_is_built()
    {
        // 2^30 positions of activations: terabytes, more than any machine has.
        var e = Assert.Throws<Gpt2Exception>(() => Trainer.Open(Options("huge") with { BatchSize = 1 << 27 }, new CpuBackend(1)));
        Assert.StartsWith($"out of memory: training {Small} on {1 << 27} x 8 tokens needs ", e.Message);
    }

    /// <summary>What CUDA's attention backward and gradient norm allocate on first use, counted independently: seven [B, T, C] copies, the scores' gradient [B, NH, T, T], 256 partial sums.</summary>
    private static long CudaScratchBytes() => 4 * (7 * N * C + B * NH * T * T) + 256 * sizeof(double);

    /// <summary>
    /// On CUDA the check asks the driver what is free, less a reserve for cuBLAS (1/16 of the device here): a run that
    /// does not fit fails before its first buffer; one that just fits is built and trains, its random weights' host
    /// array not counted against the device.
    /// </summary>
    [HostKernelFact]
    public void On_cuda_a_run_larger_than_the_free_device_memory_fails_before_its_first_buffer()
    {
        long device = SmallStepBytes() + CudaScratchBytes();
        using (var cuda = new HostCuda())
        {
            cuda.Api.MemoryLimit = (device - 1) * 16 / 15; // with the reserve, just short of the run's buffers and scratch
            Assert.InRange(cuda.Api.MemoryLimit - cuda.Api.MemoryLimit / 16, SmallStepBytes(), device - 1);
            int allocations = cuda.Api.Allocations;
            var e = Assert.Throws<Gpt2Exception>(() => Trainer.Open(Options("gpu-small"), cuda.Backend));
            Assert.StartsWith($"out of GPU memory: training {Small} on 2 x 8 tokens needs ", e.Message);
            Assert.EndsWith(" free on CPU stand-in", e.Message);
            Assert.Equal(allocations, cuda.Api.Allocations);
        }
        using (var cuda = new HostCuda())
        {
            cuda.Api.MemoryLimit = (device * 16 + 14) / 15 + 16; // with the reserve, a few bytes more than the run needs: less than its 4 bytes a parameter
            Assert.True(cuda.Api.MemoryLimit - cuda.Api.MemoryLimit / 16 < device + 4 * SmallParameters);
            using var trainer = Trainer.Open(Options("gpu-fits"), cuda.Backend);
            Assert.True(float.IsFinite(trainer.TrainStep().Loss)); // the scratch, allocated now, fits too
        }
    }

    /// <summary>A step's row is in metrics.csv before its checkpoint is written: a run that dies saving it has still logged it.</summary>
    [Fact]
    public void A_step_is_logged_before_its_checkpoint()
    {
        var options = Options("logged", steps: 2);
        Directory.CreateDirectory(Path.Combine(options.OutputDirectory, TrainingCheckpoint.ModelFile)); // a checkpoint cannot be written
        using var trainer = Trainer.Open(options, new CpuBackend(1));
        var e = Assert.Throws<Gpt2Exception>(() => trainer.Run(_ => { }));
        Assert.Contains("it is a directory", e.Message);
        Assert.Equal(["1", "2"], File.ReadLines(Path.Combine(options.OutputDirectory, MetricsLog.FileName)).Skip(1).Select(row => row.Split(',')[0]));
    }

    /// <summary>
    /// A checkpoint without the data's fingerprint (written before it was recorded) resumes on data of the same count,
    /// whatever its tokens; a malformed fingerprint is a one-line error.
    /// </summary>
    [Fact]
    public void A_checkpoint_without_the_data_fingerprint_is_checked_by_count_and_a_malformed_one_is_refused()
    {
        var options = Options("fingerprint", steps: 2);
        using (var trainer = Trainer.Open(options, new CpuBackend(1))) trainer.Run(_ => { });
        using var other = new TrainingData();
        var shifted = Cycle(700);
        shifted[0] = 1;
        other.WriteSplit("train", shifted, Cycle(300));
        var resume = options with { Resume = true, Config = null, Steps = 3, DataDirectory = other.Directory };
        Assert.Contains("but not the same ones", Assert.Throws<Gpt2Exception>(() => Trainer.Open(resume, new CpuBackend(1))).Message);

        EditStateMetadata(options.OutputDirectory, metadata => metadata["train_hash"] = "not-a-hash");
        Assert.EndsWith("metadata 'train_hash' is not 16 hexadecimal digits", Assert.Throws<Gpt2Exception>(() => Trainer.Open(resume, new CpuBackend(1))).Message);

        EditStateMetadata(options.OutputDirectory, metadata => metadata.Remove("train_hash"));
        using (var trainer = Trainer.Open(resume, new CpuBackend(1))) Assert.Equal(2, trainer.Step);
    }

    private static void EditStateMetadata(string directory, Action<Dictionary<string, string>> edit)
    {
        string path = Path.Combine(directory, TrainingCheckpoint.StateFile);
        using (var state = Gpt2Engine.Checkpoints.SafetensorsFile.Open(path))
        {
            var metadata = new Dictionary<string, string>(state.Metadata);
            edit(metadata);
            Gpt2Engine.Checkpoints.SafetensorsWriter.Write(path + ".edited", state.Tensors.Values, metadata);
        }
        File.Move(path + ".edited", path, overwrite: true);
    }

    /// <summary>A checkpoint of a run on CUDA holds the device's parameters and moments, downloaded tensor by tensor.</summary>
    [HostKernelFact]
    public void On_cuda_a_checkpoint_holds_the_devices_parameters_and_moments()
    {
        using var cuda = new HostCuda();
        var options = Options("gpu-checkpoint", steps: 2);
        using var trainer = Trainer.Open(options, cuda.Backend);
        trainer.Run(_ => { });
        var model = trainer.Model;
        float[] parameters = Download(model, model.ParameterMemory);
        var (m, v) = model.OptimizerState;
        using var state = Gpt2Engine.Checkpoints.SafetensorsFile.Open(Path.Combine(options.OutputDirectory, TrainingCheckpoint.StateFile));
        using var weights = Gpt2Engine.Checkpoints.CheckpointLoader.Load(options.OutputDirectory);
        foreach (var spec in model.Layout.Specs)
        {
            float[] expected = parameters.AsSpan((int)spec.Offset, (int)spec.Count).ToArray();
            Assert.Equal(expected, state[spec.Name].AsSpan<float>().ToArray());
            Assert.Equal(expected, weights[spec.Name].AsSpan<float>().ToArray());
        }
        Assert.Equal(Download(model, m), state["optimizer.m"].AsSpan<float>().ToArray());
        Assert.Equal(Download(model, v), state["optimizer.v"].AsSpan<float>().ToArray());
    }

    /// <summary>The memory check comes before the data is opened (which scans every shard): here there is no data at all.</summary>
    [Fact]
    public void A_run_too_large_for_memory_fails_before_its_data_is_read()
    {
        Directory.CreateDirectory(_data.File("no-data"));
        var e = Assert.Throws<Gpt2Exception>(() => Trainer.Open(Options("huge") with { BatchSize = 1 << 27, DataDirectory = _data.File("no-data") }, new CpuBackend(1)));
        Assert.StartsWith("out of memory: ", e.Message);
    }

    /// <summary>
    /// Weights of more parameters than one array holds (2^31 + 888: wte and wpe of 2^27 rows) are refused before they
    /// load: training copies them into one array at every checkpoint. A sparse file reads as zeros and takes no disk.
    /// </summary>
    [LinuxFact]
    public void Weights_too_large_for_one_array_are_refused_before_training()
    {
        var config = new Gpt2Config(VocabSize: 1 << 27, ContextLength: 1 << 27, Channels: 8, Layers: 1, Heads: 1);
        string weights = Directory.CreateDirectory(_data.File("weights")).FullName;
        File.WriteAllText(Path.Combine(weights, "config.json"), TrainingCheckpoint.ConfigJson(config));
        WriteSparseSafetensors(Path.Combine(weights, "model.safetensors"), ParameterLayout.For(config));
        var e = Assert.Throws<Gpt2Exception>(() => Trainer.Open(Options("huge") with { Config = null, Weights = weights }, new CpuBackend(1)));
        Assert.Contains($"{config} has 2,147,484,536 parameters; training keeps them in one array of at most 2,147,483,591", e.Message);
    }

    /// <summary>A safetensors header for every tensor of <paramref name="layout"/> (F32), then a hole as long as their data.</summary>
    private static void WriteSparseSafetensors(string path, ParameterLayout layout)
    {
        var header = new System.Text.StringBuilder("{");
        foreach (var spec in layout.Specs)
            header.Append($"\"{spec.Name}\":{{\"dtype\":\"F32\",\"shape\":[{string.Join(',', spec.Shape)}],\"data_offsets\":[{spec.Offset * 4},{(spec.Offset + spec.Count) * 4}]}},");
        header[^1] = '}';
        using var file = File.Create(path);
        file.Write(BitConverter.GetBytes((ulong)header.Length));
        file.Write(System.Text.Encoding.ASCII.GetBytes(header.ToString()));
        file.SetLength(file.Position + layout.TotalCount * 4);
    }

    /// <summary>
    /// A checkpoint on the CPU writes the backend's buffers in place: no copy of the parameters and both moments (12
    /// bytes per parameter), which a run that fills the machine's memory has no room for (774M on 23 GB was killed so).
    /// </summary>
    [Fact]
    public void A_checkpoint_on_the_cpu_copies_no_parameters()
    {
        var config = Small with { Channels = 512 }; // 6,346,752 parameters: 25 MB a copy (writing allocates 1 MiB per file)
        using var trainer = Trainer.Open(Options("in-place") with { Config = config }, new CpuBackend(1));
        trainer.TrainStep();
        long before = GC.GetAllocatedBytesForCurrentThread();
        trainer.SaveCheckpoint();
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, config.ParameterCount * sizeof(float) / 2);
    }

    [Fact]
    public void Checkpoint_loads_for_inference_with_the_trained_weights()
    {
        var options = Options("load", steps: 2);
        float[] trained;
        using (var trainer = Trainer.Open(options, new CpuBackend(2)))
        {
            trainer.Run(s => Assert.Equal(s.Step == 2 ? options.OutputDirectory : null, s.Checkpoint));
            trained = Download(trainer.Model, trainer.Model.ParameterMemory);
        }
        using var model = Gpt2Model.Load(options.OutputDirectory);
        Assert.Equal(Small, model.Config);
        var tokens = new int[] { 1, 2, 3, 4 };
        float reference;
        using (var again = new Gpt2Model(Gpt2Engine.Checkpoints.CheckpointLoader.Load(options.OutputDirectory), new CpuBackend(1), trainable: true, ownsWeights: true, ownsBackend: true))
        {
            Assert.Equal(trained, Download(again, again.ParameterMemory));
            reference = again.Forward(tokens, tokens, 1, 4);
        }
        Assert.Equal(reference, model.Forward(tokens, tokens, 1, 4));
        Assert.False(Directory.EnumerateFiles(options.OutputDirectory, "*.tmp-*").Any(), "no temporary files are left behind");
    }

    [Fact]
    public void Random_initialisation_follows_gpt2()
    {
        var config = new Gpt2Config(VocabSize: 2000, ContextLength: 64, Channels: 32, Layers: 2, Heads: 2);
        using var weights = ModelInitializer.RandomWeights(config, seed: 11);
        static (double Mean, double Std) Moments(float[] v)
        {
            double mean = v.Average(x => (double)x);
            return (mean, Math.Sqrt(v.Average(x => (x - mean) * (x - mean))));
        }
        var (mean, std) = Moments(weights["wte.weight"].ToFloatArray());
        Assert.InRange(mean, -1e-3, 1e-3);
        Assert.InRange(std, 0.0196, 0.0204);                                        // 64,000 samples: ~0.3% standard error
        Assert.InRange(Moments(weights["h.1.mlp.c_fc.weight"].ToFloatArray()).Std, 0.0194, 0.0206);
        Assert.InRange(Moments(weights["h.0.mlp.c_proj.weight"].ToFloatArray()).Std, 0.0097, 0.0103); // 0.02 / sqrt(2 * 2)
        Assert.InRange(Moments(weights["h.1.attn.c_proj.weight"].ToFloatArray()).Std, 0.0095, 0.0105);
        Assert.All(weights["h.0.attn.c_attn.bias"].ToFloatArray(), b => Assert.Equal(0f, b));
        Assert.All(weights["ln_f.weight"].ToFloatArray(), w => Assert.Equal(1f, w));
        Assert.All(weights["h.1.ln_2.bias"].ToFloatArray(), b => Assert.Equal(0f, b));
        using var same = ModelInitializer.RandomWeights(config, seed: 11);
        using var other = ModelInitializer.RandomWeights(config, seed: 12);
        Assert.Equal(weights["wpe.weight"].ToFloatArray(), same["wpe.weight"].ToFloatArray());
        Assert.NotEqual(weights["wpe.weight"].ToFloatArray(), other["wpe.weight"].ToFloatArray());
    }

    [Fact]
    public void Bad_input_is_a_clear_error()
    {
        string Error(TrainingOptions options) => Assert.Throws<Gpt2Exception>(() => Trainer.Open(options, new CpuBackend(1))).Message;
        Assert.Contains("--seq 17 is larger than the model's context of 16", Error(Options("bad") with { SequenceLength = 17 }));
        Assert.Contains("no training checkpoint to resume from", Error(Options("bad") with { Resume = true, Config = null }));
        Assert.Contains("--resume continues the model saved in --out", Error(Options("bad") with { Resume = true }));
        Directory.CreateDirectory(_data.File("empty"));
        Assert.Contains("no train_*.bin token shards", Error(Options("bad") with { DataDirectory = _data.File("empty") }));
        Assert.Contains("--steps 0 must be positive", Error(Options("bad", steps: 0)));
        Assert.Contains("give --weights", Error(Options("bad") with { Config = null }));

        // Found when the data opens, not when training draws the window.
        var tokens = TrainingData.RandomTokens(100, Small.VocabSize, seed: 4);
        tokens[57] = (ushort)Small.VocabSize;
        _data.WriteSplit("train", tokens);
        Assert.Contains($"train_000.bin: token id {Small.VocabSize} at position 57 is outside the model's vocabulary", Error(Options("bad")));
    }

    [Fact]
    public void Benchmark_reports_consistent_rates()
    {
        var result = TrainingBenchmark.Run(Small, batchSize: 2, sequenceLength: 8, steps: 2, new CpuBackend(1));
        Assert.True(result.MillisecondsPerStep > 0);
        Assert.Equal(16 / (result.MillisecondsPerStep / 1000), result.TokensPerSecond, 1e-6 * result.TokensPerSecond);
        // 6 x (params - wpe) + 6 x L x T x C FLOPs per token, counted here from the shapes.
        double flopsPerToken = 6.0 * (Small.ParameterCount - 16 * 16) + 6.0 * 2 * 8 * 16;
        Assert.Equal(flopsPerToken * result.TokensPerSecond / 1e9, result.GigaflopsPerSecond, 1e-6 * result.GigaflopsPerSecond);
        if (OperatingSystem.IsLinux()) Assert.True(result.PeakMemoryBytes > 1 << 20);
    }
}
