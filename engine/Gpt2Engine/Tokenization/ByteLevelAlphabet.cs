namespace Gpt2Engine.Tokenization;

/// <summary>
/// GPT-2's reversible map from bytes to printable characters, in which encoder.json and vocab.bpe spell their
/// tokens: printable Latin-1 bytes stand for themselves, the other 68 bytes for U+0100.. in byte order.
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = BuildByteToChar();
    private static readonly short[] CharToByte = BuildCharToByte();

    public static char ToChar(byte b) => ByteToChar[b];

    /// <summary>The byte that <paramref name="c"/> stands for; false when it is not a character of the alphabet.</summary>
    public static bool TryGetByte(char c, out byte b)
    {
        int value = c < CharToByte.Length ? CharToByte[c] : -1;
        b = (byte)value;
        return value >= 0;
    }

    private static bool IsPrintable(int b) => b is >= '!' and <= '~' or >= '¡' and <= '¬' or >= '®' and <= 'ÿ';

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
            map[b] = IsPrintable(b) ? (char)b : (char)next++;
        return map;
    }

    private static short[] BuildCharToByte()
    {
        var map = new short[256 + 68];
        Array.Fill(map, (short)-1);
        for (int b = 0; b < 256; b++)
            map[ByteToChar[b]] = (short)b;
        return map;
    }
}
