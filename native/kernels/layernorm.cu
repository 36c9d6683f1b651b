// LayerNorm over rows of C, forward and backward. One warp per row, 8 warps per block.
#include "common.cuh"

// mean and rstd may be null (inference).
KERNEL layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight, const float* bias, int N, int C)
{
    int lane = threadIdx.x % 32;
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= N) return;
    const float* x = inp + (long long)row * C;
    float sum = 0.0f;
    for (int i = lane; i < C; i += 32) sum += x[i];
    float m = warp_sum(sum) / C;
    float sq = 0.0f;
    for (int i = lane; i < C; i += 32) { float d = x[i] - m; sq += d * d; }
    float s = 1.0f / gpu_sqrt(warp_sum(sq) / C + 1e-5f);
    float* o = out + (long long)row * C;
    for (int i = lane; i < C; i += 32) o[i] = (x[i] - m) * s * weight[i] + bias[i];
    if (lane == 0 && mean) mean[row] = m;
    if (lane == 0 && rstd) rstd[row] = s;
}

// dinp += ..., dweight += ..., dbias += ... One warp per row, rows strided over the grid. A block sums dweight and
// dbias over its rows in shared memory first, so global atomics are per block and channel, not per row and channel
// (for C beyond the shared arrays, straight to global memory).
#define LAYERNORM_SHARED_C 2048

KERNEL layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp, const float* weight,
                          const float* mean, const float* rstd, int N, int C)
{
    __shared__ float dweightBlock[LAYERNORM_SHARED_C];
    __shared__ float dbiasBlock[LAYERNORM_SHARED_C];
    bool inShared = C <= LAYERNORM_SHARED_C;
    float* dw = inShared ? dweightBlock : dweight;
    float* db = inShared ? dbiasBlock : dbias;
    if (inShared)
        for (int i = threadIdx.x; i < C; i += blockDim.x) { dweightBlock[i] = 0.0f; dbiasBlock[i] = 0.0f; }
    __syncthreads();
    int lane = threadIdx.x % 32, warps = blockDim.x / 32;
    for (int row = blockIdx.x * warps + threadIdx.x / 32; row < N; row += gridDim.x * warps)
    {
        const float* x = inp + (long long)row * C;
        const float* dy = dout + (long long)row * C;
        float* dx = dinp + (long long)row * C;
        float m = mean[row], s = rstd[row];
        float dnorm_sum = 0.0f, dnorm_norm_sum = 0.0f;
        for (int i = lane; i < C; i += 32)
        {
            float norm = (x[i] - m) * s;
            float dnorm = weight[i] * dy[i];
            dnorm_sum += dnorm;
            dnorm_norm_sum += dnorm * norm;
        }
        float dnorm_mean = warp_sum(dnorm_sum) / C;
        float dnorm_norm_mean = warp_sum(dnorm_norm_sum) / C;
        for (int i = lane; i < C; i += 32)
        {
            float norm = (x[i] - m) * s;
            float dnorm = weight[i] * dy[i];
            atomicAdd(&db[i], dy[i]);
            atomicAdd(&dw[i], norm * dy[i]);
            dx[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
    __syncthreads();
    if (inShared)
        for (int i = threadIdx.x; i < C; i += blockDim.x) { atomicAdd(&dweight[i], dweightBlock[i]); atomicAdd(&dbias[i], dbiasBlock[i]); }
}
