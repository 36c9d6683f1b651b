using System.Numerics.Tensors;

namespace Gpt2Engine.Cpu;

/// <summary>
/// Causal multi-head self-attention over qkv rows laid out q | k | v (C each, heads contiguous inside each), forward
/// (keeping the softmax for backward), incremental through a KV cache, and backward.
/// </summary>
internal static unsafe class AttentionKernels
{
    /// <summary>One query against keys 0..last: fills att[0..last] with the softmax and writes the weighted values to output.</summary>
    private static void AttendOne(float* output, float* att, float* query, float* keys, float* values, long rowStride, int last, int headSize, float scale)
    {
        var q = new ReadOnlySpan<float>(query, headSize);
        var scores = new Span<float>(att, last + 1);
        for (int t2 = 0; t2 <= last; t2++) scores[t2] = TensorPrimitives.Dot(q, new ReadOnlySpan<float>(keys + t2 * rowStride, headSize)) * scale;
        TensorPrimitives.Subtract(scores, TensorPrimitives.Max(scores), scores);
        TensorPrimitives.Exp(scores, scores);
        TensorPrimitives.Multiply(scores, 1f / TensorPrimitives.Sum(scores), scores);
        var y = new Span<float>(output, headSize);
        y.Clear();
        for (int t2 = 0; t2 <= last; t2++) TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(values + t2 * rowStride, headSize), scores[t2], y, y);
    }

    public static void Forward(float* output, float* att, float* qkv, int B, int T, int C, int NH, int threads)
    {
        int hs = C / NH;
        float scale = 1f / MathF.Sqrt(hs);
        CpuParallel.For(B * NH * T, threads, (start, end) =>
        {
            for (int unit = start; unit < end; unit++)
            {
                int t = unit % T, h = unit / T % NH, b = unit / T / NH;
                float* rows = qkv + (long)b * T * 3 * C;
                float* attRow = att + (((long)b * NH + h) * T + t) * T;
                AttendOne(output + ((long)b * T + t) * C + h * hs, attRow, rows + (long)t * 3 * C + h * hs,
                    rows + C + h * hs, rows + 2 * C + h * hs, 3 * C, t, hs, scale);
                for (int t2 = t + 1; t2 < T; t2++) attRow[t2] = 0f;
            }
        });
    }

    public static void ForwardCached(float* output, float* qkv, float* keyCache, float* valueCache, int B, int T, int position0, int maxT, int C, int NH, int threads)
    {
        int hs = C / NH;
        float scale = 1f / MathF.Sqrt(hs);
        for (int b = 0; b < B; b++)
        {
            for (int t = 0; t < T; t++)
            {
                float* row = qkv + ((long)b * T + t) * 3 * C;
                long slot = ((long)b * maxT + position0 + t) * C;
                new ReadOnlySpan<float>(row + C, C).CopyTo(new Span<float>(keyCache + slot, C));
                new ReadOnlySpan<float>(row + 2 * C, C).CopyTo(new Span<float>(valueCache + slot, C));
            }
        }
        int positions = position0 + T;
        CpuParallel.For(B * NH * T, threads, (start, end) =>
        {
            // GPT-2's context (1024 positions) fits on the stack: no allocation per token.
            Span<float> scores = positions <= 4096 ? stackalloc float[positions] : new float[positions];
            fixed (float* scoresPointer = scores)
            {
                for (int unit = start; unit < end; unit++)
                {
                    int t = unit % T, h = unit / T % NH, b = unit / T / NH;
                    float* query = qkv + ((long)b * T + t) * 3 * C + h * hs;
                    long cacheBase = (long)b * maxT * C + h * hs;
                    AttendOne(output + ((long)b * T + t) * C + h * hs, scoresPointer, query, keyCache + cacheBase, valueCache + cacheBase, C, position0 + t, hs, scale);
                }
            }
        });
    }

    public static void Backward(float* dqkv, float* dout, float* qkv, float* att, int B, int T, int C, int NH, int threads)
    {
        int hs = C / NH;
        float scale = 1f / MathF.Sqrt(hs);
        // Each (batch, head) owns its slices of dq, dk, dv across all positions, so it is the unit of parallel work.
        CpuParallel.For(B * NH, threads, (start, end) =>
        {
            float[] dattArray = new float[T], dpreattArray = new float[T];
            fixed (float* datt = dattArray, dpreatt = dpreattArray)
            {
                for (int unit = start; unit < end; unit++)
                {
                    int h = unit % NH, b = unit / NH;
                    float* rows = qkv + (long)b * T * 3 * C, drows = dqkv + (long)b * T * 3 * C;
                    for (int t = 0; t < T; t++)
                    {
                        float* attRow = att + (((long)b * NH + h) * T + t) * T;
                        float* dy = dout + ((long)b * T + t) * C + h * hs;
                        float* q = rows + (long)t * 3 * C + h * hs, dq = drows + (long)t * 3 * C + h * hs;
                        // out = sum att * v  →  datt, dv
                        var dyHead = new ReadOnlySpan<float>(dy, hs);
                        for (int t2 = 0; t2 <= t; t2++)
                        {
                            long v = (long)t2 * 3 * C + 2 * C + h * hs;
                            datt[t2] = TensorPrimitives.Dot(new ReadOnlySpan<float>(rows + v, hs), dyHead);
                            var dv = new Span<float>(drows + v, hs);
                            TensorPrimitives.MultiplyAdd(dyHead, attRow[t2], dv, dv);
                        }
                        // softmax backward: dpreatt = att * (datt - sum(att * datt)) * scale
                        var attSpan = new ReadOnlySpan<float>(attRow, t + 1);
                        var dpre = new Span<float>(dpreatt, t + 1);
                        TensorPrimitives.Subtract(new ReadOnlySpan<float>(datt, t + 1), TensorPrimitives.Dot(attSpan, new ReadOnlySpan<float>(datt, t + 1)), dpre);
                        TensorPrimitives.Multiply(dpre, attSpan, dpre);
                        TensorPrimitives.Multiply(dpre, scale, dpre);
                        // preatt = q . k * scale  →  dq, dk
                        var qHead = new ReadOnlySpan<float>(q, hs);
                        var dqHead = new Span<float>(dq, hs);
                        for (int t2 = 0; t2 <= t; t2++)
                        {
                            long k = (long)t2 * 3 * C + C + h * hs;
                            float g = dpreatt[t2];
                            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(rows + k, hs), g, dqHead, dqHead);
                            var dk = new Span<float>(drows + k, hs);
                            TensorPrimitives.MultiplyAdd(qHead, g, dk, dk);
                        }
                    }
                }
            }
        });
    }
}
