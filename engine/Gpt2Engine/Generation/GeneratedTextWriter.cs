using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using Gpt2Engine.Tokenization;

namespace Gpt2Engine.Generation;

/// <summary>
/// Prints generated tokens to a <see cref="PipeWriter"/> (usually over stdout). One sample streams as it is made:
/// each token is pushed through a streaming UTF-8 decoder, so only whole characters are written, and flushed.
/// Several samples are gathered and printed at the end, each under a <c>======== SAMPLE i ========</c> header, since
/// they advance together. With <c>ids</c> the tokens are written as ids, one per line, instead of text.
/// &lt;|endoftext|&gt; ends a sample without being printed as text. Every write reports whether the reader is still
/// there: false once it has gone (a broken pipe), so that the caller stops generating; any other failed write (a full
/// disk) is an error.
/// </summary>
public sealed class GeneratedTextWriter
{
    private readonly PipeWriter _output;
    private readonly bool _ids;
    private readonly Utf8StreamDecoder?[] _decoders;
    /// <summary>Each sample's output when there are several; empty for one (it goes straight to the pipe).</summary>
    private readonly ArrayBufferWriter<byte>[] _pending;
    private bool _readerGone;

    public GeneratedTextWriter(PipeWriter output, Gpt2Tokenizer? tokenizer, int samples, bool ids)
    {
        if (!ids && tokenizer is null) throw new ArgumentException("text output needs a tokenizer", nameof(tokenizer));
        _output = output;
        _ids = ids;
        _decoders = new Utf8StreamDecoder?[samples];
        for (int i = 0; i < samples; i++) _decoders[i] = tokenizer?.CreateStreamDecoder();
        _pending = samples == 1 ? [] : Enumerable.Range(0, samples).Select(_ => new ArrayBufferWriter<byte>()).ToArray();
    }

    public static string SampleHeader(int sample) => $"======== SAMPLE {sample + 1} ========";

    /// <summary>Writes one token (and flushes, for a single sample); false when the reader has gone.</summary>
    public ValueTask<bool> WriteAsync(GeneratedToken token, CancellationToken cancellationToken = default)
    {
        if (_readerGone) return ValueTask.FromResult(false);
        IBufferWriter<byte> target = _pending.Length == 0 ? _output : _pending[token.Sample];
        if (_ids) WriteLine(target, token.Id.ToString(CultureInfo.InvariantCulture));
        else if (token.Stop != StopReason.EndOfText) _decoders[token.Sample]!.Push(token.Id, target);
        return _pending.Length == 0 ? FlushAsync(cancellationToken) : ValueTask.FromResult(true);
    }

    /// <summary>Ends the output: undecodable leftovers as U+FFFD, the gathered samples, a final newline; then flushes.</summary>
    public ValueTask<bool> CompleteAsync(CancellationToken cancellationToken = default)
    {
        if (_readerGone) return ValueTask.FromResult(false);
        if (_pending.Length == 0)
        {
            _decoders[0]?.Flush(_output);
            if (!_ids) WriteLine(_output, "");
        }
        for (int i = 0; i < _pending.Length; i++)
        {
            WriteLine(_output, SampleHeader(i));
            _decoders[i]?.Flush(_pending[i]);
            _output.Write(_pending[i].WrittenSpan);
            if (!_ids) WriteLine(_output, "");
        }
        return FlushAsync(cancellationToken);
    }

    private async ValueTask<bool> FlushAsync(CancellationToken cancellationToken)
    {
        try
        {
            var result = await _output.FlushAsync(cancellationToken);
            _readerGone = result.IsCompleted;
        }
        catch (IOException e) when (IsBrokenPipe(e))
        {
            // Whoever read our output (e.g. `head`) has exited. Not an error: there is just nobody to write for.
            _readerGone = true;
        }
        catch (IOException e)
        {
            throw new Gpt2Exception($"cannot write the output ({e.Message})", e);
        }
        return !_readerGone;
    }

    /// <summary>
    /// Whether a write failed because the reading end of a pipe has closed (EPIPE; on Windows ERROR_BROKEN_PIPE or
    /// ERROR_NO_DATA), rather than for a full disk or a device error. .NET carries the error code in the HResult.
    /// </summary>
    internal static bool IsBrokenPipe(IOException e) => OperatingSystem.IsWindows() ? (e.HResult & 0xFFFF) is 109 or 232 : e.HResult == 32;

    private static void WriteLine(IBufferWriter<byte> target, string text)
    {
        var span = target.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length) + 1);
        int n = Encoding.UTF8.GetBytes(text, span);
        span[n] = (byte)'\n';
        target.Advance(n + 1);
    }
}
