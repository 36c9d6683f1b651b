// The CUDA execution model on the CPU, so that native/kernels/*.cu compile as plain C++ (g++ or clang++ -x c++)
// and run in tests without a GPU. A launch runs its blocks one after another; the threads of a block are fibers
// on one OS thread, switched only at barriers, so a block behaves as on the GPU as far as the kernels
// can tell: __syncthreads is a barrier of the block, the warp shuffles and __syncwarp a barrier of the warp, and
// __shared__ variables are shared by the block. Deterministic, and slow: keep the shapes small.
#pragma once

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <ucontext.h>

struct dim3
{
    unsigned x = 1, y = 1, z = 1;
};

namespace cuda_host
{
// Switching fibers must not cost a system call (ucontext's swapcontext saves the signal mask with one), so on
// x86-64 a fiber switch is a few instructions: push the callee-saved registers, swap stack pointers, pop, return.
#if defined(__x86_64__) && !defined(CUDA_HOST_UCONTEXT)
extern "C" void cuda_host_switch(void** saveStack, void* loadStack);
asm(R"(
    .text
    .hidden cuda_host_switch
    .globl cuda_host_switch
    .type cuda_host_switch, @function
cuda_host_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
)");

struct Context
{
    void* stack = nullptr;
};

inline void switch_to(Context& save, Context& load) { cuda_host_switch(&save.stack, load.stack); }

// A fresh stack whose first switch "returns" into start(): six zeroed registers, then start's address.
inline void prepare(Context& context, char* stack, size_t bytes, void (*start)())
{
    auto top = reinterpret_cast<uintptr_t>(stack + bytes) & ~uintptr_t(15);
    auto* slots = reinterpret_cast<void**>(top - 16);
    slots[0] = reinterpret_cast<void*>(start);   // popped by ret; the fiber then starts with rsp % 16 == 8, as after a call
    for (int i = 1; i <= 6; i++) slots[-i] = nullptr;
    context.stack = slots - 6;
}
#else
struct Context
{
    ucontext_t context;
};

inline void switch_to(Context& save, Context& load) { swapcontext(&save.context, &load.context); }

inline void prepare(Context& context, char* stack, size_t bytes, void (*start)())
{
    getcontext(&context.context);
    context.context.uc_stack.ss_sp = stack;
    context.context.uc_stack.ss_size = bytes;
    context.context.uc_link = nullptr;
    makecontext(&context.context, start, 0);
}
#endif

struct Fiber
{
    Context context;
    dim3 index;
    bool finished = false;
};

struct Block
{
    dim3 gridDim, blockDim, blockIdx;
    std::vector<Fiber> fibers;
    Context scheduler;
    int current = 0, finished = 0;
    int blockArrived = 0;
    unsigned blockGeneration = 0;
    std::vector<int> warpArrived, warpFinished;
    std::vector<unsigned> warpGeneration;
    std::vector<float> lanes;   // one shuffle slot per thread
    void (*body)(void*) = nullptr;
    void* argument = nullptr;
};

inline thread_local Block* block = nullptr;

inline Fiber& self() { return block->fibers[block->current]; }
inline int linear_thread() { return (int)(self().index.x + block->blockDim.x * (self().index.y + block->blockDim.y * self().index.z)); }
inline void yield() { switch_to(self().context, block->scheduler); }

[[noreturn]] inline void fail(const char* what)
{
    std::fprintf(stderr, "cuda_host: %s\n", what);
    std::abort();
}

// Waits until `expected` threads have arrived; a thread that exits first would leave the others waiting forever.
inline void barrier(int& arrived, unsigned& generation, int expected, const int& finishedInGroup)
{
    unsigned mine = generation;
    if (++arrived == expected)
    {
        arrived = 0;
        generation++;
        return;
    }
    while (generation == mine)
    {
        if (finishedInGroup > 0) fail("barrier not reached by every thread (divergent __syncthreads or shuffle)");
        yield();
    }
}

inline int warp_size_of(int warp)
{
    int threads = (int)block->fibers.size();
    return threads - warp * 32 < 32 ? threads - warp * 32 : 32;
}

inline void warp_barrier()
{
    int warp = linear_thread() / 32;
    barrier(block->warpArrived[warp], block->warpGeneration[warp], warp_size_of(warp), block->warpFinished[warp]);
}

inline float shuffle(float v, int sourceLane)
{
    int me = linear_thread(), warp = me / 32;
    block->lanes[me] = v;
    warp_barrier();
    float result = sourceLane >= 0 && sourceLane < warp_size_of(warp) ? block->lanes[warp * 32 + sourceLane] : v;
    warp_barrier();   // nobody overwrites a slot before everyone has read
    return result;
}

// Where every fiber starts; it ends by switching back to the scheduler, which never resumes it.
inline void fiber_start()
{
    block->body(block->argument);
    self().finished = true;
    block->finished++;
    block->warpFinished[linear_thread() / 32]++;
    yield();
    fail("finished fiber resumed");
}

constexpr size_t StackBytes = 32 * 1024;

// Fiber stacks, kept per OS thread from launch to launch.
inline char* stacks(size_t bytes)
{
    static thread_local std::vector<char> memory;
    if (memory.size() < bytes) memory.resize(bytes);
    return memory.data();
}

// Runs body(argument) as every thread of every block of the grid.
inline void launch(dim3 grid, dim3 threads, void (*body)(void*), void* argument)
{
    Block b;
    b.gridDim = grid;
    b.blockDim = threads;
    b.body = body;
    b.argument = argument;
    int count = (int)(threads.x * threads.y * threads.z);
    char* stack = stacks((size_t)count * StackBytes);
    b.lanes.resize(count);
    Block* outer = block;
    block = &b;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++)
            {
                b.blockIdx = {x, y, z};
                b.fibers.assign(count, Fiber{});
                b.warpArrived.assign((count + 31) / 32, 0);
                b.warpGeneration.assign((count + 31) / 32, 0);
                b.warpFinished.assign((count + 31) / 32, 0);
                b.finished = 0;
                b.blockArrived = 0;
                for (int i = 0; i < count; i++)
                {
                    Fiber& f = b.fibers[i];
                    f.index = {i % threads.x, i / threads.x % threads.y, i / (threads.x * threads.y)};
                    prepare(f.context, stack + (size_t)i * StackBytes, StackBytes, fiber_start);
                }
                while (b.finished < count)
                    for (int i = 0; i < count; i++)
                        if (!b.fibers[i].finished)
                        {
                            b.current = i;
                            switch_to(b.scheduler, b.fibers[i].context);
                        }
            }
    block = outer;
}
} // namespace cuda_host

#define threadIdx (cuda_host::self().index)
#define blockIdx (cuda_host::block->blockIdx)
#define blockDim (cuda_host::block->blockDim)
#define gridDim (cuda_host::block->gridDim)
#define warpSize 32

#define __global__
#define __device__
#define __shared__ static thread_local

inline void __syncthreads() { cuda_host::barrier(cuda_host::block->blockArrived, cuda_host::block->blockGeneration, (int)cuda_host::block->fibers.size(), cuda_host::block->finished); }
inline void __syncwarp() { cuda_host::warp_barrier(); }
inline float __shfl_xor_sync(unsigned, float v, int laneMask) { return cuda_host::shuffle(v, (cuda_host::linear_thread() % 32) ^ laneMask); }
inline float __shfl_down_sync(unsigned, float v, unsigned delta) { return cuda_host::shuffle(v, (int)(cuda_host::linear_thread() % 32 + delta)); }

inline float atomicAdd(float* address, float v)
{
    std::atomic_ref<float> target(*address);
    float old = target.load();
    while (!target.compare_exchange_weak(old, old + v)) { }
    return old;
}

inline float gpu_exp(float x) { return std::exp(x); }
inline float gpu_log(float x) { return std::log(x); }
inline float gpu_sqrt(float x) { return std::sqrt(x); }
inline unsigned gpu_float_bits(float x) { return std::bit_cast<unsigned>(x); }
inline float gpu_bits_float(unsigned u) { return std::bit_cast<float>(u); }
