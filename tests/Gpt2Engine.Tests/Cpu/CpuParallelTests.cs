using Gpt2Engine.Cpu;
using Xunit;

namespace Gpt2Engine.Tests.Cpu;

public sealed class CpuParallelTests
{
    [Fact]
    public void Every_index_runs_exactly_once_for_any_count_and_thread_count()
    {
        foreach (int threads in (int[])[1, 2, 3, 5])
        foreach (int count in (int[])[0, 1, 2, 3, 7, 64, 1001])
        {
            var hits = new int[count];
            CpuParallel.For(count, threads, (start, end) =>
            {
                for (int i = start; i < end; i++) Interlocked.Increment(ref hits[i]);
            });
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void Shares_run_every_unit_exactly_once_on_valid_slots()
    {
        foreach (int threads in (int[])[1, 2, 3, 5])
        foreach (int units in (int[])[0, 1, 2, 3, 7, 64, 1001])
        {
            var hits = new int[units];
            int slots = Math.Max(1, Math.Min(threads, units)), badSlots = 0; // at most one slot per thread and per unit
            CpuParallel.ForShares(units, threads, (slot, unit) =>
            {
                if (slot < 0 || slot >= slots) Interlocked.Increment(ref badSlots);
                Interlocked.Increment(ref hits[unit]);
                if (unit % 5 == 0) Thread.SpinWait(2000); // uneven units, so that slots take from each other
            });
            Assert.All(hits, h => Assert.Equal(1, h));
            Assert.Equal(0, badSlots);
        }
    }

    [Fact]
    public void Concurrent_callers_each_get_their_whole_range()
    {
        var totals = new long[4];
        Parallel.For(0, totals.Length, caller =>
        {
            for (int repeat = 0; repeat < 200; repeat++)
                CpuParallel.For(100, 2, (start, end) =>
                {
                    for (int i = start; i < end; i++) Interlocked.Add(ref totals[caller], i);
                });
        });
        Assert.All(totals, total => Assert.Equal(200L * 4950, total));
    }
}
