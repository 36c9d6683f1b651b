using System.Text.RegularExpressions;
using CsCheck;
using Xunit;

namespace Gpt2Engine.Tests;

public class SeededSamplingTests
{
    [Fact]
    public void Every_run_checks_the_same_cases()
    {
        List<int> first = [], second = [];
        Gen.Int.SampleSeeded(first.Add, cases: 50);
        Gen.Int.SampleSeeded(second.Add, cases: 50);
        Assert.Equal(Check.Seed is null ? 50 : 1, first.Count); // $CsCheck_Seed replays one case
        Assert.Equal(first, second);
        Assert.Equal(first.Count, first.Distinct().Count());
    }

    [Fact]
    public void A_failure_names_the_seed_of_a_failing_case()
    {
        static void Small(int i) => Assert.True(i < 900, $"{i}");
        var failure = Assert.Throws<CsCheckException>(() => Gen.Int[0, 999].SampleSeeded(Small, cases: 200));
        string seed = Regex.Match(failure.Message, "Set seed: \"([^\"]+)\"").Groups[1].Value;
        Assert.Throws<CsCheckException>(() => Gen.Int[0, 999].Sample(Small, seed: seed, iter: 1, threads: 1));
    }
}
