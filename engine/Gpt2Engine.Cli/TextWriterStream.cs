using System.Text;

namespace Gpt2Engine.Cli;

/// <summary>
/// A write-only stream that decodes UTF-8 into a <see cref="TextWriter"/>, for commands that write bytes when they
/// run with the writers of <see cref="CliApp.Run(string[], TextWriter, TextWriter)"/> rather than the console.
/// A character split across writes is kept until its last byte arrives.
/// </summary>
internal sealed class TextWriterStream(TextWriter writer) : Stream
{
    private readonly Decoder _decoder = new UTF8Encoding(false).GetDecoder();
    private char[] _chars = new char[256];

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        int needed = _decoder.GetCharCount(buffer, flush: false);
        if (needed > _chars.Length) _chars = new char[needed];
        int count = _decoder.GetChars(buffer, _chars, flush: false);
        writer.Write(_chars, 0, count);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
    public override void Flush() => writer.Flush();
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
