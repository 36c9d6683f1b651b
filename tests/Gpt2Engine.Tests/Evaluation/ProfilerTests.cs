using Xunit;
using System.Text.Json;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cli;
using Gpt2Engine.Cpu;
using Gpt2Engine.Profiling;

namespace Gpt2Engine.Tests.Evaluation;

/// <summary>The profiling backend and profiler on the tiny model: each category is charged the calls the model makes.</summary>
public sealed class ProfilerTests
{
    private static ProfileReport ProfileTiny(int newTokens = 3)
    {
        using var weights = CheckpointLoader.Load(TestFixtures.TinyModel);
        return Profiler.Run(weights, threads => new CpuBackend(threads), new ProfileSettings([1, 2], [4, 8], newTokens, TrainBatch: 2, TrainLength: 8), tokenizer: null);
    }

    private static int Calls(IReadOnlyList<OpTime> ops, string name) => ops.SingleOrDefault(o => o.Name == name)?.Calls ?? 0;

    [Fact]
    public void Generation_and_training_are_broken_down_by_operation_and_layer()
    {
        const int L = 2, NewTokens = 3;
        var report = ProfileTiny(NewTokens);

        Assert.Equal([(1, 4), (1, 8), (2, 4), (2, 8)], report.Generation.Select(g => (g.Threads, g.PromptTokens)));
        foreach (var g in report.Generation)
        {
            // One prefill and NewTokens - 1 single-token steps; each runs every layer once.
            int passes = NewTokens;
            foreach (var name in new[] { ProfileCategories.MatmulQkv, ProfileCategories.MatmulAttnProj, ProfileCategories.MatmulFc, ProfileCategories.MatmulFcProj, ProfileCategories.Attention, ProfileCategories.Gelu })
                Assert.Equal(L * passes, Calls(g.Ops, name));
            Assert.Equal((2 * L + 1) * passes, Calls(g.Ops, ProfileCategories.LayerNorm));
            Assert.Equal(2 * L * passes, Calls(g.Ops, ProfileCategories.Residual));
            Assert.Equal(passes, Calls(g.Ops, ProfileCategories.MatmulLmHead));
            Assert.Equal(NewTokens, Calls(g.Ops, ProfileCategories.Sampling));
            Assert.InRange(g.Ops.Sum(o => o.Milliseconds), 0.999 * g.TotalMs, 1.001 * g.TotalMs);
            Assert.True(g.PrefillMs > 0 && g.DecodeMs > 0);
        }

        Assert.Equal([1, 2], report.Training.Select(t => t.Threads));
        foreach (var t in report.Training)
        {
            Assert.Equal((2, 8), (t.Batch, t.Length));
            Assert.Equal(L, Calls(t.Ops, ProfileCategories.MatmulQkv));
            Assert.Equal(L, Calls(t.Ops, ProfileCategories.MatmulFcProj + " backward"));
            Assert.Equal(L, Calls(t.Ops, ProfileCategories.Attention + " backward"));
            Assert.Equal(1, Calls(t.Ops, ProfileCategories.MatmulLmHead + " backward"));
            Assert.Equal(1, Calls(t.Ops, ProfileCategories.CrossEntropy));
            Assert.Equal(1, Calls(t.Ops, ProfileCategories.CrossEntropy + " backward"));
            Assert.Equal(1, Calls(t.Ops, ProfileCategories.AdamW));
            Assert.InRange(t.Ops.Sum(o => o.Milliseconds), 0.999 * t.StepMs, 1.001 * t.StepMs);
        }
    }

    /// <summary>
    /// Every row of every table lines up, whatever the longest name: "softmax/cross-entropy backward" (30 characters)
    /// was wider than the fixed 28 of the name column and pushed its row's numbers right.
    /// </summary>
    [Theory]
    [InlineData(ProfileCategories.CrossEntropy + " backward")]
    [InlineData("a name much longer than any category so far")]
    public void Profile_table_rows_line_up_whatever_the_longest_name(string longName)
    {
        OpTime[] generation = [new("gelu", 1.5, 3), new("matmul qkv", 12.25, 6)], training = [new(longName, 2, 1), new("adamw", 0.5, 1)];
        var report = new ProfileReport("m", "cpu", [new GenerationProfile(1, 4, 3, 10, 3.75, generation)], [new TrainingProfile(1, 2, 8, 2.5, training)]);
        var text = new StringWriter();
        report.WriteText(text);
        var rows = text.ToString().Split('\n').Where(line => line.StartsWith("  ")).ToList();
        Assert.Equal(4, rows.Count);
        // The milliseconds end where " ms " starts: the same column on every row, right after the longest name.
        Assert.All(rows, row => Assert.Equal(2 + longName.Length + 1 + 10, row.IndexOf(" ms ", StringComparison.Ordinal)));
        Assert.Single(rows, row => row.StartsWith($"  {longName} "));
    }

    [Theory]
    [InlineData(768, 2304, ProfileCategories.MatmulQkv)]
    [InlineData(768, 768, ProfileCategories.MatmulAttnProj)]
    [InlineData(768, 3072, ProfileCategories.MatmulFc)]
    [InlineData(3072, 768, ProfileCategories.MatmulFcProj)]
    [InlineData(1600, 4800, ProfileCategories.MatmulQkv)]
    [InlineData(6400, 1600, ProfileCategories.MatmulFcProj)]
    public void Matmuls_are_recognised_by_shape(int C, int OC, string category) =>
        Assert.Equal(category, ProfilingBackend.MatmulCategory(C, OC));

    /// <summary>The memory questions reach the backend profiled: the CPU's buffers are host memory, and it refuses what does not fit.</summary>
    [Fact]
    public void Memory_queries_are_forwarded()
    {
        using var backend = new ProfilingBackend(new CpuBackend(1));
        Assert.True(backend.BuffersAreHostMemory);
        var e = Assert.Throws<Gpt2Exception>(() => backend.RequireAvailable(long.MaxValue, "a test"));
        Assert.StartsWith("out of memory: a test needs ", e.Message);
    }

    /// <summary>A member left to Backend's default would answer for the wrapper, not for the backend it profiles.</summary>
    [Fact]
    public void Every_overridable_backend_member_is_forwarded()
    {
        const System.Reflection.BindingFlags All = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic;
        var notForwarded = typeof(ProfilingBackend).GetMethods(All)
            .Where(m => m.IsVirtual && !m.IsFinal && m.GetBaseDefinition().DeclaringType == typeof(Gpt2Engine.Model.Backend) && m.DeclaringType != typeof(ProfilingBackend))
            .Select(m => m.Name);
        Assert.Empty(notForwarded);
    }

    [Fact]
    public void Json_round_trips_and_a_bad_file_is_a_one_line_error()
    {
        var report = ProfileTiny();
        using var directory = new TempDir();
        string path = Path.Combine(directory.Path, "profile.json");
        using (var stream = File.Create(path)) report.WriteJson(stream);

        var read = ProfileReport.ReadJson(path);

        Assert.Equal(report.Model, read.Model);
        Assert.Equal(report.Generation.Select(g => (g.Threads, g.PromptTokens, g.NewTokens, g.PrefillMs, g.DecodeMs)), read.Generation.Select(g => (g.Threads, g.PromptTokens, g.NewTokens, g.PrefillMs, g.DecodeMs)));
        Assert.Equal(report.Training[1].Ops, read.Training[1].Ops);

        File.WriteAllText(path, "{\"model\": 1}");
        var e = Assert.Throws<Gpt2Exception>(() => ProfileReport.ReadJson(path));
        Assert.Contains("not a profile report", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Prompt_that_does_not_fit_the_context_is_an_error()
    {
        using var weights = CheckpointLoader.Load(TestFixtures.TinyModel);
        var e = Assert.Throws<Gpt2Exception>(() => Profiler.Run(weights, t => new CpuBackend(t), new ProfileSettings([1], [30], 4, 0, 0), null));
        Assert.Contains("does not fit the model's context of 32", e.Message);
    }

    /// <summary>A prompt length below 1 is said to be one, not a prompt that does not fit the context.</summary>
    [Theory]
    [InlineData("--prompt-sweep 0: a prompt length must be at least 1 token", "--prompt-sweep", "0")]
    [InlineData("--prompt-sweep 16,-2: a prompt length must be at least 1 token", "--prompt-sweep", "16,-2")]
    [InlineData("--prompt-tokens 0: a prompt length must be at least 1 token", "--prompt-tokens", "0")]
    public void Bench_profile_names_a_prompt_length_below_one(string message, params string[] flags)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        // Weights that do not exist: the option is checked before the model loads.
        Assert.Equal(1, CliApp.Run(["bench", "--weights", "no-such-model.safetensors", "--profile", .. flags], output, error));
        Assert.Equal($"gpt2-engine: error: {message}", error.ToString().TrimEnd());

        using var weights = CheckpointLoader.Load(TestFixtures.TinyModel);
        var e = Assert.Throws<Gpt2Exception>(() => Profiler.Run(weights, t => new CpuBackend(t), new ProfileSettings([1], [4, 0], 4, 0, 0), null));
        Assert.Equal("a prompt of 0 tokens: a prompt needs at least 1 token", e.Message);
    }

    [Fact]
    public void Bench_profile_sweeps_threads_and_prompt_lengths_as_json()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Run(["bench", "--weights", TestFixtures.TinyModel, "--profile", "--threads", "1,2", "--prompt-sweep", "4,8", "--gen-tokens", "3", "--json"], output, error);
        Assert.True(code == 0, error.ToString());
        var root = JsonDocument.Parse(output.ToString()).RootElement;
        Assert.Equal([(1, 4), (1, 8), (2, 4), (2, 8)], root.GetProperty("generation").EnumerateArray().Select(g => (g.GetProperty("threads").GetInt32(), g.GetProperty("prompt_tokens").GetInt32())));
        Assert.Equal(2, root.GetProperty("training").GetArrayLength());
    }

    [Fact]
    public void Bench_profile_without_a_sweep_profiles_the_prompt_length()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Run(["bench", "--weights", TestFixtures.TinyModel, "--profile", "--threads", "1", "--prompt-tokens", "5", "--gen-tokens", "3", "--json"], output, error);
        Assert.True(code == 0, error.ToString());
        var generation = JsonDocument.Parse(output.ToString()).RootElement.GetProperty("generation");
        Assert.Equal([5], generation.EnumerateArray().Select(g => g.GetProperty("prompt_tokens").GetInt32()));
    }

    /// <summary>Weights to compare that are missing or corrupt are a one-line error, before anything is timed.</summary>
    [Theory]
    [InlineData("missing")]
    [InlineData("truncated")]
    public void Bench_compare_with_bad_weights_is_a_one_line_error(string kind)
    {
        using var directory = new TempDir();
        string path = Path.Combine(directory.Path, "other.safetensors");
        if (kind == "truncated") File.WriteAllBytes(path, File.ReadAllBytes(TestFixtures.TinyModel)[..100]);
        var (output, error) = (new StringWriter(), new StringWriter());
        Assert.Equal(1, CliApp.Run(["bench", "--weights", TestFixtures.TinyModel, "--compare", path, "--prompt-tokens", "2", "--gen-tokens", "1"], output, error));
        Assert.Equal("", output.ToString());
        string line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"gpt2-engine: error: {path}: ", line);
    }

    /// <summary>A flag that the chosen mode would ignore is an error, not silence.</summary>
    [Theory]
    [InlineData("--prompt-sweep does not apply to --train", "--train", "--prompt-sweep", "4")]
    [InlineData("--gen-tokens does not apply to --train", "--train", "--gen-tokens", "4")]
    [InlineData("--train takes one --threads count", "--train", "--threads", "1,2")]
    [InlineData("--batch does not apply to timing generation", "--batch", "3")]
    [InlineData("--prompt-sweep is for --profile", "--prompt-sweep", "4,8")]
    [InlineData("--compare does not apply to --train", "--train", "--compare", "x")]
    [InlineData("--compare does not apply to --profile", "--profile", "--compare", "x")]
    public void Bench_refuses_flags_of_the_other_mode(string message, params string[] flags)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(1, CliApp.Run(["bench", "--weights", TestFixtures.TinyModel, .. flags], output, error));
        Assert.Equal($"gpt2-engine: error: {message}", error.ToString().TrimEnd());
    }
}
