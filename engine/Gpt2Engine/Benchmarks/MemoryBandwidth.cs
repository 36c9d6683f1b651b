using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Gpt2Engine.Cpu;

namespace Gpt2Engine.Benchmarks;

/// <summary>
/// The machine's read bandwidth, STREAM-like: every thread sums its share of a buffer far larger than the caches,
/// best of a few passes. Decode streams each weight once per token, so this is its roof.
/// </summary>
public static class MemoryBandwidth
{
    /// <summary>Bytes per second (best pass) reading <paramref name="bytes"/> with <paramref name="threads"/> threads.</summary>
    public static unsafe double MeasureRead(int threads, long bytes = 1L << 30, int passes = 5)
    {
        long count = bytes / sizeof(float);
        float* buffer = (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);
        try
        {
            const int Chunk = 1 << 20; // floats per unit of work
            int chunks = (int)(count / Chunk);
            CpuParallel.For(chunks, threads, (start, end) => new Span<float>(buffer + (long)start * Chunk, (end - start) * Chunk).Fill(1f));
            double best = 0;
            var sums = new float[chunks];
            for (int pass = 0; pass < passes; pass++)
            {
                long started = Stopwatch.GetTimestamp();
                CpuParallel.For(chunks, threads, (start, end) =>
                {
                    for (int c = start; c < end; c++) sums[c] = TensorPrimitives.Sum(new ReadOnlySpan<float>(buffer + (long)c * Chunk, Chunk));
                });
                double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
                if (sums.Sum() != (double)chunks * Chunk) throw new InvalidOperationException("bandwidth probe: wrong sum");
                best = Math.Max(best, (double)chunks * Chunk * sizeof(float) / seconds);
            }
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }
}
