using Gpt2Engine.Cpu;
using Gpt2Engine.Model;
using Gpt2Engine.Training;
using Xunit;

namespace Gpt2Engine.Tests.Cpu;

[Collection(nameof(PoolAlone))] // so that no other test allocates meanwhile or holds the pool
public sealed class DecodeAllocationTests
{
    /// <summary>
    /// A decode step on two threads allocates nothing, on the calling thread or on CpuParallel's workers. The model is
    /// shaped so that every kind of parallel operation runs on the pool: the layer matmuls' matrix-vector products take
    /// several units through ForShares (K = 256, N = 768 / 256 / 1024 are 7, 2 and 8 units; the MLP's projection 8),
    /// the attention splits its 4 heads and the logits their 512 rows through For.
    /// </summary>
    [Fact]
    public void A_warm_decode_step_allocates_nothing_on_any_thread()
    {
        var config = new Gpt2Config(VocabSize: 512, ContextLength: 128, Channels: 256, Layers: 2, Heads: 4);
        using var model = new Gpt2Model(ModelInitializer.RandomWeights(config, seed: 3), new CpuBackend(2), ownsWeights: true, ownsBackend: true);
        using var session = model.CreateSession(1);
        int[] token = [7];
        session.Forward([1, 2, 3, 4], 4);
        for (int step = 0; step < 30; step++) session.Forward(token, 1); // warm: JIT tiers, scratch buffers, worker threads

        long calling = GC.GetAllocatedBytesForCurrentThread();
        session.Forward(token, 1);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - calling);

        // Every thread: 20 steps are ~220 parallel operations, so even a 16-byte allocation per operation would come to
        // 3.5 KB. Below 1 KB leaves room for the test host's own background work (reporting results), and the least of
        // three rounds is taken because such noise only ever adds.
        long least = long.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            for (int step = 0; step < 20; step++) session.Forward(token, 1);
            least = Math.Min(least, GC.GetTotalAllocatedBytes(precise: true) - before);
        }
        Assert.True(least < 1024, $"{least} bytes allocated in 20 decode steps");
    }
}
