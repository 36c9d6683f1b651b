using Gpt2Engine.Cli;
using Xunit;

namespace Gpt2Engine.Tests.Tokenization;

public sealed class TokenizeCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gpt2-tokenize-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string WriteFile(string name, byte[] bytes)
    {
        string path = Path.Combine(_directory, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void TokenizePrintsOneLineOfIdsPerFile()
    {
        var (text, ids) = TokenizerFixtures.Cases().First(c => c.Ids.Length > 5);
        string first = WriteFile("a.txt", System.Text.Encoding.UTF8.GetBytes(text));
        string second = WriteFile("b.txt", "Hello world!"u8.ToArray());
        var (code, output, error) = Run("tokenize", first, second);
        Assert.Equal(0, code);
        Assert.Equal("", error);
        Assert.Equal($"{string.Join(' ', ids)}\n15496 995 0\n", output.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void NoSpecialTreatsEndOfTextAsPlainText()
    {
        string file = WriteFile("a.txt", "<|endoftext|>"u8.ToArray());
        Assert.Equal("50256", Run("tokenize", file).Output.Trim());
        var plain = Run("tokenize", "--no-special", file).Output.Trim();
        Assert.DoesNotContain("50256", plain);
        Assert.Contains(' ', plain);
    }

    [Fact]
    public void DetokenizeReversesTokenizeForEveryCase()
    {
        foreach (var (text, ids) in TokenizerFixtures.Cases().Take(40))
        {
            string file = WriteFile("ids.txt", System.Text.Encoding.UTF8.GetBytes($"  {string.Join("\n ", ids)}\t\n"));
            var (code, output, error) = Run("detokenize", file);
            Assert.Equal((0, ""), (code, error));
            Assert.Equal(text, output);
        }
    }

    [Fact]
    public void InvalidUtf8InAFileIsReplacedAndReported()
    {
        string file = WriteFile("bad.txt", [(byte)'a', 0xFF, (byte)'b']);
        var (code, output, error) = Run("tokenize", file);
        Assert.Equal(0, code);
        Assert.Contains("bad.txt", error);
        Assert.Contains("byte 1", error);
        // "a\uFFFDb" encodes as a, the three bytes of U+FFFD, b.
        Assert.Equal("a\uFFFDb", Gpt2Engine.Tokenization.Gpt2Tokenizer.Default.Decode(output.Split(' ', StringSplitOptions.TrimEntries).Select(int.Parse).ToArray()));
    }

    [Fact]
    public void AnIdOutsideTheVocabularyIsNamedWithItsPosition()
    {
        string file = WriteFile("ids.txt", "15496 995\n50257 0"u8.ToArray());
        var (code, output, error) = Run("detokenize", file);
        Assert.Equal(1, code);
        Assert.Equal("", output);
        Assert.Equal($"gpt2-engine: error: {file}: token id 50257 (number 3) is outside the vocabulary (0..50256)\n", error.ReplaceLineEndings("\n"));
    }

    [Theory]
    [InlineData("15496 hello")]
    [InlineData("15496 -3")]
    [InlineData("99999999999")]
    public void AWordThatIsNotAnIdIsNamed(string content)
    {
        string file = WriteFile("ids.txt", System.Text.Encoding.UTF8.GetBytes(content));
        var (code, _, error) = Run("detokenize", file);
        Assert.Equal(1, code);
        Assert.StartsWith($"gpt2-engine: error: {file}: '", error);
        Assert.Contains("is not a token id", error);
    }

    [Fact]
    public void MissingFilesAndVocabulariesAreOneLineErrors()
    {
        string missing = Path.Combine(_directory, "missing.txt");
        var (code, _, error) = Run("tokenize", missing);
        Assert.Equal((1, $"gpt2-engine: error: {missing}: no such file"), (code, error.Trim()));

        string file = WriteFile("a.txt", "hi"u8.ToArray());
        (code, _, error) = Run("tokenize", "--vocab", _directory, file);
        Assert.Equal(1, code);
        Assert.Contains(Path.Combine(_directory, "encoder.json"), error);
        Assert.Single(error.Trim().Split('\n'));
    }

    [Fact]
    public void VocabFolderIsUsed()
    {
        string file = WriteFile("a.txt", "Hello world!"u8.ToArray());
        var (code, output, _) = Run("tokenize", "--vocab", TokenizerFixtures.Directory, file);
        Assert.Equal((0, "15496 995 0"), (code, output.Trim()));
    }

    [Fact]
    public void WeightsFolderWithoutVocabularyFallsBackToTheBuiltInOne()
    {
        string file = WriteFile("a.txt", "Hello world!"u8.ToArray());
        var (code, output, error) = Run("tokenize", "--weights", _directory, file);
        Assert.Equal((0, "15496 995 0"), (code, output.Trim()));
        Assert.Contains("built-in", error);
    }

    [Fact]
    public async Task StandardInputIsReadAsBytesWhenNoFileIsGiven()
    {
        // CliApp.Run takes writers, not an input stream: run the built command in a process to feed its stdin.
        using var process = CliProcess.Start("tokenize");
        process.StandardInput.BaseStream.Write([.. "Hello world"u8, 0xFF, (byte)'!']);
        process.StandardInput.Close();
        var (code, output, error) = await CliProcess.FinishAsync(process);
        Assert.Equal(0, code);
        // 15496 "Hello", 995 " world", then U+FFFD's three bytes and "!".
        Assert.Equal("Hello world\uFFFD!", Gpt2Engine.Tokenization.Gpt2Tokenizer.Default.Decode(output.Split(' ', StringSplitOptions.TrimEntries).Select(int.Parse).ToArray()));
        Assert.StartsWith("15496 995 ", output);
        Assert.Contains("standard input: invalid UTF-8 at byte 11", error);
    }

    /// <summary>A warning that standard error cannot take (<c>2&gt;&amp;-</c>) does not stop the command: the same ids, exit code 0.</summary>
    [LinuxFact]
    public async Task AWarningWithStandardErrorClosedDoesNotStopTheCommand()
    {
        using var process = CliProcess.StartInShell("2>&-", "tokenize");
        process.StandardInput.BaseStream.Write([.. "Hello world"u8, 0xFF, (byte)'!']);
        process.StandardInput.Close();
        var (code, output, _) = await CliProcess.FinishAsync(process);
        Assert.Equal(0, code);
        Assert.Equal("Hello world\uFFFD!", Gpt2Engine.Tokenization.Gpt2Tokenizer.Default.Decode(output.Split(' ', StringSplitOptions.TrimEntries).Select(int.Parse).ToArray()));
    }

    [Fact]
    public void UnknownFlagIsAUsageError()
    {
        var (code, _, error) = Run("detokenize", "--bogus");
        Assert.Equal(2, code);
        Assert.Contains("--bogus", error);
    }
}
