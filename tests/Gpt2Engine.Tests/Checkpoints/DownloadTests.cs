using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cli;
using Xunit;

namespace Gpt2Engine.Tests.Checkpoints;

public class DownloadTests
{
    private static readonly DownloadOptions Fast = new() { Retries = 2, RetryDelay = TimeSpan.Zero, ReadTimeout = TimeSpan.FromSeconds(10) };

    private static byte[] Content(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private sealed class Recorder : IProgress<DownloadProgress>
    {
        public List<DownloadProgress> Reports { get; } = [];
        public void Report(DownloadProgress value)
        {
            lock (Reports) Reports.Add(value);
        }
    }

    private static Task Download(FakeHttpServer server, TempDir dir, string file, long? expected, DownloadOptions? options = null, IProgress<DownloadProgress>? progress = null) =>
        CheckpointDownloader.DownloadFilesAsync([(new Uri($"{server.BaseUrl}/{file}"), dir[file], expected)], options ?? Fast, progress);

    [Fact]
    public async Task Full_download_of_several_files()
    {
        var files = new Dictionary<string, byte[]> { ["/models/x/a.bin"] = Content(3_000_001, 1), ["/models/x/b.txt"] = Content(77, 2), ["/models/x/empty"] = [] };
        using var server = new FakeHttpServer((path, _) => files.TryGetValue(path, out var body) ? new Reply(200, body) : new Reply(404, []));
        using var dir = new TempDir();
        var progress = new Recorder();
        await CheckpointDownloader.DownloadFilesAsync(
            [(new Uri(server.BaseUrl + "/x/a.bin"), dir["a.bin"], 3_000_001L), (new Uri(server.BaseUrl + "/x/b.txt"), dir["b.txt"], null), (new Uri(server.BaseUrl + "/x/empty"), dir["empty"], 0L)],
            Fast, progress);
        Assert.Equal(files["/models/x/a.bin"], File.ReadAllBytes(dir["a.bin"]));
        Assert.Equal(files["/models/x/b.txt"], File.ReadAllBytes(dir["b.txt"]));
        Assert.Empty(File.ReadAllBytes(dir["empty"]));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.partial"));
        Assert.Equal(3, progress.Reports.Count(r => r.Status == DownloadStatus.Completed));

        // A second run finds everything in place and asks the server nothing.
        int before = server.Requests.Count;
        await CheckpointDownloader.DownloadFilesAsync([(new Uri(server.BaseUrl + "/x/a.bin"), dir["a.bin"], 3_000_001L)], Fast);
        Assert.Equal(before, server.Requests.Count);
    }

    [Fact]
    public async Task Resumes_from_a_partial_file_with_a_range_request()
    {
        byte[] body = Content(100_000, 3);
        using var server = new FakeHttpServer((_, _) => new Reply(200, body));
        using var dir = new TempDir();
        File.WriteAllBytes(dir["f.bin.partial"], body[..40_000]);
        await Download(server, dir, "f.bin", body.Length);
        Assert.Equal(body, File.ReadAllBytes(dir["f.bin"]));
        Assert.False(File.Exists(dir["f.bin.partial"]));
        Assert.Equal(40_000L, Assert.Single(server.Requests).RangeStart);
    }

    [Fact]
    public async Task Starts_over_when_the_server_ignores_the_range()
    {
        byte[] body = Content(5_000, 4);
        using var server = new FakeHttpServer((_, _) => new Reply(200, body, IgnoreRange: true));
        using var dir = new TempDir();
        File.WriteAllBytes(dir["f.bin.partial"], body[..1_000]);
        await Download(server, dir, "f.bin", null);
        Assert.Equal(body, File.ReadAllBytes(dir["f.bin"]));
    }

    [Theory]
    [InlineData(500)]
    [InlineData(404)]
    public async Task Server_error_is_one_line_and_leaves_no_file(int status)
    {
        using var server = new FakeHttpServer((_, _) => new Reply(status, "oops"u8.ToArray()));
        using var dir = new TempDir();
        var e = await Assert.ThrowsAsync<Gpt2Exception>(() => Download(server, dir, "f.bin", 10));
        Assert.Contains($"HTTP {status}", e.Message);
        Assert.Contains("/f.bin", e.Message);
        Assert.False(File.Exists(dir["f.bin"]));
    }

    [Fact]
    public async Task Connection_closed_early_is_resumed_in_the_same_run()
    {
        byte[] body = Content(50_000, 5);
        using var server = new FakeHttpServer((_, number) => new Reply(200, body, CutAfter: number == 0 ? 20_000 : null));
        using var dir = new TempDir();
        await Download(server, dir, "f.bin", body.Length);
        Assert.Equal(body, File.ReadAllBytes(dir["f.bin"]));
        Assert.Equal([null, 20_000L], server.Requests.Select(r => r.RangeStart));
    }

    [Fact]
    public async Task Connection_that_keeps_closing_early_fails_and_keeps_the_partial()
    {
        byte[] body = Content(50_000, 6);
        using var server = new FakeHttpServer((_, _) => new Reply(200, body, CutAfter: 1_000));
        using var dir = new TempDir();
        var e = await Assert.ThrowsAsync<Gpt2Exception>(() => Download(server, dir, "f.bin", null)); // size only from Content-Length
        Assert.Contains("interrupted", e.Message);
        Assert.False(File.Exists(dir["f.bin"]));
        Assert.Equal(body[..3_000], File.ReadAllBytes(dir["f.bin.partial"])); // three attempts of 1,000 bytes each
    }

    [Fact]
    public async Task Size_that_disagrees_with_the_published_size_is_refused()
    {
        using var server = new FakeHttpServer((_, _) => new Reply(200, Content(50, 7)));
        using var dir = new TempDir();
        var e = await Assert.ThrowsAsync<Gpt2Exception>(() =>
            CheckpointDownloader.DownloadReleaseAsync("117M", Fast with { BaseUrl = server.BaseUrl, WeightsRoot = dir.Path }));
        Assert.Contains("/124M/checkpoint", e.Message);
        Assert.Contains("announces 50 bytes, but the published file has 77", e.Message);
        Assert.False(Directory.Exists(dir["124M"])); // the folder it created, empty, is gone too
    }

    /// <summary>
    /// A failed download removes the folders it created and left empty (weights root and release folder), not one
    /// that existed before, and not one that holds a .partial to resume from.
    /// </summary>
    [Fact]
    public async Task A_failed_download_removes_only_the_empty_folders_it_created()
    {
        using var dir = new TempDir();
        var noServer = Fast with { BaseUrl = "http://127.0.0.1:1/gpt-2" };
        await Assert.ThrowsAsync<Gpt2Exception>(() => CheckpointDownloader.DownloadReleaseAsync("124M", noServer with { WeightsRoot = dir["weights"] }));
        Assert.Equal([], Directory.GetFileSystemEntries(dir.Path));

        Directory.CreateDirectory(dir["existing/124M"]);
        await Assert.ThrowsAsync<Gpt2Exception>(() => CheckpointDownloader.DownloadReleaseAsync("124M", noServer with { WeightsRoot = dir["existing"] }));
        Assert.Equal([], Directory.GetFileSystemEntries(dir["existing/124M"]));

        // Every attempt is cut before the first byte: no empty .partial is kept either, so no folder.
        byte[] checkpoint = Content(77, 8);
        using (var silent = new FakeHttpServer((_, _) => new Reply(200, checkpoint, CutAfter: 0)))
        {
            await Assert.ThrowsAsync<Gpt2Exception>(() => CheckpointDownloader.DownloadReleaseAsync("124M", Fast with { BaseUrl = silent.BaseUrl, WeightsRoot = dir["cut"] }));
            Assert.False(Directory.Exists(dir["cut"]));
        }
        using (var cut = new FakeHttpServer((_, _) => new Reply(200, checkpoint, CutAfter: 10)))
        {
            await Assert.ThrowsAsync<Gpt2Exception>(() => CheckpointDownloader.DownloadReleaseAsync("124M", Fast with { BaseUrl = cut.BaseUrl, WeightsRoot = dir["partial"] }));
            Assert.Equal(checkpoint[..30], File.ReadAllBytes(dir["partial/124M/checkpoint.partial"])); // three attempts of 10 bytes
        }
    }

    /// <summary>A download cancelled before its first byte (the second attempt, after one cut before any) leaves nothing.</summary>
    [Fact]
    public async Task A_download_cancelled_before_its_first_byte_leaves_no_folder()
    {
        using var dir = new TempDir();
        using var cancel = new CancellationTokenSource();
        using var server = new FakeHttpServer((_, number) =>
        {
            if (number > 0) cancel.Cancel();
            return new Reply(200, Content(77, 9), CutAfter: 0);
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            CheckpointDownloader.DownloadReleaseAsync("124M", Fast with { BaseUrl = server.BaseUrl, WeightsRoot = dir["weights"] }, cancel: cancel.Token));
        Assert.Equal(2, server.Requests.Count);
        Assert.Equal([], Directory.GetFileSystemEntries(dir.Path));
    }

    /// <summary>A download cancelled after some bytes keeps them in the .partial, and the next run resumes from there.</summary>
    [Fact]
    public async Task A_download_cancelled_midway_keeps_its_bytes_for_the_next_run()
    {
        using var dir = new TempDir();
        byte[] checkpoint = Content(77, 10);
        using var cancel = new CancellationTokenSource();
        using (var server = new FakeHttpServer((_, number) =>
               {
                   if (number > 0) cancel.Cancel(); // the retry after the first attempt's cut
                   return new Reply(200, checkpoint, CutAfter: 10);
               }))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
                CheckpointDownloader.DownloadReleaseAsync("124M", Fast with { BaseUrl = server.BaseUrl, WeightsRoot = dir.Path }, cancel: cancel.Token));
        }
        Assert.Equal(checkpoint[..10], File.ReadAllBytes(dir["124M/checkpoint.partial"]));

        using var resumed = new FakeHttpServer((path, _) => new Reply(path.EndsWith("/checkpoint") ? 200 : 404, checkpoint));
        await Assert.ThrowsAsync<Gpt2Exception>(() => CheckpointDownloader.DownloadReleaseAsync("124M", Fast with { BaseUrl = resumed.BaseUrl, WeightsRoot = dir.Path }));
        Assert.Equal(10L, resumed.Requests[0].RangeStart);
        Assert.Equal(checkpoint, File.ReadAllBytes(dir["124M/checkpoint"]));
    }

    [Fact]
    public void Cli_download_error_is_one_line_with_exit_code_1()
    {
        using var server = new FakeHttpServer((_, _) => new Reply(404, []));
        using var dir = new TempDir();
        var (output, error) = (new StringWriter(), new StringWriter());
        int code = CliApp.Run(["download", "124M", "--base-url", server.BaseUrl, "--weights-dir", dir.Path], output, error);
        Assert.Equal(1, code);
        string line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("gpt2-engine: error: ", line);
        Assert.Contains("HTTP 404", line);
        Assert.False(File.Exists(Path.Combine(dir.Path, "124M", "checkpoint")));
    }

    [Fact]
    public void Cli_download_rejects_an_unknown_size()
    {
        var (output, error) = (new StringWriter(), new StringWriter());
        Assert.Equal(1, CliApp.Run(["download", "7B"], output, error));
        Assert.Contains("unknown model size '7B'", error.ToString());
    }

    [Theory]
    [InlineData("notaurl")]
    [InlineData("ftp://example.com/gpt-2")]
    [InlineData("file:///tmp")]
    public void Cli_download_rejects_a_base_url_that_is_not_http(string url)
    {
        using var dir = new TempDir();
        var (output, error) = (new StringWriter(), new StringWriter());
        Assert.Equal(1, CliApp.Run(["download", "124M", "--base-url", url, "--weights-dir", dir.Path], output, error));
        Assert.Equal($"gpt2-engine: error: base URL '{url}' is not an http or https address", error.ToString().TrimEnd());
    }

    /// <summary>No server at the address: one line at once, not retries of a connection that cannot succeed.</summary>
    [Fact]
    public void Cli_download_without_a_server_is_one_line_without_retries()
    {
        using var dir = new TempDir();
        var (output, error) = (new StringWriter(), new StringWriter());
        Assert.Equal(1, CliApp.Run(["download", "124M", "--base-url", "http://127.0.0.1:1/gpt-2", "--weights-dir", dir.Path], output, error));
        string line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("gpt2-engine: error: http://127.0.0.1:1/gpt-2/124M/checkpoint: cannot connect", line);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "124M")));
    }
}
