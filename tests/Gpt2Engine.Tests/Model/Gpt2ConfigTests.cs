using Gpt2Engine.Model;
using Xunit;

namespace Gpt2Engine.Tests.Model;

public class Gpt2ConfigTests
{
    [Theory] // the parameter counts Hugging Face reports for gpt2, gpt2-medium, gpt2-large and gpt2-xl
    [InlineData("124M", 124_439_808L)]
    [InlineData("355M", 354_823_168L)]
    [InlineData("774M", 774_030_080L)]
    [InlineData("1558M", 1_557_611_200L)]
    public void Parameter_count_of_the_released_sizes(string size, long expected)
    {
        Assert.True(Gpt2Sizes.TryFind(size, out _, out var config));
        Assert.Equal(expected, config.ParameterCount);
        var layout = ParameterLayout.For(config);
        Assert.Equal(expected, layout.TotalCount);
        Assert.Equal(4 + 12 * config.Layers, config.TensorCount);
        Assert.Equal(config.TensorCount, layout.Specs.Count);
    }

    [Theory]
    [InlineData(1 << 30, 1, "n_embd=1073741824 is too large")] // 4 x n_embd overflows an int
    [InlineData(1 << 28, int.MaxValue, "describes more than 2^63 bytes of parameters")] // 12 n_embd² x n_layer ≈ 1.9e27
    public void Hyperparameters_whose_sizes_overflow_are_rejected(int channels, int layers, string message)
    {
        var config = new Gpt2Config(Gpt2Config.Gpt2VocabSize, 1024, channels, layers, 1);
        var e = Assert.Throws<Gpt2Exception>(() => config.Validate("hparams.json"));
        Assert.StartsWith("hparams.json: ", e.Message);
        Assert.Contains(message, e.Message);
    }
}
