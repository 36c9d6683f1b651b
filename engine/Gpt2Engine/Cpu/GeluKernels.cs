using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Gpt2Engine.Cpu;

/// <summary>
/// GELU in GPT-2's tanh form: forward in one vector pass (with its scalar reference), backward composed of
/// TensorPrimitives passes over L1-sized chunks (the vectorised tanh is what matters: a scalar tanh per element cost
/// as much as the layer's matmuls).
/// </summary>
internal static unsafe class GeluKernels
{
    private static readonly float ScalingFactor = MathF.Sqrt(2f / MathF.PI);
    private const float CubicCoefficient = 0.044715f;
    private const int Chunk = 1024;

    /// <summary>tanh(sqrt(2/pi) (x + 0.044715 x^3)) into <paramref name="result"/>.</summary>
    private static void InnerTanh(ReadOnlySpan<float> x, Span<float> result)
    {
        TensorPrimitives.Multiply(x, x, result);
        TensorPrimitives.Multiply(result, x, result);
        TensorPrimitives.MultiplyAdd(result, CubicCoefficient, x, result);
        TensorPrimitives.Multiply(result, ScalingFactor, result);
        TensorPrimitives.Tanh(result, result);
    }

    /// <summary>
    /// gelu(x) = 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3): one pass, the exponential
    /// in registers (a pass per step through TensorPrimitives cost three times as much).
    /// </summary>
    public static void Forward(float* output, float* input, long N, int threads, SimdLevel level)
    {
        CpuParallel.For((int)((N + Chunk - 1) / Chunk), threads, new ForwardChunks(output, input, N, level));
    }

    /// <summary>Chunks [start, end) of <see cref="Forward(float*, float*, long, int, SimdLevel)"/>.</summary>
    private readonly struct ForwardChunks(float* output, float* input, long N, SimdLevel level) : IRangeBody
    {
        public void Run(int start, int end)
        {
            long offset = (long)start * Chunk;
            int length = (int)(Math.Min(N, (long)end * Chunk) - offset);
            switch (level)
            {
                case SimdLevel.V512: Forward<Ops512, Vector512<float>>(output + offset, input + offset, length); break;
                case SimdLevel.V256: Forward<Ops256, Vector256<float>>(output + offset, input + offset, length); break;
                case SimdLevel.V128: Forward<Ops128, Vector128<float>>(output + offset, input + offset, length); break;
                default: ForwardReference(output + offset, input + offset, length); break;
            }
        }
    }

    private static void Forward<TOps, TV>(float* output, float* input, int length) where TOps : IVectorOps<TV> where TV : unmanaged
    {
        // -2u = x (-2 sqrt(2/pi) - 2 sqrt(2/pi) 0.044715 x^2)
        TV constant = TOps.Broadcast(-2f * ScalingFactor), cubic = TOps.Broadcast(-2f * ScalingFactor * CubicCoefficient), one = TOps.Broadcast(1f);
        int i = 0;
        for (; i <= length - TOps.Count; i += TOps.Count)
        {
            TV x = TOps.Load(input + i);
            TV minusTwoU = TOps.Multiply(x, TOps.MultiplyAdd(TOps.Multiply(x, x), cubic, constant));
            TOps.Store(output + i, TOps.Divide(x, TOps.Add(one, VectorExp.Exp<TOps, TV>(minusTwoU))));
        }
        ForwardReference(output + i, input + i, length - i);
    }

    /// <summary>The scalar reference of <see cref="Forward"/>, and the <see cref="SimdLevel.Scalar"/> path.</summary>
    internal static void ForwardReference(float* output, float* input, int length)
    {
        for (int i = 0; i < length; i++)
        {
            float x = input[i];
            output[i] = x / (1f + MathF.Exp(-2f * ScalingFactor * (x + CubicCoefficient * x * x * x)));
        }
    }

    /// <summary>dinput += gelu'(x) dout, gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2).</summary>
    public static void Backward(float* dinput, float* input, float* dout, long N, int threads)
    {
        CpuParallel.For((int)((N + Chunk - 1) / Chunk), threads, new BackwardChunks(dinput, input, dout, N));
    }

    /// <summary>Chunks [start, end) of <see cref="Backward"/>, one L1-sized chunk at a time.</summary>
    private readonly struct BackwardChunks(float* dinput, float* input, float* dout, long N) : IRangeBody
    {
        public void Run(int start, int end)
        {
            Span<float> tanhBuffer = stackalloc float[Chunk], termBuffer = stackalloc float[Chunk], squareBuffer = stackalloc float[Chunk];
            for (int c = start; c < end; c++)
            {
                long offset = (long)c * Chunk;
                int length = (int)Math.Min(Chunk, N - offset);
                var x = new ReadOnlySpan<float>(input + offset, length);
                var d = new ReadOnlySpan<float>(dout + offset, length);
                var dx = new Span<float>(dinput + offset, length);
                Span<float> t = tanhBuffer[..length], term = termBuffer[..length], square = squareBuffer[..length];
                InnerTanh(x, t);
                // term = 0.5 sqrt(2/pi) x (1 + 3 * 0.044715 x^2), then term (1 - t^2)
                TensorPrimitives.Multiply(x, x, term);
                TensorPrimitives.Multiply(term, 3f * CubicCoefficient * 0.5f * ScalingFactor, term);
                TensorPrimitives.Add(term, 0.5f * ScalingFactor, term);
                TensorPrimitives.Multiply(term, x, term);
                TensorPrimitives.Multiply(t, t, square);
                TensorPrimitives.Multiply(term, square, square);
                TensorPrimitives.Subtract(term, square, term);
                // local = 0.5 (1 + t) + term (1 - t^2); dx += local dout
                TensorPrimitives.Multiply(t, 0.5f, t);
                TensorPrimitives.Add(t, 0.5f, t);
                TensorPrimitives.Add(t, term, t);
                TensorPrimitives.MultiplyAdd(t, d, dx, dx);
            }
        }
    }
}
