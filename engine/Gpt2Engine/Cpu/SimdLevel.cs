using System.Runtime.Intrinsics;

namespace Gpt2Engine.Cpu;

/// <summary>The vector width the CPU kernels use: picked once at start-up, forced with <c>GPT2_CPU_SIMD=scalar|128|256|512</c>.</summary>
public enum SimdLevel { Scalar, V128, V256, V512 }

public static class CpuSimd
{
    public const string EnvironmentVariable = "GPT2_CPU_SIMD";

    private static SimdLevel? _level;

    /// <summary>The widest level this machine accelerates, or the one <see cref="EnvironmentVariable"/> asks for.</summary>
    public static SimdLevel Level => _level ??= Pick(Environment.GetEnvironmentVariable(EnvironmentVariable));

    /// <summary>Levels this machine can run (each is tested).</summary>
    public static IEnumerable<SimdLevel> Supported => Enum.GetValues<SimdLevel>().Where(IsSupported);

    public static bool IsSupported(SimdLevel level) => level switch
    {
        SimdLevel.V512 => Vector512.IsHardwareAccelerated,
        SimdLevel.V256 => Vector256.IsHardwareAccelerated,
        SimdLevel.V128 => Vector128.IsHardwareAccelerated,
        _ => true,
    };

    private static SimdLevel Pick(string? forced)
    {
        if (string.IsNullOrWhiteSpace(forced)) return Supported.Max();
        SimdLevel level = forced.Trim().ToLowerInvariant() switch
        {
            "scalar" => SimdLevel.Scalar,
            "128" => SimdLevel.V128,
            "256" => SimdLevel.V256,
            "512" => SimdLevel.V512,
            _ => throw new Gpt2Exception($"{EnvironmentVariable}={forced}: expected scalar, 128, 256 or 512"),
        };
        if (!IsSupported(level)) throw new Gpt2Exception($"{EnvironmentVariable}={forced}: this CPU does not accelerate {forced}-bit vectors");
        return level;
    }

    public static string Describe(SimdLevel level) => level == SimdLevel.Scalar ? "scalar" : $"{(int)level switch { 1 => 128, 2 => 256, _ => 512 }}-bit";
}
