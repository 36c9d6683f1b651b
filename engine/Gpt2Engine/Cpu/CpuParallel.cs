namespace Gpt2Engine.Cpu;

/// <summary>
/// Splits [0, count) into contiguous chunks, one per thread; the body gets (start, end). The caller runs the first
/// chunk; the rest go to a small pool of persistent worker threads, which spin briefly between operations (decode
/// issues ~100 short operations per token, too short to pay a thread wake-up or a Parallel.For each) and then sleep.
/// </summary>
internal static class CpuParallel
{
    private const int SpinIterations = 20_000; // ~tens of microseconds: covers the gap between two kernels of one token

    private static readonly object Dispatch = new(), Wake = new();
    private static readonly List<Thread> Workers = [];
    private static Action<int, int>? _body;
    private static int _count, _parts, _remaining, _sleepers;
    private static long _generation;
    private static Exception? _failure;

    public static void For(int count, int threads, Action<int, int> body)
    {
        if (count <= 0) return;
        int parts = Math.Min(threads, count);
        // One chunk, or another caller (a parallel test) holds the pool: run on this thread.
        if (parts <= 1 || !Monitor.TryEnter(Dispatch))
        {
            body(0, count);
            return;
        }
        try
        {
            EnsureWorkers(parts - 1);
            _body = body;
            _count = count;
            _parts = parts;
            _failure = null;
            // Every worker acknowledges every operation, so none can lag behind into the next one.
            Volatile.Write(ref _remaining, Workers.Count);
            Interlocked.Increment(ref _generation);
            if (Volatile.Read(ref _sleepers) > 0)
                lock (Wake) Monitor.PulseAll(Wake);
            body(0, Chunk(0, count, parts).End);
            var spin = new SpinWait();
            while (Volatile.Read(ref _remaining) > 0) spin.SpinOnce(sleep1Threshold: -1);
            _body = null;
            if (_failure is { } failure) throw new AggregateException(failure);
        }
        finally
        {
            Monitor.Exit(Dispatch);
        }
    }

    private static (int Start, int End) Chunk(int part, int count, int parts) =>
        ((int)((long)count * part / parts), (int)((long)count * (part + 1) / parts));

    private static void EnsureWorkers(int needed)
    {
        while (Workers.Count < needed)
        {
            int part = Workers.Count + 1;
            long generation = Volatile.Read(ref _generation); // before this operation's: the new worker must take part in it
            var thread = new Thread(() => WorkerLoop(part, generation)) { IsBackground = true, Name = $"gpt2-cpu-{part}" };
            Workers.Add(thread);
            thread.Start();
        }
    }

    private static void WorkerLoop(int part, long seen)
    {
        while (true)
        {
            seen = WaitForWork(seen);
            try
            {
                if (part < _parts) // this operation may use fewer threads than there are workers
                {
                    var (start, end) = Chunk(part, _count, _parts);
                    _body!(start, end);
                }
            }
            catch (Exception e)
            {
                _failure = e;
            }
            Interlocked.Decrement(ref _remaining);
        }
    }

    private static long WaitForWork(long seen)
    {
        for (int i = 0; i < SpinIterations; i++)
        {
            long generation = Volatile.Read(ref _generation);
            if (generation != seen) return generation;
            Thread.SpinWait(4);
        }
        lock (Wake)
        {
            Interlocked.Increment(ref _sleepers);
            long generation;
            while ((generation = Volatile.Read(ref _generation)) == seen) Monitor.Wait(Wake);
            Interlocked.Decrement(ref _sleepers);
            return generation;
        }
    }
}
