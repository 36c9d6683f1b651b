using Gpt2Engine.Cpu;
using Xunit;

namespace Gpt2Engine.Tests.Cpu;

/// <summary>
/// Tests that need <see cref="CpuParallel"/>'s pool to themselves (another test holding it makes a call run inline) or
/// count every thread's allocations: they run after the parallel tests, one at a time.
/// </summary>
[CollectionDefinition(nameof(PoolAlone), DisableParallelization = true)]
public sealed class PoolAlone;

[Collection(nameof(PoolAlone))]
public sealed class CpuParallelTests
{
    /// <summary>Counts every index it runs.</summary>
    private readonly struct CountIndices(int[] hits) : IRangeBody
    {
        public void Run(int start, int end)
        {
            for (int i = start; i < end; i++) Interlocked.Increment(ref hits[i]);
        }
    }

    [Fact]
    public void Every_index_runs_exactly_once_for_any_count_and_thread_count()
    {
        foreach (int threads in (int[])[1, 2, 3, 5])
        foreach (int count in (int[])[0, 1, 2, 3, 7, 64, 1001])
        {
            var hits = new int[count];
            CpuParallel.For(count, threads, new CountIndices(hits));
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    /// <summary>
    /// Counts every unit, checks its slot, and sums the units per slot without atomics: a slot runs on one thread at a
    /// time, so per-slot state needs none.
    /// </summary>
    private readonly struct CountUnits(int[] hits, long[] slotSums, int slots, int[] badSlots) : IShareBody
    {
        public void Run(int slot, int unit)
        {
            if (slot < 0 || slot >= slots)
            {
                Interlocked.Increment(ref badSlots[0]);
                return;
            }
            Interlocked.Increment(ref hits[unit]);
            slotSums[slot] += unit;
            if (unit % 5 == 0) Thread.SpinWait(2000); // uneven units, so that slots take from each other
        }
    }

    [Fact]
    public void Shares_run_every_unit_exactly_once_on_valid_slots()
    {
        foreach (int threads in (int[])[1, 2, 3, 5])
        foreach (int units in (int[])[0, 1, 2, 3, 7, 64, 1001])
        {
            var hits = new int[units];
            int slots = Math.Max(1, Math.Min(threads, units)); // at most one slot per thread and per unit
            Assert.Equal(slots, CpuParallel.Slots(units, threads));
            var slotSums = new long[slots];
            var badSlots = new int[1];
            CpuParallel.ForShares(units, threads, new CountUnits(hits, slotSums, slots, badSlots));
            Assert.All(hits, h => Assert.Equal(1, h));
            Assert.Equal(0, badSlots[0]);
            Assert.Equal((long)units * (units - 1) / 2, slotSums.Sum());
        }
    }

    /// <summary>Adds every index it runs to its caller's total.</summary>
    private readonly struct AddIndices(long[] totals, int caller) : IRangeBody
    {
        public void Run(int start, int end)
        {
            for (int i = start; i < end; i++) Interlocked.Add(ref totals[caller], i);
        }
    }

    [Fact]
    public void Concurrent_callers_each_get_their_whole_range()
    {
        var totals = new long[4];
        Parallel.For(0, totals.Length, caller =>
        {
            for (int repeat = 0; repeat < 200; repeat++) CpuParallel.For(100, 2, new AddIndices(totals, caller));
        });
        Assert.All(totals, total => Assert.Equal(200L * 4950, total));
    }

    /// <summary>Runs an inner For over 50 indices for every outer index (slowly, so that both threads are busy).</summary>
    private readonly struct NestedFor(int[] hits) : IRangeBody
    {
        public void Run(int start, int end)
        {
            for (int outer = start; outer < end; outer++) CpuParallel.For(50, 2, new Inner(hits, outer));
        }

        private readonly struct Inner(int[] hits, int outer) : IRangeBody
        {
            public void Run(int start, int end)
            {
                for (int i = start; i < end; i++)
                {
                    Interlocked.Increment(ref hits[outer * 50 + i]);
                    Thread.SpinWait(20);
                }
            }
        }
    }

    [Fact]
    public void A_body_that_calls_for_again_runs_the_inner_call_inline()
    {
        // On the calling thread the pool's lock is its own (re-entrant), so the inner call must not take it: it would
        // start another operation under the outer one's workers.
        for (int repeat = 0; repeat < 50; repeat++)
        {
            var hits = new int[8 * 50];
            CpuParallel.For(8, 2, new NestedFor(hits));
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    /// <summary>Throws on the chunk that holds <paramref name="failAt"/>; counts the indices of every other chunk.</summary>
    private readonly struct FailingRange(int[] hits, int failAt) : IRangeBody
    {
        public void Run(int start, int end)
        {
            if (start <= failAt && failAt < end) throw new InvalidOperationException($"index {failAt}");
            for (int i = start; i < end; i++) Interlocked.Increment(ref hits[i]);
        }
    }

    /// <summary>Throws on one unit.</summary>
    private readonly struct FailingUnit(int failAt) : IShareBody
    {
        public void Run(int slot, int unit)
        {
            if (unit == failAt) throw new InvalidOperationException($"unit {failAt}");
        }
    }

    [Fact]
    public void An_exception_in_a_body_reaches_the_caller_after_the_other_chunks_ran()
    {
        foreach (int failAt in (int[])[0, 57, 99])
        {
            var hits = new int[100];
            var error = Assert.Throws<AggregateException>(() => CpuParallel.For(100, 2, new FailingRange(hits, failAt)));
            Assert.Equal($"index {failAt}", Assert.IsType<InvalidOperationException>(error.InnerException).Message);
            Assert.Equal(75, hits.Sum()); // four chunks of 25: the three that did not throw ran whole
        }
        var shares = Assert.Throws<AggregateException>(() => CpuParallel.ForShares(64, 2, new FailingUnit(40)));
        Assert.Equal("unit 40", Assert.IsType<InvalidOperationException>(shares.InnerException).Message);
        // One thread: the body runs inline and its exception comes as it is.
        Assert.Throws<InvalidOperationException>(() => CpuParallel.For(100, 1, new FailingRange(new int[100], 3)));
        // The pool still works.
        var after = new int[1001];
        CpuParallel.For(after.Length, 2, new CountIndices(after));
        Assert.All(after, h => Assert.Equal(1, h));
    }

    [Fact]
    public void A_call_allocates_nothing_on_the_calling_thread()
    {
        var hits = new int[1000];
        var unitHits = new int[1000];
        var slotSums = new long[2];
        var badSlots = new int[1];
        CpuParallel.For(hits.Length, 2, new CountIndices(hits)); // warm: JIT, worker threads
        CpuParallel.ForShares(unitHits.Length, 2, new CountUnits(unitHits, slotSums, 2, badSlots));
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int repeat = 0; repeat < 10; repeat++)
        {
            CpuParallel.For(hits.Length, 2, new CountIndices(hits));
            CpuParallel.ForShares(unitHits.Length, 2, new CountUnits(unitHits, slotSums, 2, badSlots));
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
