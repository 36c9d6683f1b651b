using System.Numerics.Tensors;

namespace Gpt2Engine.Cpu;

/// <summary>
/// Matrix products with weights in the checkpoints' layouts: <see cref="Forward"/> for [C, OC] weights (x @ W),
/// <see cref="ForwardTransposed"/> for the tied head wte [OC, C] (x @ W^T), and their backward passes.
/// </summary>
internal static unsafe class MatmulKernels
{
    private const int ColumnBlock = 256;

    /// <summary>out[N,OC] = inp[N,C] @ weight[C,OC] + bias. Work is split over (row, column block) pairs.</summary>
    public static void Forward(float* output, float* input, float* weight, float* bias, int N, int C, int OC, int threads)
    {
        int blocks = (OC + ColumnBlock - 1) / ColumnBlock;
        CpuParallel.For(N * blocks, threads, (start, end) =>
        {
            for (int unit = start; unit < end; unit++)
            {
                int n = unit / blocks, o0 = unit % blocks * ColumnBlock, width = Math.Min(ColumnBlock, OC - o0);
                var y = new Span<float>(output + (long)n * OC + o0, width);
                if (bias != null) new ReadOnlySpan<float>(bias + o0, width).CopyTo(y);
                else y.Clear();
                float* x = input + (long)n * C;
                for (int c = 0; c < C; c++)
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(weight + (long)c * OC + o0, width), x[c], y, y);
            }
        });
    }

    /// <summary>out[N,OC] = inp[N,C] @ weight[OC,C]^T: each output is a dot product of two contiguous rows.</summary>
    public static void ForwardTransposed(float* output, float* input, float* weight, int N, int C, int OC, int threads)
    {
        CpuParallel.For(OC, threads, (start, end) =>
        {
            for (int n = 0; n < N; n++)
            {
                var x = new ReadOnlySpan<float>(input + (long)n * C, C);
                for (int o = start; o < end; o++)
                    output[(long)n * OC + o] = TensorPrimitives.Dot(x, new ReadOnlySpan<float>(weight + (long)o * C, C));
            }
        });
    }

    /// <summary>dinp += dout @ W^T; dW += inp^T @ dout; dbias += column sums of dout.</summary>
    public static void Backward(float* dinput, float* dweight, float* dbias, float* dout, float* input, float* weight, int N, int C, int OC, int threads)
    {
        CpuParallel.For(N, threads, (start, end) =>
        {
            for (int n = start; n < end; n++)
            {
                var d = new ReadOnlySpan<float>(dout + (long)n * OC, OC);
                float* dx = dinput + (long)n * C;
                for (int c = 0; c < C; c++) dx[c] += TensorPrimitives.Dot(d, new ReadOnlySpan<float>(weight + (long)c * OC, OC));
            }
        });
        CpuParallel.For(C, threads, (start, end) =>
        {
            for (int c = start; c < end; c++)
            {
                var dw = new Span<float>(dweight + (long)c * OC, OC);
                for (int n = 0; n < N; n++)
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(dout + (long)n * OC, OC), input[(long)n * C + c], dw, dw);
            }
        });
        if (dbias != null)
        {
            var db = new Span<float>(dbias, OC);
            for (int n = 0; n < N; n++) TensorPrimitives.Add(db, new ReadOnlySpan<float>(dout + (long)n * OC, OC), db);
        }
    }

    /// <summary>Backward of <see cref="ForwardTransposed"/>: dinp += dout @ W; dW[OC,C] += dout^T @ inp.</summary>
    public static void BackwardTransposed(float* dinput, float* dweight, float* dout, float* input, float* weight, int N, int C, int OC, int threads)
    {
        CpuParallel.For(N, threads, (start, end) =>
        {
            for (int n = start; n < end; n++)
            {
                var dx = new Span<float>(dinput + (long)n * C, C);
                float* d = dout + (long)n * OC;
                for (int o = 0; o < OC; o++)
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(weight + (long)o * C, C), d[o], dx, dx);
            }
        });
        CpuParallel.For(OC, threads, (start, end) =>
        {
            for (int o = start; o < end; o++)
            {
                var dw = new Span<float>(dweight + (long)o * C, C);
                for (int n = 0; n < N; n++)
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(input + (long)n * C, C), dout[(long)n * OC + o], dw, dw);
            }
        });
    }
}
