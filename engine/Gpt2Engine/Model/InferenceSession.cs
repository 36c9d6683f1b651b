namespace Gpt2Engine.Model;

/// <summary>
/// Decoding with a KV cache: each call feeds the next T tokens of every sequence in the batch and costs T positions,
/// not the whole prefix. Keys and values of every layer stay in [B, positions, C] buffers on the backend; the buffers
/// of one call's positions grow to the most rows (B x T) a call has fed (a prompt's, a sliding window's refill), so a
/// session costs what it feeds.
/// </summary>
public sealed class InferenceSession : IDisposable
{
    private readonly Gpt2Model _model;
    private readonly Backend _backend;
    private readonly List<DeviceBuffer> _owned = [], _rowBuffers = [];
    private readonly DeviceBuffer[] _keyCache, _valueCache;
    private readonly DeviceBuffer _last, _lastAttY, _lastLn, _logits, _targets, _losses;
    private DeviceBuffer _tokens, _residual, _ln, _qkv, _attY, _attProj, _fch, _fchGelu, _fcProj; // [rows, ...], see EnsureRows
    private long _rows;
    private readonly float[] _hostLogits, _hostLosses;
    private DeviceBuffer _scoreLogits; // [positions, V] for Losses, allocated by its first call

    public int BatchSize { get; }
    /// <summary>Positions already in the cache, per sequence.</summary>
    public int Position { get; private set; }
    /// <summary>Positions the cache holds per sequence (at most the model's context).</summary>
    public int MaxPositions { get; }

    internal InferenceSession(Gpt2Model model, int batchSize, int positions)
    {
        var c = model.Config;
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(positions, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(positions, c.ContextLength);
        _model = model;
        _backend = model.Backend;
        BatchSize = batchSize;
        MaxPositions = positions;
        int C = c.Channels;
        try
        {
            _keyCache = new DeviceBuffer[c.Layers];
            _valueCache = new DeviceBuffer[c.Layers];
            for (int l = 0; l < c.Layers; l++)
            {
                _keyCache[l] = New(_owned, (long)batchSize * positions * C);
                _valueCache[l] = New(_owned, (long)batchSize * positions * C);
            }
            _last = New(_owned, (long)batchSize * C);
            _lastAttY = New(_owned, (long)batchSize * C);
            _lastLn = New(_owned, (long)batchSize * C);
            _logits = New(_owned, (long)batchSize * c.VocabSize);
            _targets = New(_owned, positions, Checkpoints.TensorDType.I32);
            _losses = New(_owned, positions);
        }
        catch
        {
            Dispose();
            throw;
        }
        _hostLogits = new float[batchSize * c.VocabSize];
        _hostLosses = new float[positions];
    }

    private DeviceBuffer New(List<DeviceBuffer> owner, long count, Checkpoints.TensorDType dtype = Checkpoints.TensorDType.F32)
    {
        var buffer = _backend.Allocate(count, dtype);
        owner.Add(buffer);
        return buffer;
    }

    /// <summary>Makes the per-position buffers hold at least <paramref name="rows"/> rows (B x T), reallocating them if they are smaller.</summary>
    private void EnsureRows(long rows)
    {
        if (rows <= _rows) return;
        FreeAll(_rowBuffers);
        _rows = 0;
        int C = _model.Config.Channels;
        _tokens = New(_rowBuffers, rows, Checkpoints.TensorDType.I32);
        _residual = New(_rowBuffers, rows * C);
        _ln = New(_rowBuffers, rows * C);
        _qkv = New(_rowBuffers, rows * 3 * C);
        _attY = New(_rowBuffers, rows * C);
        _attProj = New(_rowBuffers, rows * C);
        _fch = New(_rowBuffers, rows * 4 * C);
        _fchGelu = New(_rowBuffers, rows * 4 * C);
        _fcProj = New(_rowBuffers, rows * C);
        _rows = rows;
    }

    /// <summary>Forgets every position (the buffers stay allocated).</summary>
    public void Reset() => Position = 0;

    /// <summary>
    /// Feeds T new tokens per sequence (laid out [B, T]) and returns each sequence's logits at its last new position,
    /// [B, V]. The span stays valid until the next call.
    /// </summary>
    public ReadOnlySpan<float> Forward(scoped ReadOnlySpan<int> tokens, int T)
    {
        int B = BatchSize, C = _model.Config.Channels, V = _model.Config.VocabSize;
        if (T < 1 || tokens.Length != B * T) throw new ArgumentException($"expected {B * T} tokens ({B} sequences of {T})");
        var last = Advance(tokens, T, T - 1);
        var p = _model.Parameters;
        _backend.LayerNorm(_lastLn, default, default, last, p.LnFWeight, p.LnFBias, B, C);
        _backend.MatmulTransposed(_logits, _lastLn, p.Wte, B, C, V);
        _backend.Download<float>(_logits, _hostLogits);
        return _hostLogits;
    }

    /// <summary>
    /// Feeds the next tokens of a batch-1 session and returns, for each new position t from <paramref name="from"/> on,
    /// -ln p(targets[t] | the tokens up to t) in nats. Only those positions get logits (a sliding-window score needs the
    /// part of each window that no earlier window scored). The span stays valid until the next call.
    /// </summary>
    public ReadOnlySpan<float> Losses(scoped ReadOnlySpan<int> tokens, scoped ReadOnlySpan<int> targets, int from)
    {
        int T = tokens.Length, C = _model.Config.Channels, V = _model.Config.VocabSize, rows = T - from;
        if (BatchSize != 1) throw new InvalidOperationException("losses are computed by a batch-1 session");
        if (T < 1 || targets.Length != T) throw new ArgumentException($"expected as many targets as tokens ({T})");
        ArgumentOutOfRangeException.ThrowIfNegative(from);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(from, T);
        foreach (int target in targets)
            if ((uint)target >= (uint)V) throw new Gpt2Exception($"token id {target} is outside the vocabulary (0..{V - 1})");
        var hidden = Advance(tokens, T, from);
        if (_scoreLogits.IsNone) _scoreLogits = New(_owned, (long)MaxPositions * V);
        var p = _model.Parameters;
        _backend.LayerNorm(_ln, default, default, hidden, p.LnFWeight, p.LnFBias, rows, C);
        _backend.MatmulTransposed(_scoreLogits, _ln, p.Wte, rows, C, V);
        _backend.Upload(_targets, targets[from..]);
        _backend.SoftmaxCrossEntropy(_losses, _scoreLogits, _scoreLogits, _targets, rows, V);
        _backend.Download<float>(_losses.Slice(0, rows), _hostLosses.AsSpan(0, rows));
        return _hostLosses.AsSpan(0, rows);
    }

    /// <summary>
    /// Runs the layers over T new tokens per sequence and returns the last layer's output at positions from..T-1 of
    /// each sequence (from is T - 1 when B > 1). After the last layer's attention, which fills the cache for every
    /// position, nothing mixes positions: the rest of that layer runs on those rows alone.
    /// </summary>
    private DeviceBuffer Advance(scoped ReadOnlySpan<int> tokens, int T, int from)
    {
        var config = _model.Config;
        int B = BatchSize, C = config.Channels, NH = config.Heads, V = config.VocabSize, N = B * T;
        if (Position + T > MaxPositions)
            throw new Gpt2Exception(MaxPositions == config.ContextLength
                ? $"{Position + T} positions exceed the model's context of {MaxPositions}"
                : $"{Position + T} positions exceed this session's {MaxPositions}");
        foreach (int token in tokens)
            if ((uint)token >= (uint)V) throw new Gpt2Exception($"token id {token} is outside the vocabulary (0..{V - 1})");
        EnsureRows(N);

        var p = _model.Parameters;
        var residual = _residual.Slice(0, (long)N * C);
        _backend.Upload(_tokens, tokens);
        _backend.Encoder(residual, _tokens, p.Wte, p.Wpe, B, T, C, Position);
        for (int l = 0; l < config.Layers; l++)
        {
            var w = p.Layers[l];
            _backend.LayerNorm(_ln, default, default, residual, w.Ln1Weight, w.Ln1Bias, N, C);
            _backend.Matmul(_qkv, _ln, w.QkvWeight, w.QkvBias, N, C, 3 * C);
            _backend.AttentionCached(_attY, _qkv, _keyCache[l], _valueCache[l], B, T, Position, MaxPositions, C, NH);
            var x = residual;
            var attY = _attY;
            int rows = N;
            if (l == config.Layers - 1 && from > 0)
            {
                if (B == 1)
                {
                    rows = T - from;
                    (x, attY) = (residual.Slice((long)from * C, (long)rows * C), _attY.Slice((long)from * C, (long)rows * C));
                }
                else
                {
                    for (int b = 0; b < B; b++)
                    {
                        long at = ((long)b * T + from) * C;
                        _backend.Copy(_last.Slice((long)b * C, C), residual.Slice(at, C));
                        _backend.Copy(_lastAttY.Slice((long)b * C, C), _attY.Slice(at, C));
                    }
                    (x, attY, rows) = (_last, _lastAttY, B);
                }
            }
            _backend.Matmul(_attProj, attY, w.AttnProjWeight, w.AttnProjBias, rows, C, C);
            _backend.Residual(x, x, _attProj, rows * C);
            _backend.LayerNorm(_ln, default, default, x, w.Ln2Weight, w.Ln2Bias, rows, C);
            _backend.Matmul(_fch, _ln, w.FcWeight, w.FcBias, rows, C, 4 * C);
            _backend.Gelu(_fchGelu, _fch, rows * 4 * C);
            _backend.Matmul(_fcProj, _fchGelu, w.FcProjWeight, w.FcProjBias, rows, 4 * C, C);
            _backend.Residual(x, x, _fcProj, rows * C);
            if (l == config.Layers - 1) residual = x;
        }
        Position += T;
        return residual;
    }

    public void Dispose()
    {
        FreeAll(_rowBuffers);
        FreeAll(_owned);
    }

    private void FreeAll(List<DeviceBuffer> buffers)
    {
        foreach (var buffer in buffers) _backend.Free(buffer);
        buffers.Clear();
    }
}
