using System.Buffers.Binary;

namespace Gpt2Engine.Checkpoints;

/// <summary>
/// Just enough of the protobuf wire format for TensorFlow's bundle protos: varints, fixed32, length-delimited fields.
/// Problems throw a <see cref="Gpt2Exception"/> that names <see cref="Context"/> (the file and record being read).
/// </summary>
internal ref struct ProtoReader(ReadOnlySpan<byte> data, string context)
{
    public const int Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5;

    private readonly ReadOnlySpan<byte> _data = data;
    private int _position;

    public readonly string Context = context;
    public readonly bool AtEnd => _position >= _data.Length;
    public readonly int Position => _position;

    /// <summary>Reads the next field key; false at the end of the message.</summary>
    public bool TryReadTag(out int field, out int wireType)
    {
        if (AtEnd)
        {
            (field, wireType) = (0, 0);
            return false;
        }
        ulong tag = ReadVarint();
        (field, wireType) = ((int)(tag >> 3), (int)(tag & 7));
        if (field == 0) throw Corrupt("field number 0");
        return true;
    }

    public ulong ReadVarint()
    {
        ulong value = 0;
        for (int shift = 0; shift < 70; shift += 7)
        {
            if (_position >= _data.Length) throw Corrupt("truncated varint");
            byte b = _data[_position++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
        throw Corrupt("varint longer than 10 bytes");
    }

    /// <summary>A varint that must fit a non-negative int64 (sizes, offsets, dimensions).</summary>
    public long ReadNonNegative(string what)
    {
        ulong value = ReadVarint();
        return value <= long.MaxValue ? (long)value : throw Corrupt($"negative {what}");
    }

    public uint ReadFixed32()
    {
        if (_position + 4 > _data.Length) throw Corrupt("truncated fixed32");
        uint value = BinaryPrimitives.ReadUInt32LittleEndian(_data[_position..]);
        _position += 4;
        return value;
    }

    public ReadOnlySpan<byte> ReadBytes()
    {
        ulong length = ReadVarint();
        return ReadRaw(length > int.MaxValue ? -1 : (long)length);
    }

    /// <summary>The next <paramref name="length"/> bytes as they are (SSTable keys and values).</summary>
    public ReadOnlySpan<byte> ReadRaw(long length)
    {
        if (length < 0 || length > _data.Length - _position) throw Corrupt("record runs past the end");
        var bytes = _data.Slice(_position, (int)length);
        _position += (int)length;
        return bytes;
    }

    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case Varint: ReadVarint(); break;
            case LengthDelimited: ReadBytes(); break;
            case Fixed32: ReadFixed32(); break;
            case Fixed64:
                if (_position + 8 > _data.Length) throw Corrupt("truncated fixed64");
                _position += 8;
                break;
            default: throw Corrupt($"unsupported wire type {wireType}");
        }
    }

    public readonly Gpt2Exception Corrupt(string problem) => new($"{Context}: corrupt data ({problem})");
}

/// <summary>Appends protobuf fields (and bare varints, for SSTable entries) to a growing buffer.</summary>
internal sealed class ProtoWriter
{
    private readonly List<byte> _bytes = [];

    public int Length => _bytes.Count;
    public byte[] ToArray() => [.. _bytes];
    public void Clear() => _bytes.Clear();

    public void RawVarint(ulong value)
    {
        while (value >= 0x80)
        {
            _bytes.Add((byte)(value | 0x80));
            value >>= 7;
        }
        _bytes.Add((byte)value);
    }

    public void RawBytes(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes) _bytes.Add(b);
    }

    public void RawFixed32(uint value)
    {
        Span<byte> buffer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, value);
        RawBytes(buffer);
    }

    /// <summary>A varint field; proto3 omits the default value 0.</summary>
    public void Varint(int field, ulong value)
    {
        if (value == 0) return;
        RawVarint((ulong)field << 3 | ProtoReader.Varint);
        RawVarint(value);
    }

    public void Fixed32(int field, uint value)
    {
        RawVarint((ulong)field << 3 | ProtoReader.Fixed32);
        RawFixed32(value);
    }

    public void Bytes(int field, ReadOnlySpan<byte> value)
    {
        RawVarint((ulong)field << 3 | ProtoReader.LengthDelimited);
        RawVarint((ulong)value.Length);
        RawBytes(value);
    }
}
