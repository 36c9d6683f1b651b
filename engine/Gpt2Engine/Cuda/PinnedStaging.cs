namespace Gpt2Engine.Cuda;

/// <summary>
/// Uploads from pageable memory (a memory-mapped checkpoint) through two page-locked chunks used in turn: while the
/// GPU copies one chunk, the CPU fills the other; an event per chunk says when it may be refilled.
/// </summary>
internal sealed unsafe class PinnedStaging : IDisposable
{
    private const long ChunkBytes = 16L << 20;

    private readonly CudaContext _context;
    private readonly byte*[] _chunks = new byte*[2];
    private readonly nint[] _events = new nint[2];

    public PinnedStaging(CudaContext context)
    {
        _context = context;
        context.Bind();
        for (int i = 0; i < 2; i++)
        {
            void* chunk;
            nint e;
            context.Check(context.Api.MemAllocHost(&chunk, (nuint)ChunkBytes), "cuMemAllocHost_v2");
            _chunks[i] = (byte*)chunk;
            context.Check(context.Api.EventCreate(&e, 0), "cuEventCreate");
            _events[i] = e;
        }
    }

    public void Upload(ulong destination, byte* source, long bytes)
    {
        _context.Bind();
        int turn = 0;
        for (long offset = 0; offset < bytes; offset += ChunkBytes, turn ^= 1)
        {
            long n = Math.Min(ChunkBytes, bytes - offset);
            _context.Check(_context.Api.EventSynchronize(_events[turn]), "cuEventSynchronize");   // its previous copy is done
            Buffer.MemoryCopy(source + offset, _chunks[turn], ChunkBytes, n);
            _context.CopyToDevice(destination + (ulong)offset, _chunks[turn], n);
            _context.Check(_context.Api.EventRecord(_events[turn], _context.Stream), "cuEventRecord");
        }
    }

    public void Dispose()
    {
        _context.Synchronize();
        for (int i = 0; i < 2; i++)
        {
            _context.Check(_context.Api.EventDestroy(_events[i]), "cuEventDestroy_v2");
            _context.Check(_context.Api.MemFreeHost(_chunks[i]), "cuMemFreeHost");
        }
    }
}
