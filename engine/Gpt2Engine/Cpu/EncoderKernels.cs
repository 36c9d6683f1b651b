namespace Gpt2Engine.Cpu;

/// <summary>Token + position embedding (wte F32 or BF16), and its backward (scatter-add into wte and wpe).</summary>
internal static unsafe class EncoderKernels
{
    public static void Forward<TW>(float* output, int* tokens, TW* wte, float* wpe, int B, int T, int C, int position0) where TW : unmanaged
    {
        for (int b = 0; b < B; b++)
        {
            for (int t = 0; t < T; t++)
            {
                float* o = output + ((long)b * T + t) * C;
                TW* tokenRow = wte + (long)tokens[b * T + t] * C;
                float* positionRow = wpe + (long)(position0 + t) * C;
                for (int c = 0; c < C; c++) o[c] = BFloat16.Read(tokenRow, c) + positionRow[c];
            }
        }
    }

    public static void Backward(float* dwte, float* dwpe, float* dout, int* tokens, int B, int T, int C)
    {
        for (int b = 0; b < B; b++)
        {
            for (int t = 0; t < T; t++)
            {
                float* d = dout + ((long)b * T + t) * C;
                float* tokenRow = dwte + (long)tokens[b * T + t] * C;
                float* positionRow = dwpe + (long)t * C;
                for (int c = 0; c < C; c++)
                {
                    tokenRow[c] += d[c];
                    positionRow[c] += d[c];
                }
            }
        }
    }
}
