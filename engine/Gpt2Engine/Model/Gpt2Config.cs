namespace Gpt2Engine.Model;

/// <summary>GPT-2 hyperparameters (the five numbers of <c>hparams.json</c>).</summary>
public sealed record Gpt2Config(int VocabSize, int ContextLength, int Channels, int Layers, int Heads)
{
    public const int Gpt2VocabSize = 50257;
    public const int EndOfText = 50256;
    public const float LayerNormEpsilon = 1e-5f;

    public int HeadSize => Channels / Heads;

    /// <summary>The tensors of <see cref="ParameterLayout"/>: wte, wpe, twelve per layer, ln_f's weight and bias.</summary>
    internal long TensorCount => 4 + ParameterLayout.TensorsPerLayer * (long)Layers;

    /// <summary>
    /// The parameters of <see cref="ParameterLayout"/>, counted without building it (its size grows with n_layer,
    /// which a corrupt file can make huge): (n_vocab + n_ctx) x n_embd embeddings, 12 n_embd² + 13 n_embd per layer
    /// (four matrices, their biases and two LayerNorms), 2 n_embd for ln_f. Throws OverflowException past 2^63.
    /// </summary>
    public long ParameterCount
    {
        get
        {
            long c = Channels;
            return checked(((long)VocabSize + ContextLength) * c + Layers * (12 * c * c + 13 * c) + 2 * c);
        }
    }

    /// <summary>Throws a <see cref="Gpt2Exception"/> naming <paramref name="source"/> if the numbers cannot describe a GPT-2.</summary>
    public void Validate(string source)
    {
        if (VocabSize <= 0 || ContextLength <= 0 || Channels <= 0 || Layers <= 0 || Heads <= 0)
            throw new Gpt2Exception($"{source}: hyperparameters must be positive (n_vocab={VocabSize}, n_ctx={ContextLength}, n_embd={Channels}, n_layer={Layers}, n_head={Heads})");
        if (Channels % Heads != 0)
            throw new Gpt2Exception($"{source}: n_embd={Channels} is not divisible by n_head={Heads}");
        // Tensor dimensions are 32-bit (the widest is the MLP's 4 x n_embd) and byte counts 64-bit.
        if (Channels > int.MaxValue / 4)
            throw new Gpt2Exception($"{source}: n_embd={Channels} is too large (the MLP's 4 x n_embd columns must fit in 32 bits)");
        try
        {
            _ = checked(ParameterCount * sizeof(float));
        }
        catch (OverflowException)
        {
            throw new Gpt2Exception($"{source}: {this} describes more than 2^63 bytes of parameters");
        }
    }

    public override string ToString() =>
        $"n_vocab={VocabSize} n_ctx={ContextLength} n_embd={Channels} n_layer={Layers} n_head={Heads}";
}

/// <summary>The four released GPT-2 sizes, by their release names and by the paper's names.</summary>
public static class Gpt2Sizes
{
    public static readonly IReadOnlyList<(string ReleaseName, string PaperName, Gpt2Config Config)> All =
    [
        ("124M", "117M", new Gpt2Config(Gpt2Config.Gpt2VocabSize, 1024, 768, 12, 12)),
        ("355M", "345M", new Gpt2Config(Gpt2Config.Gpt2VocabSize, 1024, 1024, 24, 16)),
        ("774M", "762M", new Gpt2Config(Gpt2Config.Gpt2VocabSize, 1024, 1280, 36, 20)),
        ("1558M", "1542M", new Gpt2Config(Gpt2Config.Gpt2VocabSize, 1024, 1600, 48, 25)),
    ];

    /// <summary>Finds a size by release name (124M...) or paper name (117M...), case-insensitively.</summary>
    public static bool TryFind(string name, out string releaseName, out Gpt2Config config)
    {
        foreach (var (release, paper, c) in All)
        {
            if (string.Equals(name, release, StringComparison.OrdinalIgnoreCase) || string.Equals(name, paper, StringComparison.OrdinalIgnoreCase))
            {
                (releaseName, config) = (release, c);
                return true;
            }
        }
        (releaseName, config) = ("", null!);
        return false;
    }

    public static string Names => string.Join(", ", All.Select(s => $"{s.ReleaseName} ({s.PaperName})"));
}
