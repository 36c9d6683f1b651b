// Token + position embedding, forward and backward. One thread per output element.
#include "common.cuh"

template <typename Table>
DEVICE_INLINE void encoder_forward(float* out, const int* tokens, const Table* wte, const Table* wpe, int BT, int T, int C, int position0)
{
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)BT * C) return;
    int bt = (int)(idx / C), c = (int)(idx % C);
    int t = bt % T;
    out[idx] = load_f32(wte, (long long)tokens[bt] * C + c) + load_f32(wpe, (long long)(position0 + t) * C + c);
}

KERNEL encoder_forward_f32(float* out, const int* tokens, const float* wte, const float* wpe, int BT, int T, int C, int position0)
{
    encoder_forward(out, tokens, wte, wpe, BT, T, C, position0);
}

KERNEL encoder_forward_bf16(float* out, const int* tokens, const unsigned short* wte, const unsigned short* wpe, int BT, int T, int C, int position0)
{
    encoder_forward(out, tokens, wte, wpe, BT, T, C, position0);
}

// dwte[token] += dout, dwpe[t] += dout. Atomics: several positions may share a token.
KERNEL encoder_backward(float* dwte, float* dwpe, const float* dout, const int* tokens, int BT, int T, int C)
{
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)BT * C) return;
    int bt = (int)(idx / C), c = (int)(idx % C);
    int t = bt % T;
    float d = dout[idx];
    atomicAdd(&dwte[(long long)tokens[bt] * C + c], d);
    atomicAdd(&dwpe[(long long)t * C + c], d);
}
