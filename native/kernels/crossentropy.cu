// Softmax + cross-entropy over rows of V, forward and backward.
#include "common.cuh"

// One block per row. probs may be logits itself; losses and targets may be null (probabilities only).
KERNEL softmax_cross_entropy(float* losses, float* probs, const float* logits, const int* targets, int N, int V)
{
    __shared__ float shared32[32];
    int row = blockIdx.x;
    if (row >= N) return;
    const float* x = logits + (long long)row * V;
    float* p = probs + (long long)row * V;
    // Read the target's logit before any thread overwrites it (probs may alias logits).
    float targetLogit = losses ? x[targets[row]] : 0.0f;
    float m = -3.402823466e38f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) m = x[i] > m ? x[i] : m;
    m = block_max(m, shared32);
    float sum = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) sum += gpu_exp(x[i] - m);
    sum = block_sum(sum, shared32);
    float inv = 1.0f / sum;
    for (int i = threadIdx.x; i < V; i += blockDim.x) p[i] = gpu_exp(x[i] - m) * inv;
    if (threadIdx.x == 0 && losses) losses[row] = m + gpu_log(sum) - targetLogit;
}

// dlogits = (probs - onehot(target)) * scale, overwriting; dlogits may be probs itself.
KERNEL softmax_cross_entropy_backward(float* dlogits, const float* probs, const int* targets, int N, int V, float scale)
{
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)N * V) return;
    int row = (int)(idx / V), i = (int)(idx % V);
    dlogits[idx] = (probs[idx] - (i == targets[row] ? 1.0f : 0.0f)) * scale;
}
