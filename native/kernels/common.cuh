// Included first by every kernel file. The same source compiles two ways:
//   - as CUDA for the GPU with clang-14 and no CUDA SDK (build-ptx.sh): __CUDA_ARCH__ is defined, and the few
//     CUDA intrinsics the kernels use are mapped onto NVVM builtins here (libdevice is not linked);
//   - as C++ for the host emulator (host/cuda_host.h), which the tests run on the CPU.
// Kernels use CUDA's own names (threadIdx, __syncthreads, __shfl_xor_sync, atomicAdd) plus the gpu_* math below.
#pragma once

#ifdef __CUDA_ARCH__
#include "__clang_cuda_builtin_vars.h"
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define DEVICE_INLINE static __device__ __inline__ __attribute__((always_inline))

DEVICE_INLINE float gpu_exp(float x) { return __nvvm_ex2_approx_f(x * 1.4426950408889634f); }
DEVICE_INLINE float gpu_log(float x) { return __nvvm_lg2_approx_f(x) * 0.6931471805599453f; }
DEVICE_INLINE float gpu_sqrt(float x) { return __nvvm_sqrt_rn_f(x); }
DEVICE_INLINE unsigned gpu_float_bits(float x) { return __builtin_bit_cast(unsigned, x); }
DEVICE_INLINE float gpu_bits_float(unsigned u) { return __builtin_bit_cast(float, u); }
DEVICE_INLINE float __shfl_xor_sync(unsigned mask, float v, int laneMask) { return __nvvm_shfl_sync_bfly_f32(mask, v, laneMask, 0x1f); }
DEVICE_INLINE float __shfl_down_sync(unsigned mask, float v, unsigned delta) { return __nvvm_shfl_sync_down_f32(mask, v, delta, 0x1f); }
DEVICE_INLINE void __syncwarp() { __nvvm_bar_warp_sync(0xffffffffu); }
DEVICE_INLINE float atomicAdd(float* address, float v) { return __nvvm_atom_add_gen_f(address, v); }
#else
#include "../host/cuda_host.h"
#define DEVICE_INLINE static inline
#endif

#define FULL_MASK 0xffffffffu
#define KERNEL extern "C" __global__ void

// tanh through exp, as the GPU has no accurate tanh instruction: tanh(u) = 1 - 2 / (e^(2u) + 1).
DEVICE_INLINE float gpu_tanh(float u) { return 1.0f - 2.0f / (gpu_exp(2.0f * u) + 1.0f); }

DEVICE_INLINE float warp_sum(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}

DEVICE_INLINE float warp_max(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1) { float o = __shfl_xor_sync(FULL_MASK, v, offset); v = o > v ? o : v; }
    return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
DEVICE_INLINE float block_sum(float v, float* shared32)
{
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_sum(v);
    if (lane == 0) shared32[warp] = v;
    __syncthreads();
    float total = 0.0f;
    for (int w = 0; w < warps; w++) total += shared32[w];
    __syncthreads();   // shared32 may be reused by the caller's next reduction
    return total;
}

DEVICE_INLINE float block_max(float v, float* shared32)
{
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_max(v);
    if (lane == 0) shared32[warp] = v;
    __syncthreads();
    float best = shared32[0];
    for (int w = 1; w < warps; w++) best = shared32[w] > best ? shared32[w] : best;
    __syncthreads();
    return best;
}

DEVICE_INLINE float bf16_to_f32(unsigned short x) { return gpu_bits_float((unsigned)x << 16); }

// Round to nearest even (NaN inputs are not expected in activations).
DEVICE_INLINE unsigned short f32_to_bf16_rn(float x)
{
    unsigned u = gpu_float_bits(x);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

DEVICE_INLINE float load_f32(const float* p, long long i) { return p[i]; }
DEVICE_INLINE float load_f32(const unsigned short* p, long long i) { return bf16_to_f32(p[i]); }
