namespace Gpt2Engine.Model;

/// <summary>What one block keeps from the forward pass for the backward pass (llm.c's ActivationTensors, per layer).</summary>
internal sealed class LayerActivations
{
    public required DeviceBuffer Ln1, Ln1Mean, Ln1Rstd, Qkv, Att, AttY, AttProj, Residual2, Ln2, Ln2Mean, Ln2Rstd, Fch, FchGelu, FcProj, Residual3;
}

/// <summary>
/// Every intermediate tensor of a full forward pass over B x T positions; the same shape holds their gradients.
/// Allocated once per (B, T) through the backend and reused step after step.
/// </summary>
internal sealed class Activations : IDisposable
{
    private readonly Backend _backend;
    private readonly List<DeviceBuffer> _owned = [];

    public int B { get; }
    public int T { get; }
    public DeviceBuffer Encoded { get; }
    public LayerActivations[] Layers { get; }
    public DeviceBuffer LnF { get; }
    public DeviceBuffer LnFMean { get; }
    public DeviceBuffer LnFRstd { get; }
    /// <summary>[B,T,V] logits; the softmax overwrites them with probabilities, and backward with their gradient.</summary>
    public DeviceBuffer Logits { get; }
    public DeviceBuffer Losses { get; }

    public Activations(Backend backend, Gpt2Config config, int B, int T) : this(backend, config, B, T, count => backend.Allocate(count)) { }

    /// <summary>The F32 elements that activations over B x T positions take: the constructor run without allocating.</summary>
    public static long Count(Gpt2Config config, int B, int T)
    {
        long total = 0;
        _ = new Activations(null, config, B, T, count =>
        {
            total = checked(total + count);
            return default;
        });
        return total;
    }

    private Activations(Backend? backend, Gpt2Config config, int B, int T, Func<long, DeviceBuffer> allocate)
    {
        _backend = backend!; // null only when counting, which frees nothing
        this.B = B;
        this.T = T;
        long N = (long)B * T;
        int C = config.Channels, NH = config.Heads;
        DeviceBuffer New(long count)
        {
            var buffer = allocate(count);
            _owned.Add(buffer);
            return buffer;
        }
        Encoded = New(N * C);
        Layers = new LayerActivations[config.Layers];
        for (int l = 0; l < config.Layers; l++)
        {
            Layers[l] = new LayerActivations
            {
                Ln1 = New(N * C), Ln1Mean = New(N), Ln1Rstd = New(N),
                Qkv = New(N * 3 * C), Att = New((long)B * NH * T * T), AttY = New(N * C), AttProj = New(N * C),
                Residual2 = New(N * C), Ln2 = New(N * C), Ln2Mean = New(N), Ln2Rstd = New(N),
                Fch = New(N * 4 * C), FchGelu = New(N * 4 * C), FcProj = New(N * C), Residual3 = New(N * C),
            };
        }
        LnF = New(N * C);
        LnFMean = New(N);
        LnFRstd = New(N);
        Logits = New(N * config.VocabSize);
        Losses = New(N);
    }

    public void ZeroAll()
    {
        foreach (var buffer in _owned) _backend.Zero(buffer);
    }

    public void Dispose()
    {
        foreach (var buffer in _owned) _backend.Free(buffer);
        _owned.Clear();
    }
}
