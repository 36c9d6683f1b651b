// Every kernel of native/kernels compiled for the host (see cuda_host.h), behind one C entry point shaped like
// cuLaunchKernel, so that the tests' stand-in for the CUDA driver launches them with the very argument arrays the
// engine builds for the GPU. Build: g++ -std=c++20 -O1 -shared -fPIC host_kernels.cpp -o libgpt2_host_kernels.so
#include <cstring>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "../kernels/attention.cu"
#include "../kernels/crossentropy.cu"
#include "../kernels/elementwise.cu"
#include "../kernels/encoder.cu"
#include "../kernels/layernorm.cu"
#include "../kernels/optimizer.cu"

namespace
{
struct KernelEntry
{
    const char* name;
    int arity;
    const int* argumentSizes;
    void (*invoke)(void* kernel, void** params);
    void* kernel;
};

// Reads each argument from the slot kernelParams[i] points to, as the driver does.
template <typename... Args, size_t... I>
void call(void (*kernel)(Args...), void** params, std::index_sequence<I...>)
{
    kernel(*static_cast<std::remove_cv_t<Args>*>(params[I])...);
}

template <typename... Args>
struct Adapter
{
    static constexpr int sizes[sizeof...(Args) + 1] = {(int)sizeof(Args)..., 0};
    static void invoke(void* kernel, void** params)
    {
        call(reinterpret_cast<void (*)(Args...)>(kernel), params, std::index_sequence_for<Args...>{});
    }
};

template <typename... Args>
KernelEntry entry(const char* name, void (*kernel)(Args...))
{
    return {name, (int)sizeof...(Args), Adapter<Args...>::sizes, &Adapter<Args...>::invoke, reinterpret_cast<void*>(kernel)};
}

#define ENTRY(name) entry(#name, &name)
const KernelEntry kernels[] = {
    ENTRY(attention_permute), ENTRY(attention_permute_backward), ENTRY(attention_unpermute), ENTRY(attention_softmax),
    ENTRY(attention_softmax_backward), ENTRY(kv_cache_write), ENTRY(attention_cached),
    ENTRY(softmax_cross_entropy), ENTRY(softmax_cross_entropy_backward),
    ENTRY(gelu_forward), ENTRY(gelu_backward), ENTRY(residual_forward), ENTRY(accumulate), ENTRY(scale),
    ENTRY(bias_broadcast), ENTRY(bias_backward), ENTRY(narrow_to_bf16),
    ENTRY(encoder_forward_f32_f32), ENTRY(encoder_forward_f32_bf16), ENTRY(encoder_forward_bf16_f32),
    ENTRY(encoder_forward_bf16_bf16), ENTRY(encoder_backward),
    ENTRY(layernorm_forward), ENTRY(layernorm_backward),
    ENTRY(adamw), ENTRY(sum_of_squares),
};

const KernelEntry* find(const char* name)
{
    for (const KernelEntry& k : kernels)
        if (std::strcmp(k.name, name) == 0) return &k;
    return nullptr;
}

struct Launch
{
    const KernelEntry* kernel;
    void** params;
};

void run_thread(void* argument)
{
    auto* launch = static_cast<Launch*>(argument);
    launch->kernel->invoke(launch->kernel->kernel, launch->params);
}
} // namespace

// The kernel's parameter count, and its parameter sizes in bytes in sizes[0..arity); -1 if there is no such kernel.
extern "C" int host_kernel_signature(const char* name, int* sizes, int capacity)
{
    const KernelEntry* k = find(name);
    if (!k) return -1;
    for (int i = 0; i < k->arity && i < capacity; i++) sizes[i] = k->argumentSizes[i];
    return k->arity;
}

// cuLaunchKernel's arguments; returns 0, or 1 (CUDA_ERROR_INVALID_VALUE) for a bad configuration, 500 (NOT_FOUND).
extern "C" int host_launch(const char* name, unsigned gridX, unsigned gridY, unsigned gridZ, unsigned blockX, unsigned blockY,
                           unsigned blockZ, unsigned sharedBytes, void** params)
{
    const KernelEntry* k = find(name);
    if (!k) return 500;
    unsigned long long threads = (unsigned long long)blockX * blockY * blockZ;
    if (gridX == 0 || gridY == 0 || gridZ == 0 || threads == 0 || threads > 1024 || sharedBytes > 48 * 1024 || !params) return 1;
    Launch launch{k, params};
    cuda_host::launch({gridX, gridY, gridZ}, {blockX, blockY, blockZ}, &run_thread, &launch);
    return 0;
}
