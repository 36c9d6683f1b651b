using System.IO.MemoryMappedFiles;

namespace Gpt2Engine.Checkpoints;

/// <summary>
/// A whole file mapped read-only into memory. Tensor views point straight into it, so a checkpoint costs address
/// space, not managed memory, and pages are read on first touch.
/// </summary>
public sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _file;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _pointer;

    public string Path { get; }
    public long Length { get; }
    public nint Address => (nint)_pointer;

    private MappedFile(string path, long length, MemoryMappedFile? file, MemoryMappedViewAccessor? view, byte* pointer)
    {
        Path = path;
        Length = length;
        _file = file;
        _view = view;
        _pointer = pointer;
    }

    public static MappedFile Open(string path)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1, FileOptions.None);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new Gpt2Exception($"{path}: cannot open ({e.Message})", e);
        }
        long length = stream.Length;
        if (length == 0)
        {
            stream.Dispose();
            return new MappedFile(path, 0, null, null, null);
        }
        var file = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        var view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        pointer += view.PointerOffset;
        return new MappedFile(path, length, file, view, pointer);
    }

    public ReadOnlySpan<byte> Span(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset + length > Length)
            throw new Gpt2Exception($"{Path}: read of {length} bytes at offset {offset} is past the end of the file ({Length} bytes)");
        return new ReadOnlySpan<byte>(_pointer + offset, length);
    }

    public void Dispose()
    {
        if (_view is not null && _pointer != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _pointer = null;
        }
        _view?.Dispose();
        _file?.Dispose();
    }
}
