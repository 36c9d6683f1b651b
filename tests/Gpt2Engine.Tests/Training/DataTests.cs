using Xunit;
using Gpt2Engine.Model;
using Gpt2Engine.Training;

namespace Gpt2Engine.Tests.Training;

/// <summary>Token shards, the windowed dataset, and the shuffled, resumable data loader.</summary>
public sealed class DataTests
{
    [Fact]
    public void Shard_round_trips_tokens_behind_its_header()
    {
        using var data = new TrainingData();
        ushort[] tokens = [0, 1, 50256, 65535, 42];
        TokenShard.Write(data.File("train_000.bin"), tokens);

        var bytes = File.ReadAllBytes(data.File("train_000.bin"));
        Assert.Equal(32 + 2 * tokens.Length, bytes.Length);
        Assert.Equal("GPT2TOK1"u8.ToArray(), bytes[..8]);
        Assert.Equal(tokens.Length, BitConverter.ToInt64(bytes, 16));
        using var shard = TokenShard.Open(data.File("train_000.bin"));
        Assert.Equal(tokens, shard.Tokens(0, tokens.Length).ToArray());
    }

    [Theory]
    [InlineData("magic", "not a token shard")]
    [InlineData("version", "format version 7")]
    [InlineData("count", "header says 6 tokens")]
    [InlineData("truncated", "not a token shard")]
    public void Corrupt_shard_header_is_a_clear_error(string damage, string message)
    {
        using var data = new TrainingData();
        string path = data.File("train_000.bin");
        TokenShard.Write(path, [1, 2, 3, 4, 5]);
        var bytes = File.ReadAllBytes(path);
        switch (damage)
        {
            case "magic": bytes[3] = (byte)'X'; break;
            case "version": bytes[8] = 7; break;
            case "count": bytes[16] = 6; break;
            case "truncated": bytes = bytes[..20]; break;
        }
        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<Gpt2Exception>(() => TokenDataset.Open(data.Directory, "train", 2, Gpt2Config.Gpt2VocabSize));
        Assert.Contains(path, error.Message);
        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void Missing_or_empty_data_directory_is_a_clear_error()
    {
        using var data = new TrainingData();
        Assert.Contains("no train_*.bin token shards", Assert.Throws<Gpt2Exception>(() => TokenDataset.Open(data.Directory, "train", 4, Gpt2Config.Gpt2VocabSize)).Message);
        Assert.Contains("not found", Assert.Throws<Gpt2Exception>(() => TokenDataset.Open(data.File("absent"), "train", 4, Gpt2Config.Gpt2VocabSize)).Message);
        data.WriteSplit("train", [1, 2, 3]);
        Assert.Contains("too few for one sequence", Assert.Throws<Gpt2Exception>(() => TokenDataset.Open(data.Directory, "train", 4, Gpt2Config.Gpt2VocabSize)).Message);
    }

    /// <summary>An id outside the model's vocabulary fails at the data's load, naming the shard and the first position.</summary>
    [Fact]
    public void Token_outside_the_vocabulary_is_found_when_the_split_opens()
    {
        using var data = new TrainingData();
        data.WriteSplit("train", [0, 63, 1, 2, 3], [5, 6, 7, 64, 8, 65535]);
        using (var fits = TokenDataset.Open(data.Directory, "train", 2, vocabularySize: 65_536)) Assert.Equal(11, fits.TokenCount);
        var error = Assert.Throws<Gpt2Exception>(() => TokenDataset.Open(data.Directory, "train", 2, vocabularySize: 64));
        Assert.Equal($"{data.File("train_001.bin")}: token id 64 at position 3 is outside the model's vocabulary (0..63)", error.Message);
    }

    [Fact]
    public void Windows_step_by_T_within_each_shard()
    {
        using var data = new TrainingData();
        // Shard 0: 0..9 -> windows of T=3 start at 0, 3, 6 (6..9 is the last full one). Shard 1: 100..104 -> 100 only.
        data.WriteSplit("train", Enumerable.Range(0, 10).Select(i => (ushort)i).ToArray(), Enumerable.Range(100, 5).Select(i => (ushort)i).ToArray());
        using var dataset = TokenDataset.Open(data.Directory, "train", 3, Gpt2Config.Gpt2VocabSize);
        Assert.Equal(4, dataset.WindowCount);
        Assert.Equal(15, dataset.TokenCount);
        int[] starts = [0, 3, 6, 100];
        var inputs = new int[3];
        var targets = new int[3];
        for (int w = 0; w < 4; w++)
        {
            dataset.ReadWindow(w, inputs, targets);
            Assert.Equal(Enumerable.Range(starts[w], 3), inputs);
            Assert.Equal(Enumerable.Range(starts[w] + 1, 3), targets);
        }
    }

    [Fact]
    public void Loader_visits_every_window_once_per_epoch_in_a_seeded_order()
    {
        using var data = new TrainingData();
        // Token i*2 starts window i (T=2), so a window is identified by its first input.
        data.WriteSplit("train", Enumerable.Range(0, 2 * 50 + 1).Select(i => (ushort)i).ToArray());
        using var dataset = TokenDataset.Open(data.Directory, "train", 2, Gpt2Config.Gpt2VocabSize);
        const int B = 5;
        List<int> Windows(ulong seed, int batches)
        {
            var loader = new DataLoader(dataset, seed);
            var seen = new List<int>();
            var inputs = new int[B * 2];
            var targets = new int[B * 2];
            for (int i = 0; i < batches; i++)
            {
                loader.NextBatch(inputs, targets, B);
                for (int b = 0; b < B; b++) seen.Add(inputs[b * 2] / 2);
            }
            return seen;
        }
        var first = Windows(1, 20);
        Assert.Equal(Enumerable.Range(0, 50), first.Take(50).Order());
        Assert.Equal(Enumerable.Range(0, 50), first.Skip(50).Order());
        Assert.NotEqual(first.Take(50), first.Skip(50));                       // reshuffled for epoch 2
        Assert.NotEqual(Enumerable.Range(0, 50), first.Take(50));              // shuffled at all
        Assert.Equal(first, Windows(1, 20));                                   // deterministic
        Assert.NotEqual(first, Windows(2, 20));                                // seeded
    }

    [Fact]
    public void Loader_resumed_at_its_position_continues_the_same_sequence()
    {
        using var data = new TrainingData();
        data.WriteSplit("train", TrainingData.RandomTokens(400, 1000, seed: 3));
        using var dataset = TokenDataset.Open(data.Directory, "train", 7, Gpt2Config.Gpt2VocabSize);
        const int B = 3, N = B * 7;
        var straight = new DataLoader(dataset, 9);
        var expected = new int[N];
        var targets = new int[N];
        for (int i = 0; i < 30; i++) straight.NextBatch(expected, targets, B); // crosses the 57-window epoch boundary

        var interrupted = new DataLoader(dataset, 9);
        var inputs = new int[N];
        for (int i = 0; i < 17; i++) interrupted.NextBatch(inputs, targets, B);
        var resumed = new DataLoader(dataset, 9, interrupted.Position);
        for (int i = 17; i < 30; i++) resumed.NextBatch(inputs, targets, B);
        Assert.Equal(expected, inputs);
        Assert.Equal(90, resumed.Position);
        Assert.Equal(1, resumed.Epoch);
    }

    [Fact]
    public void Schedule_warms_up_linearly_then_decays_by_cosine_to_the_minimum()
    {
        // Warmup over steps 1..10, cosine from the peak at step 10 to the minimum at step 110.
        var schedule = new LearningRateSchedule(Peak: 1e-3f, Min: 1e-4f, Warmup: 10, TotalSteps: 110);
        Assert.Equal(1e-4f, schedule.At(1), 1e-9f);
        Assert.Equal(5e-4f, schedule.At(5), 1e-9f);
        Assert.Equal(1e-3f, schedule.At(10), 1e-9f);
        Assert.Equal(1e-4 + 0.9e-3 * (1 + Math.Cos(Math.PI * 0.25)) / 2, schedule.At(35), 1e-9);
        Assert.Equal(5.5e-4f, schedule.At(60), 1e-9f);                       // halfway: (peak + min) / 2
        Assert.Equal(1e-4f, schedule.At(110), 1e-9f);
        Assert.Equal(3e-4f, new LearningRateSchedule(3e-4f, 0, 0, 1).At(1), 1e-9f); // no warmup, one step: the peak
    }

    [Fact]
    public void Prepare_tokenizes_documents_behind_endoftext_and_splits_off_the_tail()
    {
        using var data = new TrainingData();
        File.WriteAllText(data.File("a.txt"), "Hello world.<|endoftext|>A second document.");
        File.WriteAllText(data.File("b.txt"), string.Concat(Enumerable.Repeat("The quick brown fox jumps over the lazy dog. ", 20)));
        var expected = new List<int>();
        foreach (string file in new[] { "a.txt", "b.txt" })
        {
            expected.Add(50256);
            expected.AddRange(Gpt2Engine.Tokenization.Gpt2Tokenizer.Default.Encode(File.ReadAllText(data.File(file))));
        }

        var result = DataPreparation.Prepare([data.File("a.txt"), data.File("b.txt")], data.File("out"), 0.25);
        Assert.Equal(3, result.Documents);
        Assert.Equal(expected.Count, result.TrainTokens + result.ValidationTokens);
        Assert.Equal(Math.Round(expected.Count * 0.25), result.ValidationTokens);
        using var train = TokenShard.Open(data.File("out", "train_000.bin"));
        using var validation = TokenShard.Open(data.File("out", "val_000.bin"));
        var all = train.Tokens(0, (int)train.Count).ToArray().Concat(validation.Tokens(0, (int)validation.Count).ToArray()).Select(t => (int)t);
        Assert.Equal(expected, all);

        Assert.Contains("missing.txt", Assert.Throws<Gpt2Exception>(() => DataPreparation.Prepare([data.File("missing.txt")], data.File("out"), 0.1)).Message);
        Assert.Contains("--val-fraction", Assert.Throws<Gpt2Exception>(() => DataPreparation.Prepare([data.File("a.txt")], data.File("out"), 1.0)).Message);
        File.WriteAllText(data.File("empty.txt"), "");
        Assert.Contains("empty.txt: the file is empty", Assert.Throws<Gpt2Exception>(() => DataPreparation.Prepare([data.File("a.txt"), data.File("empty.txt")], data.File("out"), 0.1)).Message);
    }

    /// <summary>Text that is not valid UTF-8 is read as tokenize reads it (U+FFFD), with the same warning, not silently.</summary>
    [Fact]
    public void Prepare_warns_about_invalid_utf8_as_tokenize_does()
    {
        using var data = new TrainingData();
        File.WriteAllBytes(data.File("a.txt"), [.. "Hello"u8, 0xFF, .. " world"u8]);
        string warning = $"gpt2-engine: warning: {data.File("a.txt")}: invalid UTF-8 at byte 5; invalid bytes are read as U+FFFD";

        var (output, error) = (new StringWriter(), new StringWriter());
        Assert.Equal(0, Gpt2Engine.Cli.CliApp.Run(["prepare", "--out", data.File("out"), "--val-fraction", "0", data.File("a.txt")], output, error));
        Assert.Equal(warning, error.ToString().TrimEnd());
        using var train = TokenShard.Open(data.File("out", "train_000.bin"));
        Assert.Equal([50256, .. Gpt2Engine.Tokenization.Gpt2Tokenizer.Default.Encode("Hello\uFFFD world")], train.Tokens(0, (int)train.Count).ToArray().Select(t => (int)t));

        var tokenizeError = new StringWriter();
        Assert.Equal(0, Gpt2Engine.Cli.CliApp.Run(["tokenize", data.File("a.txt")], new StringWriter(), tokenizeError));
        Assert.Equal(warning, tokenizeError.ToString().TrimEnd());
    }

    /// <summary>A byte-order mark names the encoding and is not text: the same words give the same tokens in each.</summary>
    [Fact]
    public void Prepare_reads_a_byte_order_mark_as_the_encoding()
    {
        using var data = new TrainingData();
        const string text = "Caf\u00e9 \u2014 na\u00efve";
        var expected = new[] { 50256 }.Concat(Gpt2Engine.Tokenization.Gpt2Tokenizer.Default.Encode(text));
        var encodings = new System.Text.Encoding[] { new System.Text.UTF8Encoding(true), System.Text.Encoding.Unicode, System.Text.Encoding.BigEndianUnicode, System.Text.Encoding.UTF32 };
        foreach (var encoding in encodings)
        {
            File.WriteAllBytes(data.File("a.txt"), [.. encoding.Preamble, .. encoding.GetBytes(text)]);
            var warnings = new StringWriter();
            DataPreparation.Prepare([data.File("a.txt")], data.File("out"), 0, warnings);
            using var train = TokenShard.Open(data.File("out", "train_000.bin"));
            Assert.Equal(expected, train.Tokens(0, (int)train.Count).ToArray().Select(t => (int)t));
            Assert.Equal("", warnings.ToString());
        }
        // UTF-16 LE with a lone high surrogate (D800) after the mark and "A": read as U+FFFD, with a warning.
        File.WriteAllBytes(data.File("bad16.txt"), [0xFF, 0xFE, (byte)'A', 0, 0x00, 0xD8, (byte)'B', 0]);
        var badWarnings = new StringWriter();
        DataPreparation.Prepare([data.File("bad16.txt")], data.File("out"), 0, badWarnings);
        Assert.Equal($"gpt2-engine: warning: {data.File("bad16.txt")}: invalid UTF-16 at byte 4; invalid bytes are read as U+FFFD", badWarnings.ToString().TrimEnd());
        using (var bad = TokenShard.Open(data.File("out", "train_000.bin")))
            Assert.Equal([50256, .. Gpt2Engine.Tokenization.Gpt2Tokenizer.Default.Encode("A\uFFFDB")], bad.Tokens(0, (int)bad.Count).ToArray().Select(t => (int)t));

        File.WriteAllBytes(data.File("mark.txt"), [0xEF, 0xBB, 0xBF]);
        Assert.Contains("mark.txt: the file is empty", Assert.Throws<Gpt2Exception>(() => DataPreparation.Prepare([data.File("mark.txt")], data.File("out"), 0)).Message);
    }

    /// <summary>Where UTF-16 and UTF-32 text first fails to decode, byte offsets worked out by hand (the mark counted).</summary>
    [Theory]
    [InlineData("utf-16", new byte[] { 0xFF, 0xFE, 0x41, 0, 0x3D, 0xD8, 0x00, 0xDE, 0x00, 0xDC }, 8)] // A, a pair (U+1F600), then a lone low half
    [InlineData("utf-16", new byte[] { 0xFF, 0xFE, 0x41, 0, 0x3D, 0xD8 }, 4)] // a high half at the end
    [InlineData("utf-16", new byte[] { 0xFF, 0xFE, 0x41, 0, 0x42 }, 4)] // an odd last byte
    [InlineData("utf-16BE", new byte[] { 0xFE, 0xFF, 0, 0x41, 0xD8, 0x3D, 0, 0x42 }, 4)] // a high half, then B
    [InlineData("utf-32", new byte[] { 0xFF, 0xFE, 0, 0, 0x41, 0, 0, 0, 0, 0, 0x11, 0 }, 8)] // A, then 0x110000
    [InlineData("utf-32BE", new byte[] { 0, 0, 0xFE, 0xFF, 0, 0, 0xD8, 0x00 }, 4)] // a surrogate code point
    [InlineData("utf-32", new byte[] { 0xFF, 0xFE, 0, 0, 0x41, 0, 0, 0, 0x42, 0 }, 8)] // a last unit cut short
    public void The_first_invalid_utf16_or_utf32_unit_is_found(string encodingName, byte[] bytes, long expected)
    {
        var encoding = System.Text.Encoding.GetEncoding(encodingName);
        Assert.Equal(expected, DataPreparation.FirstInvalidUnit(bytes, encoding.Preamble.Length, encoding));
        Assert.Equal(-1, DataPreparation.FirstInvalidUnit([.. encoding.Preamble, .. encoding.GetBytes("A\U0001F600B")], encoding.Preamble.Length, encoding));
    }

    /// <summary>
    /// A preparation that fails leaves the previous shards as they were: the new ones are written aside and moved in
    /// only once all are written. (Here val_000.bin is a folder, which cannot be replaced; Ctrl-C deletes the same
    /// staging folder through TemporaryPaths.)
    /// </summary>
    [Fact]
    public void A_failed_preparation_keeps_the_previous_shards()
    {
        using var data = new TrainingData();
        File.WriteAllText(data.File("a.txt"), "First data set.");
        DataPreparation.Prepare([data.File("a.txt")], data.File("out"), 0);
        byte[] before = File.ReadAllBytes(data.File("out", "train_000.bin"));
        Directory.CreateDirectory(data.File("out", "val_000.bin"));

        File.WriteAllText(data.File("b.txt"), "A second, different data set, with a validation split this time.");
        Assert.Contains("val_000.bin", Assert.Throws<Gpt2Exception>(() => DataPreparation.Prepare([data.File("b.txt")], data.File("out"), 0.5)).Message);
        Assert.Equal(before, File.ReadAllBytes(data.File("out", "train_000.bin")));
        Assert.Equal(["train_000.bin", "val_000.bin"], Directory.GetFileSystemEntries(data.File("out")).Select(Path.GetFileName).Order());
    }
}
