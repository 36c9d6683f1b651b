using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Gpt2Engine.Cpu;

namespace Gpt2Engine.Benchmarks;

/// <summary>
/// The machine's read bandwidth, STREAM-like: every thread sums its share of a buffer far larger than the caches,
/// best of a few passes. Decode streams each weight once per token, so this is its roof. Two access patterns are
/// timed and the faster one counts: one sequential stream per thread (STREAM's read), and four concurrent streams
/// per thread (as a matrix-vector product reads several weight rows at once, which on some machines keeps more
/// misses in flight and reads faster than one stream).
/// </summary>
public static unsafe class MemoryBandwidth
{
    private const int Chunk = 1 << 20; // floats per unit of work: 4 MiB

    /// <summary>Bytes per second (best pass of either pattern) reading <paramref name="bytes"/> with <paramref name="threads"/> threads.</summary>
    public static double MeasureRead(int threads, long bytes = 1L << 30, int passes = 5) => MeasureRead(threads, bytes, passes, WallClock.Seconds);

    /// <summary>
    /// <see cref="MeasureRead(int, long, int)"/> with the timer given (it runs a pass and returns its seconds). The bytes
    /// read are whole chunks of 4 MiB: <paramref name="bytes"/> rounded down.
    /// </summary>
    internal static double MeasureRead(int threads, long bytes, int passes, Func<Action, double> timeSeconds)
    {
        long count = bytes / sizeof(float);
        float* buffer = (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);
        try
        {
            int chunks = (int)(count / Chunk);
            CpuParallel.For(chunks, threads, new FillChunks(buffer));
            double best = 0;
            var sums = new float[chunks];
            for (int pass = 0; pass < passes; pass++)
            {
                foreach (bool fourStreams in (bool[])[false, true])
                {
                    Array.Clear(sums); // so that a chunk left unread fails the check below
                    var body = new SumChunks(buffer, sums, fourStreams);
                    double seconds = timeSeconds(() => CpuParallel.For(chunks, threads, body));
                    if (sums.Sum() != (double)chunks * Chunk) throw new InvalidOperationException("bandwidth probe: wrong sum");
                    best = Math.Max(best, (double)chunks * Chunk * sizeof(float) / seconds);
                }
            }
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    /// <summary>Chunks [start, end) of the buffer set to 1.</summary>
    private readonly struct FillChunks(float* buffer) : IRangeBody
    {
        public void Run(int start, int end) => new Span<float>(buffer + (long)start * Chunk, (end - start) * Chunk).Fill(1f);
    }

    /// <summary>The sums of chunks [start, end) of the buffer, read as one stream or as four.</summary>
    private readonly struct SumChunks(float* buffer, float[] sums, bool fourStreams) : IRangeBody
    {
        public void Run(int start, int end)
        {
            for (int c = start; c < end; c++) sums[c] = fourStreams ? SumFourStreams(buffer + (long)c * Chunk) : TensorPrimitives.Sum(new ReadOnlySpan<float>(buffer + (long)c * Chunk, Chunk));
        }
    }

    /// <summary>The sum of one chunk, read as four quarters side by side.</summary>
    private static float SumFourStreams(float* chunk) => CpuSimd.Level switch
    {
        SimdLevel.V512 => SumFourStreams<Ops512, Vector512<float>>(chunk),
        SimdLevel.V256 => SumFourStreams<Ops256, Vector256<float>>(chunk),
        _ => SumFourStreams<Ops128, Vector128<float>>(chunk),
    };

    private static float SumFourStreams<TOps, TV>(float* chunk) where TOps : IVectorOps<TV> where TV : unmanaged
    {
        const int Quarter = Chunk / 4;
        TV s0 = TOps.Zero, s1 = TOps.Zero, s2 = TOps.Zero, s3 = TOps.Zero;
        for (int i = 0; i < Quarter; i += TOps.Count)
        {
            s0 = TOps.Add(s0, TOps.Load(chunk + i));
            s1 = TOps.Add(s1, TOps.Load(chunk + Quarter + i));
            s2 = TOps.Add(s2, TOps.Load(chunk + 2 * Quarter + i));
            s3 = TOps.Add(s3, TOps.Load(chunk + 3 * Quarter + i));
        }
        return TOps.Sum(TOps.Add(TOps.Add(s0, s1), TOps.Add(s2, s3)));
    }
}
