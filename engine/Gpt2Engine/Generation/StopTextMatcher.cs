using System.Text;

namespace Gpt2Engine.Generation;

/// <summary>
/// Watches one sample's output bytes for any of its stop texts, which may straddle tokens: it keeps the last
/// (longest length - 1) bytes seen, enough for a match that ends inside the next token.
/// </summary>
internal sealed class StopTextMatcher
{
    private readonly byte[][] _stops;
    private readonly int _keep; // bytes a match that ends in the next token can need from the ones before it
    private byte[] _window = new byte[64];
    private int _kept;

    public StopTextMatcher(IReadOnlyList<string> stopTexts)
    {
        if (stopTexts.Count == 0 || stopTexts.Any(string.IsNullOrEmpty)) throw new ArgumentException("stop texts must be given and not empty", nameof(stopTexts));
        _stops = [.. stopTexts.Select(Encoding.UTF8.GetBytes)];
        _keep = _stops.Max(stop => stop.Length) - 1;
    }

    /// <summary>Appends one token's bytes; true when the output now contains one of the stop texts.</summary>
    public bool Push(ReadOnlySpan<byte> tokenBytes)
    {
        int length = _kept + tokenBytes.Length;
        if (length > _window.Length) Array.Resize(ref _window, Math.Max(length, 2 * _window.Length));
        tokenBytes.CopyTo(_window.AsSpan(_kept));
        var seen = _window.AsSpan(0, length);
        bool found = false;
        foreach (byte[] stop in _stops) found |= seen.IndexOf(stop) >= 0;
        _kept = Math.Min(length, _keep);
        seen[^_kept..].CopyTo(_window);
        return found;
    }
}
