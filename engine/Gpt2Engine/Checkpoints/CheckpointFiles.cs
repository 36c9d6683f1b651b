namespace Gpt2Engine.Checkpoints;

/// <summary>Checkpoint file reads that fail with one clear line, tensor byte counts, and writes of native memory.</summary>
internal static class CheckpointFiles
{
    public static byte[] ReadAllBytes(string path, string what)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new Gpt2Exception($"{path}: missing {what}", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new Gpt2Exception($"{path}: cannot read {what} ({e.Message})", e);
        }
    }

    /// <summary>Bytes of a tensor of this shape, or null if the count overflows (a corrupt header, not a real tensor).</summary>
    public static long? ByteCount(IEnumerable<int> shape, int elementSize)
    {
        try
        {
            return checked(shape.Aggregate(1L, (a, d) => a * d) * elementSize);
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    /// <summary>Writes the bytes of native memory in chunks (a span cannot cover more than 2 GiB).</summary>
    public static unsafe void WriteNative(Stream stream, nint address, long length)
    {
        for (long done = 0; done < length;)
        {
            int chunk = (int)Math.Min(length - done, 1 << 30);
            stream.Write(new ReadOnlySpan<byte>((byte*)address + done, chunk));
            done += chunk;
        }
    }
}
