using System.Diagnostics;

namespace Gpt2Engine.Benchmarks;

/// <summary>
/// Times one piece of work on the wall clock. The probes and the benchmark take the timer as a parameter (this one
/// by default) so that tests can run the work and supply the seconds, and check the arithmetic exactly.
/// </summary>
internal static class WallClock
{
    public static double Seconds(Action work)
    {
        long started = Stopwatch.GetTimestamp();
        work();
        return Stopwatch.GetElapsedTime(started).TotalSeconds;
    }
}
