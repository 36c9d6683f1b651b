using System.Runtime.InteropServices;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Cpu;
using Xunit;

namespace Gpt2Engine.Tests.Cpu;

/// <summary>
/// Every matmul path (matrix-vector and packed GEMM, both B layouts, F32 and BF16 B, transposed A) at every SIMD level,
/// against the scalar reference on odd sizes; and the scalar reference against a float64 loop.
/// </summary>
public sealed unsafe class MatmulKernelTests
{
    /// <summary>
    /// Every SIMD level, not only those this CPU accelerates: .NET runs a vector width the CPU lacks in software, slowly
    /// but with the same results, so a machine without AVX-512 still checks the AVX-512 kernels' logic (their own tile
    /// shape, bf16 widening and tails), though not their speed.
    /// </summary>
    public static TheoryData<SimdLevel> Levels() => new(Enum.GetValues<SimdLevel>());

    private static float[] RandomArray(Random random, int count)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
        return values;
    }

    /// <summary>C (pre-filled) + A @ B in float64: A[i,k] = a[i*ars + k*aks]; B per layout, F32 or bf16 bits.</summary>
    private static double[] Naive(float[] c, float[] a, long ars, long aks, float[] bValues, MatrixLayout layout, long ldb, int M, int N, int K)
    {
        var b = new double[K * N]; // B as [K, N]
        for (int k = 0; k < K; k++)
            for (int j = 0; j < N; j++) b[k * N + j] = bValues[layout == MatrixLayout.KN ? k * ldb + j : j * ldb + k];
        var result = new double[M * N];
        for (int i = 0; i < M; i++)
        {
            var row = result.AsSpan(i * N, N);
            for (int j = 0; j < N; j++) row[j] = c[i * N + j];
            for (int k = 0; k < K; k++)
            {
                double aik = a[i * ars + k * aks];
                var bRow = b.AsSpan(k * N, N);
                for (int j = 0; j < N; j++) row[j] += aik * bRow[j];
            }
        }
        return result;
    }

    private static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, int K, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        // |error| of a float32 dot product of K terms of magnitude <= 1 is well inside K * 2^-22.
        double tolerance = K * 2.5e-7 + 1e-6;
        for (int i = 0; i < actual.Length; i++)
            if (!(Math.Abs(actual[i] - expected[i]) <= tolerance)) Assert.Fail($"{what}: element {i} is {actual[i]}, expected {expected[i]:G9}");
    }

    private static float[] Run(SimdLevel level, float[] c, float[] a, long ars, long aks, Array b, TensorDType bType, MatrixLayout layout, long ldb, int M, int N, int K, int threads)
    {
        var result = (float[])c.Clone();
        var bHandle = GCHandle.Alloc(b, GCHandleType.Pinned);
        try
        {
            fixed (float* pc = result, pa = a)
                MatmulKernels.Gemm(pc, N, pa, ars, aks, (void*)bHandle.AddrOfPinnedObject(), bType, layout, ldb, M, N, K, threads, level);
        }
        finally
        {
            bHandle.Free();
        }
        return result;
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void Gemm_matches_the_float64_loop_on_odd_sizes(SimdLevel level)
    {
        Assert.Equal((16, 6), (MatmulKernels.GemvMaxRows(TensorDType.F32), MatmulKernels.GemvMaxRows(TensorDType.BF16))); // the row counts below straddle both
        var random = new Random(7);
        foreach (int M in (int[])[1, 2, 3, 5, 6, 13, 15, 17, 22]) // the matrix-vector path (fp32 to 15 rows, bf16 to 5), then packed tiles, whole and partial
        foreach (var (N, K) in ((int, int)[])[(67, 37), (130, 129), (17, 300)])
        foreach (var layout in (MatrixLayout[])[MatrixLayout.KN, MatrixLayout.NK])
        foreach (bool transposedA in (bool[])[false, true])
        foreach (bool bf16 in (bool[])[false, true])
            CheckGemm(level, random, M, N, K, layout, transposedA, bf16);
    }

    /// <summary>
    /// C += A @ B on random data through <see cref="MatmulKernels.Gemm"/> (3 threads) against the float64 loop: A
    /// row-major or a transposed view, B in <paramref name="layout"/>, F32 or bf16.
    /// </summary>
    private static void CheckGemm(SimdLevel level, Random random, int M, int N, int K, MatrixLayout layout, bool transposedA, bool bf16)
    {
        float[] c = RandomArray(random, M * N), a = RandomArray(random, M * K), b = RandomArray(random, N * K);
        long ldb = layout == MatrixLayout.KN ? N : K;
        var (ars, aks) = transposedA ? (1L, (long)M) : (K, 1L);
        Array bStored = b;
        if (bf16)
        {
            var bits = Array.ConvertAll(b, BFloat16.FromSingle);
            b = Array.ConvertAll(bits, BFloat16.ToSingle);
            bStored = bits;
        }
        var expected = Naive(c, a, ars, aks, b, layout, ldb, M, N, K);
        string what = $"{level} M={M} N={N} K={K} {layout} transposedA={transposedA} bf16={bf16}";
        AssertClose(Run(level, c, a, ars, aks, bStored, bf16 ? TensorDType.BF16 : TensorDType.F32, layout, ldb, M, N, K, threads: 3), expected, K, what);
    }

    /// <summary>
    /// Few rows against a large weight: a [K, N] one is cut into many small units that the threads share out and take
    /// from each other (<see cref="CpuParallel.ForShares{TBody}"/>), plus rows past the last whole region; an [N, K] one into
    /// chunks of rows, each read as four regions, plus rows past them.
    /// </summary>
    [Theory]
    [MemberData(nameof(Levels))]
    public void Matrix_vector_products_over_many_units_match_the_float64_loop(SimdLevel level)
    {
        var random = new Random(9);
        foreach (var (N, K) in ((int, int)[])[(4099, 203), (2053, 66), (8195, 7)])
        foreach (var layout in (MatrixLayout[])[MatrixLayout.KN, MatrixLayout.NK])
        foreach (int M in (int[])[1, 3, 5, 15])
        foreach (int threads in (int[])[1, 2, 3])
        foreach (bool bf16 in (bool[])[false, true])
        {
            float[] c = RandomArray(random, M * N), a = RandomArray(random, M * K), b = RandomArray(random, N * K);
            Array bStored = b;
            if (bf16)
            {
                var bits = Array.ConvertAll(b, BFloat16.FromSingle);
                b = Array.ConvertAll(bits, BFloat16.ToSingle);
                bStored = bits;
            }
            long ldb = layout == MatrixLayout.KN ? N : K;
            var expected = Naive(c, a, K, 1, b, layout, ldb, M, N, K);
            string what = $"{level} M={M} N={N} K={K} {layout} threads={threads} bf16={bf16}";
            AssertClose(Run(level, c, a, K, 1, bStored, bf16 ? TensorDType.BF16 : TensorDType.F32, layout, ldb, M, N, K, threads), expected, K, what);
        }
    }

    /// <summary>
    /// Thousands of rows against a narrow B (training's wte gradient): B is packed a slab of depth blocks at a time and the
    /// threads split the rows in blocks; the last block, tile and panel are partial and the depth spans two blocks, in one
    /// slab (37 columns) or in two (1,030 columns, whose depth block alone fills a slab).
    /// </summary>
    [Theory]
    [MemberData(nameof(Levels))]
    public void Many_rows_against_a_narrow_matrix_match_the_float64_loop(SimdLevel level)
    {
        var random = new Random(13);
        const int K = 133;
        foreach (var (M, N) in level == SimdLevel.Scalar ? [(2051, 37)] : ((int, int)[])[(2051, 37), (2304, 37), (2051, 1030)])
        foreach (var layout in (MatrixLayout[])[MatrixLayout.KN, MatrixLayout.NK])
        foreach (bool transposedA in N > 100 ? (bool[])[true] : [false, true])
        foreach (bool bf16 in N > 100 ? (bool[])[layout == MatrixLayout.NK] : [false, true])
            CheckGemm(level, random, M, N, K, layout, transposedA, bf16);
    }

    [Fact]
    public void Scalar_reference_matches_the_float64_loop()
    {
        var random = new Random(3);
        const int M = 7, N = 9, K = 31;
        float[] c = RandomArray(random, M * N), a = RandomArray(random, M * K), b = RandomArray(random, K * N);
        var expected = Naive(c, a, K, 1, b, MatrixLayout.KN, N, M, N, K);
        var actual = (float[])c.Clone();
        fixed (float* pc = actual, pa = a, pb = b)
            MatmulKernels.GemmReference(new MatmulKernels.GemmArguments(pc, N, pa, K, 1, pb, MatrixLayout.KN, N, M, N, K), pb, 0, M);
        AssertClose(actual, expected, K, "reference");
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void Backend_matmul_adds_the_bias_and_reads_bf16_weights(SimdLevel level)
    {
        var random = new Random(11);
        const int N = 5, C = 33, OC = 70;
        float[] input = RandomArray(random, N * C), weight = RandomArray(random, C * OC), bias = RandomArray(random, OC);
        ushort[] bits = Array.ConvertAll(weight, BFloat16.FromSingle);
        float[] widened = Array.ConvertAll(bits, BFloat16.ToSingle);
        var expected = Naive(new float[N * OC], input, C, 1, widened, MatrixLayout.KN, OC, N, OC, C);
        for (int i = 0; i < expected.Length; i++) expected[i] += bias[i % OC];
        var output = new float[N * OC];
        fixed (float* po = output, pi = input, pb = bias)
        fixed (ushort* pw = bits)
            MatmulKernels.Forward(po, pi, pw, TensorDType.BF16, pb, N, C, OC, threads: 2, level);
        AssertClose(output, expected, C, $"{level} forward");
    }
}
