using Gpt2Engine.Checkpoints;

namespace Gpt2Engine.Tests.Evaluation;

/// <summary>
/// An independent, naive float64 GPT-2 forward pass over a safetensors checkpoint (HF names, [in, out] matmuls), for
/// expected values: the straightforward textbook formulas, no shared code with the engine.
/// </summary>
internal sealed class Float64Gpt2
{
    private readonly SafetensorsFile _file;
    private readonly int _layers, _heads;

    public Float64Gpt2(SafetensorsFile file, int layers, int heads) => (_file, _layers, _heads) = (file, layers, heads);

    private double[] W(string name)
    {
        var span = _file[name].AsSpan<float>();
        var result = new double[span.Length];
        for (int i = 0; i < span.Length; i++) result[i] = span[i];
        return result;
    }

    /// <summary>-ln p(tokens[i + 1] | tokens[0..i]) for i = 0..n-2, with the whole prefix as context.</summary>
    public double[] NextTokenLosses(int[] tokens)
    {
        var logits = Logits(tokens[..^1]);
        var losses = new double[tokens.Length - 1];
        for (int i = 0; i < losses.Length; i++) losses[i] = NegativeLogSoftmax(logits[i], tokens[i + 1]);
        return losses;
    }

    public static double NegativeLogSoftmax(double[] logits, int target)
    {
        double max = logits.Max();
        double sum = logits.Sum(x => Math.Exp(x - max));
        return Math.Log(sum) + max - logits[target];
    }

    /// <summary>Logits [T][V] for each position of <paramref name="tokens"/>.</summary>
    public double[][] Logits(int[] tokens)
    {
        var wte = W("wte.weight");
        var wpe = W("wpe.weight");
        int T = tokens.Length, C = wpe.Length / _file["wpe.weight"].Shape[0], V = wte.Length / C;
        var x = new double[T][];
        for (int t = 0; t < T; t++) x[t] = Enumerable.Range(0, C).Select(c => wte[tokens[t] * C + c] + wpe[t * C + c]).ToArray();
        for (int l = 0; l < _layers; l++)
        {
            string h = $"h.{l}.";
            var a = LayerNorm(x, W(h + "ln_1.weight"), W(h + "ln_1.bias"));
            var qkv = Linear(a, W(h + "attn.c_attn.weight"), W(h + "attn.c_attn.bias"));
            var y = Attention(qkv, C);
            x = Add(x, Linear(y, W(h + "attn.c_proj.weight"), W(h + "attn.c_proj.bias")));
            var m = LayerNorm(x, W(h + "ln_2.weight"), W(h + "ln_2.bias"));
            var f = Linear(m, W(h + "mlp.c_fc.weight"), W(h + "mlp.c_fc.bias"));
            foreach (var row in f)
                for (int i = 0; i < row.Length; i++)
                    row[i] = 0.5 * row[i] * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (row[i] + 0.044715 * row[i] * row[i] * row[i])));
            x = Add(x, Linear(f, W(h + "mlp.c_proj.weight"), W(h + "mlp.c_proj.bias")));
        }
        var final = LayerNorm(x, W("ln_f.weight"), W("ln_f.bias"));
        return final.Select(row => Enumerable.Range(0, V).Select(v => Enumerable.Range(0, C).Sum(c => row[c] * wte[v * C + c])).ToArray()).ToArray();
    }

    private static double[][] LayerNorm(double[][] x, double[] weight, double[] bias) => x.Select(row =>
    {
        double mean = row.Average();
        double variance = row.Select(v => (v - mean) * (v - mean)).Average();
        double rstd = 1 / Math.Sqrt(variance + 1e-5);
        return row.Select((v, i) => (v - mean) * rstd * weight[i] + bias[i]).ToArray();
    }).ToArray();

    private static double[][] Linear(double[][] x, double[] weight, double[] bias)
    {
        int OC = bias.Length, C = weight.Length / OC;
        return x.Select(row =>
        {
            var output = (double[])bias.Clone();
            for (int c = 0; c < C; c++)
                for (int o = 0; o < OC; o++) output[o] += row[c] * weight[c * OC + o];
            return output;
        }).ToArray();
    }

    private double[][] Attention(double[][] qkv, int C)
    {
        int T = qkv.Length, hs = C / _heads;
        var y = new double[T][];
        for (int t = 0; t < T; t++)
        {
            y[t] = new double[C];
            for (int h = 0; h < _heads; h++)
            {
                var scores = new double[t + 1];
                for (int s = 0; s <= t; s++)
                    for (int i = 0; i < hs; i++) scores[s] += qkv[t][h * hs + i] * qkv[s][C + h * hs + i] / Math.Sqrt(hs);
                double max = scores.Max();
                var weights = scores.Select(v => Math.Exp(v - max)).ToArray();
                double sum = weights.Sum();
                for (int s = 0; s <= t; s++)
                    for (int i = 0; i < hs; i++) y[t][h * hs + i] += weights[s] / sum * qkv[s][2 * C + h * hs + i];
            }
        }
        return y;
    }

    private static double[][] Add(double[][] a, double[][] b) => a.Select((row, t) => row.Select((v, i) => v + b[t][i]).ToArray()).ToArray();
}
