// Element-wise kernels: GELU, residual, accumulate, scale, bias, rounding to bf16. One thread per element.
#include "common.cuh"

#define ELEMENT_INDEX long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; if (i >= n) return

#define GELU_SCALE 0.7978845608028654f   // sqrt(2 / pi)

KERNEL gelu_forward(float* out, const float* inp, long long n)
{
    ELEMENT_INDEX;
    float x = inp[i];
    out[i] = 0.5f * x * (1.0f + gpu_tanh(GELU_SCALE * (x + 0.044715f * x * x * x)));
}

KERNEL gelu_backward(float* dinp, const float* inp, const float* dout, long long n)
{
    ELEMENT_INDEX;
    float x = inp[i];
    float u = GELU_SCALE * (x + 0.044715f * x * x * x);
    float th = gpu_tanh(u);
    float sech2 = 1.0f - th * th;
    float local = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
    dinp[i] += local * dout[i];
}

KERNEL residual_forward(float* out, const float* a, const float* b, long long n)
{
    ELEMENT_INDEX;
    out[i] = a[i] + b[i];
}

KERNEL accumulate(float* destination, const float* source, long long n)
{
    ELEMENT_INDEX;
    destination[i] += source[i];
}

KERNEL scale(float* buffer, float factor, long long n)
{
    ELEMENT_INDEX;
    buffer[i] *= factor;
}

// out[r, c] = bias[c]: the matmul then adds its product on top (beta = 1).
KERNEL bias_broadcast(float* out, const float* bias, int rows, int cols)
{
    long long n = (long long)rows * cols;
    ELEMENT_INDEX;
    out[i] = bias[i % cols];
}

// dbias[c] += sum over rows of dout[r, c]. Each block sums a chunk of rowsPerBlock rows for 256 columns (neighbouring
// threads read neighbouring addresses) and adds its partial sums atomically, so tall matrices still fill the GPU.
KERNEL bias_backward(float* dbias, const float* dout, int rows, int cols, int rowsPerBlock)
{
    int columnBlocks = (cols + blockDim.x - 1) / blockDim.x;
    int c = (blockIdx.x % columnBlocks) * blockDim.x + threadIdx.x;
    int r0 = (blockIdx.x / columnBlocks) * rowsPerBlock;
    if (c >= cols) return;
    int r1 = r0 + rowsPerBlock < rows ? r0 + rowsPerBlock : rows;
    float sum = 0.0f;
    for (int r = r0; r < r1; r++) sum += dout[(long long)r * cols + c];
    atomicAdd(&dbias[c], sum);
}

KERNEL narrow_to_bf16(unsigned short* out, const float* inp, long long n)
{
    ELEMENT_INDEX;
    out[i] = f32_to_bf16_rn(inp[i]);
}
