using CsCheck;
using Gpt2Engine.Generation;
using Xunit;

namespace Gpt2Engine.Tests.Generation;

public class SamplerTests
{
    [Fact]
    public void Xoshiro_matches_the_reference_outputs_for_state_1_2_3_4()
    {
        // The first outputs of the authors' xoshiro256starstar.c from s = {1, 2, 3, 4}.
        var rng = new Xoshiro256StarStar(1, 2, 3, 4);
        Assert.Equal(11520UL, rng.NextUInt64());
        Assert.Equal(0UL, rng.NextUInt64());
        Assert.Equal(1509978240UL, rng.NextUInt64());
        Assert.Equal(1215971899390074240UL, rng.NextUInt64());
    }

    [Fact]
    public void SplitMix64_matches_the_reference_outputs_for_seed_0()
    {
        ulong x = 0;
        Assert.Equal(0xE220A8397B1DCDAFUL, Xoshiro256StarStar.SplitMix64(ref x));
        Assert.Equal(0x6E789E6AA1B965F4UL, Xoshiro256StarStar.SplitMix64(ref x));
    }

    [Fact]
    public void Streams_of_a_seed_are_distinct_and_repeatable()
    {
        var a = Xoshiro256StarStar.FromSeed(42, 0);
        var b = Xoshiro256StarStar.FromSeed(42, 1);
        var a2 = Xoshiro256StarStar.FromSeed(42, 0);
        ulong first = a.NextUInt64();
        Assert.NotEqual(first, b.NextUInt64());
        Assert.Equal(first, a2.NextUInt64());
    }

    [Fact]
    public void Greedy_picks_the_lowest_index_among_equal_maxima()
    {
        var sampler = new Sampler(5, temperature: 0, topK: 40, topP: 1);
        var rng = Xoshiro256StarStar.FromSeed(1);
        Assert.Equal(1, sampler.Sample([0f, 3f, -1f, 3f, 2f], ref rng));
    }

    [Fact]
    public void Top_k_of_one_is_argmax()
    {
        var sampler = new Sampler(6, temperature: 5, topK: 1, topP: 1);
        var rng = Xoshiro256StarStar.FromSeed(7);
        for (int i = 0; i < 100; i++) Assert.Equal(4, sampler.Sample([0f, 1f, 2f, -3f, 2.5f, 2.4f], ref rng));
    }

    [Theory]
    [InlineData(0)]     // every token
    [InlineData(3)]     // top-k by insertion
    [InlineData(200)]   // top-k by sorting
    public void Frequencies_follow_the_softmax(int topK)
    {
        // Logits ln 1, ln 2, ln 3 (then 197 tokens at -inf-ish): probabilities 1/6, 2/6, 3/6.
        var logits = Enumerable.Repeat(-1000f, 300).ToArray();
        (logits[5], logits[100], logits[299]) = (0f, MathF.Log(2), MathF.Log(3));
        var sampler = new Sampler(logits.Length, temperature: 1, topK: topK, topP: 1);
        var rng = Xoshiro256StarStar.FromSeed(123);
        var counts = new Dictionary<int, int>();
        const int draws = 20_000;   // standard error of a frequency <= 0.0036: the bounds are 4 of them
        for (int i = 0; i < draws; i++)
        {
            int id = sampler.Sample(logits, ref rng);
            counts[id] = counts.GetValueOrDefault(id) + 1;
        }
        Assert.Equal([5, 100, 299], counts.Keys.Order());
        Assert.InRange(counts[5] / (double)draws, 1 / 6.0 - 0.015, 1 / 6.0 + 0.015);
        Assert.InRange(counts[100] / (double)draws, 2 / 6.0 - 0.015, 2 / 6.0 + 0.015);
        Assert.InRange(counts[299] / (double)draws, 3 / 6.0 - 0.015, 3 / 6.0 + 0.015);
    }

    [Fact]
    public void Temperature_sharpens_the_distribution()
    {
        // At T = 0.5 the weights become 1, 4, 9: probability 9/14 for the largest.
        float[] logits = [0f, MathF.Log(2), MathF.Log(3)];
        var sampler = new Sampler(3, temperature: 0.5f, topK: 0, topP: 1);
        var rng = Xoshiro256StarStar.FromSeed(5);
        int top = 0;
        const int draws = 20_000;
        for (int i = 0; i < draws; i++) top += sampler.Sample(logits, ref rng) == 2 ? 1 : 0;
        Assert.InRange(top / (double)draws, 9 / 14.0 - 0.015, 9 / 14.0 + 0.015);
    }

    [Fact]
    public void The_same_seed_gives_the_same_tokens()
    {
        var logits = Enumerable.Range(0, 1000).Select(i => MathF.Sin(i * 0.37f) * 4).ToArray();
        int[] Run(ulong seed)
        {
            var sampler = new Sampler(logits.Length, temperature: 0.9f, topK: 40, topP: 0.95f);
            var rng = Xoshiro256StarStar.FromSeed(seed);
            return Enumerable.Range(0, 64).Select(_ => sampler.Sample(logits, ref rng)).ToArray();
        }
        Assert.Equal(Run(2024), Run(2024));
        Assert.NotEqual(Run(2024), Run(2025));
    }

    [Fact]
    public void Top_k_never_emits_a_token_below_the_kth_largest_logit()
    {
        Gen.Select(Gen.Float[-20f, 20f].Array[1, 400], Gen.Int[1, 300], Gen.Float[0.05f, 3f], Gen.ULong)
            .Sample((logits, k, temperature, seed) =>
            {
                var sampler = new Sampler(logits.Length, temperature, k, topP: 1);
                var rng = Xoshiro256StarStar.FromSeed(seed);
                float kth = logits.OrderDescending().ElementAt(Math.Min(k, logits.Length) - 1);
                for (int draw = 0; draw < 20; draw++)
                    if (logits[sampler.Sample(logits, ref rng)] < kth) return false;
                return true;
            }, iter: 300);
    }

    [Fact]
    public void Top_p_never_emits_a_token_outside_the_nucleus()
    {
        Gen.Select(Gen.Float[-8f, 8f].Array[1, 300], Gen.Float[0.01f, 1f], Gen.Float[0.2f, 2f], Gen.ULong)
            .Sample((logits, topP, temperature, seed) =>
            {
                // The nucleus computed naively in double: a token is out when the tokens strictly more likely than
                // it already hold topP of the probability (with a margin for rounding).
                double max = logits.Max();
                double[] p = logits.Select(l => Math.Exp((l - max) / temperature)).ToArray();
                double total = p.Sum();
                bool Excluded(int id) => p.Where(q => q > p[id]).Sum() / total >= topP + 1e-6;

                var sampler = new Sampler(logits.Length, temperature, topK: 0, topP: topP);
                var rng = Xoshiro256StarStar.FromSeed(seed);
                for (int draw = 0; draw < 20; draw++)
                    if (Excluded(sampler.Sample(logits, ref rng))) return false;
                return true;
            }, iter: 300);
    }

    [Theory]
    [InlineData(-1f, 40, 1f)]
    [InlineData(float.NaN, 40, 1f)]
    [InlineData(1f, -1, 1f)]
    [InlineData(1f, 40, 0f)]
    [InlineData(1f, 40, 1.5f)]
    public void Bad_parameters_are_user_errors(float temperature, int topK, float topP)
    {
        var e = Assert.Throws<Gpt2Exception>(() => new Sampler(10, temperature, topK, topP));
        Assert.DoesNotContain('\n', e.Message);
    }
}
