using System.Buffers;
using System.Globalization;
using System.Runtime.InteropServices;
using Gpt2Engine.Checkpoints;

namespace Gpt2Engine.Model;

/// <summary>
/// The operations GPT-2 is made of, llm.c style, over <see cref="DeviceBuffer"/>s. <see cref="Gpt2Model"/> is written
/// once against this class; the CPU and CUDA backends implement it. Shapes follow llm.c: B batch, T positions,
/// C channels, NH heads, V vocabulary, N = rows (usually B*T), OC output channels. Matmul weights are [C, OC]
/// (the checkpoints' [in, out] layout) and may be BF16 for inference; everything else is F32.
/// Backward operations ACCUMULATE into their gradient outputs (+=), so a caller zeroes gradients once per step,
/// except <see cref="SoftmaxCrossEntropyBackward"/>, which overwrites. Optional buffers are <c>default</c>.
/// </summary>
public abstract class Backend : IDisposable
{
    public abstract string Name { get; }

    // ---- memory ----

    /// <summary>A new zero-filled buffer of <paramref name="count"/> elements.</summary>
    public abstract DeviceBuffer Allocate(long count, TensorDType dtype = TensorDType.F32);
    public abstract void Free(DeviceBuffer buffer);
    /// <summary>True where a buffer's <see cref="DeviceBuffer.Address"/> is host memory that the process may read (the CPU's).</summary>
    internal virtual bool BuffersAreHostMemory => false;
    /// <summary>
    /// Throws a <see cref="Gpt2Exception"/> ("out of memory: ..." on the CPU, "out of GPU memory: ..." on CUDA) if
    /// <paramref name="bytes"/> more cannot be allocated now, so that work needing them fails before it starts instead of
    /// at its first buffer that does not fit. A backend that cannot tell accepts (the CPU's checks what
    /// <see cref="Allocate"/> checks; CUDA's asks the driver).
    /// </summary>
    internal virtual void RequireAvailable(long bytes, string purpose) { }
    /// <summary>
    /// Memory this backend allocates for itself on the first training step of B x T tokens, beyond the model's buffers
    /// (<see cref="Gpt2Model.TrainingBytes"/>): none on the CPU, CUDA's attention scratch.
    /// </summary>
    internal virtual long TrainingScratchBytes(Gpt2Config config, int B, int T) => 0;

    protected static string Gib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.0} GiB");

    /// <summary>
    /// Writes <paramref name="buffer"/>'s bytes to <paramref name="stream"/>: in place where buffers are host memory, else
    /// downloaded <paramref name="chunkElements"/> at a time, so that a checkpoint of a model trained on a GPU takes no host
    /// copy of it (its parameters and both AdamW moments would take 12 bytes a parameter: 18.7 GB for 1558M).
    /// </summary>
    internal unsafe void WriteTo(Stream stream, DeviceBuffer buffer, int chunkElements = 1 << 22)
    {
        if (BuffersAreHostMemory)
        {
            CheckpointFiles.WriteNative(stream, buffer.Address, buffer.ByteLength);
            return;
        }
        if (buffer.DType != TensorDType.F32) throw new ArgumentException($"only F32 buffers are downloaded in chunks, not {buffer.DType}", nameof(buffer));
        float[] chunk = ArrayPool<float>.Shared.Rent((int)Math.Min(chunkElements, Math.Max(buffer.Count, 1)));
        try
        {
            for (long offset = 0; offset < buffer.Count; offset += chunkElements)
            {
                int n = (int)Math.Min(chunkElements, buffer.Count - offset);
                Download<float>(buffer.Slice(offset, n), chunk.AsSpan(0, n));
                stream.Write(MemoryMarshal.AsBytes(chunk.AsSpan(0, n)));
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(chunk);
        }
    }

    /// <summary>A checkpoint tensor as a buffer this backend can read: the CPU uses the mapping in place, CUDA uploads it.</summary>
    public abstract DeviceBuffer UseWeights(TensorView view);
    public abstract void Upload<T>(DeviceBuffer destination, ReadOnlySpan<T> source) where T : unmanaged;
    public abstract void Download<T>(DeviceBuffer source, Span<T> destination) where T : unmanaged;
    public abstract void Copy(DeviceBuffer destination, DeviceBuffer source);
    public abstract void Zero(DeviceBuffer buffer);
    /// <summary>Waits until every operation issued so far has finished (a no-op on the CPU).</summary>
    public virtual void Synchronize() { }

    /// <summary>
    /// Prepares the operations that inference runs on matmul weights of <paramref name="weightType"/>, so that the first
    /// prompt does not pay for it (the CPU backend compiles its kernels; others have nothing to do). Safe to run on
    /// another thread while the model is in use.
    /// </summary>
    public virtual void WarmUp(TensorDType weightType) { }

    // ---- forward ----

    /// <summary>output[B,T,C] = wte[tokens[b,t]] + wpe[position0 + t]; tokens is I32 [B,T].</summary>
    public abstract void Encoder(DeviceBuffer output, DeviceBuffer tokens, DeviceBuffer wte, DeviceBuffer wpe, int B, int T, int C, int position0);
    /// <summary>Per row of C: normalise (biased variance, eps 1e-5), scale, shift. mean/rstd [N] are saved for backward when given.</summary>
    public abstract void LayerNorm(DeviceBuffer output, DeviceBuffer mean, DeviceBuffer rstd, DeviceBuffer input, DeviceBuffer weight, DeviceBuffer bias, int N, int C);
    /// <summary>output[N,OC] = input[N,C] @ weight[C,OC] + bias[OC] (bias optional; weight F32 or BF16).</summary>
    public abstract void Matmul(DeviceBuffer output, DeviceBuffer input, DeviceBuffer weight, DeviceBuffer bias, int N, int C, int OC);
    /// <summary>output[N,OC] = input[N,C] @ weight[OC,C]^T: the output head tied to wte[V,C].</summary>
    public abstract void MatmulTransposed(DeviceBuffer output, DeviceBuffer input, DeviceBuffer weight, int N, int C, int OC);
    /// <summary>Causal self-attention over qkv[B,T,3C] (q|k|v, heads contiguous): output[B,T,C]; att[B,NH,T,T] keeps the softmax for backward.</summary>
    public abstract void Attention(DeviceBuffer output, DeviceBuffer att, DeviceBuffer qkv, int B, int T, int C, int NH);
    /// <summary>
    /// Incremental attention: qkv[B,T,3C] holds positions position0..position0+T-1. Their keys and values are
    /// written into keyCache/valueCache (B x maxT x C floats each, laid out as the backend likes: only this operation
    /// reads them) first; each query then attends to cache positions 0..its own.
    /// </summary>
    public abstract void AttentionCached(DeviceBuffer output, DeviceBuffer qkv, DeviceBuffer keyCache, DeviceBuffer valueCache, int B, int T, int position0, int maxT, int C, int NH);
    /// <summary>GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).</summary>
    public abstract void Gelu(DeviceBuffer output, DeviceBuffer input, int N);
    /// <summary>output = a + b, N elements.</summary>
    public abstract void Residual(DeviceBuffer output, DeviceBuffer a, DeviceBuffer b, int N);
    /// <summary>probs[N,V] = softmax(logits) (probs may be logits itself); losses[N] = -log probs[target] (I32 targets [N]).</summary>
    public abstract void SoftmaxCrossEntropy(DeviceBuffer losses, DeviceBuffer probs, DeviceBuffer logits, DeviceBuffer targets, int N, int V);

    // ---- backward (accumulating) ----

    public abstract void EncoderBackward(DeviceBuffer dwte, DeviceBuffer dwpe, DeviceBuffer dout, DeviceBuffer tokens, int B, int T, int C);
    public abstract void LayerNormBackward(DeviceBuffer dinput, DeviceBuffer dweight, DeviceBuffer dbias, DeviceBuffer dout, DeviceBuffer input, DeviceBuffer weight, DeviceBuffer mean, DeviceBuffer rstd, int N, int C);
    /// <summary>dinput += dout @ weight^T; dweight += input^T @ dout; dbias += column sums of dout (optional).</summary>
    public abstract void MatmulBackward(DeviceBuffer dinput, DeviceBuffer dweight, DeviceBuffer dbias, DeviceBuffer dout, DeviceBuffer input, DeviceBuffer weight, int N, int C, int OC);
    /// <summary>Backward of <see cref="MatmulTransposed"/>: dinput += dout @ weight; dweight[OC,C] += dout^T @ input.</summary>
    public abstract void MatmulTransposedBackward(DeviceBuffer dinput, DeviceBuffer dweight, DeviceBuffer dout, DeviceBuffer input, DeviceBuffer weight, int N, int C, int OC);
    public abstract void AttentionBackward(DeviceBuffer dqkv, DeviceBuffer dout, DeviceBuffer qkv, DeviceBuffer att, int B, int T, int C, int NH);
    public abstract void GeluBackward(DeviceBuffer dinput, DeviceBuffer input, DeviceBuffer dout, int N);
    /// <summary>destination += source (the backward of a residual add).</summary>
    public abstract void Accumulate(DeviceBuffer destination, DeviceBuffer source, int N);
    /// <summary>dlogits[N,V] = (probs - onehot(target)) * scale; overwrites, and dlogits may be probs itself.</summary>
    public abstract void SoftmaxCrossEntropyBackward(DeviceBuffer dlogits, DeviceBuffer probs, DeviceBuffer targets, int N, int V, float scale);

    // ---- optimizer ----

    /// <summary>
    /// One AdamW step over Count elements, as torch.optim.AdamW: bias-corrected moments (step t starts at 1),
    /// decoupled weight decay: p -= lr * (m_hat / (sqrt(v_hat) + eps) + weightDecay * p).
    /// </summary>
    public abstract void AdamW(DeviceBuffer parameters, DeviceBuffer gradients, DeviceBuffer m, DeviceBuffer v, float learningRate, float beta1, float beta2, float eps, float weightDecay, int t);
    /// <summary>The sum of squares of every element, accumulated in float64 (for clipping by global norm).</summary>
    public abstract double SumOfSquares(DeviceBuffer buffer);
    public abstract void Scale(DeviceBuffer buffer, float factor);

    public virtual void Dispose() => GC.SuppressFinalize(this);
}
