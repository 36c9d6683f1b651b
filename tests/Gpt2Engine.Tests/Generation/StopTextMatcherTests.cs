using System.Text;
using Gpt2Engine.Generation;
using Xunit;

namespace Gpt2Engine.Tests.Generation;

public class StopTextMatcherTests
{
    [Theory]
    [InlineData(new[] { "Hel", "lo", " wor", "ld" }, "o wo", 3)]
    [InlineData(new[] { "a", "b", "c", "d" }, "abcd", 4)]
    [InlineData(new[] { "xx", "\n", "\n", "yy" }, "\n\n", 3)]
    [InlineData(new[] { "stop here" }, "here", 1)]
    [InlineData(new[] { "ab", "ab", "ab" }, "ba", 2)]
    [InlineData(new[] { "abc", "def" }, "xyz", 0)]
    public void The_match_is_found_at_the_token_that_completes_the_stop_text(string[] tokens, string stop, int expectedToken)
    {
        var matcher = new StopTextMatcher(stop);
        int found = 0;
        for (int i = 0; i < tokens.Length && found == 0; i++)
            if (matcher.Push(Encoding.UTF8.GetBytes(tokens[i]))) found = i + 1;
        Assert.Equal(expectedToken, found);
    }
}
