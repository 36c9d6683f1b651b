using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace Gpt2Engine.Cpu;

/// <summary>
/// The body of a <see cref="CpuParallel.For{TBody}"/>: runs indices [start, end). Threads call it side by side on the
/// same struct, so it only reads its fields (pointers and sizes: what a lambda would have captured).
/// </summary>
internal interface IRangeBody
{
    void Run(int start, int end);
}

/// <summary>The body of a <see cref="CpuParallel.ForShares{TBody}"/>: runs one unit on one slot (as <see cref="IRangeBody"/>, it only reads its fields).</summary>
internal interface IShareBody
{
    void Run(int slot, int unit);
}

/// <summary>
/// Runs a body over [0, count) in contiguous chunks on the calling thread and a small pool of persistent workers.
/// Threads claim chunks from a shared ticket, so whoever is running takes the work: on a busy machine, where a
/// worker may not be scheduled for milliseconds, the caller finishes alone instead of waiting at a barrier. Workers
/// spin briefly between operations (decode issues ~100 short operations per token, too short to pay a thread
/// wake-up or a Parallel.For each) and then sleep. Nothing is allocated per operation: a body is a struct, which the
/// workers reach through a pointer to For's copy of it (on For's stack) and a function pointer to
/// <see cref="Invoke{TBody}"/>.
/// </summary>
internal static unsafe class CpuParallel
{
    private const int SpinIterations = 2_000; // a few hundred microseconds: covers the gap between two kernels
    private const int ChunksPerThread = 2;

    private static readonly object Dispatch = new(), Wake = new();
    private static readonly List<Thread> Workers = [];
    // The current operation: its body, how to call it, and its size. Written by the caller only between operations;
    // see RunChunks for why a worker that claims a chunk has read this operation's values.
    private static void* _body;
    private static delegate*<void*, int, int, void> _invoke;
    private static int _count, _chunks;
    /// <summary>The operation's generation (high 32 bits, wrapping) and the next unclaimed chunk (low 32 bits).</summary>
    private static long _ticket;
    /// <summary>A ticket's chunk between two operations: past any operation's chunks, so nothing can be claimed.</summary>
    private const int Closed = int.MaxValue;
    private static int _done, _sleepers;
    private static Exception? _failure;

    /// <summary>
    /// Runs body.Run over [0, count) in up to 2 x <paramref name="threads"/> chunks, and returns when all are done. An
    /// exception from a chunk is rethrown as it is (its stack kept), after the other chunks finished, whichever thread
    /// ran it: the same as when the body runs inline.
    /// </summary>
    public static void For<TBody>(int count, int threads, TBody body) where TBody : struct, IRangeBody
    {
        if (count <= 0) return;
        int chunks = Math.Min(count, threads <= 1 ? 1 : threads * ChunksPerThread);
        // One chunk, a body calling For again (this thread holds the pool), or another caller (a parallel test) holds
        // the pool: run on this thread.
        if (chunks <= 1 || Monitor.IsEntered(Dispatch) || !Monitor.TryEnter(Dispatch))
        {
            body.Run(0, count);
            return;
        }
        try
        {
            EnsureWorkers(threads - 1);
            // Close the finished operation's ticket before its fields change: a worker that read its exhausted ticket
            // and then reads the new fields (with more chunks) must not be able to claim a chunk on the old ticket.
            int generation = unchecked(GenerationOf(Volatile.Read(ref _ticket)) + 1);
            Interlocked.Exchange(ref _ticket, Ticket(unchecked(generation - 1), Closed));
            // body is this frame's copy: a stack local, so it does not move and the GC sees any reference in it; and
            // this frame waits below until every chunk is done, so it outlives every worker's use of the pointer.
            _body = Unsafe.AsPointer(ref body);
            _invoke = &Invoke<TBody>;
            _count = count;
            _chunks = chunks;
            _failure = null;
            Volatile.Write(ref _done, 0);
            Interlocked.Exchange(ref _ticket, Ticket(generation, 0)); // publishes the fields above (a full fence)
            if (Volatile.Read(ref _sleepers) > 0)
                lock (Wake) Monitor.PulseAll(Wake);
            RunChunks(generation);
            var spin = new SpinWait();
            while (Volatile.Read(ref _done) < chunks) spin.SpinOnce(sleep1Threshold: -1);
            if (_failure is { } failure) ExceptionDispatchInfo.Throw(failure);
        }
        finally
        {
            Monitor.Exit(Dispatch);
        }
    }

    private static int GenerationOf(long ticket) => (int)(ticket >> 32);
    private static long Ticket(int generation, int chunk) => (long)generation << 32 | (uint)chunk;

    private static void Invoke<TBody>(void* body, int start, int end) where TBody : struct, IRangeBody => Unsafe.AsRef<TBody>(body).Run(start, end);

    /// <summary>
    /// Runs body.Run(slot, unit) for every unit in [0, units) on up to <paramref name="threads"/> slots (min(threads, units)).
    /// Each slot owns a contiguous share of the units and takes them front to back; a slot whose share is done takes units
    /// from the back of the largest share left. So each slot's units are mostly consecutive (its memory streams stay
    /// sequential), and the operation ends within one unit of its earliest possible finish, however unevenly the threads
    /// run: a fixed split, or a few large chunks, leaves one thread waiting for the other's last chunk (on this VM 5-15%
    /// of the decode matmuls' time). A body may accumulate into per-slot state: a thread that runs two slots is fine.
    /// </summary>
    public static void ForShares<TBody>(int units, int threads, TBody body) where TBody : struct, IShareBody
    {
        if (units <= 0) return;
        int slots = Slots(units, threads);
        // Per slot: its next unit (low 32 bits) and the end of its share (high 32 bits), claimed by compare-and-swap.
        long* shares = stackalloc long[slots]; // the caller waits in For, so its stack outlives every worker's use
        for (int slot = 0; slot < slots; slot++) shares[slot] = Share((int)((long)units * slot / slots), (int)((long)units * (slot + 1) / slots));
        For(slots, slots, new SlotsOfShares<TBody>(shares, slots, body));
    }

    /// <summary>ForShares' operation: each of slots [first, last) claims units (its own, then others') until none is left.</summary>
    private struct SlotsOfShares<TBody>(long* shares, int slots, TBody body) : IRangeBody where TBody : struct, IShareBody
    {
        // Not readonly: calling body.Run on a readonly field would copy the body first, at every unit.
        public void Run(int first, int last)
        {
            for (int slot = first; slot < last; slot++)
                for (int unit; (unit = ClaimUnit(shares, slots, slot)) >= 0;) body.Run(slot, unit);
        }
    }

    /// <summary>How many slots <see cref="ForShares{TBody}"/> runs for these units and threads (size per-slot state with it).</summary>
    public static int Slots(int units, int threads) => Math.Max(1, Math.Min(threads, units));

    private static long Share(int next, int end) => (long)end << 32 | (uint)next;

    /// <summary>The next unit of this slot's share, else the last unit of the largest other share, else -1.</summary>
    private static int ClaimUnit(long* shares, int slots, int slot)
    {
        while (true)
        {
            long own = Volatile.Read(ref shares[slot]);
            int next = (int)own, end = (int)(own >> 32);
            if (next < end)
            {
                if (Interlocked.CompareExchange(ref shares[slot], Share(next + 1, end), own) == own) return next;
                continue;
            }
            int victim = -1, most = 0;
            for (int s = 0; s < slots; s++)
            {
                long share = Volatile.Read(ref shares[s]);
                int left = (int)(share >> 32) - (int)share;
                if (left > most) (victim, most) = (s, left);
            }
            if (victim < 0) return -1;
            long taken = Volatile.Read(ref shares[victim]);
            int victimNext = (int)taken, victimEnd = (int)(taken >> 32);
            if (victimNext < victimEnd && Interlocked.CompareExchange(ref shares[victim], Share(victimNext, victimEnd - 1), taken) == taken)
                return victimEnd - 1;
        }
    }

    /// <summary>
    /// Claims and runs chunks of operation <paramref name="generation"/> until none is left (or the ticket has moved on).
    /// A worker reads the ticket, then the operation's fields, then claims the chunk by compare-and-swap on the ticket.
    /// The caller changes the fields only after every chunk of the last operation is done (so claimed) and after
    /// closing its ticket (<see cref="Closed"/>), and publishes them with the next generation (Interlocked.Exchange on
    /// the ticket). So fields read after a ticket are that operation's or, if the next one has begun, a later one's,
    /// perhaps half written; but then the ticket has changed (closed or moved on) and the compare-and-swap fails. A
    /// successful claim proves the fields read were the claimed operation's. (Without the closing, a worker that read
    /// the last operation's exhausted ticket could read the next operation's larger chunk count and claim on the old
    /// ticket, running the next body early, with half-written fields, and twice.)
    /// </summary>
    private static void RunChunks(int generation)
    {
        while (true)
        {
            long ticket = Volatile.Read(ref _ticket);
            if (GenerationOf(ticket) != generation) return;
            int chunk = (int)(ticket & 0xFFFF_FFFF);
            // Read after the ticket (a volatile read: later reads stay after it), vouched for by the claim below.
            void* body = _body;
            var invoke = _invoke;
            int count = _count, chunks = _chunks;
            if (chunk >= chunks) return; // (if these were a later operation's, a worker finds it at its next wait)
            if (Interlocked.CompareExchange(ref _ticket, ticket + 1, ticket) != ticket) continue;
            try
            {
                invoke(body, (int)((long)count * chunk / chunks), (int)((long)count * (chunk + 1) / chunks));
            }
            catch (Exception e)
            {
                _failure = e;
            }
            Interlocked.Increment(ref _done);
        }
    }

    private static void EnsureWorkers(int needed)
    {
        while (Workers.Count < needed)
        {
            var thread = new Thread(WorkerLoop) { IsBackground = true, Name = $"gpt2-cpu-{Workers.Count + 1}" };
            Workers.Add(thread);
            thread.Start();
        }
    }

    private static void WorkerLoop()
    {
        int seen = 0;
        while (true)
        {
            seen = WaitForWork(seen);
            RunChunks(seen);
        }
    }

    /// <summary>Waits for a generation other than <paramref name="seen"/> and returns it.</summary>
    private static int WaitForWork(int seen)
    {
        for (int i = 0; i < SpinIterations; i++)
        {
            int generation = GenerationOf(Volatile.Read(ref _ticket));
            if (generation != seen) return generation;
            Thread.SpinWait(8);
        }
        lock (Wake)
        {
            Interlocked.Increment(ref _sleepers);
            int generation;
            while ((generation = GenerationOf(Volatile.Read(ref _ticket))) == seen) Monitor.Wait(Wake);
            Interlocked.Decrement(ref _sleepers);
            return generation;
        }
    }
}
