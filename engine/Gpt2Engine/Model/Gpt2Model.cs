using Gpt2Engine.Checkpoints;

namespace Gpt2Engine.Model;

/// <summary>
/// GPT-2, llm.c style: explicit forward and backward passes over explicit buffers, written once against
/// <see cref="Backend"/>. Inference reads the weights in place (on the CPU straight from the memory map); a trainable
/// model copies them into one flat F32 buffer beside flat gradients and AdamW moments.
/// </summary>
public sealed class Gpt2Model : IDisposable
{
    private readonly Gpt2Weights _weights;
    private readonly bool _ownsWeights, _ownsBackend;
    private readonly List<DeviceBuffer> _owned = [];
    private Activations? _activations, _activationGradients;
    private DeviceBuffer _inputs, _targets;
    private float[] _positionLosses = [];
    private DeviceBuffer _adamM, _adamV;

    public Gpt2Config Config { get; }
    public ParameterLayout Layout { get; }
    public Backend Backend { get; }
    public ModelParameters Parameters { get; }
    /// <summary>All parameters in one flat F32 buffer in <see cref="Layout"/> order (trainable models only).</summary>
    public DeviceBuffer ParameterMemory { get; }
    public ModelParameters? Gradients { get; }
    public DeviceBuffer GradientMemory { get; }
    public bool Trainable => !ParameterMemory.IsNone;
    /// <summary>Where the weights came from.</summary>
    public string Source => _weights.Source;

    /// <param name="ownsWeights">Dispose the weights (their memory mapping) with the model.</param>
    /// <param name="ownsBackend">Dispose the backend with the model.</param>
    public Gpt2Model(Gpt2Weights weights, Backend backend, bool trainable = false, bool ownsWeights = false, bool ownsBackend = false)
    {
        _weights = weights;
        _ownsWeights = ownsWeights;
        _ownsBackend = ownsBackend;
        Config = weights.Config;
        Layout = weights.Layout;
        Backend = backend;
        if (!trainable)
        {
            Parameters = ModelParameters.Bind(Layout, Config.Layers, spec => Own(backend.UseWeights(weights[spec.Name]), weights[spec.Name]));
            return;
        }
        ParameterMemory = Own(backend.Allocate(Layout.TotalCount));
        foreach (var spec in Layout.Specs)
        {
            var (view, destination) = (weights[spec.Name], ParameterMemory.Slice(spec.Offset, spec.Count));
            // F32 straight from the checkpoint's mapping; other types widened through a copy.
            if (view.DType == TensorDType.F32) backend.Upload(destination, view.AsSpan<float>());
            else backend.Upload<float>(destination, view.ToFloatArray());
        }
        Parameters = ModelParameters.Slices(Layout, Config.Layers, ParameterMemory);
        GradientMemory = Own(backend.Allocate(Layout.TotalCount));
        Gradients = ModelParameters.Slices(Layout, Config.Layers, GradientMemory);
    }

    private DeviceBuffer Own(DeviceBuffer buffer, TensorView? source = null)
    {
        // The CPU backend hands back the mapping itself for weights; only buffers at another address are ours to free.
        if (source is null || buffer.Address != source.Value.Address) _owned.Add(buffer);
        return buffer;
    }

    /// <summary>Loads weights (a size name, a directory or a .safetensors file) for inference on <paramref name="backend"/> (CPU by default).</summary>
    public static Gpt2Model Load(string weights, Backend? backend = null)
    {
        var loaded = CheckpointLoader.Load(weights);
        try
        {
            return new Gpt2Model(loaded, backend ?? new Cpu.CpuBackend(), trainable: false, ownsWeights: true, ownsBackend: backend is null);
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Compiles the inference kernels for this model's weights ahead of the first prompt (~0.1 s of JIT on the CPU):
    /// run it on another thread while the vocabulary loads, and wait for it before the first forward.
    /// </summary>
    public void WarmUp() => Backend.WarmUp(Parameters.Layers[0].QkvWeight.DType);

    /// <summary>
    /// A KV-cached decoding session for <paramref name="batchSize"/> sequences that advance together, with room for
    /// <paramref name="positions"/> positions each (default: the whole context).
    /// </summary>
    public InferenceSession CreateSession(int batchSize = 1, int? positions = null) => new(this, batchSize, positions ?? Config.ContextLength);

    // ---------------------------------------------------------------- training-style full forward and backward

    /// <summary>The logits [B,T,V] of the last <see cref="Forward"/> without targets.</summary>
    public float[] DownloadLogits()
    {
        var a = _activations ?? throw new InvalidOperationException("no forward pass has run");
        var result = new float[a.Logits.Count];
        Backend.Download<float>(a.Logits, result);
        return result;
    }

    /// <summary>
    /// Full forward over inputs [B,T]. With targets [B,T] returns the mean cross-entropy (the logits become
    /// probabilities, ready for <see cref="Backward"/>); without, returns NaN and keeps the logits.
    /// </summary>
    public float Forward(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets, int B, int T)
    {
        int C = Config.Channels, NH = Config.Heads, V = Config.VocabSize, N = B * T;
        if (T > Config.ContextLength) throw new Gpt2Exception($"sequence length {T} exceeds the model's context of {Config.ContextLength} positions");
        if (inputs.Length != N || (!targets.IsEmpty && targets.Length != N)) throw new ArgumentException($"expected {N} tokens for B={B}, T={T}");
        foreach (int token in inputs)
            if ((uint)token >= (uint)V) throw new Gpt2Exception($"token id {token} is outside the vocabulary (0..{V - 1})");
        EnsureActivations(B, T);
        var a = _activations!;
        var p = Parameters;
        Backend.Upload(_inputs, inputs);
        if (!targets.IsEmpty) Backend.Upload(_targets, targets);

        Backend.Encoder(a.Encoded, _inputs, p.Wte, p.Wpe, B, T, C, 0);
        for (int l = 0; l < Config.Layers; l++)
        {
            var w = p.Layers[l];
            var x = a.Layers[l];
            var residual = l == 0 ? a.Encoded : a.Layers[l - 1].Residual3;
            Backend.LayerNorm(x.Ln1, x.Ln1Mean, x.Ln1Rstd, residual, w.Ln1Weight, w.Ln1Bias, N, C);
            Backend.Matmul(x.Qkv, x.Ln1, w.QkvWeight, w.QkvBias, N, C, 3 * C);
            Backend.Attention(x.AttY, x.Att, x.Qkv, B, T, C, NH);
            Backend.Matmul(x.AttProj, x.AttY, w.AttnProjWeight, w.AttnProjBias, N, C, C);
            Backend.Residual(x.Residual2, residual, x.AttProj, N * C);
            Backend.LayerNorm(x.Ln2, x.Ln2Mean, x.Ln2Rstd, x.Residual2, w.Ln2Weight, w.Ln2Bias, N, C);
            Backend.Matmul(x.Fch, x.Ln2, w.FcWeight, w.FcBias, N, C, 4 * C);
            Backend.Gelu(x.FchGelu, x.Fch, N * 4 * C);
            Backend.Matmul(x.FcProj, x.FchGelu, w.FcProjWeight, w.FcProjBias, N, 4 * C, C);
            Backend.Residual(x.Residual3, x.Residual2, x.FcProj, N * C);
        }
        Backend.LayerNorm(a.LnF, a.LnFMean, a.LnFRstd, a.Layers[^1].Residual3, p.LnFWeight, p.LnFBias, N, C);
        Backend.MatmulTransposed(a.Logits, a.LnF, p.Wte, N, C, V);
        if (targets.IsEmpty) return float.NaN;

        Backend.SoftmaxCrossEntropy(a.Losses, a.Logits, a.Logits, _targets, N, V);
        Backend.Download<float>(a.Losses, _positionLosses);
        double sum = 0;
        foreach (float loss in _positionLosses) sum += loss;
        return (float)(sum / N);
    }

    public void ZeroGradients() => Backend.Zero(RequireTrainable().GradientMemory);

    /// <summary>Backward pass of the last <see cref="Forward"/> (which must have had targets); accumulates into <see cref="Gradients"/>.</summary>
    public void Backward()
    {
        var g = RequireTrainable().Gradients!;
        var a = _activations ?? throw new InvalidOperationException("Backward needs a Forward with targets first");
        var d = _activationGradients!;
        var p = Parameters;
        int B = a.B, T = a.T, C = Config.Channels, NH = Config.Heads, V = Config.VocabSize, N = B * T;
        d.ZeroAll();

        // The mean loss over N positions: each position's loss has weight 1/N. Logits turn into their gradient in place.
        Backend.SoftmaxCrossEntropyBackward(a.Logits, a.Logits, _targets, N, V, 1f / N);
        Backend.MatmulTransposedBackward(d.LnF, g.Wte, a.Logits, a.LnF, p.Wte, N, C, V);
        Backend.LayerNormBackward(d.Layers[^1].Residual3, g.LnFWeight, g.LnFBias, d.LnF, a.Layers[^1].Residual3, p.LnFWeight, a.LnFMean, a.LnFRstd, N, C);

        for (int l = Config.Layers - 1; l >= 0; l--)
        {
            var w = p.Layers[l];
            var gw = g.Layers[l];
            var x = a.Layers[l];
            var dx = d.Layers[l];
            var residual = l == 0 ? a.Encoded : a.Layers[l - 1].Residual3;
            var dresidual = l == 0 ? d.Encoded : d.Layers[l - 1].Residual3;

            // residual3 = residual2 + fcproj: both receive d(residual3), so it is fcproj's gradient as it stands.
            Backend.Accumulate(dx.Residual2, dx.Residual3, N * C);
            Backend.MatmulBackward(dx.FchGelu, gw.FcProjWeight, gw.FcProjBias, dx.Residual3, x.FchGelu, w.FcProjWeight, N, 4 * C, C);
            Backend.GeluBackward(dx.Fch, x.Fch, dx.FchGelu, N * 4 * C);
            Backend.MatmulBackward(dx.Ln2, gw.FcWeight, gw.FcBias, dx.Fch, x.Ln2, w.FcWeight, N, C, 4 * C);
            Backend.LayerNormBackward(dx.Residual2, gw.Ln2Weight, gw.Ln2Bias, dx.Ln2, x.Residual2, w.Ln2Weight, x.Ln2Mean, x.Ln2Rstd, N, C);
            // residual2 = residual + attproj, likewise.
            Backend.Accumulate(dresidual, dx.Residual2, N * C);
            Backend.MatmulBackward(dx.AttY, gw.AttnProjWeight, gw.AttnProjBias, dx.Residual2, x.AttY, w.AttnProjWeight, N, C, C);
            Backend.AttentionBackward(dx.Qkv, dx.AttY, x.Qkv, x.Att, B, T, C, NH);
            Backend.MatmulBackward(dx.Ln1, gw.QkvWeight, gw.QkvBias, dx.Qkv, x.Ln1, w.QkvWeight, N, C, 3 * C);
            Backend.LayerNormBackward(dresidual, gw.Ln1Weight, gw.Ln1Bias, dx.Ln1, residual, w.Ln1Weight, x.Ln1Mean, x.Ln1Rstd, N, C);
        }
        Backend.EncoderBackward(g.Wte, g.Wpe, d.Encoded, _inputs, B, T, C);
    }

    /// <summary>The global L2 norm of the gradients.</summary>
    public float GradientNorm() => (float)Math.Sqrt(Backend.SumOfSquares(RequireTrainable().GradientMemory));

    /// <summary>One AdamW step (t counts from 1) over every parameter.</summary>
    public void Update(float learningRate, float beta1, float beta2, float eps, float weightDecay, int t)
    {
        RequireTrainable().EnsureOptimizerState();
        Backend.AdamW(ParameterMemory, GradientMemory, _adamM, _adamV, learningRate, beta1, beta2, eps, weightDecay, t);
    }

    /// <summary>The AdamW moments (allocated by the first <see cref="Update"/> or <see cref="AllocateForTraining"/>; none before).</summary>
    public (DeviceBuffer M, DeviceBuffer V) OptimizerState => (_adamM, _adamV);

    /// <summary>Allocates the AdamW moments if needed and fills them (resuming from a checkpoint).</summary>
    public void SetOptimizerState(ReadOnlySpan<float> m, ReadOnlySpan<float> v)
    {
        RequireTrainable().EnsureOptimizerState();
        Backend.Upload(_adamM, m);
        Backend.Upload(_adamV, v);
    }

    /// <summary>
    /// Allocates now everything a training step over B x T positions needs (the activations, their gradients and the
    /// AdamW moments), so that a run too large for the backend's memory fails before its first step, not after it.
    /// </summary>
    internal void AllocateForTraining(int B, int T)
    {
        RequireTrainable().EnsureOptimizerState();
        EnsureActivations(B, T);
    }

    /// <summary>
    /// The bytes that <see cref="AllocateForTraining"/> leaves a trainable model of <paramref name="config"/> holding on its
    /// backend: parameters, gradients and the two AdamW moments (F32), the activations and their gradients, and the I32
    /// inputs and targets. <see cref="long.MaxValue"/> if that does not fit in 64 bits.
    /// </summary>
    internal static long TrainingBytes(Gpt2Config config, int B, int T)
    {
        try
        {
            return checked(sizeof(float) * (4 * config.ParameterCount + 2 * Activations.Count(config, B, T)) + sizeof(int) * 2L * B * T);
        }
        catch (OverflowException)
        {
            return long.MaxValue;
        }
    }

    private void EnsureOptimizerState()
    {
        if (!_adamM.IsNone) return;
        _adamM = Own(Backend.Allocate(Layout.TotalCount));
        _adamV = Own(Backend.Allocate(Layout.TotalCount));
    }

    private Gpt2Model RequireTrainable() => Trainable ? this : throw new InvalidOperationException("this model was loaded for inference; create it with trainable: true");

    private void EnsureActivations(int B, int T)
    {
        if (_activations is not null && _activations.B == B && _activations.T == T) return;
        _activations?.Dispose();
        _activationGradients?.Dispose();
        if (!_inputs.IsNone)
        {
            Backend.Free(_inputs);
            Backend.Free(_targets);
        }
        _activations = new Activations(Backend, Config, B, T);
        _activationGradients = Trainable ? new Activations(Backend, Config, B, T) : null;
        _inputs = Backend.Allocate(B * T, TensorDType.I32);
        _targets = Backend.Allocate(B * T, TensorDType.I32);
        _positionLosses = new float[B * T];
    }

    public void Dispose()
    {
        _activations?.Dispose();
        _activationGradients?.Dispose();
        if (!_inputs.IsNone)
        {
            Backend.Free(_inputs);
            Backend.Free(_targets);
        }
        foreach (var buffer in _owned) Backend.Free(buffer);
        _owned.Clear();
        if (_ownsWeights) _weights.Dispose();
        if (_ownsBackend) Backend.Dispose();
    }
}
