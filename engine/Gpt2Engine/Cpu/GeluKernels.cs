namespace Gpt2Engine.Cpu;

/// <summary>GELU in GPT-2's tanh form, forward and backward.</summary>
internal static unsafe class GeluKernels
{
    private static readonly float ScalingFactor = MathF.Sqrt(2f / MathF.PI);

    public static void Forward(float* output, float* input, long N, int threads)
    {
        CpuParallel.For((int)N, threads, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                float x = input[i];
                float cube = 0.044715f * x * x * x;
                output[i] = 0.5f * x * (1f + MathF.Tanh(ScalingFactor * (x + cube)));
            }
        });
    }

    public static void Backward(float* dinput, float* input, float* dout, long N, int threads)
    {
        CpuParallel.For((int)N, threads, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                float x = input[i];
                float cube = 0.044715f * x * x * x;
                float tanhArg = ScalingFactor * (x + cube);
                float tanhOut = MathF.Tanh(tanhArg);
                float coshOut = MathF.Cosh(tanhArg);
                float sech2 = 1f / (coshOut * coshOut);
                float local = 0.5f * (1f + tanhOut) + x * 0.5f * sech2 * ScalingFactor * (1f + 3f * 0.044715f * x * x);
                dinput[i] += local * dout[i];
            }
        });
    }
}
