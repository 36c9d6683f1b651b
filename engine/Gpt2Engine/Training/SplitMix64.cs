namespace Gpt2Engine.Training;

/// <summary>
/// Steele, Lea and Flood's SplitMix64: a tiny seeded generator whose output is fixed by the algorithm (unlike
/// System.Random), so shuffles and initialisations are reproducible everywhere.
/// </summary>
public struct SplitMix64(ulong seed)
{
    private ulong _state = seed;

    public ulong Next()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, bound), without modulo bias (Lemire's multiply-shift with rejection).</summary>
    public ulong NextBelow(ulong bound)
    {
        ulong threshold = (0 - bound) % bound;
        while (true)
        {
            ulong high = Math.BigMul(Next(), bound, out ulong low);
            if (low >= threshold) return high;
        }
    }

    /// <summary>Uniform in (0, 1]: 53 random bits.</summary>
    public double NextDouble() => ((Next() >> 11) + 1) * (1.0 / (1UL << 53));

    /// <summary>A standard normal sample (Box-Muller; the second value of each pair is discarded for simplicity).</summary>
    public double NextGaussian() => Math.Sqrt(-2 * Math.Log(NextDouble())) * Math.Cos(2 * Math.PI * NextDouble());
}
