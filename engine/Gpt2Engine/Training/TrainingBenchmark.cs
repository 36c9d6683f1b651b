using System.Globalization;
using Gpt2Engine.Model;

namespace Gpt2Engine.Training;

/// <summary>What <see cref="TrainingBenchmark.Run"/> measured.</summary>
/// <param name="GigaflopsPerSecond">Model FLOPs: 6 x (parameters less wpe) x tokens for the matmuls plus 6 x layers x T x channels x tokens for causal attention, over the measured time.</param>
/// <param name="PeakMemoryBytes">The process's peak resident memory (VmHWM), 0 where /proc is unavailable.</param>
public sealed record TrainingBenchmarkResult(Gpt2Config Config, int BatchSize, int SequenceLength, int Steps, string Backend,
    double MillisecondsPerStep, double TokensPerSecond, double GigaflopsPerSecond, long PeakMemoryBytes)
{
    public string ToJson() => JsonText.Write(json =>
    {
        json.WriteStartObject();
        json.WriteString("config", Config.ToString());
        json.WriteString("backend", Backend);
        json.WriteNumber("batch", BatchSize);
        json.WriteNumber("seq", SequenceLength);
        json.WriteNumber("steps", Steps);
        json.WriteNumber("train_ms_per_step", Math.Round(MillisecondsPerStep, 2));
        json.WriteNumber("train_tokens_per_s", Math.Round(TokensPerSecond, 2));
        json.WriteNumber("train_gflops_per_s", Math.Round(GigaflopsPerSecond, 3));
        json.WriteNumber("peak_memory_bytes", PeakMemoryBytes);
        json.WriteEndObject();
    });

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture,
            $"train {Config} B={BatchSize} T={SequenceLength} on {Backend}: {MillisecondsPerStep:F0} ms/step, {TokensPerSecond:F0} tokens/s, {GigaflopsPerSecond:F1} GFLOP/s, peak memory {PeakMemoryBytes / 1048576.0:F0} MiB ({Steps} steps after 1 warm-up step)");
}

/// <summary>
/// Times full training steps (forward, backward, clipping, AdamW) of a randomly initialised model on random
/// tokens, through the same <see cref="Trainer"/> a real run uses (which takes ownership of the backend).
/// </summary>
public static class TrainingBenchmark
{
    /// <summary>Timed steps at most (the warm-up step makes one more).</summary>
    private const int MaxSteps = 1_000_000;

    public static TrainingBenchmarkResult Run(Gpt2Config config, int batchSize, int sequenceLength, int steps, Backend backend)
    {
        string data = Path.Combine(Path.GetTempPath(), "gpt2-train-bench-" + Path.GetRandomFileName());
        var options = new TrainingOptions
        {
            DataDirectory = data,
            OutputDirectory = Path.Combine(data, "out"),
            Config = config,
            Steps = steps + 1,
            BatchSize = batchSize,
            SequenceLength = sequenceLength,
        };
        bool handedOver = false; // Trainer.Open owns the backend from its call on, failing or not
        try
        {
            if (steps is <= 0 or >= MaxSteps) throw new Gpt2Exception($"--steps {steps} must be between 1 and {MaxSteps - 1}");
            options.Validate();
            long tokenCount = (steps + 1) * (long)batchSize * sequenceLength + 1; // a shard of random tokens for every step
            if (tokenCount > Array.MaxLength)
                throw new Gpt2Exception($"{steps + 1} steps of {batchSize} x {sequenceLength} tokens need {tokenCount:N0} tokens of data, more than one shard holds ({Array.MaxLength:N0})");
            TemporaryPaths.Process.Create(data, () => Directory.CreateDirectory(data));
            var rng = new SplitMix64(1);
            var tokens = new ushort[tokenCount];
            foreach (ref ushort token in tokens.AsSpan()) token = (ushort)rng.NextBelow((ulong)config.VocabSize);
            TokenShard.Write(Path.Combine(data, "train_000.bin"), tokens);
            handedOver = true;
            using var trainer = Trainer.Open(options, backend);
            trainer.TrainStep(); // warm-up: JIT, caches, the thread pool (Trainer.Open has allocated every buffer)
            double milliseconds = 0;
            for (int i = 0; i < steps; i++) milliseconds += trainer.TrainStep().Milliseconds;

            double perStep = milliseconds / steps, tokensPerStep = (double)batchSize * sequenceLength;
            long matmulParameters = config.ParameterCount - (long)config.ContextLength * config.Channels;
            double flopsPerToken = 6.0 * matmulParameters + 6.0 * config.Layers * sequenceLength * config.Channels;
            return new TrainingBenchmarkResult(config, batchSize, sequenceLength, steps, backend.Name,
                perStep, tokensPerStep / (perStep / 1000), flopsPerToken * tokensPerStep / (perStep / 1000) / 1e9, PeakResidentBytes());
        }
        finally
        {
            if (!handedOver) backend.Dispose();
            TemporaryPaths.Process.Delete(data);
        }
    }

    /// <summary>VmHWM from /proc/self/status (Linux); 0 elsewhere.</summary>
    public static long PeakResidentBytes() => ProcFile.KilobyteField("/proc/self/status", "VmHWM") ?? 0;
}
