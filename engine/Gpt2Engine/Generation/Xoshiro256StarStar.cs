using System.Numerics;

namespace Gpt2Engine.Generation;

/// <summary>
/// The xoshiro256** generator (Blackman and Vigna, 2018), seeded through SplitMix64 as its authors recommend.
/// Ours rather than <see cref="Random"/> because its output is fixed by its definition, so a <c>--seed</c> gives the
/// same text on every machine and .NET version. Stream <c>k</c> of a seed takes SplitMix64 outputs 4k..4k+3 as its
/// state, so the samples of one batch draw from unrelated sequences and sample k does not depend on the batch size.
/// </summary>
public struct Xoshiro256StarStar
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>A generator with the given state (not all zero), as in the reference implementation.</summary>
    public Xoshiro256StarStar(ulong s0, ulong s1, ulong s2, ulong s3)
    {
        if ((s0 | s1 | s2 | s3) == 0) throw new ArgumentException("the xoshiro256** state must not be all zero");
        (_s0, _s1, _s2, _s3) = (s0, s1, s2, s3);
    }

    /// <summary>The generator of stream <paramref name="stream"/> of <paramref name="seed"/>.</summary>
    public static Xoshiro256StarStar FromSeed(ulong seed, int stream = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stream);
        ulong x = seed;
        for (int i = 0; i < 4 * stream; i++) SplitMix64(ref x);
        // SplitMix64 is a bijection of its counter, so four consecutive outputs are never all zero.
        return new Xoshiro256StarStar(SplitMix64(ref x), SplitMix64(ref x), SplitMix64(ref x), SplitMix64(ref x));
    }

    public static ulong SplitMix64(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        ulong result = BitOperations.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = BitOperations.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>A uniform double in [0, 1): the top 53 bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));
}
