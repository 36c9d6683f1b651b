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

    /// <summary>NaN logits (corrupt weights) are an error, greedy or sampled, rather than whatever token a comparison lets through.</summary>
    [Theory]
    [InlineData(0f, 0)]
    [InlineData(1f, 0)]
    [InlineData(1f, 2)]
    public void Nan_logits_are_an_error_not_a_token(float temperature, int topK)
    {
        var sampler = new Sampler(5, temperature, topK, topP: 1f);
        var rng = Xoshiro256StarStar.FromSeed(1);
        foreach (int at in new[] { 0, 3 })
        {
            float[] logits = [1f, 2f, 0.5f, -1f, 3f];
            logits[at] = float.NaN;
            Assert.Contains("NaN", Assert.Throws<Gpt2Exception>(() => sampler.Sample(logits, ref rng)).Message);
        }
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
    public void Top_p_keeps_the_smallest_nucleus_and_renormalises_it()
    {
        // Probabilities 0.1, 0.2, 0.3, 0.4 (and 296 negligible tokens): the nucleus of 0.65 is {0.4, 0.3}, drawn as 4:3.
        var logits = Enumerable.Repeat(-1000f, 300).ToArray();
        (logits[7], logits[70], logits[170], logits[270]) = (MathF.Log(1), MathF.Log(2), MathF.Log(3), MathF.Log(4));
        var sampler = new Sampler(logits.Length, temperature: 1, topK: 0, topP: 0.65f);
        var rng = Xoshiro256StarStar.FromSeed(11);
        int first = 0;
        const int draws = 20_000;
        for (int i = 0; i < draws; i++)
        {
            int id = sampler.Sample(logits, ref rng);
            Assert.True(id is 270 or 170, $"token {id} is outside the nucleus");
            first += id == 270 ? 1 : 0;
        }
        Assert.InRange(first / (double)draws, 4 / 7.0 - 0.015, 4 / 7.0 + 0.015);
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

    /// <summary>One property case: a sampler's settings, the logits it draws from and the seed of its draws.</summary>
    private sealed record SamplingCase(float[] Logits, float Temperature, int TopK, float TopP, ulong Seed)
    {
        public override string ToString() =>
            $"temperature {Temperature:R}, top-k {TopK}, top-p {TopP:R}, seed {Seed}, logits [{string.Join(", ", Logits.Select(l => l.ToString("R")))}]";
    }

    /// <summary>Cases with logits in [-8, 8], temperatures in [0.2, 2], V in <paramref name="vocabulary"/>, k in <paramref name="topK"/> and p in <paramref name="topP"/>.</summary>
    private static Gen<SamplingCase> Cases((int Min, int Max) vocabulary, (int Min, int Max) topK, (float Min, float Max) topP) =>
        Gen.Select(Gen.Float[-8f, 8f].Array[vocabulary.Min, vocabulary.Max], Gen.Float[0.2f, 2f], Gen.Int[topK.Min, topK.Max], Gen.Float[topP.Min, topP.Max], Gen.ULong,
            (logits, temperature, k, p, seed) => new SamplingCase(logits, temperature, k, p, seed));

    /// <summary>
    /// Twenty draws, each a token OpenAI's sampling script could emit, computed naively in double: among the k largest
    /// logits (k = 0: all), and in the nucleus of those k renormalised: the tokens strictly more likely than it hold less
    /// than top-p of the k's probability. A token tied with others passes if it does on either side of the tie.
    /// </summary>
    private static void AssertDrawsStayInTheNucleus(SamplingCase c)
    {
        double max = c.Logits.Max();
        double[] p = c.Logits.Select(l => Math.Exp((l - max) / c.Temperature)).ToArray();
        int k = c.TopK == 0 ? p.Length : Math.Min(c.TopK, p.Length);
        double topKMass = p.OrderDescending().Take(k).Sum();

        var sampler = new Sampler(c.Logits.Length, c.Temperature, c.TopK, c.TopP);
        var rng = Xoshiro256StarStar.FromSeed(c.Seed);
        for (int draw = 0; draw < 20; draw++)
        {
            int id = sampler.Sample(c.Logits, ref rng);
            var moreLikely = p.Where(q => q > p[id]).ToArray();
            Assert.True(moreLikely.Length < k, $"token {id} is not among the {k} most likely");
            // The margin covers rounding only: the sums of the sampler and the test differ in their last bits.
            Assert.True(moreLikely.Sum() < c.TopP * topKMass * (1 + 1e-12), $"token {id} is outside the nucleus of {c.TopP}");
        }
    }

    [Fact]
    public void Top_k_never_emits_a_token_below_the_kth_largest_logit() =>
        Gen.Select(Gen.Float[-20f, 20f].Array[1, 400], Gen.Float[0.05f, 3f], Gen.Int[1, 300], Gen.ULong,
                (logits, temperature, k, seed) => new SamplingCase(logits, temperature, k, TopP: 1, seed))
            .SampleSeeded(AssertDrawsStayInTheNucleus, cases: 300);

    [Fact]
    public void Top_p_never_emits_a_token_outside_the_nucleus() =>
        Cases(vocabulary: (1, 300), topK: (0, 0), topP: (0.01f, 1f)).SampleSeeded(AssertDrawsStayInTheNucleus, cases: 300);

    [Fact]
    public void Top_k_with_top_p_keeps_the_nucleus_of_the_k_renormalised() =>
        // k up to 128: the top k kept by insertion (the command line's default, k 40, with --top-p takes this path).
        Cases(vocabulary: (129, 300), topK: (1, 128), topP: (0.01f, 0.99f)).SampleSeeded(AssertDrawsStayInTheNucleus, cases: 300);

    [Fact]
    public void Top_p_with_k_above_128_keeps_the_nucleus_of_the_k_renormalised() =>
        // k over 128 and under V: the top k kept by a full sort.
        Cases(vocabulary: (257, 400), topK: (129, 256), topP: (0.01f, 0.99f)).SampleSeeded(AssertDrawsStayInTheNucleus, cases: 300);

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
