// Token + position embedding, forward and backward. One thread per output element.
#include "common.cuh"

// Either table may be F32 or BF16 (converted checkpoints keep wpe F32 and store wte as BF16).
template <typename Wte, typename Wpe>
DEVICE_INLINE void encoder_forward(float* out, const int* tokens, const Wte* wte, const Wpe* wpe, int BT, int T, int C, int position0)
{
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)BT * C) return;
    int bt = (int)(idx / C), c = (int)(idx % C);
    int t = bt % T;
    out[idx] = load_f32(wte, (long long)tokens[bt] * C + c) + load_f32(wpe, (long long)(position0 + t) * C + c);
}

#define ENCODER_FORWARD(name, Wte, Wpe) \
    KERNEL name(float* out, const int* tokens, const Wte* wte, const Wpe* wpe, int BT, int T, int C, int position0) \
    { encoder_forward(out, tokens, wte, wpe, BT, T, C, position0); }

ENCODER_FORWARD(encoder_forward_f32_f32, float, float)
ENCODER_FORWARD(encoder_forward_f32_bf16, float, unsigned short)
ENCODER_FORWARD(encoder_forward_bf16_f32, unsigned short, float)
ENCODER_FORWARD(encoder_forward_bf16_bf16, unsigned short, unsigned short)

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
