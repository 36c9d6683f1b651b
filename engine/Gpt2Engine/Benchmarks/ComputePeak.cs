using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Gpt2Engine.Cpu;

namespace Gpt2Engine.Benchmarks;

/// <summary>
/// The machine's float32 multiply-add peak at the kernels' vector width: every thread runs chains of fused
/// multiply-adds on registers, best of a few passes. Prompt processing is a compute-bound GEMM, so this is its roof,
/// as the read bandwidth is generation's.
/// </summary>
public static class ComputePeak
{
    /// <summary>Independent accumulators per thread: enough to cover the multiply-add latency on two pipes.</summary>
    private const int Chains = 12;

    /// <summary>FLOP/s (a multiply-add is two) with <paramref name="threads"/> threads at <paramref name="level"/> (default: the kernels').</summary>
    public static double MeasureFma(int threads, long stepsPerThread = 20_000_000, int passes = 5, SimdLevel? level = null) =>
        MeasureFma(threads, stepsPerThread, passes, level ?? CpuSimd.Level, WallClock.Seconds, out _);

    /// <summary>
    /// <see cref="MeasureFma(int, long, int, SimdLevel?)"/> with the timer given (it runs a pass and returns its seconds);
    /// <paramref name="sinks"/> holds each thread's sum of its chains after the last pass (for tests: it shows every step ran).
    /// </summary>
    internal static double MeasureFma(int threads, long stepsPerThread, int passes, SimdLevel level, Func<Action, double> timeSeconds, out float[] sinks)
    {
        double best = 0;
        var threadSinks = new float[threads];
        var flops = new double[threads];
        var body = new ThreadChains(level, stepsPerThread, flops, threadSinks);
        for (int pass = 0; pass < passes; pass++)
        {
            double seconds = timeSeconds(() => CpuParallel.For(threads, threads, body));
            best = Math.Max(best, flops.Sum() / seconds);
        }
        if (threadSinks.Any(float.IsNaN)) throw new InvalidOperationException("compute probe: NaN");
        sinks = threadSinks;
        return best;
    }

    /// <summary>Threads [first, last)'s chains: each thread's FLOPs into flops[t], its chains' sum into sinks[t].</summary>
    private readonly struct ThreadChains(SimdLevel level, long steps, double[] flops, float[] sinks) : IRangeBody
    {
        public void Run(int first, int last)
        {
            for (int t = first; t < last; t++) flops[t] = ComputePeak.Run(level, steps, out sinks[t]);
        }
    }

    /// <summary>Runs the chains at <paramref name="level"/>; returns the FLOPs done, their sum in <paramref name="sink"/>.</summary>
    private static double Run(SimdLevel level, long steps, out float sink)
    {
        (sink, int lanes) = level switch
        {
            SimdLevel.V512 => (Run<Ops512, Vector512<float>>(steps), Vector512<float>.Count),
            SimdLevel.V256 => (Run<Ops256, Vector256<float>>(steps), Vector256<float>.Count),
            SimdLevel.V128 => (Run<Ops128, Vector128<float>>(steps), Vector128<float>.Count),
            _ => (RunScalar(steps), 1),
        };
        return (double)steps * Chains * 2 * lanes;
    }

    /// <summary>
    /// Twelve chains of a = a * m + c from 0, which converge (m &lt; 1) to 1, so no value overflows or turns subnormal;
    /// after n steps each is about 1 - m^n, so a short run's sum tells how many steps ran.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Run<TOps, TV>(long steps) where TOps : IVectorOps<TV> where TV : unmanaged
    {
        TV m = TOps.Broadcast(0.999f), c = TOps.Broadcast(0.001f);
        TV a0 = TOps.Zero, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (long i = 0; i < steps; i++)
        {
            a0 = TOps.MultiplyAdd(a0, m, c); a1 = TOps.MultiplyAdd(a1, m, c); a2 = TOps.MultiplyAdd(a2, m, c); a3 = TOps.MultiplyAdd(a3, m, c);
            a4 = TOps.MultiplyAdd(a4, m, c); a5 = TOps.MultiplyAdd(a5, m, c); a6 = TOps.MultiplyAdd(a6, m, c); a7 = TOps.MultiplyAdd(a7, m, c);
            a8 = TOps.MultiplyAdd(a8, m, c); a9 = TOps.MultiplyAdd(a9, m, c); a10 = TOps.MultiplyAdd(a10, m, c); a11 = TOps.MultiplyAdd(a11, m, c);
        }
        TV sum = TOps.Add(TOps.Add(TOps.Add(a0, a1), TOps.Add(a2, a3)), TOps.Add(TOps.Add(a4, a5), TOps.Add(a6, a7)));
        return TOps.Sum(TOps.Add(sum, TOps.Add(TOps.Add(a8, a9), TOps.Add(a10, a11))));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float RunScalar(long steps)
    {
        const float m = 0.999f, c = 0.001f;
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, a8 = 0, a9 = 0, a10 = 0, a11 = 0;
        for (long i = 0; i < steps; i++)
        {
            a0 = MathF.FusedMultiplyAdd(a0, m, c); a1 = MathF.FusedMultiplyAdd(a1, m, c); a2 = MathF.FusedMultiplyAdd(a2, m, c);
            a3 = MathF.FusedMultiplyAdd(a3, m, c); a4 = MathF.FusedMultiplyAdd(a4, m, c); a5 = MathF.FusedMultiplyAdd(a5, m, c);
            a6 = MathF.FusedMultiplyAdd(a6, m, c); a7 = MathF.FusedMultiplyAdd(a7, m, c); a8 = MathF.FusedMultiplyAdd(a8, m, c);
            a9 = MathF.FusedMultiplyAdd(a9, m, c); a10 = MathF.FusedMultiplyAdd(a10, m, c); a11 = MathF.FusedMultiplyAdd(a11, m, c);
        }
        return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
    }
}
