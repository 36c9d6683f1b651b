// AdamW and the sum of squares for gradient clipping.
#include "common.cuh"

// As torch.optim.AdamW; correction1/2 = 1 - beta^t are computed on the host.
KERNEL adamw(float* params, const float* grads, float* m, float* v, long long n, float learningRate, float beta1, float beta2,
             float eps, float weightDecay, float correction1, float correction2)
{
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = grads[i];
    float mi = beta1 * m[i] + (1.0f - beta1) * g;
    float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    float mHat = mi / correction1, vHat = vi / correction2;
    params[i] -= learningRate * (mHat / (gpu_sqrt(vHat) + eps) + weightDecay * params[i]);
}

// partials[blockIdx.x] = sum of x[i]^2 over a grid-stride slice, in float64 (blockDim.x = 256); the host adds the partials.
KERNEL sum_of_squares(double* partials, const float* x, long long n)
{
    __shared__ double shared[256];
    double sum = 0.0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        sum += (double)x[i] * x[i];
    shared[threadIdx.x] = sum;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride >>= 1)
    {
        if ((int)threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x == 0) partials[blockIdx.x] = shared[0];
}
