namespace Gpt2Engine.Cpu;

/// <summary>
/// Runs a body over [0, count) in contiguous chunks on the calling thread and a small pool of persistent workers.
/// Threads claim chunks from a shared ticket, so whoever is running takes the work: on a busy machine, where a
/// worker may not be scheduled for milliseconds, the caller finishes alone instead of waiting at a barrier. Workers
/// spin briefly between operations (decode issues ~100 short operations per token, too short to pay a thread
/// wake-up or a Parallel.For each) and then sleep.
/// </summary>
internal static class CpuParallel
{
    private const int SpinIterations = 2_000; // a few hundred microseconds: covers the gap between two kernels
    private const int ChunksPerThread = 2;

    /// <summary>One operation; immutable, so a worker reads all of it or none of it.</summary>
    private sealed record Job(Action<int, int> Body, int Count, int Chunks);

    private static readonly object Dispatch = new(), Wake = new();
    private static readonly List<Thread> Workers = [];
    private static Job? _job;
    /// <summary>The operation's generation (high 32 bits) and the next unclaimed chunk (low 32 bits).</summary>
    private static long _ticket;
    private static int _done, _sleepers;
    private static Exception? _failure;

    public static void For(int count, int threads, Action<int, int> body)
    {
        if (count <= 0) return;
        int chunks = Math.Min(count, threads <= 1 ? 1 : threads * ChunksPerThread);
        // One chunk, or another caller (a parallel test) holds the pool: run on this thread.
        if (chunks <= 1 || !Monitor.TryEnter(Dispatch))
        {
            body(0, count);
            return;
        }
        try
        {
            EnsureWorkers(threads - 1);
            var job = new Job(body, count, chunks);
            _failure = null;
            Volatile.Write(ref _done, 0);
            Volatile.Write(ref _job, job);
            long generation = (Volatile.Read(ref _ticket) >> 32) + 1;
            Interlocked.Exchange(ref _ticket, generation << 32);
            if (Volatile.Read(ref _sleepers) > 0)
                lock (Wake) Monitor.PulseAll(Wake);
            RunChunks(job, generation);
            var spin = new SpinWait();
            while (Volatile.Read(ref _done) < chunks) spin.SpinOnce(sleep1Threshold: -1);
            if (_failure is { } failure) throw new AggregateException(failure);
        }
        finally
        {
            Monitor.Exit(Dispatch);
        }
    }

    /// <summary>
    /// Runs body(slot, unit) for every unit in [0, units) on up to <paramref name="threads"/> slots (min(threads, units)).
    /// Each slot owns a contiguous share of the units and takes them front to back; a slot whose share is done takes units
    /// from the back of the largest share left. So each slot's units are mostly consecutive (its memory streams stay
    /// sequential), and the operation ends within one unit of its earliest possible finish, however unevenly the threads
    /// run: a fixed split, or a few large chunks, leaves one thread waiting for the other's last chunk (on this VM 5-15%
    /// of the decode matmuls' time). A body may accumulate into per-slot state: a thread that runs two slots is fine.
    /// </summary>
    public static unsafe void ForShares(int units, int threads, Action<int, int> body)
    {
        if (units <= 0) return;
        int slots = Slots(units, threads);
        // Per slot: its next unit (low 32 bits) and the end of its share (high 32 bits), claimed by compare-and-swap.
        long* shares = stackalloc long[slots];
        for (int slot = 0; slot < slots; slot++) shares[slot] = Share((int)((long)units * slot / slots), (int)((long)units * (slot + 1) / slots));
        nint sharesAddress = (nint)shares; // the caller waits in For, so its stack outlives every worker's use
        For(slots, slots, (first, last) =>
        {
            long* state = (long*)sharesAddress;
            for (int slot = first; slot < last; slot++)
                for (int unit; (unit = ClaimUnit(state, slots, slot)) >= 0;) body(slot, unit);
        });
    }

    /// <summary>How many slots <see cref="ForShares"/> runs for these units and threads (size per-slot state with it).</summary>
    public static int Slots(int units, int threads) => Math.Max(1, Math.Min(threads, units));

    private static long Share(int next, int end) => (long)end << 32 | (uint)next;

    /// <summary>The next unit of this slot's share, else the last unit of the largest other share, else -1.</summary>
    private static unsafe int ClaimUnit(long* shares, int slots, int slot)
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

    /// <summary>Claims and runs chunks of <paramref name="job"/> until none is left (or the ticket has moved on).</summary>
    private static void RunChunks(Job job, long generation)
    {
        while (true)
        {
            long ticket = Volatile.Read(ref _ticket);
            int chunk = (int)(ticket & 0xFFFF_FFFF);
            if (ticket >> 32 != generation || chunk >= job.Chunks) return;
            if (Interlocked.CompareExchange(ref _ticket, ticket + 1, ticket) != ticket) continue;
            try
            {
                job.Body((int)((long)job.Count * chunk / job.Chunks), (int)((long)job.Count * (chunk + 1) / job.Chunks));
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
        long seen = 0;
        while (true)
        {
            seen = WaitForWork(seen);
            // The job is read after the ticket: a claim on this generation's ticket proves it is this generation's job.
            if (Volatile.Read(ref _job) is { } job) RunChunks(job, seen);
        }
    }

    /// <summary>Waits for a generation other than <paramref name="seen"/> and returns it.</summary>
    private static long WaitForWork(long seen)
    {
        for (int i = 0; i < SpinIterations; i++)
        {
            long generation = Volatile.Read(ref _ticket) >> 32;
            if (generation != seen) return generation;
            Thread.SpinWait(8);
        }
        lock (Wake)
        {
            Interlocked.Increment(ref _sleepers);
            long generation;
            while ((generation = Volatile.Read(ref _ticket) >> 32) == seen) Monitor.Wait(Wake);
            Interlocked.Decrement(ref _sleepers);
            return generation;
        }
    }
}
