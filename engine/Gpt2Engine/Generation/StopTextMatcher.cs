using System.Text;

namespace Gpt2Engine.Generation;

/// <summary>
/// Watches one sample's output bytes for a stop text, which may straddle tokens: it keeps the last
/// (length - 1) bytes seen, enough for a match that ends inside the next token.
/// </summary>
internal sealed class StopTextMatcher(string stopText)
{
    private readonly byte[] _stop = Encoding.UTF8.GetBytes(stopText);
    private byte[] _window = new byte[64];
    private int _kept;

    /// <summary>Appends one token's bytes; true when the output now contains the stop text.</summary>
    public bool Push(ReadOnlySpan<byte> tokenBytes)
    {
        int length = _kept + tokenBytes.Length;
        if (length > _window.Length) Array.Resize(ref _window, Math.Max(length, 2 * _window.Length));
        tokenBytes.CopyTo(_window.AsSpan(_kept));
        var seen = _window.AsSpan(0, length);
        bool found = seen.IndexOf(_stop) >= 0;
        _kept = Math.Min(length, _stop.Length - 1);
        seen[^_kept..].CopyTo(_window);
        return found;
    }
}
