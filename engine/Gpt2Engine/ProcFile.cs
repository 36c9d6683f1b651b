using System.Globalization;

namespace Gpt2Engine;

/// <summary>Fields of Linux's /proc files.</summary>
internal static class ProcFile
{
    /// <summary>
    /// The value of a "Name:   1234 kB" line of <paramref name="path"/> (/proc/meminfo, /proc/self/status), in bytes;
    /// null where the file or the field is missing (not Linux).
    /// </summary>
    public static long? KilobyteField(string path, string name)
    {
        if (!OperatingSystem.IsLinux() || !File.Exists(path)) return null;
        string prefix = name + ":";
        foreach (string line in File.ReadLines(path))
            if (line.StartsWith(prefix, StringComparison.Ordinal)
                && long.TryParse(line[prefix.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture, out long kilobytes))
                return kilobytes * 1024;
        return null;
    }
}
