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
    public void The_match_is_found_at_the_token_that_completes_the_stop_text(string[] tokens, string stop, int expectedToken) =>
        Assert.Equal(expectedToken, TokenThatStops(tokens, [stop]));

    /// <summary>Several stop texts: the first token that completes any of them, however long the others are.</summary>
    [Theory]
    [InlineData(new[] { "Hel", "lo", " wor", "ld" }, new[] { "a much longer stop text", "o w" }, 3)]
    [InlineData(new[] { "ab", "cd", "ef" }, new[] { "def", "bc" }, 2)]
    [InlineData(new[] { "ab", "cd", "ef" }, new[] { "bcdefg", "xyz" }, 0)]
    public void Any_of_several_stop_texts_ends_the_sample(string[] tokens, string[] stops, int expectedToken) =>
        Assert.Equal(expectedToken, TokenThatStops(tokens, stops));

    /// <summary>The 1-based number of the token whose bytes complete a stop text, or 0.</summary>
    private static int TokenThatStops(string[] tokens, string[] stops)
    {
        var matcher = new StopTextMatcher(stops);
        for (int i = 0; i < tokens.Length; i++)
            if (matcher.Push(Encoding.UTF8.GetBytes(tokens[i]))) return i + 1;
        return 0;
    }
}
