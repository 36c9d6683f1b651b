using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Gpt2Engine.Checkpoints;

namespace Gpt2Engine.Cpu;

/// <summary>How a matrix B[K, N] is stored: row-major [K, N] (a [in, out] weight) or row-major [N, K] (wte, or a weight read transposed).</summary>
internal enum MatrixLayout { KN, NK }

/// <summary>
/// Matrix products. One row (batch-1 decode), or a few (<see cref="GemvMaxRows"/>: a batch of samples), is a
/// bandwidth-bound matrix-vector product that streams the weights once, in place (F32 or BF16),
/// <see cref="GemvStreams"/> far-apart rows at a time: an [in, out] weight split over its depth across threads, wte
/// over its rows. More rows are a compute-bound GEMM: B is packed
/// <see cref="DepthBlock"/> rows at a time into panels <see cref="TileVectors{TOps, TV}"/> vectors wide, a group of
/// panels at a time (converting layout and bf16 on the way, so the kernel sees one format; the next block's weights
/// are prefetched meanwhile), and a register-blocked micro-kernel keeps a <see cref="TileRows"/>-row tile of C in
/// registers. Threads split B's groups of column panels; with many rows of A (<see cref="ManyRows"/>), B is packed in
/// slabs of depth blocks instead and threads split A's rows. Every path has the scalar <see cref="GemmReference"/>
/// beside it, which is also the <see cref="SimdLevel.Scalar"/> path.
/// </summary>
internal static unsafe class MatmulKernels
{
    /// <summary>Rows of the micro-kernel's tile; depth steps packed at a time.</summary>
    private const int TileRows = 4, DepthBlock = 128;
    /// <summary>Column chunk the matrix-vector products split across threads: a multiple of every vector width and a cache line.</summary>
    private const int GemvChunk = 64;
    /// <summary>Weight streams a matrix-vector pass reads side by side, each from its own region of the matrix.</summary>
    private const int GemvStreams = 4;
    /// <summary>Weight bytes in one unit of work that threads claim in a matrix-vector product over a [K, N] weight.</summary>
    private const long GemvUnitBytes = 128 << 10;
    /// <summary>
    /// Fewer rows than this stream B once and apply each piece of it to every row while it is in cache (the
    /// matrix-vector path), rather than packing B for the micro-kernel: 16 for fp32 weights, 6 for bf16, whose packing
    /// reads half the bytes and so wins sooner (with many rows the path is bound by its passes over cached weights).
    /// Decoding a batch of samples is where it tells (A B B A, 2 threads, the path forced
    /// either way): 124M fp32, 48 steps, 8 samples 2.17-2.30 s against 2.76-3.23 packed, 15 samples 3.61-4.12 against
    /// 3.78-4.23, 16 samples 3.88-4.32 against 3.65-4.23; 124M bf16, 32 steps, 4 samples 1.01-1.15 s against
    /// 1.37-1.52, 6 samples 1.37-1.57 against 1.43-1.71, 8 samples 1.43-2.17 against 1.55-1.68; 1558M bf16, 7 steps,
    /// 8 samples 3.85-4.58 s against 3.40-3.70.
    /// </summary>
    internal static int GemvMaxRows(TensorDType weights) => weights == TensorDType.BF16 ? 6 : 16;
    /// <summary>Bytes of an [N, K] weight that the matrix-vector path applies to every row before the next: L2-sized.</summary>
    private const long GemvBlockBytes = 256 << 10;

    /// <summary>
    /// A product with at least this many rows (prompts and batches of 512 tokens or more; training's wte gradient, 50,257)
    /// and a B narrow enough that a depth block of all of it packs into <see cref="SlabBytes"/> packs B a slab of depth
    /// blocks at a time, all columns, and threads split A's rows (<see cref="GemmRowBlocks{TOps, TV}"/>). On AVX2 the
    /// 124M shapes ran 3-20% faster so from 512 rows (2-3x for the wte gradient), and slower at 256 (768 x 2304: 145
    /// against 162 GFLOP/s in groups of panels).
    /// </summary>
    internal const int ManyRows = 512;
    private const int RowBlock = 128; // rows of A a thread takes at a time against a slab
    private const long SlabBytes = 2 << 20;

    [ThreadStatic] private static ScratchBuffer _packScratch; // one packed group of panels + one edge tile per thread
    [ThreadStatic] private static ScratchBuffer _slab; // the calling thread's packed slab of B for GemmRowBlocks

    // ---------------------------------------------------------------- the backend's operations

    /// <summary>out[N,OC] = inp[N,C] @ weight[C,OC] + bias (weight F32 or BF16).</summary>
    public static void Forward(float* output, float* input, void* weight, TensorDType weightType, float* bias, int N, int C, int OC, int threads, SimdLevel level)
    {
        for (int n = 0; n < N; n++)
        {
            var row = new Span<float>(output + (long)n * OC, OC);
            if (bias != null) new ReadOnlySpan<float>(bias, OC).CopyTo(row);
            else row.Clear();
        }
        Gemm(output, OC, input, C, 1, weight, weightType, MatrixLayout.KN, OC, N, OC, C, threads, level);
    }

    /// <summary>out[N,OC] = inp[N,C] @ weight[OC,C]^T (the tied head over wte; F32 or BF16).</summary>
    public static void ForwardTransposed(float* output, float* input, void* weight, TensorDType weightType, int N, int C, int OC, int threads, SimdLevel level)
    {
        new Span<float>(output, checked(N * OC)).Clear();
        Gemm(output, OC, input, C, 1, weight, weightType, MatrixLayout.NK, C, N, OC, C, threads, level);
    }

    /// <summary>dinp += dout @ W^T; dW += inp^T @ dout; dbias += column sums of dout (W [C,OC], F32).</summary>
    public static void Backward(float* dinput, float* dweight, float* dbias, float* dout, float* input, float* weight, int N, int C, int OC, int threads, SimdLevel level)
    {
        Gemm(dinput, C, dout, OC, 1, weight, TensorDType.F32, MatrixLayout.NK, OC, N, C, OC, threads, level);
        Gemm(dweight, OC, input, 1, C, dout, TensorDType.F32, MatrixLayout.KN, OC, C, OC, N, threads, level);
        if (dbias != null)
        {
            var db = new Span<float>(dbias, OC);
            for (int n = 0; n < N; n++) TensorPrimitives.Add(db, new ReadOnlySpan<float>(dout + (long)n * OC, OC), db);
        }
    }

    /// <summary>Backward of <see cref="ForwardTransposed"/>: dinp += dout @ W; dW[OC,C] += dout^T @ inp (F32).</summary>
    public static void BackwardTransposed(float* dinput, float* dweight, float* dout, float* input, float* weight, int N, int C, int OC, int threads, SimdLevel level)
    {
        Gemm(dinput, C, dout, OC, 1, weight, TensorDType.F32, MatrixLayout.KN, C, N, C, OC, threads, level);
        Gemm(dweight, C, dout, 1, OC, input, TensorDType.F32, MatrixLayout.KN, C, OC, C, N, threads, level);
    }

    // ---------------------------------------------------------------- C += A @ B

    /// <summary>
    /// c[M,N] (row stride ldc) += A[M,K] @ B[K,N], where A[i,k] = a[i*aRowStride + k*aDepthStride] (so A may be a
    /// transposed view) and B is F32 or BF16 in <paramref name="layout"/> with row stride ldb.
    /// </summary>
    public static void Gemm(float* c, long ldc, float* a, long aRowStride, long aDepthStride, void* b, TensorDType bType, MatrixLayout layout, long ldb,
        int M, int N, int K, int threads, SimdLevel level)
    {
        if (M <= 0 || N <= 0 || K <= 0) return;
        if (bType is not (TensorDType.F32 or TensorDType.BF16)) throw new NotSupportedException($"matmul: {bType} weights are not supported by the CPU backend");
        var job = new GemmArguments(c, ldc, a, aRowStride, aDepthStride, b, layout, ldb, M, N, K);
        bool bf16 = bType == TensorDType.BF16;
        switch (level)
        {
            case SimdLevel.V512 when bf16: Run<Ops512, Vector512<float>, ushort>(job, threads); break;
            case SimdLevel.V512: Run<Ops512, Vector512<float>, float>(job, threads); break;
            case SimdLevel.V256 when bf16: Run<Ops256, Vector256<float>, ushort>(job, threads); break;
            case SimdLevel.V256: Run<Ops256, Vector256<float>, float>(job, threads); break;
            case SimdLevel.V128 when bf16: Run<Ops128, Vector128<float>, ushort>(job, threads); break;
            case SimdLevel.V128: Run<Ops128, Vector128<float>, float>(job, threads); break;
            default:
                if (bf16) CpuParallel.For(M, threads, new ReferenceRows<ushort>(job));
                else CpuParallel.For(M, threads, new ReferenceRows<float>(job));
                break;
        }
    }

    /// <summary>Rows [start, end) of C through <see cref="GemmReference"/>.</summary>
    private readonly struct ReferenceRows<TW>(GemmArguments g) : IRangeBody where TW : unmanaged
    {
        public void Run(int start, int end) => GemmReference(g, (TW*)g.B, start, end);
    }

    /// <summary>One C += A @ B problem (see <see cref="Gemm"/>).</summary>
    internal readonly struct GemmArguments(float* c, long ldc, float* a, long aRowStride, long aDepthStride, void* b, MatrixLayout layout, long ldb, int m, int n, int k)
    {
        public readonly float* C = c, A = a;
        public readonly void* B = b;
        public readonly long Ldc = ldc, ARowStride = aRowStride, ADepthStride = aDepthStride, Ldb = ldb;
        public readonly MatrixLayout Layout = layout;
        public readonly int M = m, N = n, K = k;

        public float AAt(long i, long k) => A[i * ARowStride + k * ADepthStride];
        public long BIndex(long k, long j) => Layout == MatrixLayout.KN ? k * Ldb + j : j * Ldb + k;
    }

    /// <summary>The scalar reference: rows [rowStart, rowEnd) of C += A @ B, one dot product at a time.</summary>
    internal static void GemmReference<TW>(GemmArguments g, TW* b, int rowStart, int rowEnd) where TW : unmanaged
    {
        for (int i = rowStart; i < rowEnd; i++)
        {
            for (int j = 0; j < g.N; j++)
            {
                float sum = 0f;
                for (int k = 0; k < g.K; k++) sum += g.AAt(i, k) * BFloat16.Read(b, g.BIndex(k, j));
                g.C[i * g.Ldc + j] += sum;
            }
        }
    }

    /// <summary>
    /// Vectors across the micro-kernel's tile. Its accumulators, a row of the packed panel and a broadcast of A must all
    /// stay in registers: AVX-512 has 32 (4 x 4 vectors: 16 accumulators), AVX2 and SSE 16 (4 x 3: 12). On AVX2 a
    /// 4 x 4 tile spilled to the stack, and 6 x 2 (12 accumulators, but a broadcast per two multiply-adds) ran the 124M
    /// prompt's matmuls 2-6% slower than 4 x 3.
    /// </summary>
    private static int TileVectors<TOps, TV>() where TOps : IVectorOps<TV> where TV : unmanaged => typeof(TV) == typeof(Vector512<float>) ? 4 : 3;

    private static void Run<TOps, TV, TW>(GemmArguments g, int threads) where TOps : IVectorOps<TV> where TV : unmanaged where TW : unmanaged
    {
        // Few rows: stream B once, each piece applied to every row from cache, instead of packing it.
        if (g.M < GemvMaxRows(typeof(TW) == typeof(ushort) ? TensorDType.BF16 : TensorDType.F32) && (g.Layout == MatrixLayout.KN || g.ADepthStride == 1))
        {
            if (g.Layout == MatrixLayout.KN) GemvSplitDepth<TOps, TV, TW>(g, threads);
            else CpuParallel.For((g.N + GemvChunk - 1) / GemvChunk, threads, new GemvColumnChunks<TOps, TV, TW>(g));
            return;
        }
        if (g.ADepthStride != 1) g = WithContiguousA(g, threads);
        int width = TileVectors<TOps, TV>() * TOps.Count;
        int panels = (g.N + width - 1) / width, tiles = (g.M + TileRows - 1) / TileRows;
        long blockFloats = (long)panels * DepthBlock * width; // one depth block of every panel, packed
        if (g.M >= ManyRows && blockFloats * sizeof(float) <= SlabBytes)
        {
            int depthBlocks = (g.K + DepthBlock - 1) / DepthBlock;
            int slabBlocks = (int)Math.Min(depthBlocks, SlabBytes / (blockFloats * sizeof(float)));
            float* packed = _slab.Get(slabBlocks * blockFloats);
            for (int first = 0; first < depthBlocks; first += slabBlocks)
            {
                int blocks = Math.Min(slabBlocks, depthBlocks - first);
                for (int block = 0; block < blocks; block++)
                {
                    int k0 = (first + block) * DepthBlock;
                    Pack<TOps, TV, TW>(packed + block * blockFloats, g, k0, Math.Min(DepthBlock, g.K - k0), 0, g.N, width);
                }
                CpuParallel.ForShares((g.M + RowBlock - 1) / RowBlock, threads, new GemmRowBlocks<TOps, TV>(g, packed, width, panels, first, blocks));
            }
            return;
        }
        int group = PanelsPerGroup(width * sizeof(TW)), groups = (panels + group - 1) / group;
        // Groups in shares: a thread's groups follow one another (the prefetch in the body fetches the next one), and
        // the operation ends within one group of its earliest finish however unevenly the threads run.
        CpuParallel.ForShares(groups, threads, new GemmGroups<TOps, TV, TW>(g, width, group, panels, tiles));
    }

    /// <summary>
    /// Panels packed together: the fewest whose strip of a weight row is whole cache lines, two lines at least (AVX2: 2
    /// fp32 or 4 bf16 panels, 192 bytes; AVX-512: one panel, 256 or 128 bytes). A panel's own strip on AVX2 (96 or 48
    /// bytes) shares a line with its neighbour's, which would read it again from memory long after (the prompt's
    /// matmuls ran 8-12% faster in groups).
    /// </summary>
    private static int PanelsPerGroup(int panelBytes)
    {
        int group = 1;
        while (group * panelBytes % 64 != 0 || group * panelBytes < 128) group++;
        return group;
    }

    /// <summary>
    /// Column chunks [start, end) (of <see cref="GemvChunk"/>) of C for few rows and an [N, K] B. One row reads the whole
    /// range as four long streams; several rows take it <see cref="GemvBlockBytes"/> at a time, every row before the
    /// next block, so that B is read from memory once (row by row over the whole range, wte's quarter is 10-40 MB
    /// and was read again for every row).
    /// </summary>
    private readonly struct GemvColumnChunks<TOps, TV, TW>(GemmArguments g) : IRangeBody
        where TOps : IVectorOps<TV> where TV : unmanaged where TW : unmanaged
    {
        public void Run(int start, int end)
        {
            if (g.M == 1)
            {
                GemvNK<TOps, TV, TW>(g.C, g.A, (TW*)g.B, g.Ldb, g.K, start * GemvChunk, Math.Min(g.N, end * GemvChunk));
                return;
            }
            int step = (int)Math.Max(1, GemvBlockBytes / ((long)GemvChunk * g.K * sizeof(TW)));
            for (int chunk = start; chunk < end; chunk += step)
            {
                int j0 = chunk * GemvChunk, j1 = Math.Min(g.N, Math.Min(end, chunk + step) * GemvChunk);
                for (int i = 0; i < g.M; i++)
                    GemvNK<TOps, TV, TW>(g.C + i * g.Ldc, g.A + i * g.ARowStride, (TW*)g.B, g.Ldb, g.K, j0, j1);
            }
        }
    }

    /// <summary>
    /// One group of column panels of C (all rows): the group's B packed a depth block at a time, then the micro-kernel
    /// over each panel's row tiles.
    /// </summary>
    private readonly struct GemmGroups<TOps, TV, TW>(GemmArguments g, int width, int group, int panels, int tiles) : IShareBody
        where TOps : IVectorOps<TV> where TV : unmanaged where TW : unmanaged
    {
        public void Run(int slot, int unit)
        {
            float* packed = _packScratch.Get((DepthBlock * group + TileRows) * width), tile = packed + DepthBlock * group * width;
            int p0 = unit * group, p1 = Math.Min(panels, p0 + group);
            int j0 = p0 * width, columns = Math.Min(group * width, g.N - j0);
            for (int k0 = 0; k0 < g.K; k0 += DepthBlock)
            {
                int depth = Math.Min(DepthBlock, g.K - k0);
                Pack<TOps, TV, TW>(packed, g, k0, depth, j0, columns, width);
                // The next pack reads the next depth block of this group, else the first of the next group: fetch it
                // while this block computes, a slice per tile.
                int nextK0 = k0 + DepthBlock, nextJ0 = j0;
                if (nextK0 >= g.K) (nextK0, nextJ0) = (0, j0 + group * width);
                int nextDepth = Math.Min(DepthBlock, g.K - nextK0), nextColumns = Math.Min(group * width, g.N - nextJ0);
                int slices = (p1 - p0) * tiles, slice = 0;
                for (int p = p0; p < p1; p++)
                {
                    float* panel = packed + (p - p0) * DepthBlock * width;
                    for (int i0 = 0; i0 < g.M; i0 += TileRows)
                    {
                        if (nextColumns > 0) PrefetchPackSource<TW>(g, nextK0, nextDepth, nextJ0, nextColumns, slice++, slices);
                        Tile<TOps, TV>(g, i0, k0, depth, p * width, width, panel, tile);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Blocks of <see cref="RowBlock"/> rows of C (all columns) against a packed slab of B (depth blocks first ..
    /// first + blocks, every panel): a block's A stays in cache while it meets every panel, and each tile of C is read and
    /// written once per slab. Packing B a group of panels at a time would read all of A again for every group: 16 times
    /// 51 MB for the wte gradient of 256 tokens, which ran at ~75 GFLOP/s where the prompt's matmuls run ~150.
    /// </summary>
    private readonly struct GemmRowBlocks<TOps, TV>(GemmArguments g, float* packed, int width, int panels, int first, int blocks) : IShareBody
        where TOps : IVectorOps<TV> where TV : unmanaged
    {
        public void Run(int slot, int unit)
        {
            float* tile = _packScratch.Get(TileRows * width);
            int i1 = Math.Min(g.M, (unit + 1) * RowBlock);
            for (int p = 0; p < panels; p++)
                for (int i0 = unit * RowBlock; i0 < i1; i0 += TileRows)
                    for (int block = 0; block < blocks; block++)
                    {
                        int k0 = (first + block) * DepthBlock;
                        float* panel = packed + ((long)block * panels + p) * DepthBlock * width;
                        Tile<TOps, TV>(g, i0, k0, Math.Min(DepthBlock, g.K - k0), p * width, width, panel, tile);
                    }
        }
    }

    /// <summary>
    /// The tile of C at rows i0.., columns pj.. += A's rows over depth steps k0.. @ a packed panel: the micro-kernel in
    /// place, or, at an edge of C, on a full-size copy in <paramref name="tile"/> so that the kernel needs no bounds checks.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile<TOps, TV>(GemmArguments g, int i0, int k0, int depth, int pj, int width, float* panel, float* tile)
        where TOps : IVectorOps<TV> where TV : unmanaged
    {
        int rows = Math.Min(TileRows, g.M - i0), panelColumns = Math.Min(width, g.N - pj);
        float* a0 = g.A + i0 * g.ARowStride + k0 * g.ADepthStride;
        float* a1 = rows > 1 ? a0 + g.ARowStride : a0, a2 = rows > 2 ? a0 + 2 * g.ARowStride : a0, a3 = rows > 3 ? a0 + 3 * g.ARowStride : a0;
        float* cBlock = g.C + i0 * g.Ldc + pj;
        if (rows == TileRows && panelColumns == width)
        {
            MicroKernel<TOps, TV>(a0, a1, a2, a3, g.ADepthStride, panel, depth, cBlock, g.Ldc);
            return;
        }
        new Span<float>(tile, TileRows * width).Clear();
        for (int r = 0; r < rows; r++) new Span<float>(cBlock + r * g.Ldc, panelColumns).CopyTo(new Span<float>(tile + r * width, panelColumns));
        MicroKernel<TOps, TV>(a0, a1, a2, a3, g.ADepthStride, panel, depth, tile, width);
        for (int r = 0; r < rows; r++) new Span<float>(tile + r * width, panelColumns).CopyTo(new Span<float>(cBlock + r * g.Ldc, panelColumns));
    }

    /// <summary>
    /// The problem with A copied row-major ([M, K], on the calling thread's scratch). The micro-kernel reads four rows of
    /// A a step at a time, so a transposed view (training's weight gradients: A[i, k] = x[k, i], rows of x thousands of
    /// floats apart; 50,257 for wte's) would take a cache line and a page per element, again for every panel of B.
    /// Copied in 64 x 64 blocks, so that both sides stay in cache.
    /// </summary>
    private static GemmArguments WithContiguousA(GemmArguments g, int threads)
    {
        float* copy = _contiguousA.Get((long)g.M * g.K);
        CpuParallel.For((g.M + ContiguousABlocks.Block - 1) / ContiguousABlocks.Block, threads, new ContiguousABlocks(g, copy));
        return new GemmArguments(g.C, g.Ldc, copy, g.K, 1, g.B, g.Layout, g.Ldb, g.M, g.N, g.K);
    }

    /// <summary>Row blocks [start, end) of A copied into <paramref name="copy"/> (row-major [M, K]), 64 x 64 at a time.</summary>
    private readonly struct ContiguousABlocks(GemmArguments g, float* copy) : IRangeBody
    {
        public const int Block = 64;

        public void Run(int start, int end)
        {
            for (int i0 = start * Block, iEnd = Math.Min(g.M, end * Block); i0 < iEnd; i0 += Block)
                for (int k0 = 0; k0 < g.K; k0 += Block)
                {
                    int i1 = Math.Min(iEnd, i0 + Block), k1 = Math.Min(g.K, k0 + Block);
                    // A transposed view (rows of x contiguous): whole 8 x 8 blocks through AVX register transposes.
                    int i8 = i0, k8 = k0;
                    if (g.ARowStride == 1 && Avx.IsSupported)
                    {
                        (i8, k8) = (i0 + (i1 - i0) / 8 * 8, k0 + (k1 - k0) / 8 * 8);
                        for (int i = i0; i < i8; i += 8)
                            for (int k = k0; k < k8; k += 8) Transpose8x8<float>(copy + (long)i * g.K + k, g.K, g.A + i + k * g.ADepthStride, g.ADepthStride);
                    }
                    for (int k = k0; k < k1; k++)
                        for (int i = k < k8 ? i8 : i0; i < i1; i++) copy[(long)i * g.K + k] = g.AAt(i, k);
                }
        }
    }

    [ThreadStatic] private static ScratchBuffer _contiguousA; // the calling thread's row-major copy of a transposed A

    /// <summary>
    /// C[M,N] += A @ B for a [K, N] weight and few rows. The weight's rows are cut into <see cref="GemvStreams"/> regions
    /// read side by side (see <see cref="GemvKN"/>), and the regions into units of a few rows (about
    /// <see cref="GemvUnitBytes"/> of weights); threads take units through <see cref="CpuParallel.ForShares{TBody}"/>, each thread
    /// streaming front to back through its share into its own partial sums, which are then added into C.
    /// </summary>
    private static void GemvSplitDepth<TOps, TV, TW>(GemmArguments g, int threads)
        where TOps : IVectorOps<TV> where TV : unmanaged where TW : unmanaged
    {
        int regionRows = g.K / GemvStreams;
        int unitRows = (int)Math.Max(1, GemvUnitBytes / (GemvStreams * (long)g.N * sizeof(TW)));
        int units = (regionRows + unitRows - 1) / unitRows, slots = CpuParallel.Slots(units, threads);
        long partLength = (long)g.M * g.N;
        float* partials = _gemvPartials.Get(slots * partLength);
        new Span<float>(partials, checked((int)(slots * partLength))).Clear();
        CpuParallel.ForShares(units, threads, new GemvDepthUnits<TOps, TV, TW>(g, partials, partLength, regionRows, unitRows));
        for (int i = 0; i < g.M; i++)
        {
            float* c = g.C + i * g.Ldc;
            // The rows past the last whole region (K not a multiple of the streams), then the partial sums.
            GemvRows<TOps, TV, TW>(c, g.A + i * g.ARowStride, g.ADepthStride, (TW*)g.B, g.Ldb, GemvStreams * regionRows, g.K, 0, g.N);
            var row = new Span<float>(c, g.N);
            for (int slot = 0; slot < slots; slot++) TensorPrimitives.Add(row, new ReadOnlySpan<float>(partials + slot * partLength + (long)i * g.N, g.N), row);
        }
    }

    /// <summary>One unit (rows k0..k1 of every region) of a matrix-vector product over a [K, N] weight, into its slot's partial sums.</summary>
    private readonly struct GemvDepthUnits<TOps, TV, TW>(GemmArguments g, float* partials, long partLength, int regionRows, int unitRows) : IShareBody
        where TOps : IVectorOps<TV> where TV : unmanaged where TW : unmanaged
    {
        public void Run(int slot, int unit)
        {
            int k0 = unit * unitRows, k1 = Math.Min(regionRows, k0 + unitRows);
            float* y = partials + slot * partLength;
            for (int i = 0; i < g.M; i++)
                GemvKN<TOps, TV, TW>(y + (long)i * g.N, g.A + i * g.ARowStride, g.ADepthStride, (TW*)g.B, g.Ldb, regionRows, k0, k1, 0, g.N);
        }
    }

    [ThreadStatic] private static ScratchBuffer _gemvPartials; // the calling thread's partial sums

    /// <summary>
    /// B[k0.., j0..] (depth x columns) into consecutive panels packed[panel][depth][width] as float32, the last one
    /// zero-padded to the panel's width.
    /// </summary>
    private static void Pack<TOps, TV, TW>(float* packed, GemmArguments g, int k0, int depth, int j0, int columns, int width)
        where TOps : IVectorOps<TV> where TV : unmanaged where TW : unmanaged
    {
        TW* b = (TW*)g.B;
        int panels = (columns + width - 1) / width;
        long panelSize = (long)DepthBlock * width;
        if (columns % width != 0) new Span<float>(packed + (panels - 1) * panelSize, depth * width).Clear();
        if (g.Layout == MatrixLayout.KN)
        {
            int fullPanels = columns / width, rest = columns - fullPanels * width, vectorRest = rest / TOps.Count * TOps.Count;
            for (int k = 0; k < depth; k++)
            {
                TW* source = b + (k0 + k) * g.Ldb + j0;
                float* destination = packed + k * width;
                for (int p = 0; p < fullPanels; p++, source += width, destination += panelSize) PackStrip<TOps, TV, TW>(destination, source);
                int j = 0;
                for (; j < vectorRest; j += TOps.Count) TOps.Store(destination + j, BFloat16.Load<TOps, TV, TW>(source + j));
                for (; j < rest; j++) destination[j] = BFloat16.Read(source, j);
            }
        }
        else
        {
            // [N, K]: each column of the panel is a run of a row of B. AVX2 transposes 8 x 8 blocks in registers; the
            // columns and depth steps past the last whole block, and other widths, go one element at a time.
            int octets = 0, depthOctets = 0;
            if (typeof(TV) == typeof(Vector256<float>) && Avx.IsSupported)
            {
                (octets, depthOctets) = (columns / 8, depth / 8 * 8);
                for (int o = 0; o < octets; o++)
                {
                    int j = o * 8;
                    float* destination = packed + j / width * panelSize + j % width; // a panel is 3 octets wide
                    for (int k = 0; k < depthOctets; k += 8)
                        Transpose8x8<TW>(destination + k * width, width, b + (j0 + j) * g.Ldb + k0 + k, g.Ldb);
                }
            }
            for (int j = 0; j < columns; j++)
            {
                TW* source = b + (j0 + j) * g.Ldb + k0;
                float* destination = packed + j / width * panelSize + j % width;
                for (int k = j < octets * 8 ? depthOctets : 0; k < depth; k++) destination[k * width] = BFloat16.Read(source, k);
            }
        }
    }

    /// <summary>destination[i * ldd + r] = source[r * lds + i] for an 8 x 8 block (source fp32 or bf16), in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8<TW>(float* destination, long ldd, TW* source, long lds) where TW : unmanaged
    {
        Vector256<float> r0 = BFloat16.Load<Ops256, Vector256<float>, TW>(source), r1 = BFloat16.Load<Ops256, Vector256<float>, TW>(source + lds);
        Vector256<float> r2 = BFloat16.Load<Ops256, Vector256<float>, TW>(source + 2 * lds), r3 = BFloat16.Load<Ops256, Vector256<float>, TW>(source + 3 * lds);
        Vector256<float> r4 = BFloat16.Load<Ops256, Vector256<float>, TW>(source + 4 * lds), r5 = BFloat16.Load<Ops256, Vector256<float>, TW>(source + 5 * lds);
        Vector256<float> r6 = BFloat16.Load<Ops256, Vector256<float>, TW>(source + 6 * lds), r7 = BFloat16.Load<Ops256, Vector256<float>, TW>(source + 7 * lds);
        // Pairs of rows interleaved, then pairs of pairs, then the 128-bit halves exchanged.
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1), t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5), t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE), u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE), u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Permute2x128(u0, u4, 0x20).Store(destination);
        Avx.Permute2x128(u1, u5, 0x20).Store(destination + ldd);
        Avx.Permute2x128(u2, u6, 0x20).Store(destination + 2 * ldd);
        Avx.Permute2x128(u3, u7, 0x20).Store(destination + 3 * ldd);
        Avx.Permute2x128(u0, u4, 0x31).Store(destination + 4 * ldd);
        Avx.Permute2x128(u1, u5, 0x31).Store(destination + 5 * ldd);
        Avx.Permute2x128(u2, u6, 0x31).Store(destination + 6 * ldd);
        Avx.Permute2x128(u3, u7, 0x31).Store(destination + 7 * ldd);
    }

    /// <summary>One depth step of a full panel: <see cref="TileVectors{TOps, TV}"/> vectors of a weight row, as float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PackStrip<TOps, TV, TW>(float* destination, TW* source) where TOps : IVectorOps<TV> where TV : unmanaged where TW : unmanaged
    {
        int w = TOps.Count;
        TOps.Store(destination, BFloat16.Load<TOps, TV, TW>(source));
        TOps.Store(destination + w, BFloat16.Load<TOps, TV, TW>(source + w));
        TOps.Store(destination + 2 * w, BFloat16.Load<TOps, TV, TW>(source + 2 * w));
        if (TileVectors<TOps, TV>() == 4) TOps.Store(destination + 3 * w, BFloat16.Load<TOps, TV, TW>(source + 3 * w));
    }

    /// <summary>
    /// Prefetches slice <paramref name="slice"/> of <paramref name="slices"/> of what <see cref="Pack"/> will read for
    /// (k0, depth, j0, columns). Packing reads 128 short strips of weights, one cache line after another, and left to
    /// itself waits on memory about as long as the micro-kernel computes on the packed panel. Every line a strip touches
    /// is fetched: its first and last (a 48- or 96-byte strip often straddles two lines, and stepping 64 bytes from its
    /// start missed a bf16 strip's second line) and any between. On AVX2 the prompt's matmuls ran 14% faster in bf16
    /// than with the stepping, and 8-9% in fp32, where the lines fetched are the same (a loop fewer per strip is the
    /// only difference; not pinned down further).
    /// </summary>
    private static void PrefetchPackSource<TW>(GemmArguments g, int k0, int depth, int j0, int columns, int slice, int slices) where TW : unmanaged
    {
        if (!Sse.IsSupported) return;
        bool kn = g.Layout == MatrixLayout.KN;
        int strips = kn ? depth : columns;
        long bytes = (long)(kn ? columns : depth) * sizeof(TW);
        int s0 = (int)((long)strips * slice / slices), s1 = (int)((long)strips * (slice + 1) / slices);
        for (int strip = s0; strip < s1; strip++)
        {
            byte* source = (byte*)((TW*)g.B + (kn ? (k0 + strip) * g.Ldb + j0 : (j0 + strip) * g.Ldb + k0));
            byte* end = source + bytes - 1, lastLine = (byte*)((nint)end & ~63);
            Sse.Prefetch0(source);
            for (byte* line = (byte*)((nint)source & ~63) + 64; line < lastLine; line += 64) Sse.Prefetch0(line);
            Sse.Prefetch0(end);
        }
    }

    /// <summary>
    /// c[4, <see cref="TileVectors{TOps, TV}"/>] (row stride ldc) += A rows a0..a3 (depth stride aStep) @ the packed
    /// panel, over depth steps.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroKernel<TOps, TV>(float* a0, float* a1, float* a2, float* a3, long aStep, float* packed, int depth, float* c, long ldc)
        where TOps : IVectorOps<TV> where TV : unmanaged
    {
        int w = TOps.Count, step = TileVectors<TOps, TV>() * w;
        bool four = TileVectors<TOps, TV>() == 4; // a JIT-time constant: with three vectors the fourth column is compiled away
        float* c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        TV c00 = TOps.Load(c), c01 = TOps.Load(c + w), c02 = TOps.Load(c + 2 * w), c03 = four ? TOps.Load(c + 3 * w) : default;
        TV c10 = TOps.Load(c1), c11 = TOps.Load(c1 + w), c12 = TOps.Load(c1 + 2 * w), c13 = four ? TOps.Load(c1 + 3 * w) : default;
        TV c20 = TOps.Load(c2), c21 = TOps.Load(c2 + w), c22 = TOps.Load(c2 + 2 * w), c23 = four ? TOps.Load(c2 + 3 * w) : default;
        TV c30 = TOps.Load(c3), c31 = TOps.Load(c3 + w), c32 = TOps.Load(c3 + 2 * w), c33 = four ? TOps.Load(c3 + 3 * w) : default;
        long offset = 0;
        for (int k = 0; k < depth; k++, packed += step, offset += aStep)
        {
            TV b0 = TOps.Load(packed), b1 = TOps.Load(packed + w), b2 = TOps.Load(packed + 2 * w), b3 = four ? TOps.Load(packed + 3 * w) : default;
            TV x = TOps.Broadcast(a0[offset]);
            c00 = TOps.MultiplyAdd(x, b0, c00); c01 = TOps.MultiplyAdd(x, b1, c01); c02 = TOps.MultiplyAdd(x, b2, c02);
            if (four) c03 = TOps.MultiplyAdd(x, b3, c03);
            x = TOps.Broadcast(a1[offset]);
            c10 = TOps.MultiplyAdd(x, b0, c10); c11 = TOps.MultiplyAdd(x, b1, c11); c12 = TOps.MultiplyAdd(x, b2, c12);
            if (four) c13 = TOps.MultiplyAdd(x, b3, c13);
            x = TOps.Broadcast(a2[offset]);
            c20 = TOps.MultiplyAdd(x, b0, c20); c21 = TOps.MultiplyAdd(x, b1, c21); c22 = TOps.MultiplyAdd(x, b2, c22);
            if (four) c23 = TOps.MultiplyAdd(x, b3, c23);
            x = TOps.Broadcast(a3[offset]);
            c30 = TOps.MultiplyAdd(x, b0, c30); c31 = TOps.MultiplyAdd(x, b1, c31); c32 = TOps.MultiplyAdd(x, b2, c32);
            if (four) c33 = TOps.MultiplyAdd(x, b3, c33);
        }
        TOps.Store(c, c00); TOps.Store(c + w, c01); TOps.Store(c + 2 * w, c02);
        TOps.Store(c1, c10); TOps.Store(c1 + w, c11); TOps.Store(c1 + 2 * w, c12);
        TOps.Store(c2, c20); TOps.Store(c2 + w, c21); TOps.Store(c2 + 2 * w, c22);
        TOps.Store(c3, c30); TOps.Store(c3 + w, c31); TOps.Store(c3 + 2 * w, c32);
        if (!four) return;
        TOps.Store(c + 3 * w, c03); TOps.Store(c1 + 3 * w, c13); TOps.Store(c2 + 3 * w, c23); TOps.Store(c3 + 3 * w, c33);
    }

    /// <summary>
    /// Software prefetch for a matrix-vector pass's four weight streams, called at each vector step with the element
    /// index into the streams. bf16: every step, 2 KB ahead. An instruction consumes half as many bf16 bytes as fp32
    /// ones, so the loads the core has in flight cover half as much of each stream and the hardware prefetcher alone
    /// leaves it short: bf16 layer matmuls read 52-64 GB/s without this and 62-69 with it (1 and 4 KB ahead, or once a
    /// page, did worse). fp32: once per 4 KB of stream, 8 KB ahead, which starts each next page's walk and stream early:
    /// the 1558M shape's layer matmuls 108 against 115-128 ms/token, the 124M decode step ~7% faster (a prefetch every
    /// step made fp32 slower).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchStreams<TW>(TW* s0, TW* s1, TW* s2, TW* s3, long index) where TW : unmanaged
    {
        if (!Sse.IsSupported) return;
        int distance = typeof(TW) == typeof(ushort) ? 2048 : 8192;
        if (typeof(TW) == typeof(float) && (index & 1023) != 0) return;
        Sse.Prefetch0((byte*)(s0 + index) + distance); Sse.Prefetch0((byte*)(s1 + index) + distance);
        Sse.Prefetch0((byte*)(s2 + index) + distance); Sse.Prefetch0((byte*)(s3 + index) + distance);
    }

    /// <summary>
    /// y[j0..j1) += x @ w over rows k0..k1 of each of the <see cref="GemvStreams"/> regions of w [K, ldw] (region s starts
    /// at row s * regionRows; x[k] at x[k * xStep]). Each pass takes one row from every region: four sequential streams
    /// far apart. On this kind of machine that reads 10-15% faster than the same bytes as eight adjacent rows (adjacent
    /// streams seem to defeat the hardware prefetcher), and y, in L1, is loaded and stored once per four weight vectors.
    /// </summary>
    private static void GemvKN<TOps, TV, TW>(float* y, float* x, long xStep, TW* w, long ldw, int regionRows, int k0, int k1, int j0, int j1)
        where TOps : IVectorOps<TV> where TV : unmanaged where TW : unmanaged
    {
        int vectorEnd = j0 + (j1 - j0) / TOps.Count * TOps.Count;
        long regionStride = regionRows * ldw, xRegion = regionRows * xStep;
        for (int k = k0; k < k1; k++)
        {
            float* xk = x + k * xStep;
            TV x0 = TOps.Broadcast(xk[0]), x1 = TOps.Broadcast(xk[xRegion]), x2 = TOps.Broadcast(xk[2 * xRegion]), x3 = TOps.Broadcast(xk[3 * xRegion]);
            TW* r0 = w + k * ldw, r1 = r0 + regionStride, r2 = r1 + regionStride, r3 = r2 + regionStride;
            int j = j0;
            for (; j < vectorEnd; j += TOps.Count)
            {
                PrefetchStreams(r0, r1, r2, r3, j);
                TV even = TOps.MultiplyAdd(x0, BFloat16.Load<TOps, TV, TW>(r0 + j), TOps.Load(y + j));
                TV odd = TOps.MultiplyAdd(x1, BFloat16.Load<TOps, TV, TW>(r1 + j), TOps.Zero);
                even = TOps.MultiplyAdd(x2, BFloat16.Load<TOps, TV, TW>(r2 + j), even);
                odd = TOps.MultiplyAdd(x3, BFloat16.Load<TOps, TV, TW>(r3 + j), odd);
                TOps.Store(y + j, TOps.Add(even, odd));
            }
            for (; j < j1; j++)
                y[j] += xk[0] * BFloat16.Read(r0, j) + xk[xRegion] * BFloat16.Read(r1, j) + xk[2 * xRegion] * BFloat16.Read(r2, j) + xk[3 * xRegion] * BFloat16.Read(r3, j);
        }
    }

    /// <summary>y[j0..j1) += x @ w over rows k0..k1 of w [K, ldw], one row at a time.</summary>
    private static void GemvRows<TOps, TV, TW>(float* y, float* x, long xStep, TW* w, long ldw, int k0, int k1, int j0, int j1)
        where TOps : IVectorOps<TV> where TV : unmanaged where TW : unmanaged
    {
        int vectorEnd = j0 + (j1 - j0) / TOps.Count * TOps.Count;
        for (int k = k0; k < k1; k++)
        {
            float s = x[k * xStep];
            TV xs = TOps.Broadcast(s);
            TW* r = w + k * ldw;
            int j = j0;
            for (; j < vectorEnd; j += TOps.Count) TOps.Store(y + j, TOps.MultiplyAdd(xs, BFloat16.Load<TOps, TV, TW>(r + j), TOps.Load(y + j)));
            for (; j < j1; j++) y[j] += s * BFloat16.Read(r, j);
        }
    }

    /// <summary>
    /// y[j0..j1) += dot(x[K] (contiguous), w row j) for w [N, ldw]: rows j0..j1 are cut into <see cref="GemvStreams"/>
    /// regions and four rows, one per region, are read side by side (four sequential streams far apart, as in <see cref="GemvKN"/>).
    /// </summary>
    private static void GemvNK<TOps, TV, TW>(float* y, float* x, TW* w, long ldw, int K, int j0, int j1)
        where TOps : IVectorOps<TV> where TV : unmanaged where TW : unmanaged
    {
        int vectorEnd = K / TOps.Count * TOps.Count;
        int region = (j1 - j0) / GemvStreams;
        long regionStride = region * ldw;
        for (int i = j0; i < j0 + region; i++)
        {
            TW* r0 = w + i * ldw, r1 = r0 + regionStride, r2 = r1 + regionStride, r3 = r2 + regionStride;
            TV a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
            int k = 0;
            for (; k < vectorEnd; k += TOps.Count)
            {
                PrefetchStreams(r0, r1, r2, r3, k);
                TV xv = TOps.Load(x + k);
                a0 = TOps.MultiplyAdd(xv, BFloat16.Load<TOps, TV, TW>(r0 + k), a0);
                a1 = TOps.MultiplyAdd(xv, BFloat16.Load<TOps, TV, TW>(r1 + k), a1);
                a2 = TOps.MultiplyAdd(xv, BFloat16.Load<TOps, TV, TW>(r2 + k), a2);
                a3 = TOps.MultiplyAdd(xv, BFloat16.Load<TOps, TV, TW>(r3 + k), a3);
            }
            float s0 = TOps.Sum(a0), s1 = TOps.Sum(a1), s2 = TOps.Sum(a2), s3 = TOps.Sum(a3);
            for (; k < K; k++)
            {
                s0 += x[k] * BFloat16.Read(r0, k); s1 += x[k] * BFloat16.Read(r1, k);
                s2 += x[k] * BFloat16.Read(r2, k); s3 += x[k] * BFloat16.Read(r3, k);
            }
            y[i] += s0; y[i + region] += s1; y[i + 2 * region] += s2; y[i + 3 * region] += s3;
        }
        for (int j = j0 + GemvStreams * region; j < j1; j++)
        {
            TW* r = w + j * ldw;
            TV acc = TOps.Zero;
            int k = 0;
            for (; k < vectorEnd; k += TOps.Count) acc = TOps.MultiplyAdd(TOps.Load(x + k), BFloat16.Load<TOps, TV, TW>(r + k), acc);
            float s = TOps.Sum(acc);
            for (; k < K; k++) s += x[k] * BFloat16.Read(r, k);
            y[j] += s;
        }
    }
}
