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

    /// <summary>Counts every index it runs into its own row of a shared table: a body of another shape than <see cref="CountIndices"/>.</summary>
    private readonly struct CountIntoRow(int[,] hits, int row, long padding) : IRangeBody
    {
        public void Run(int start, int end)
        {
            if (padding != row * 7L) throw new InvalidOperationException("a chunk ran with another operation's body");
            for (int i = start; i < end; i++) Interlocked.Increment(ref hits[row, i]);
        }
    }

    /// <summary>
    /// Many short operations back to back, alternating two body types, sizes and chunk counts, with the workers spinning:
    /// a worker that claims a chunk between two operations must never run it with the next operation's body or size
    /// (the failure this guards against was a claim on the finished operation's exhausted ticket while the caller was
    /// writing the next operation's fields: the next body ran early, with the previous body's code, and twice).
    /// </summary>
    [Fact]
    public void Back_to_back_operations_never_mix_their_bodies()
    {
        const int Operations = 100_000;
        var hits = new int[7];
        var rows = new int[2, 5];
        for (int op = 0; op < Operations; op++)
        {
            if (op % 2 == 0) CpuParallel.For(7, 2, new CountIndices(hits)); // 4 chunks
            else CpuParallel.For(5, 3, new CountIntoRow(rows, op / 2 % 2, op / 2 % 2 * 7L)); // 5 chunks
        }
        Assert.All(hits, h => Assert.Equal(Operations / 2, h));
        for (int row = 0; row < 2; row++)
            for (int i = 0; i < 5; i++) Assert.Equal(Operations / 4, rows[row, i]);
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
            var error = Assert.Throws<InvalidOperationException>(() => CpuParallel.For(100, 2, new FailingRange(hits, failAt)));
            Assert.Equal($"index {failAt}", error.Message);
            Assert.Contains(nameof(FailingRange), error.StackTrace); // the body's frame, whichever thread ran it
            Assert.Equal(75, hits.Sum()); // four chunks of 25: the three that did not throw ran whole
        }
        Assert.Equal("unit 40", Assert.Throws<InvalidOperationException>(() => CpuParallel.ForShares(64, 2, new FailingUnit(40))).Message);
        // One thread: the body runs inline, and its exception is the same.
        Assert.Equal("index 3", Assert.Throws<InvalidOperationException>(() => CpuParallel.For(100, 1, new FailingRange(new int[100], 3))).Message);
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
