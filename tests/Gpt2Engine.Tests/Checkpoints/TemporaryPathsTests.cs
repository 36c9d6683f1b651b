using System.Runtime.InteropServices;
using Gpt2Engine.Model;
using Xunit;

namespace Gpt2Engine.Tests.Checkpoints;

/// <summary>The registry of temporary paths that Ctrl-C deletes, and the CLI interrupted for real.</summary>
public sealed partial class TemporaryPathsTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Delete_all_removes_tracked_files_and_folders_but_not_kept_ones()
    {
        var paths = new TemporaryPaths(); // not TemporaryPaths.Process: DeleteAll ends its use for good
        paths.Create(_dir["file.tmp"], () => File.Create(_dir["file.tmp"])).Dispose();
        paths.Create(_dir["folder"], () => Directory.CreateDirectory(_dir["folder"]));
        File.WriteAllText(Path.Combine(_dir["folder"], "inside.bin"), "data");
        paths.Create(_dir["kept.tmp"], () => File.Create(_dir["kept.tmp"])).Dispose();
        paths.Keep(_dir["kept.tmp"], () => File.Move(_dir["kept.tmp"], _dir["kept"]));
        File.WriteAllText(_dir["untracked"], "not ours");

        paths.DeleteAll();

        Assert.Equal([_dir["kept"], _dir["untracked"]], Directory.GetFileSystemEntries(_dir.Path).Order());
    }

    [Fact]
    public void After_delete_all_nothing_is_created_or_kept()
    {
        var paths = new TemporaryPaths();
        paths.Create(_dir["a.tmp"], () => File.Create(_dir["a.tmp"])).Dispose();
        paths.DeleteAll();

        bool created = false;
        Assert.Throws<OperationCanceledException>(() => paths.Create(_dir["b.tmp"], () => created = true));
        Assert.False(created);
        Assert.Throws<OperationCanceledException>(() => paths.Keep(_dir["a.tmp"], () => File.Move(_dir["a.tmp"], _dir["a"])));
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Path));
    }

    [Fact]
    public void Delete_removes_a_path_and_forgets_it()
    {
        var paths = new TemporaryPaths();
        paths.Create(_dir["a.tmp"], () => File.Create(_dir["a.tmp"])).Dispose();
        paths.Delete(_dir["a.tmp"]);
        Assert.False(File.Exists(_dir["a.tmp"]));
        File.WriteAllText(_dir["a.tmp"], "someone else's file of the same name");
        paths.DeleteAll();
        Assert.True(File.Exists(_dir["a.tmp"]));
    }

    [LinuxFact]
    public async Task Ctrl_c_during_convert_leaves_no_temporary_file()
    {
        // ~7M parameters: a 27 MB file, whose conversion to f32 writes for tens of milliseconds.
        var config = new Gpt2Config(Gpt2Config.Gpt2VocabSize, ContextLength: 64, Channels: 128, Layers: 2, Heads: 2);
        Gpt2Engine.Checkpoints.Gpt2Checkpoints.WriteSafetensors(_dir["model.safetensors"], config, TestFiles.RandomParameters(config));
        string output = Path.Combine(Directory.CreateDirectory(_dir["out"]).FullName, "model.safetensors");

        int interrupted = 0;
        for (int attempt = 0; attempt < 10 && interrupted < 2; attempt++)
        {
            using var cli = CliProcess.Start("convert", "--weights", _dir["model.safetensors"], "--dtype", "f32", "--out", output);
            // Ctrl-C once the temporary file exists, while it is being written. (The command may finish first, and
            // kill then find no such process: that attempt simply does not count.)
            var deadline = DateTime.UtcNow + CliProcess.Timeout;
            while (!cli.HasExited && Directory.GetFiles(_dir["out"], "*.tmp-*").Length == 0 && DateTime.UtcNow < deadline) Thread.Yield();
            if (!cli.HasExited) Kill(cli.Id, SigInt);
            var (code, _, error) = await CliProcess.FinishAsync(cli);
            if (code == 130) interrupted++;
            else Assert.True(code == 0, error); // finished first: try again
            Assert.Empty(Directory.GetFiles(_dir["out"], "*.tmp-*"));
        }
        Assert.True(interrupted > 0, "no attempt was interrupted while writing");
    }

    private const int SigInt = 2;

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
