using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Gpt2Engine.Tests.Checkpoints;

/// <summary>What the fake server answers: a status and a body; Range requests get 206 slices unless <see cref="IgnoreRange"/>.
/// <see cref="CutAfter"/> closes the connection after that many body bytes, although Content-Length promised more.</summary>
internal sealed record Reply(int Status, byte[] Body, long? CutAfter = null, bool IgnoreRange = false);

/// <summary>A minimal HTTP/1.1 server on 127.0.0.1 and a random port, one request per connection, for download tests.</summary>
internal sealed class FakeHttpServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<string, int, Reply> _handler;
    private readonly List<(string Path, long? RangeStart)> _requests = [];

    /// <summary><paramref name="handler"/> gets the request path and how many requests came before this one.</summary>
    public FakeHttpServer(Func<string, int, Reply> handler)
    {
        _handler = handler;
        _listener.Start();
        _ = Task.Run(AcceptLoop);
    }

    public string BaseUrl => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/models";

    public List<(string Path, long? RangeStart)> Requests
    {
        get { lock (_requests) return [.. _requests]; }
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(() => Serve(client));
        }
    }

    private async Task Serve(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                var head = new StringBuilder();
                var buffer = new byte[1];
                while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && await stream.ReadAsync(buffer) == 1) head.Append((char)buffer[0]);
                string[] lines = head.ToString().Split("\r\n");
                string path = lines[0].Split(' ')[1];
                long? rangeStart = lines.Where(l => l.StartsWith("Range: bytes=", StringComparison.OrdinalIgnoreCase))
                    .Select(l => (long?)long.Parse(l["Range: bytes=".Length..].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault();
                int number;
                lock (_requests)
                {
                    number = _requests.Count;
                    _requests.Add((path, rangeStart));
                }
                var reply = _handler(path, number);
                int status = reply.Status;
                byte[] body = reply.Body;
                string extra = "";
                if (status == 200 && rangeStart is { } start && !reply.IgnoreRange)
                {
                    if (start >= body.Length)
                    {
                        (status, extra, body) = (416, $"Content-Range: bytes */{reply.Body.Length}\r\n", []);
                    }
                    else
                    {
                        (status, extra, body) = (206, $"Content-Range: bytes {start}-{body.Length - 1}/{body.Length}\r\n", body[(int)start..]);
                    }
                }
                string header = $"HTTP/1.1 {status} {(HttpStatusCode)status}\r\nContent-Length: {body.Length}\r\n{extra}Connection: close\r\n\r\n";
                await stream.WriteAsync(Encoding.ASCII.GetBytes(header));
                await stream.WriteAsync(body.AsMemory(0, (int)Math.Min(body.Length, reply.CutAfter ?? long.MaxValue)));
                await stream.FlushAsync();
            }
            catch (IOException) { }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
    }
}
