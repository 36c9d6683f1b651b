using System.Numerics.Tensors;

namespace Gpt2Engine.Generation;

/// <summary>
/// Picks the next token from a row of logits, as OpenAI's sampling script does: divide by the temperature, keep the
/// <c>topK</c> largest (0 = all), then the nucleus of <c>topP</c> (the fewest most-likely tokens whose probabilities
/// sum to at least topP; 1 = all), then draw from what is left. Temperature 0 means greedy (argmax, lowest index on
/// ties). The buffers are allocated once, so sampling a token allocates nothing.
/// </summary>
public sealed class Sampler
{
    /// <summary>Up to this k, the top k are kept by insertion into a sorted list; beyond it a full sort is cheaper.</summary>
    private const int InsertionSelectLimit = 128;

    private readonly int[] _indices;
    private readonly float[] _logits;
    private readonly double[] _weights;

    public float Temperature { get; }
    public int TopK { get; }
    public float TopP { get; }
    public bool IsGreedy => Temperature == 0;

    public Sampler(int vocabSize, float temperature, int topK, float topP)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabSize);
        Validate(temperature, topK, topP);
        Temperature = temperature;
        TopK = topK >= vocabSize ? 0 : topK;
        TopP = topP;
        _indices = new int[vocabSize];
        _logits = new float[vocabSize];
        _weights = new double[vocabSize];
    }

    /// <summary>Throws a <see cref="Gpt2Exception"/> for a setting out of its range.</summary>
    internal static void Validate(float temperature, int topK, float topP)
    {
        if (!(temperature >= 0) || float.IsInfinity(temperature)) throw new Gpt2Exception($"temperature {temperature} must be a finite number >= 0 (0 = greedy)");
        if (topK < 0) throw new Gpt2Exception($"top-k {topK} must be >= 0 (0 = no limit)");
        if (!(topP > 0 && topP <= 1)) throw new Gpt2Exception($"top-p {topP} must be in (0, 1] (1 = no limit)");
    }

    /// <summary>The index of the largest logit, the lowest one on ties.</summary>
    public static int ArgMax(ReadOnlySpan<float> logits) => TensorPrimitives.IndexOfMax(logits);

    /// <summary>The next token for <paramref name="logits"/> (one row of V), drawing from <paramref name="rng"/> unless greedy.</summary>
    public int Sample(ReadOnlySpan<float> logits, ref Xoshiro256StarStar rng)
    {
        if (logits.Length != _logits.Length) throw new ArgumentException($"expected {_logits.Length} logits, got {logits.Length}", nameof(logits));
        int best = ArgMax(logits); // the first NaN, if there is one
        if (float.IsNaN(logits[best])) throw new Gpt2Exception("the model's logits are NaN: its weights may be corrupt");
        if (IsGreedy) return best;

        int n = SelectCandidates(logits, out double prunedMass);
        var indices = _indices.AsSpan(0, n);
        var candidates = _logits.AsSpan(0, n);
        var weights = _weights.AsSpan(0, n);

        // Unnormalised probabilities exp((l - max) / T), in double so that the cumulative sums below are exact enough.
        float max = TensorPrimitives.Max(candidates);
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            weights[i] = Math.Exp((candidates[i] - (double)max) / Temperature);
            total += weights[i];
        }

        if (TopP < 1)
        {
            // Candidates are sorted by decreasing logit: keep the shortest prefix holding at least TopP of the mass.
            double target = TopP * (total + prunedMass), cumulative = 0;
            int kept = 0;
            while (kept < n && cumulative < target) cumulative += weights[kept++];
            n = Math.Max(kept, 1);
            total = cumulative;
        }

        double u = rng.NextDouble() * total;
        for (int i = 0; i < n - 1; i++)
        {
            u -= weights[i];
            if (u < 0) return indices[i];
        }
        return indices[n - 1];
    }

    /// <summary>
    /// Fills _indices/_logits with the tokens still in play and returns their count. They are sorted by decreasing
    /// logit whenever top-k or top-p needs an order; with neither, every token is a candidate in vocabulary order.
    /// <paramref name="prunedMass"/> is the weight exp((l - max) / T) of the tokens left out that still count in the
    /// nucleus's total (top-p alone); 0 otherwise.
    /// </summary>
    private int SelectCandidates(ReadOnlySpan<float> logits, out double prunedMass)
    {
        prunedMass = 0;
        if (TopK > 0 && TopK <= InsertionSelectLimit) return SelectTopKByInsertion(logits, TopK);
        if (TopK == 0 && TopP < 1) return SelectNucleusCandidates(logits, out prunedMass);
        int n = logits.Length;
        logits.CopyTo(_logits);
        for (int i = 0; i < n; i++) _indices[i] = i;
        if (TopK == 0) return n;
        SortDescending(n);
        return TopK;
    }

    /// <summary>
    /// Top-p without top-k: tokens with less than (1 - TopP) / (2V) of the mass cannot reach the nucleus (all of them
    /// together hold under half of the 1 - TopP outside it), so only the others are sorted: a few instead of V.
    /// </summary>
    private int SelectNucleusCandidates(ReadOnlySpan<float> logits, out double prunedMass)
    {
        float max = TensorPrimitives.Max(logits);
        double total = 0;
        foreach (float logit in logits) total += Math.Exp((logit - (double)max) / Temperature);
        double cutoff = max + Temperature * Math.Log(0.5 * (1 - TopP) * total / logits.Length);
        int n = 0;
        double kept = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            if (logits[i] < cutoff) continue;
            _logits[n] = logits[i];
            _indices[n++] = i;
            kept += Math.Exp((logits[i] - (double)max) / Temperature);
        }
        prunedMass = Math.Max(0, total - kept);
        SortDescending(n);
        return n;
    }

    private void SortDescending(int n)
    {
        // Ascending by negated logit = descending by logit.
        var keys = _logits.AsSpan(0, n);
        TensorPrimitives.Negate(keys, keys);
        keys.Sort(_indices.AsSpan(0, n));
        TensorPrimitives.Negate(keys, keys);
    }

    /// <summary>The k largest logits, in decreasing order (an earlier index first among equals), by insertion.</summary>
    private int SelectTopKByInsertion(ReadOnlySpan<float> logits, int k)
    {
        int count = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            float value = logits[i];
            if (count == k && !(value > _logits[k - 1])) continue;
            int position = count == k ? k - 1 : count++;
            while (position > 0 && value > _logits[position - 1])
            {
                _logits[position] = _logits[position - 1];
                _indices[position] = _indices[position - 1];
                position--;
            }
            _logits[position] = value;
            _indices[position] = i;
        }
        return count;
    }
}
