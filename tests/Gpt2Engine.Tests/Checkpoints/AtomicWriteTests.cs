using System.Diagnostics;
using System.Text;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cli;
using Xunit;

namespace Gpt2Engine.Tests.Checkpoints;

/// <summary>
/// <see cref="AtomicFile.Write(string, ReadOnlySpan{byte})"/> replaces regular files only and creates no
/// folders. (Never tried on a device node: a regression would replace it, as it did /dev/full.)
/// </summary>
public sealed class AtomicWriteTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly byte[] Contents = Encoding.ASCII.GetBytes("new contents");

    private void AssertNoTemporaryFiles() => Assert.Empty(Directory.GetFiles(_dir.Path, "*.tmp-*", SearchOption.AllDirectories));

    [Fact]
    public void A_regular_file_is_replaced()
    {
        File.WriteAllText(_dir["out.bin"], "old");
        AtomicFile.Write(_dir["out.bin"], Contents);
        Assert.Equal(Contents, File.ReadAllBytes(_dir["out.bin"]));
        AssertNoTemporaryFiles();
    }

    [Fact]
    public void A_missing_folder_is_an_error_and_is_not_created()
    {
        string path = Path.Combine(_dir["missing"], "deeper", "out.bin");
        var e = Assert.Throws<Gpt2Exception>(() => AtomicFile.Write(path, Contents));
        Assert.Equal($"{path}: cannot write: the folder {Path.Combine(_dir["missing"], "deeper")} does not exist", e.Message);
        Assert.False(Directory.Exists(_dir["missing"]));
    }

    [Fact]
    public void A_directory_is_not_replaced()
    {
        Directory.CreateDirectory(_dir["out.bin"]);
        var e = Assert.Throws<Gpt2Exception>(() => AtomicFile.Write(_dir["out.bin"], Contents));
        Assert.Equal($"{_dir["out.bin"]}: cannot write: it is a directory, not a regular file", e.Message);
        Assert.True(Directory.Exists(_dir["out.bin"]));
        AssertNoTemporaryFiles();
    }

    [LinuxFact]
    public void A_fifo_is_not_replaced()
    {
        MakeFifo(_dir["out.bin"]);
        var e = Assert.Throws<Gpt2Exception>(() => AtomicFile.Write(_dir["out.bin"], Contents));
        Assert.Equal($"{_dir["out.bin"]}: cannot write: it is a FIFO, not a regular file", e.Message);
        Assert.Equal("a FIFO", AtomicFile.NonRegularKind(_dir["out.bin"]));
        AssertNoTemporaryFiles();
    }

    [LinuxFact] // symbolic links need administrator rights or developer mode on Windows
    public void A_symbolic_link_to_a_regular_file_is_replaced_and_its_target_kept()
    {
        File.WriteAllText(_dir["target.bin"], "old");
        File.CreateSymbolicLink(_dir["link.bin"], _dir["target.bin"]);
        AtomicFile.Write(_dir["link.bin"], Contents);
        Assert.Null(new FileInfo(_dir["link.bin"]).LinkTarget); // a regular file now
        Assert.Equal(Contents, File.ReadAllBytes(_dir["link.bin"]));
        Assert.Equal("old", File.ReadAllText(_dir["target.bin"]));
    }

    [LinuxFact]
    public void A_symbolic_link_to_a_fifo_is_not_replaced()
    {
        MakeFifo(_dir["fifo"]);
        File.CreateSymbolicLink(_dir["link.bin"], _dir["fifo"]);
        var e = Assert.Throws<Gpt2Exception>(() => AtomicFile.Write(_dir["link.bin"], Contents));
        Assert.Contains("it is a FIFO", e.Message);
        Assert.Equal(_dir["fifo"], new FileInfo(_dir["link.bin"]).LinkTarget);
    }

    [LinuxFact]
    public void Convert_to_a_fifo_or_into_a_missing_folder_is_one_line_and_writes_nothing()
    {
        MakeFifo(_dir["fifo.safetensors"]);
        foreach (string output in new[] { _dir["fifo.safetensors"], Path.Combine(_dir["missing"], "out.safetensors") })
        {
            var error = new StringWriter();
            Assert.Equal(1, CliApp.Run(["convert", "--weights", TestFiles.Fixture("tiny", "model.safetensors"), "--out", output], new StringWriter(), error));
            string line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith($"gpt2-engine: error: {output}: cannot write: ", line);
        }
        Assert.Equal("a FIFO", AtomicFile.NonRegularKind(_dir["fifo.safetensors"]));
        Assert.False(Directory.Exists(_dir["missing"]));
        AssertNoTemporaryFiles();
    }

    private static void MakeFifo(string path)
    {
        using var mkfifo = Process.Start("mkfifo", [path]);
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
    }

    [Fact]
    public void An_empty_path_is_a_clear_error()
    {
        Assert.Equal("the output path is empty", Assert.Throws<Gpt2Exception>(() => AtomicFile.Write("", Contents)).Message);
    }
}
