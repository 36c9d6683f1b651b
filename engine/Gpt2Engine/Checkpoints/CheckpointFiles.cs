namespace Gpt2Engine.Checkpoints;

/// <summary>File reads that fail with one clear line, and atomic writes (temporary file, flush, rename).</summary>
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

    /// <summary>
    /// Writes <paramref name="path"/> through <c>path.tmp-random</c>, flushed to disk and then renamed over the target,
    /// so a reader never sees a half-written file; the temporary file is removed if anything fails.
    /// </summary>
    public static void WriteAtomic(string path, Action<FileStream> write)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string temporary = $"{path}.tmp-{Path.GetRandomFileName()}";
        try
        {
            Directory.CreateDirectory(directory);
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception e)
        {
            File.Delete(temporary);
            if (e is IOException or UnauthorizedAccessException) throw new Gpt2Exception($"{path}: cannot write ({e.Message})", e);
            throw;
        }
    }

    public static void WriteAtomic(string path, ReadOnlySpan<byte> contents)
    {
        byte[] copy = contents.ToArray();
        WriteAtomic(path, stream => stream.Write(copy));
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
