using Gpt2Engine.Cpu;
using Xunit;

namespace Gpt2Engine.Tests.Cpu;

public sealed class BFloat16Tests
{
    [Theory]
    [InlineData(0x3F800000u, (ushort)0x3F80)] // 1.0 exactly
    [InlineData(0x3F808000u, (ushort)0x3F80)] // halfway, lower neighbour even: down
    [InlineData(0x3F818000u, (ushort)0x3F82)] // halfway, lower neighbour odd: up to even
    [InlineData(0x3F808001u, (ushort)0x3F81)] // just above halfway: up
    [InlineData(0x3F807FFFu, (ushort)0x3F80)] // just below halfway: down
    [InlineData(0xBF808001u, (ushort)0xBF81)] // sign is kept
    [InlineData(0x7F7FFFFFu, (ushort)0x7F80)] // float.MaxValue rounds to infinity
    [InlineData(0x7F800000u, (ushort)0x7F80)] // infinity stays
    [InlineData(0x00000001u, (ushort)0x0000)] // the smallest subnormal rounds to zero
    public void FromSingle_rounds_to_nearest_even(uint floatBits, ushort expected) =>
        Assert.Equal(expected, BFloat16.FromSingle(BitConverter.UInt32BitsToSingle(floatBits)));

    [Fact]
    public void NaN_stays_NaN_and_widening_is_exact()
    {
        Assert.True(float.IsNaN(BFloat16.ToSingle(BFloat16.FromSingle(float.NaN))));
        Assert.True(float.IsNaN(BFloat16.ToSingle(BFloat16.FromSingle(BitConverter.UInt32BitsToSingle(0x7F800001)))));
        Assert.Equal(-2.5f, BFloat16.ToSingle(0xC020));
    }
}
