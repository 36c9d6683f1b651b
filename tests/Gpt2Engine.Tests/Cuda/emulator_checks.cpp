// Checks of native/host/cuda_host.h itself, the CPU emulation the kernel tests stand on: indices, block barriers,
// warp shuffles, shared memory, atomics. Built and run by EmulatorTests.cs; prints each failure, exits non-zero.
#include "../../../native/host/cuda_host.h"

#include <cstdio>
#include <vector>

static int failures = 0;

static void check(bool ok, const char* what, int index)
{
    if (!ok && failures++ < 20) std::printf("FAILED: %s at %d\n", what, index);
}

struct Args
{
    float* out;
    int n;
};

static void run(dim3 grid, dim3 block, void (*kernel)(Args), Args args)
{
    static void (*current)(Args);
    current = kernel;
    cuda_host::launch(grid, block, [](void* a) { current(*static_cast<Args*>(a)); }, &args);
}

// Each thread writes its global linear index: every (block, thread) pair runs exactly once, with the right indices.
static void indices(Args a)
{
    unsigned threadsPerBlock = blockDim.x * blockDim.y * blockDim.z;
    unsigned blockLinear = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    unsigned threadLinear = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    a.out[blockLinear * threadsPerBlock + threadLinear] += (float)(blockLinear * threadsPerBlock + threadLinear) + 1.0f;
}

// Thread i writes shared[i], barrier, then reads its mirror: only correct if every write precedes every read.
static void barrier_orders_shared_memory(Args a)
{
    __shared__ float slots[256];
    int i = (int)threadIdx.x, n = (int)blockDim.x;
    slots[i] = (float)(blockIdx.x * 1000 + i);
    __syncthreads();
    a.out[blockIdx.x * n + i] = slots[n - 1 - i];
    __syncthreads();
}

// Butterfly and down shuffles within each warp of a block of several warps.
static void shuffles(Args a)
{
    int i = (int)threadIdx.x;
    float v = (float)i;
    float x = __shfl_xor_sync(0xffffffffu, v, 5);
    float d = __shfl_down_sync(0xffffffffu, v, 3);
    a.out[3 * i] = x;
    a.out[3 * i + 1] = d;
    float sum = v;
    for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    a.out[3 * i + 2] = sum;
}

// Only warp 1 shuffles: a warp's shuffle must not wait for the other warps.
static void one_warp_shuffles(Args a)
{
    int i = (int)threadIdx.x;
    if (i / 32 == 1) a.out[i] = __shfl_xor_sync(0xffffffffu, (float)i, 1);
    else a.out[i] = -1.0f;
}

static void atomics(Args a)
{
    atomicAdd(&a.out[threadIdx.x % 3], 1.0f);
}

int main()
{
    {
        std::vector<float> out(2 * 3 * 2 * (4 * 2 * 3), 0.0f);
        run({2, 3, 2}, {4, 2, 3}, indices, {out.data(), 0});
        for (size_t i = 0; i < out.size(); i++) check(out[i] == (float)i + 1.0f, "indices", (int)i);
    }
    {
        int blocks = 3, n = 96;
        std::vector<float> out(blocks * n);
        run({(unsigned)blocks, 1, 1}, {(unsigned)n, 1, 1}, barrier_orders_shared_memory, {out.data(), n});
        for (int b = 0; b < blocks; b++)
            for (int i = 0; i < n; i++) check(out[b * n + i] == (float)(b * 1000 + n - 1 - i), "barrier", b * n + i);
    }
    {
        int n = 64;
        std::vector<float> out(3 * n);
        run({1, 1, 1}, {(unsigned)n, 1, 1}, shuffles, {out.data(), n});
        for (int i = 0; i < n; i++)
        {
            int warp = i / 32, lane = i % 32;
            check(out[3 * i] == (float)(warp * 32 + (lane ^ 5)), "shfl_xor", i);
            check(out[3 * i + 1] == (float)(lane + 3 < 32 ? i + 3 : i), "shfl_down", i);
            check(out[3 * i + 2] == (float)(warp * 32 * 32 + 31 * 32 / 2), "warp sum", i);
        }
    }
    {
        int n = 96;
        std::vector<float> out(n);
        run({1, 1, 1}, {(unsigned)n, 1, 1}, one_warp_shuffles, {out.data(), n});
        for (int i = 0; i < n; i++) check(out[i] == (i / 32 == 1 ? (float)(i ^ 1) : -1.0f), "one warp", i);
    }
    {
        std::vector<float> out(3, 0.0f);
        run({5, 1, 1}, {64, 1, 1}, atomics, {out.data(), 0});
        check(out[0] == 110.0f && out[1] == 105.0f && out[2] == 105.0f, "atomicAdd", 0);
    }
    std::printf("%d failures\n", failures);
    return failures == 0 ? 0 : 1;
}
