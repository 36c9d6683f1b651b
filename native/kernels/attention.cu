// Causal self-attention pieces around cuBLAS, as llm.c's CUDA trainer: qkv[B,T,3C] is permuted into q, k, v
// [B,NH,T,d]; cuBLAS forms the scores q k^T and the products att v; these kernels do the rest.
#include "common.cuh"

// q, k, v [B,NH,T,d] from qkv [B,T,3,NH,d]. One thread per element of q.
KERNEL attention_permute(float* q, float* k, float* v, const float* qkv, int B, int T, int NH, int d)
{
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)B * NH * T * d) return;
    int c = (int)(idx % d), t = (int)(idx / d % T), h = (int)(idx / ((long long)d * T) % NH), b = (int)(idx / ((long long)d * T * NH));
    long long C = (long long)NH * d;
    long long src = ((long long)b * T + t) * 3 * C + (long long)h * d + c;
    q[idx] = qkv[src];
    k[idx] = qkv[src + C];
    v[idx] = qkv[src + 2 * C];
}

// dqkv [B,T,3,NH,d] += dq, dk, dv [B,NH,T,d]: the backward of attention_permute.
KERNEL attention_permute_backward(float* dqkv, const float* dq, const float* dk, const float* dv, int B, int T, int NH, int d)
{
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)B * NH * T * d) return;
    int c = (int)(idx % d), t = (int)(idx / d % T), h = (int)(idx / ((long long)d * T) % NH), b = (int)(idx / ((long long)d * T * NH));
    long long C = (long long)NH * d;
    long long dst = ((long long)b * T + t) * 3 * C + (long long)h * d + c;
    dqkv[dst] += dq[idx];
    dqkv[dst + C] += dk[idx];
    dqkv[dst + 2 * C] += dv[idx];
}

// out [B,T,NH,d] from y [B,NH,T,d]; with backward = 1 the other way round (dy from dout).
KERNEL attention_unpermute(float* out, const float* y, int B, int T, int NH, int d, int backward)
{
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)B * NH * T * d) return;
    int c = (int)(idx % d), t = (int)(idx / d % T), h = (int)(idx / ((long long)d * T) % NH), b = (int)(idx / ((long long)d * T * NH));
    long long other = ((long long)b * T + t) * NH * d + (long long)h * d + c;
    if (backward) out[idx] = y[other];
    else out[other] = y[idx];
}

// In place, per row i of each [T,T] score matrix: softmax over j <= i, zero for j > i. One warp per row.
KERNEL attention_softmax(float* att, int rows, int T)
{
    int lane = threadIdx.x % 32;
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= rows) return;
    int i = row % T;
    float* a = att + (long long)row * T;
    float m = -3.402823466e38f;
    for (int j = lane; j <= i; j += 32) m = a[j] > m ? a[j] : m;
    m = warp_max(m);
    float sum = 0.0f;
    for (int j = lane; j <= i; j += 32) { float e = gpu_exp(a[j] - m); a[j] = e; sum += e; }
    float inv = 1.0f / warp_sum(sum);
    for (int j = lane; j < T; j += 32) a[j] = j <= i ? a[j] * inv : 0.0f;
}

// datt becomes dpreatt in place: dpre[j] = scale * att[j] (datt[j] - sum_k att[k] datt[k]), j <= i. One warp per row.
KERNEL attention_softmax_backward(float* datt, const float* att, int rows, int T, float scale)
{
    int lane = threadIdx.x % 32;
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= rows) return;
    int i = row % T;
    float* d = datt + (long long)row * T;
    const float* a = att + (long long)row * T;
    float dot = 0.0f;
    for (int j = lane; j <= i; j += 32) dot += a[j] * d[j];
    dot = warp_sum(dot);
    for (int j = lane; j < T; j += 32) d[j] = j <= i ? scale * a[j] * (d[j] - dot) : 0.0f;
}

// Generation: write the keys and values of positions position0 .. position0+T-1 into the caches [B,maxT,C].
KERNEL kv_cache_write(float* keyCache, float* valueCache, const float* qkv, int B, int T, int position0, int maxT, int C)
{
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)B * T * C) return;
    int c = (int)(idx % C), t = (int)(idx / C % T), b = (int)(idx / ((long long)C * T));
    long long src = ((long long)b * T + t) * 3 * C + c;
    long long dst = ((long long)b * maxT + position0 + t) * C + c;
    keyCache[dst] = qkv[src + C];
    valueCache[dst] = qkv[src + 2 * C];
}

// Generation: one block of 256 threads per (b, t, h) query, attending to cache positions 0 .. position0+t.
// Threads split the keys for the scores; for the output, thread (c, g) sums every (256/d)-th position for channel c
// (neighbouring threads read neighbouring channels), then the groups' partial sums are added. Needs d <= 256.
// scores [B*T*NH, maxT] is scratch for the probabilities.
KERNEL attention_cached(float* out, float* scores, const float* qkv, const float* keyCache, const float* valueCache,
                        int B, int T, int position0, int maxT, int C, int NH)
{
    __shared__ float shared32[32];
    __shared__ float partial[256];
    int row = blockIdx.x;
    if (row >= B * T * NH) return;
    int h = row % NH, t = row / NH % T, b = row / (NH * T);
    int d = C / NH, length = position0 + t + 1;
    float scale = 1.0f / gpu_sqrt((float)d);
    const float* q = qkv + ((long long)b * T + t) * 3 * C + (long long)h * d;
    const float* keys = keyCache + (long long)b * maxT * C + (long long)h * d;
    const float* values = valueCache + (long long)b * maxT * C + (long long)h * d;
    float* p = scores + (long long)row * maxT;
    float m = -3.402823466e38f;
    for (int j = threadIdx.x; j < length; j += blockDim.x)
    {
        float s = 0.0f;
        for (int c = 0; c < d; c++) s += q[c] * keys[(long long)j * C + c];
        s *= scale;
        p[j] = s;
        m = s > m ? s : m;
    }
    m = block_max(m, shared32);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < length; j += blockDim.x) { float e = gpu_exp(p[j] - m); p[j] = e; sum += e; }
    float inv = 1.0f / block_sum(sum, shared32);   // its barriers also publish every p[j] to the whole block
    int groups = blockDim.x / d, c = threadIdx.x % d, g = threadIdx.x / d;
    float acc = 0.0f;
    if (g < groups)
        for (int j = g; j < length; j += groups) acc += p[j] * values[(long long)j * C + c];
    partial[threadIdx.x] = acc;
    __syncthreads();
    if ((int)threadIdx.x < d)
    {
        float total = 0.0f;
        for (int k = 0; k < groups; k++) total += partial[k * d + threadIdx.x];
        out[((long long)b * T + t) * C + (long long)h * d + threadIdx.x] = total * inv;
    }
}
