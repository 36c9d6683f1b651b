using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;

namespace Gpt2Engine.Checkpoints;

public enum DownloadStatus { Started, Receiving, Retrying, Completed, AlreadyPresent }

/// <summary>A progress report for one file. <see cref="Total"/> is null when neither the server nor the catalog knows the size.</summary>
public sealed record DownloadProgress(string File, long Received, long? Total, double BytesPerSecond, DownloadStatus Status, string? Message = null);

public sealed record DownloadOptions
{
    public string BaseUrl { get; init; } = ModelCatalog.DefaultBaseUrl;

    /// <summary>The weights root; null means <see cref="ModelCatalog.WeightsRoot"/>.</summary>
    public string? WeightsRoot { get; init; }

    /// <summary>How many times an interrupted transfer is resumed before giving up (the partial file is kept either way).</summary>
    public int Retries { get; init; } = 3;

    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>A transfer that receives nothing for this long counts as interrupted.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// Fetches the seven files of an official release into <c>&lt;weights root&gt;/&lt;release&gt;/</c>. Each file is received
/// into <c>&lt;file&gt;.partial</c>, resumed with an HTTP Range request after an interruption (in this run or a later
/// one), checked against the announced and the published size, and only then renamed to its final name.
/// </summary>
public static class CheckpointDownloader
{
    private const int BufferSize = 1 << 20;
    private static readonly TimeSpan ReportInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>Downloads a release by size name (124M... or 117M...); returns its folder.</summary>
    public static async Task<string> DownloadReleaseAsync(string size, DownloadOptions options, IProgress<DownloadProgress>? progress = null, CancellationToken cancel = default)
    {
        string release = ModelCatalog.ReleaseName(size);
        if (!Uri.TryCreate(options.BaseUrl, UriKind.Absolute, out var baseUrl) || baseUrl.Scheme is not ("http" or "https"))
            throw new Gpt2Exception($"base URL '{options.BaseUrl}' is not an http or https address");
        string directory = ModelCatalog.DirectoryFor(release, options.WeightsRoot);
        var files = ModelCatalog.Files.Select(f => (ModelCatalog.FileUrl(options.BaseUrl, release, f), Path.Combine(directory, f), ModelCatalog.KnownSize(release, f)));
        var created = MissingFolders(directory);
        try
        {
            await DownloadFilesAsync(files, options, progress, cancel);
        }
        catch
        {
            RemoveEmpty(created);
            throw;
        }
        return directory;
    }

    /// <summary>The folders of <paramref name="directory"/>'s path that do not exist yet, deepest first: those a download creates.</summary>
    private static List<string> MissingFolders(string directory)
    {
        var missing = new List<string>();
        for (var folder = new DirectoryInfo(Path.GetFullPath(directory)); folder is { Exists: false }; folder = folder.Parent) missing.Add(folder.FullName);
        return missing;
    }

    /// <summary>
    /// After a failed or cancelled download, removes the folders it created that hold nothing to resume from (an empty
    /// release folder would look like a release to the next command), with any empty .partial in them. A finished file
    /// or a .partial with bytes keeps its folder, for the next run to resume; a folder that existed before is never
    /// touched. Never throws: the download's own error is the one to tell.
    /// </summary>
    private static void RemoveEmpty(List<string> created)
    {
        try
        {
            foreach (string folder in created)
            {
                if (!Directory.Exists(folder)) continue;
                foreach (var partial in new DirectoryInfo(folder).EnumerateFiles("*.partial"))
                    if (partial.Length == 0) partial.Delete();
                if (Directory.EnumerateFileSystemEntries(folder).Any()) return;
                Directory.Delete(folder);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left in place, like a folder something else wrote into meanwhile.
        }
    }

    /// <summary>Downloads each (url, target path, expected size or null) in turn.</summary>
    public static async Task DownloadFilesAsync(IEnumerable<(Uri Url, string Target, long? ExpectedSize)> files, DownloadOptions options, IProgress<DownloadProgress>? progress = null, CancellationToken cancel = default)
    {
        using var http = new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(30), AutomaticDecompression = DecompressionMethods.None })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        foreach (var (url, target, expected) in files) await DownloadFileAsync(http, url, target, expected, options, progress, cancel);
    }

    private static async Task DownloadFileAsync(HttpClient http, Uri url, string target, long? expected, DownloadOptions options, IProgress<DownloadProgress>? progress, CancellationToken cancel)
    {
        string name = Path.GetFileName(target);
        if (File.Exists(target))
        {
            long length = new FileInfo(target).Length;
            if (expected is not null && length != expected)
                throw new Gpt2Exception($"{target}: already exists with {length} bytes, but the published file has {expected}; delete it to download again");
            progress?.Report(new DownloadProgress(name, length, length, 0, DownloadStatus.AlreadyPresent));
            return;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(target))!);
        string partial = target + ".partial";
        for (int attempt = 0; ; attempt++)
        {
            string? interruption = await TryTransferAsync(http, url, partial, expected, name, options, progress, cancel);
            if (interruption is null) break;
            long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
            if (attempt >= options.Retries)
            {
                if (have == 0) File.Delete(partial); // nothing to resume from
                throw new Gpt2Exception($"{url}: download interrupted at {have} bytes ({interruption}); " +
                    (have > 0 ? $"the partial file {partial} is kept, run the command again to resume" : "run the command again"));
            }
            progress?.Report(new DownloadProgress(name, have, expected, 0, DownloadStatus.Retrying, interruption));
            await Task.Delay(options.RetryDelay, cancel);
        }
        File.Move(partial, target, overwrite: false);
        long final = new FileInfo(target).Length;
        progress?.Report(new DownloadProgress(name, final, final, 0, DownloadStatus.Completed));
    }

    /// <summary>
    /// One request that continues <paramref name="partial"/>. Returns null when the partial file is complete, or why
    /// the transfer stopped early (worth resuming); throws for answers that resuming cannot fix.
    /// </summary>
    private static async Task<string?> TryTransferAsync(HttpClient http, Uri url, string partial, long? expected, string name,
        DownloadOptions options, IProgress<DownloadProgress>? progress, CancellationToken cancel)
    {
        long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        if (expected is not null && have > expected)
        {
            File.Delete(partial); // longer than the published file: not a prefix of it
            have = 0;
        }
        if (have > 0 && have == expected) return null;

        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel);
        }
        catch (HttpRequestException e) when (e.HttpRequestError is HttpRequestError.NameResolutionError or HttpRequestError.ConnectionError or HttpRequestError.SecureConnectionError)
        {
            throw new Gpt2Exception($"{url}: cannot connect ({e.Message})", e); // no network, or no server: retrying will not help
        }
        catch (HttpRequestException e)
        {
            return e.Message;
        }
        using (response)
        {
            long? total;
            switch (response.StatusCode)
            {
                case HttpStatusCode.PartialContent when have > 0:
                    var range = response.Content.Headers.ContentRange;
                    if (range?.From != have) throw new Gpt2Exception($"{url}: the server answered a resume from byte {have} with range '{range}'");
                    total = range.Length;
                    break;
                case HttpStatusCode.OK:
                    have = 0; // the server ignored the range: start over
                    total = response.Content.Headers.ContentLength;
                    break;
                case HttpStatusCode.RequestedRangeNotSatisfiable when have > 0:
                    // The partial file may already hold everything; otherwise it is not a prefix of this file.
                    if (response.Content.Headers.ContentRange?.Length == have) return null;
                    File.Delete(partial);
                    return "the partial file does not match the server's file; starting over";
                default:
                    throw new Gpt2Exception($"{url}: HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
            }
            if (total is not null && expected is not null && total != expected)
                throw new Gpt2Exception($"{url}: the server announces {total} bytes, but the published file has {expected}");
            total ??= expected;

            var clock = Stopwatch.StartNew();
            long received = 0;
            var lastReport = TimeSpan.Zero;
            progress?.Report(new DownloadProgress(name, have, total, 0, DownloadStatus.Started));
            await using (var file = new FileStream(partial, have == 0 ? FileMode.Create : FileMode.Append, FileAccess.Write, FileShare.None, BufferSize))
            {
                try
                {
                    await using var body = await response.Content.ReadAsStreamAsync(cancel);
                    var buffer = new byte[BufferSize];
                    using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                    while (true)
                    {
                        idle.CancelAfter(options.ReadTimeout);
                        int n = await body.ReadAsync(buffer, idle.Token);
                        if (n == 0) break;
                        if (total is not null && have + received + n > total)
                            throw new Gpt2Exception($"{url}: the server sent more than the {total} bytes it announced");
                        await file.WriteAsync(buffer.AsMemory(0, n), cancel);
                        received += n;
                        if (clock.Elapsed - lastReport >= ReportInterval)
                        {
                            lastReport = clock.Elapsed;
                            progress?.Report(new DownloadProgress(name, have + received, total, received / clock.Elapsed.TotalSeconds, DownloadStatus.Receiving));
                        }
                    }
                }
                catch (Exception e) when (!cancel.IsCancellationRequested && e is IOException or HttpRequestException or OperationCanceledException)
                {
                    return e is OperationCanceledException ? $"no data for {options.ReadTimeout.TotalSeconds:0} s" : e.Message;
                }
                finally
                {
                    await file.FlushAsync(CancellationToken.None);
                    file.Flush(flushToDisk: true);
                }
            }
            if (total is not null && have + received < total)
                return $"the connection closed after {have + received} of {total} bytes";
            return null;
        }
    }
}
