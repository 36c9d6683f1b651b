using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using CsCheck;
using Gpt2Engine.Generation;
using Gpt2Engine.Tokenization;
using Xunit;

namespace Gpt2Engine.Tests.Generation;

public class GeneratedTextWriterTests
{
    private static readonly Gpt2Tokenizer Tokenizer = Gpt2Tokenizer.Default;

    /// <summary>Writes into a Pipe or a MemoryStream complete at once; anything else would be a hang.</summary>
    private static bool Done(ValueTask<bool> write) => write.IsCompletedSuccessfully ? write.Result : throw new InvalidOperationException("the write did not complete synchronously");

    /// <summary>The id of the one-byte token of each byte value.</summary>
    private static readonly int[] ByteTokens = BuildByteTokens();

    private static int[] BuildByteTokens()
    {
        var ids = new int[256];
        for (int id = 0; id < 256; id++) ids[Tokenizer.TokenBytes(id)[0]] = id;
        return ids;
    }

    /// <summary>Characters of one to four UTF-8 bytes (no surrogates: they are not characters).</summary>
    private static readonly Gen<string> Characters =
        Gen.OneOf(Gen.Int[0x20, 0x7E], Gen.Int[0x80, 0x7FF], Gen.Int[0x800, 0xD7FF], Gen.Int[0xE000, 0xFFFF], Gen.Int[0x10000, 0x10FFFF])
            .Select(c => new Rune(c).ToString());

    [Fact]
    public void Each_character_reaches_the_pipe_whole_as_soon_as_its_last_byte_is_written()
    {
        // Each byte of the text is its own token, so multi-byte characters arrive split across tokens.
        Characters.Array[1, 20].SampleSeeded(text =>
        {
            var pipe = new Pipe();
            var writer = new GeneratedTextWriter(pipe.Writer, Tokenizer, samples: 1, ids: false);
            var written = new List<byte>();
            var received = new List<byte>();
            foreach (string character in text)
            {
                byte[] bytes = Encoding.UTF8.GetBytes(character);
                for (int i = 0; i < bytes.Length; i++)
                {
                    Assert.True(Done(writer.WriteAsync(new GeneratedToken(0, ByteTokens[bytes[i]]))));
                    if (pipe.Reader.TryRead(out var result))
                    {
                        received.AddRange(result.Buffer.ToArray());
                        pipe.Reader.AdvanceTo(result.Buffer.End);
                    }
                    // Nothing of a character before its last byte, all of it right after.
                    Assert.Equal(written.Count + (i == bytes.Length - 1 ? bytes.Length : 0), received.Count);
                }
                written.AddRange(bytes);
            }
            Assert.True(Done(writer.CompleteAsync()));
            if (pipe.Reader.TryRead(out var rest)) received.AddRange(rest.Buffer.ToArray());
            Assert.Equal(written.Append((byte)'\n'), received);
        }, cases: 300);
    }

    [Fact]
    public void Several_samples_are_printed_under_headers_at_the_end()
    {
        var output = new MemoryStream();
        var pipe = PipeWriter.Create(output);
        var writer = new GeneratedTextWriter(pipe, Tokenizer, samples: 2, ids: false);
        int[] hello = Tokenizer.Encode("Hello"), world = Tokenizer.Encode(" world");
        for (int i = 0; i < Math.Max(hello.Length, world.Length); i++)
        {
            if (i < hello.Length) Assert.True(Done(writer.WriteAsync(new GeneratedToken(0, hello[i]))));
            if (i < world.Length) Assert.True(Done(writer.WriteAsync(new GeneratedToken(1, world[i]))));
        }
        Assert.Equal(0, output.Length);
        Assert.True(Done(writer.CompleteAsync()));
        Assert.Equal("======== SAMPLE 1 ========\nHello\n======== SAMPLE 2 ========\n world\n", Encoding.UTF8.GetString(output.ToArray()));
    }

    [Fact]
    public void Ids_are_printed_one_per_line_and_endoftext_ends_text_silently()
    {
        var output = new MemoryStream();
        var writer = new GeneratedTextWriter(PipeWriter.Create(output), Tokenizer, samples: 1, ids: true);
        foreach (int id in new[] { 464, 2068, Gpt2Tokenizer.EndOfText }) Assert.True(Done(writer.WriteAsync(new GeneratedToken(0, id))));
        Assert.True(Done(writer.CompleteAsync()));
        Assert.Equal("464\n2068\n50256\n", Encoding.UTF8.GetString(output.ToArray()));

        output = new MemoryStream();
        writer = new GeneratedTextWriter(PipeWriter.Create(output), Tokenizer, samples: 1, ids: false);
        Assert.True(Done(writer.WriteAsync(new GeneratedToken(0, 464))));
        Assert.True(Done(writer.WriteAsync(new GeneratedToken(0, Gpt2Tokenizer.EndOfText, StopReason.EndOfText))));
        Assert.True(Done(writer.CompleteAsync()));
        Assert.Equal("The\n", Encoding.UTF8.GetString(output.ToArray()));
    }

    [Fact]
    public void A_broken_pipe_reports_the_reader_gone_without_throwing()
    {
        var writer = new GeneratedTextWriter(PipeWriter.Create(new FailingStream(BrokenPipe)), Tokenizer, samples: 1, ids: false);
        Assert.False(Done(writer.WriteAsync(new GeneratedToken(0, 464))));
        Assert.False(Done(writer.WriteAsync(new GeneratedToken(0, 464))));
        Assert.False(Done(writer.CompleteAsync()));
    }

    [Fact]
    public async Task Any_other_failed_write_is_an_error()
    {
        var full = new IOException("No space left on device", OperatingSystem.IsWindows() ? unchecked((int)0x80070070) : 28);
        var writer = new GeneratedTextWriter(PipeWriter.Create(new FailingStream(full)), Tokenizer, samples: 1, ids: false);
        var e = await Assert.ThrowsAsync<Gpt2Exception>(() => writer.WriteAsync(new GeneratedToken(0, 464)).AsTask());
        Assert.Contains("No space left on device", e.Message);
    }

    /// <summary>EPIPE as .NET reports it: the error code in the HResult (ERROR_BROKEN_PIPE's HRESULT on Windows).</summary>
    private static readonly IOException BrokenPipe = new("Broken pipe", OperatingSystem.IsWindows() ? unchecked((int)0x8007006D) : 32);

    /// <summary>A stream whose every write fails with <paramref name="failure"/>.</summary>
    private sealed class FailingStream(IOException failure) : MemoryStream
    {
        public override void Write(byte[] buffer, int offset, int count) => throw failure;
        public override void Write(ReadOnlySpan<byte> buffer) => throw failure;
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => throw failure;
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => throw failure;
    }
}
