using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;
using static Gpt2Engine.Tests.Cuda.Buffers;

namespace Gpt2Engine.Tests.Cuda;

/// <summary>
/// Each backend operation on small, odd shapes against a naive float64 loop written here. Run on the CUDA backend
/// over the CPU stand-in (host-compiled kernels, reference GEMM), in Category=Gpu over the real driver, and on the CPU
/// backend (<see cref="Cpu.CpuBackendChecksTests"/>).
/// </summary>
internal static class BackendChecks
{
    public static readonly Dictionary<string, Action<Backend>> All = new()
    {
        [nameof(Encoder)] = Encoder,
        [nameof(EncoderBf16)] = b => EncoderBf16(b, wpeBf16: false),   // as `convert --dtype bf16` stores them
        ["EncoderBf16Both"] = b => EncoderBf16(b, wpeBf16: true),
        [nameof(LayerNorm)] = b => LayerNorm(b, 5, 45),
        ["LayerNormManyRows"] = b => LayerNorm(b, 2100, 3),    // more rows than the backward's grid has warps
        ["LayerNormWideRows"] = b => LayerNorm(b, 3, 2051),    // wider than the backward's shared-memory sums
        [nameof(Matmul)] = b => Matmul(b, 5, 7, 9),
        ["MatmulTallBiasBackward"] = b => Matmul(b, 600, 3, 5),   // several row chunks in bias_backward
        [nameof(MatmulBf16)] = MatmulBf16,
        [nameof(MatmulTransposed)] = MatmulTransposed,
        [nameof(Attention)] = Attention,
        [nameof(AttentionCached)] = AttentionCached,
        [nameof(Elementwise)] = Elementwise,
        [nameof(SoftmaxCrossEntropy)] = SoftmaxCrossEntropy,
        [nameof(AdamWAndSumOfSquares)] = AdamWAndSumOfSquares,
    };

    public static IEnumerable<object[]> Names => All.Keys.Select(k => new object[] { k });

    private static double[] D(float[] x) => x.Select(v => (double)v).ToArray();

    public static void Encoder(Backend b)
    {
        const int B = 2, T = 3, C = 37, V = 11, maxT = 7, position0 = 2;
        float[] wte = Random(V * C, 1), wpe = Random(maxT * C, 2), dout = Random(B * T * C, 3);
        int[] tokens = [4, 10, 4, 0, 7, 4];
        var output = b.Allocate(B * T * C);
        b.Encoder(output, b.Put(tokens), b.Put(wte), b.Put(wpe), B, T, C, position0);
        var expected = new double[B * T * C];
        for (int bt = 0; bt < B * T; bt++)
            for (int c = 0; c < C; c++) expected[bt * C + c] = (double)wte[tokens[bt] * C + c] + wpe[(position0 + bt % T) * C + c];
        Close(expected, b.Get(output), what: "encoder");

        // backward accumulates (token 4 appears three times)
        float[] dwte0 = Random(V * C, 4), dwpe0 = Random(maxT * C, 5);
        var dwte = b.Put(dwte0);
        var dwpe = b.Put(dwpe0);
        b.EncoderBackward(dwte, dwpe, b.Put(dout), b.Put(tokens), B, T, C);
        double[] ewte = D(dwte0), ewpe = D(dwpe0);
        for (int bt = 0; bt < B * T; bt++)
            for (int c = 0; c < C; c++) { ewte[tokens[bt] * C + c] += dout[bt * C + c]; ewpe[bt % T * C + c] += dout[bt * C + c]; }
        Close(ewte, b.Get(dwte), what: "dwte");
        Close(ewpe, b.Get(dwpe), what: "dwpe");
    }

    public static void EncoderBf16(Backend b, bool wpeBf16)
    {
        const int B = 1, T = 2, C = 5, V = 3;
        ushort[] wte = [.. Enumerable.Range(0, V * C).Select(i => (ushort)(0x3f80 + i))], wpe = [.. Enumerable.Range(0, T * C).Select(i => (ushort)(0xbf80 - i))];
        static double Widen(ushort x) => BitConverter.Int32BitsToSingle(x << 16);
        var wteBuffer = b.Allocate(wte.Length, TensorDType.BF16);
        b.Upload<ushort>(wteBuffer, wte);
        DeviceBuffer wpeBuffer;
        if (wpeBf16)
        {
            wpeBuffer = b.Allocate(wpe.Length, TensorDType.BF16);
            b.Upload<ushort>(wpeBuffer, wpe);
        }
        else wpeBuffer = b.Put([.. wpe.Select(x => (float)Widen(x))]);
        int[] tokens = [2, 1];
        var output = b.Allocate(B * T * C);
        b.Encoder(output, b.Put(tokens), wteBuffer, wpeBuffer, B, T, C, 0);
        var expected = new double[T * C];
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) expected[t * C + c] = Widen(wte[tokens[t] * C + c]) + Widen(wpe[t * C + c]);
        Close(expected, b.Get(output), what: "encoder bf16");
    }

    public static void LayerNorm(Backend b, int N, int C)
    {
        float[] x = Random(N * C, 10, 3f), w = Random(C, 11), bias = Random(C, 12), dout = Random(N * C, 13);
        float[] dx0 = Random(N * C, 14), dw0 = Random(C, 15), db0 = Random(C, 16);
        DeviceBuffer output = b.Allocate(N * C), mean = b.Allocate(N), rstd = b.Allocate(N), input = b.Put(x), weight = b.Put(w);
        b.LayerNorm(output, mean, rstd, input, weight, b.Put(bias), N, C);
        var (eo, em, er) = (new double[N * C], new double[N], new double[N]);
        double[] edx = D(dx0), edw = D(dw0), edb = D(db0);
        for (int n = 0; n < N; n++)
        {
            double m = 0, v = 0;
            for (int c = 0; c < C; c++) m += x[n * C + c];
            m /= C;
            for (int c = 0; c < C; c++) v += (x[n * C + c] - m) * (x[n * C + c] - m);
            double s = 1 / Math.Sqrt(v / C + 1e-5);
            (em[n], er[n]) = (m, s);
            double meanDnorm = 0, meanDnormNorm = 0;
            for (int c = 0; c < C; c++)
            {
                double norm = (x[n * C + c] - m) * s, dnorm = w[c] * (double)dout[n * C + c];
                eo[n * C + c] = norm * w[c] + bias[c];
                meanDnorm += dnorm / C;
                meanDnormNorm += dnorm * norm / C;
                edw[c] += norm * dout[n * C + c];
                edb[c] += dout[n * C + c];
            }
            for (int c = 0; c < C; c++)
            {
                double norm = (x[n * C + c] - m) * s, dnorm = w[c] * (double)dout[n * C + c];
                edx[n * C + c] += (dnorm - meanDnorm - norm * meanDnormNorm) * s;
            }
        }
        Close(eo, b.Get(output), what: "layernorm");
        Close(em, b.Get(mean), what: "mean");
        Close(er, b.Get(rstd), what: "rstd");
        DeviceBuffer dx = b.Put(dx0), dw = b.Put(dw0), db = b.Put(db0);
        b.LayerNormBackward(dx, dw, db, b.Put(dout), input, weight, mean, rstd, N, C);
        Close(edx, b.Get(dx), 2e-5, "dinput");
        Close(edw, b.Get(dw), what: "dweight");
        Close(edb, b.Get(db), what: "dbias");
    }

    public static void Matmul(Backend b, int N, int C, int OC)
    {
        float[] x = Random(N * C, 20), w = Random(C * OC, 21), bias = Random(OC, 22), dout = Random(N * OC, 23);
        float[] dx0 = Random(N * C, 24), dw0 = Random(C * OC, 25), db0 = Random(OC, 26);
        DeviceBuffer input = b.Put(x), weight = b.Put(w), output = b.Allocate(N * OC), plain = b.Allocate(N * OC);
        b.Matmul(output, input, weight, b.Put(bias), N, C, OC);
        b.Matmul(plain, input, weight, default, N, C, OC);
        double[] eo = new double[N * OC], ep = new double[N * OC], edx = D(dx0), edw = D(dw0), edb = D(db0);
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++)
            {
                double sum = 0;
                for (int c = 0; c < C; c++)
                {
                    sum += (double)x[n * C + c] * w[c * OC + o];
                    edx[n * C + c] += (double)dout[n * OC + o] * w[c * OC + o];
                    edw[c * OC + o] += (double)x[n * C + c] * dout[n * OC + o];
                }
                (ep[n * OC + o], eo[n * OC + o]) = (sum, sum + bias[o]);
                edb[o] += dout[n * OC + o];
            }
        Close(eo, b.Get(output), what: "matmul+bias");
        Close(ep, b.Get(plain), what: "matmul");
        DeviceBuffer dx = b.Put(dx0), dw = b.Put(dw0), db = b.Put(db0);
        b.MatmulBackward(dx, dw, db, b.Put(dout), input, weight, N, C, OC);
        Close(edx, b.Get(dx), what: "dinput");
        Close(edw, b.Get(dw), what: "dweight");
        Close(edb, b.Get(db), what: "dbias");
    }

    /// <summary>bf16 weights: the activation is rounded to bf16 too (cuBLAS needs both operands in one type), sums in fp32.</summary>
    public static void MatmulBf16(Backend b)
    {
        const int N = 3, C = 6, OC = 5;
        float[] x = Random(N * C, 30);
        ushort[] w = [.. Random(C * OC, 31).Select(v => (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16))];
        var weight = b.Allocate(w.Length, TensorDType.BF16);
        b.Upload<ushort>(weight, w);
        var output = b.Allocate(N * OC);
        b.Matmul(output, b.Put(x), weight, default, N, C, OC);
        static double Widen(ushort v) => BitConverter.Int32BitsToSingle(v << 16);
        static double RoundToBf16(float v) => BitConverter.Int32BitsToSingle((int)(((BitConverter.SingleToUInt32Bits(v) + 0x7fff + ((BitConverter.SingleToUInt32Bits(v) >> 16) & 1)) >> 16) << 16));
        var expected = new double[N * OC];
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++)
                for (int c = 0; c < C; c++) expected[n * OC + o] += RoundToBf16(x[n * C + c]) * Widen(w[c * OC + o]);
        Close(expected, b.Get(output), what: "matmul bf16");
    }

    public static void MatmulTransposed(Backend b)
    {
        const int N = 4, C = 7, OC = 11;
        float[] x = Random(N * C, 40), w = Random(OC * C, 41), dout = Random(N * OC, 42), dx0 = Random(N * C, 43), dw0 = Random(OC * C, 44);
        DeviceBuffer input = b.Put(x), weight = b.Put(w), output = b.Allocate(N * OC);
        b.MatmulTransposed(output, input, weight, N, C, OC);
        double[] eo = new double[N * OC], edx = D(dx0), edw = D(dw0);
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++)
                for (int c = 0; c < C; c++)
                {
                    eo[n * OC + o] += (double)x[n * C + c] * w[o * C + c];
                    edx[n * C + c] += (double)dout[n * OC + o] * w[o * C + c];
                    edw[o * C + c] += (double)dout[n * OC + o] * x[n * C + c];
                }
        Close(eo, b.Get(output), what: "logits");
        DeviceBuffer dx = b.Put(dx0), dw = b.Put(dw0);
        b.MatmulTransposedBackward(dx, dw, b.Put(dout), input, weight, N, C, OC);
        Close(edx, b.Get(dx), what: "dinput");
        Close(edw, b.Get(dw), what: "dweight");
    }

    /// <summary>Naive causal attention in float64: output [B,T,C] and probabilities [B,NH,T,T] (zero above the diagonal).</summary>
    private static (double[] Output, double[] Att) NaiveAttention(float[] qkv, int B, int T, int C, int NH)
    {
        int d = C / NH;
        double[] output = new double[B * T * C], att = new double[B * NH * T * T];
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int i = 0; i < T; i++)
                {
                    var p = new double[i + 1];
                    for (int j = 0; j <= i; j++)
                        for (int c = 0; c < d; c++) p[j] += (double)qkv[(b * T + i) * 3 * C + h * d + c] * qkv[(b * T + j) * 3 * C + C + h * d + c] / Math.Sqrt(d);
                    double max = p.Max(), sum = p.Sum(s => Math.Exp(s - max));
                    for (int j = 0; j <= i; j++)
                    {
                        p[j] = Math.Exp(p[j] - max) / sum;
                        att[((b * NH + h) * T + i) * T + j] = p[j];
                        for (int c = 0; c < d; c++) output[(b * T + i) * C + h * d + c] += p[j] * qkv[(b * T + j) * 3 * C + 2 * C + h * d + c];
                    }
                }
        return (output, att);
    }

    public static void Attention(Backend b)
    {
        const int B = 2, T = 35, C = 12, NH = 3, d = C / NH;
        float[] qkvData = Random(B * T * 3 * C, 50, 2f), dout = Random(B * T * C, 51), dqkv0 = Random(B * T * 3 * C, 52);
        DeviceBuffer qkv = b.Put(qkvData), output = b.Allocate(B * T * C), att = b.Allocate(B * NH * T * T);
        b.Attention(output, att, qkv, B, T, C, NH);
        var (eo, ea) = NaiveAttention(qkvData, B, T, C, NH);
        Close(eo, b.Get(output), what: "attention output");
        Close(ea, b.Get(att), what: "att");

        double[] edqkv = D(dqkv0);
        for (int bb = 0; bb < B; bb++)
            for (int h = 0; h < NH; h++)
                for (int i = 0; i < T; i++)
                {
                    int row = ((bb * NH + h) * T + i) * T;
                    var dp = new double[i + 1];
                    for (int j = 0; j <= i; j++)
                        for (int c = 0; c < d; c++)
                        {
                            dp[j] += (double)dout[(bb * T + i) * C + h * d + c] * qkvData[(bb * T + j) * 3 * C + 2 * C + h * d + c];
                            edqkv[(bb * T + j) * 3 * C + 2 * C + h * d + c] += ea[row + j] * dout[(bb * T + i) * C + h * d + c];
                        }
                    double dot = 0;
                    for (int j = 0; j <= i; j++) dot += ea[row + j] * dp[j];
                    for (int j = 0; j <= i; j++)
                    {
                        double ds = ea[row + j] * (dp[j] - dot) / Math.Sqrt(d);
                        for (int c = 0; c < d; c++)
                        {
                            edqkv[(bb * T + i) * 3 * C + h * d + c] += ds * qkvData[(bb * T + j) * 3 * C + C + h * d + c];
                            edqkv[(bb * T + j) * 3 * C + C + h * d + c] += ds * qkvData[(bb * T + i) * 3 * C + h * d + c];
                        }
                    }
                }
        var dqkv = b.Put(dqkv0);
        b.AttentionBackward(dqkv, b.Put(dout), qkv, att, B, T, C, NH);
        Close(edqkv, b.Get(dqkv), 2e-5, "dqkv");
    }

    /// <summary>
    /// A prompt, then single steps, through the KV cache: each matches full causal attention. The long case has more
    /// cache positions than a block has threads, and a head size that does not divide 256.
    /// </summary>
    public static void AttentionCached(Backend b)
    {
        CachedAttention(b, B: 2, C: 8, NH: 2, maxT: 37, chunks: [3, 1, 1]);
        CachedAttention(b, B: 1, C: 48, NH: 2, maxT: 270, chunks: [262, 1, 1]);
    }

    private static void CachedAttention(Backend b, int B, int C, int NH, int maxT, int[] chunks)
    {
        int T = chunks.Sum();
        float[] qkvData = Random(B * T * 3 * C, 60 + C, 2f);
        var (expected, _) = NaiveAttention(qkvData, B, T, C, NH);
        DeviceBuffer keys = b.Allocate(B * maxT * C), values = b.Allocate(B * maxT * C);
        int start = 0;
        foreach (int length in chunks)
        {
            var chunk = new float[B * length * 3 * C];
            for (int bb = 0; bb < B; bb++)
                Array.Copy(qkvData, (bb * T + start) * 3 * C, chunk, bb * length * 3 * C, length * 3 * C);
            var output = b.Allocate(B * length * C);
            b.AttentionCached(output, b.Put(chunk), keys, values, B, length, start, maxT, C, NH);
            var slice = new double[B * length * C];
            for (int bb = 0; bb < B; bb++)
                Array.Copy(expected, (bb * T + start) * C, slice, bb * length * C, length * C);
            Close(slice, b.Get(output), what: $"cached attention at {start}");
            start += length;
        }
    }

    public static void Elementwise(Backend b)
    {
        const int N = 301;
        float[] x = Random(N, 70, 4f), y = Random(N, 71), dout = Random(N, 72), dx0 = Random(N, 73);
        DeviceBuffer input = b.Put(x), other = b.Put(y), output = b.Allocate(N);
        const double k = 0.7978845608028654;
        b.Gelu(output, input, N);
        Close([.. x.Select(v => 0.5 * v * (1 + Math.Tanh(k * (v + 0.044715 * v * v * v))))], b.Get(output), what: "gelu");
        var dx = b.Put(dx0);
        b.GeluBackward(dx, input, b.Put(dout), N);
        double[] edx = [.. x.Select((v, i) =>
        {
            double u = k * (v + 0.044715 * v * v * v), th = Math.Tanh(u);
            return dx0[i] + dout[i] * (0.5 * (1 + th) + 0.5 * v * (1 - th * th) * k * (1 + 3 * 0.044715 * v * v));
        })];
        Close(edx, b.Get(dx), what: "gelu backward");
        b.Residual(output, input, other, N);
        Close([.. x.Select((v, i) => (double)v + y[i])], b.Get(output), what: "residual");
        b.Accumulate(output, input, N);
        Close([.. x.Select((v, i) => 2.0 * v + y[i])], b.Get(output), what: "accumulate");
        b.Scale(other, -0.5f);
        Close([.. y.Select(v => -0.5 * v)], b.Get(other), what: "scale");
        b.Copy(output, input);
        Close(D(x), b.Get(output), 0, "copy");
        b.Zero(output);
        Close(new double[N], b.Get(output), 0, "zero");
    }

    public static void SoftmaxCrossEntropy(Backend b)
    {
        const int N = 3, V = 301;
        float[] logitsData = Random(N * V, 80, 5f);
        int[] targetData = [0, 300, 17];
        DeviceBuffer logits = b.Put(logitsData), losses = b.Allocate(N), targets = b.Put(targetData);
        b.SoftmaxCrossEntropy(losses, logits, logits, targets, N, V);   // probabilities in place, as the model does
        double[] probs = new double[N * V], expectedLosses = new double[N], dlogits = new double[N * V];
        for (int n = 0; n < N; n++)
        {
            double max = logitsData.Skip(n * V).Take(V).Max(), sum = 0;
            for (int v = 0; v < V; v++) sum += Math.Exp(logitsData[n * V + v] - max);
            for (int v = 0; v < V; v++)
            {
                probs[n * V + v] = Math.Exp(logitsData[n * V + v] - max) / sum;
                dlogits[n * V + v] = (probs[n * V + v] - (v == targetData[n] ? 1 : 0)) * 0.25;
            }
            expectedLosses[n] = -Math.Log(probs[n * V + targetData[n]]);
        }
        Close(probs, b.Get(logits), what: "probs");
        Close(expectedLosses, b.Get(losses), what: "losses");
        b.SoftmaxCrossEntropyBackward(logits, logits, targets, N, V, 0.25f);
        Close(dlogits, b.Get(logits), what: "dlogits");
    }

    public static void AdamWAndSumOfSquares(Backend b)
    {
        const int N = 777;
        float[] p0 = Random(N, 90), g = Random(N, 91), m0 = Random(N, 92, 0.1f), v0 = [.. Random(N, 93, 0.01f).Select(Math.Abs)];
        DeviceBuffer p = b.Put(p0), grads = b.Put(g), m = b.Put(m0), v = b.Put(v0);
        const float lr = 1e-3f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
        const int t = 3;
        b.AdamW(p, grads, m, v, lr, b1, b2, eps, wd, t);
        double[] ep = new double[N], em = new double[N], ev = new double[N];
        for (int i = 0; i < N; i++)
        {
            em[i] = b1 * (double)m0[i] + (1 - (double)b1) * g[i];
            ev[i] = b2 * (double)v0[i] + (1 - (double)b2) * g[i] * g[i];
            double mHat = em[i] / (1 - Math.Pow(b1, t)), vHat = ev[i] / (1 - Math.Pow(b2, t));
            ep[i] = p0[i] - lr * (mHat / (Math.Sqrt(vHat) + eps) + wd * p0[i]);
        }
        Close(em, b.Get(m), what: "m");
        Close(ev, b.Get(v), what: "v");
        Close(ep, b.Get(p), what: "params");

        // more elements than one block per 256 threads covers, so several partial sums are added up
        float[] big = Random(256 * 300 + 5, 94);
        double expected = big.Sum(x => (double)x * x);
        Xunit.Assert.Equal(expected, b.SumOfSquares(b.Put(big)), expected * 1e-12);
    }
}
