namespace Gpt2Engine.Cpu;

/// <summary>Splits [0, count) into contiguous chunks, one per worker thread; the body gets (start, end).</summary>
internal static class CpuParallel
{
    public static void For(int count, int threads, Action<int, int> body)
    {
        if (count <= 0) return;
        int workers = Math.Min(threads, count);
        if (workers <= 1)
        {
            body(0, count);
            return;
        }
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
        {
            long start = (long)count * w / workers, end = (long)count * (w + 1) / workers;
            body((int)start, (int)end);
        });
    }
}
