using System.Buffers;
using System.Text;

namespace Gpt2Engine.Tokenization;

/// <summary>
/// Turns token ids arriving one at a time into UTF-8 text that is always whole characters: the bytes of a
/// character split across tokens wait until it is complete; invalid bytes become U+FFFD at once, and an
/// incomplete character left at the end becomes U+FFFD on <see cref="Flush"/>. The output equals the UTF-8
/// encoding of <see cref="Gpt2Tokenizer.Decode"/> of all the ids.
/// </summary>
public sealed class Utf8StreamDecoder
{
    private static ReadOnlySpan<byte> Replacement => [0xEF, 0xBF, 0xBD];

    private readonly Gpt2Tokenizer _tokenizer;
    private byte[] _buffer = new byte[64];
    private int _pending;

    internal Utf8StreamDecoder(Gpt2Tokenizer tokenizer) => _tokenizer = tokenizer;

    /// <summary>Decodes <paramref name="id"/>, writing every character it completes.</summary>
    public void Push(int id, IBufferWriter<byte> output)
    {
        var token = _tokenizer.TokenBytes(id);
        if (_buffer.Length < _pending + token.Length)
            Array.Resize(ref _buffer, Math.Max(_pending + token.Length, 2 * _buffer.Length));
        token.CopyTo(_buffer.AsSpan(_pending));
        var bytes = _buffer.AsSpan(0, _pending + token.Length);

        int validStart = 0, position = 0;
        _pending = 0;
        while (position < bytes.Length)
        {
            var status = Rune.DecodeFromUtf8(bytes[position..], out _, out int consumed);
            if (status == OperationStatus.Done)
            {
                position += consumed;
                continue;
            }
            output.Write(bytes[validStart..position]);
            if (status == OperationStatus.NeedMoreData)
            {
                // A character's first bytes: keep them (at most 3) for the next token.
                bytes[position..].CopyTo(_buffer);
                _pending = bytes.Length - position;
                return;
            }
            output.Write(Replacement);
            position += consumed;
            validStart = position;
        }
        output.Write(bytes[validStart..]);
    }

    /// <summary>Ends the stream: an incomplete character still waiting is written as U+FFFD.</summary>
    public void Flush(IBufferWriter<byte> output)
    {
        if (_pending > 0)
            output.Write(Replacement);
        _pending = 0;
    }
}
