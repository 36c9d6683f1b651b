using Gpt2Engine.Cpu;
using Xunit;

namespace Gpt2Engine.Tests.Cpu;

/// <summary>One query's attention (scores, softmax, weighted values) at every SIMD level, against a float64 loop, on odd head sizes.</summary>
public sealed unsafe class AttentionKernelTests
{
    [Theory]
    [MemberData(nameof(MatmulKernelTests.Levels), MemberType = typeof(MatmulKernelTests))]
    public void Attend_one_matches_float64_softmax_attention(SimdLevel level)
    {
        var random = new Random(7);
        foreach (int headSize in (int[])[1, 7, 16, 19, 64, 67])
        foreach (int last in (int[])[0, 1, 5, 40])
        {
            int stride = headSize + 3; // rows wider than a head, as heads sit side by side in a cache row
            var query = Enumerable.Range(0, headSize).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            var keys = Enumerable.Range(0, (last + 1) * stride).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            var values = Enumerable.Range(0, (last + 1) * stride).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            float scale = 1f / MathF.Sqrt(headSize);

            var scores = new double[last + 1];
            for (int t = 0; t <= last; t++)
            {
                double dot = 0;
                for (int i = 0; i < headSize; i++) dot += (double)query[i] * keys[t * stride + i];
                scores[t] = dot * scale;
            }
            double max = scores.Max(), sum = scores.Sum(s => Math.Exp(s - max));
            var probabilities = scores.Select(s => Math.Exp(s - max) / sum).ToArray();
            var expected = new double[headSize];
            for (int i = 0; i < headSize; i++)
                for (int t = 0; t <= last; t++) expected[i] += probabilities[t] * values[t * stride + i];

            var output = new float[headSize];
            var att = new float[last + 1];
            fixed (float* o = output, a = att, q = query, k = keys, v = values)
                AttentionKernels.AttendOne(level, o, a, q, k, v, stride, last, headSize, scale);

            for (int t = 0; t <= last; t++)
                Assert.True(Math.Abs(att[t] - probabilities[t]) <= 1e-6, $"{level} head {headSize} last {last}: att[{t}] = {att[t]}, expected {probabilities[t]:G9}");
            for (int i = 0; i < headSize; i++)
                Assert.True(Math.Abs(output[i] - expected[i]) <= 1e-5, $"{level} head {headSize} last {last}: y[{i}] = {output[i]}, expected {expected[i]:G9}");
        }
    }

    /// <summary>
    /// The full forward (training, scoring) equals the scalar path, one query at a time through
    /// <see cref="AttentionKernels.AttendOneReference"/>: outputs and the kept softmax rows (zero after each query's
    /// position), for a short sequence (query by query) and a long one (three blocks of queries through two GEMMs).
    /// </summary>
    [Theory]
    [MemberData(nameof(MatmulKernelTests.Levels), MemberType = typeof(MatmulKernelTests))]
    public void Forward_matches_the_per_query_reference(SimdLevel level)
    {
        var random = new Random(5);
        const int B = 2, NH = 3, headSize = 19, C = NH * headSize;
        foreach (int T in (int[])[17, 150])
        foreach (int threads in (int[])[1, 2])
        {
            var qkv = Enumerable.Range(0, B * T * 3 * C).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
            (float[] Output, float[] Att) Run(SimdLevel at)
            {
                var output = new float[B * T * C];
                var att = Enumerable.Repeat(float.NaN, B * NH * T * T).ToArray(); // every entry must be written
                fixed (float* o = output, a = att, q = qkv)
                    AttentionKernels.Forward(o, a, q, B, T, C, NH, threads, at);
                return (output, att);
            }
            var expected = Run(SimdLevel.Scalar);
            var actual = Run(level);
            for (int i = 0; i < expected.Att.Length; i++)
                Assert.True(Math.Abs(actual.Att[i] - expected.Att[i]) <= 1e-6, $"{level} T {T} threads {threads}: att[{i}] = {actual.Att[i]}, expected {expected.Att[i]}");
            for (int i = 0; i < expected.Output.Length; i++)
                Assert.True(Math.Abs(actual.Output[i] - expected.Output[i]) <= 2e-6, $"{level} T {T} threads {threads}: y[{i}] = {actual.Output[i]}, expected {expected.Output[i]}");
        }
    }

    /// <summary>
    /// Attention through the cache equals the scalar path, one query and head at a time through
    /// <see cref="AttentionKernels.AttendOneReference"/>, on odd shapes: decoding one position per sequence (each part's
    /// heads read side by side) and prompts of several positions (a head at a time: up to 128 query by query, longer
    /// ones in blocks of 64 queries through two GEMMs, here three blocks).
    /// </summary>
    [Theory]
    [MemberData(nameof(MatmulKernelTests.Levels), MemberType = typeof(MatmulKernelTests))]
    public void Cached_attention_matches_the_per_head_reference(SimdLevel level)
    {
        var random = new Random(11);
        const int B = 2, NH = 3, headSize = 19, C = NH * headSize, maxT = 170;
        foreach (int T in (int[])[1, 3, 17, 150])
        foreach (int position0 in (int[])[0, 4, 70, 150])
        foreach (int threads in (int[])[1, 2, 3])
        {
            if (position0 + T > maxT) continue;
            var keyCache = Enumerable.Range(0, B * maxT * C).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
            var valueCache = Enumerable.Range(0, B * maxT * C).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            var qkv = Enumerable.Range(0, B * T * 3 * C).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
            float[] Run(SimdLevel at)
            {
                var output = new float[B * T * C];
                var keys = (float[])keyCache.Clone();
                var values = (float[])valueCache.Clone();
                fixed (float* o = output, q = qkv, k = keys, v = values)
                    AttentionKernels.ForwardCached(o, q, k, v, B, T, position0, maxT, C, NH, threads, at);
                return output;
            }
            var expected = Run(SimdLevel.Scalar);
            var actual = Run(level);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(actual[i] - expected[i]) <= 2e-6, $"{level} T {T} position {position0} threads {threads}: y[{i}] = {actual[i]}, expected {expected[i]}");
        }
    }
}
