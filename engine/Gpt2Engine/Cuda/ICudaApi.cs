namespace Gpt2Engine.Cuda;

/// <summary>
/// The part of the CUDA driver API and cuBLAS the engine calls, one method per C function with the C function's
/// shape: every method returns the raw CUresult / cublasStatus_t and <see cref="CudaContext"/> checks it.
/// Two implementations: <see cref="CudaDriverApi"/> (the real libraries) and, in the tests, a CPU stand-in that runs
/// the host-compiled kernels, so the backend's buffer handling, launches and cuBLAS calls run without a GPU.
/// Device pointers are CUdeviceptr values (<c>ulong</c>); handles are <c>nint</c>.
/// </summary>
internal unsafe interface ICudaApi
{
    // ---- driver (cuda.h) ----
    int Init(uint flags);
    int DriverGetVersion(int* version);
    int DeviceGetCount(int* count);
    int DeviceGet(int* device, int ordinal);
    int DeviceGetName(byte* name, int length, int device);
    int DeviceTotalMem(nuint* bytes, int device);
    int DevicePrimaryCtxRetain(nint* context, int device);
    int DevicePrimaryCtxRelease(int device);
    int CtxSetCurrent(nint context);
    int ModuleLoadData(nint* module, byte* image);
    int ModuleGetFunction(nint* function, nint module, byte* name);
    int ModuleUnload(nint module);
    int MemGetInfo(nuint* free, nuint* total);
    int MemAlloc(ulong* address, nuint bytes);
    int MemFree(ulong address);
    int MemAllocHost(void** pointer, nuint bytes);
    int MemFreeHost(void* pointer);
    int MemcpyHtoDAsync(ulong destination, void* source, nuint bytes, nint stream);
    int MemcpyDtoHAsync(void* destination, ulong source, nuint bytes, nint stream);
    int MemcpyDtoDAsync(ulong destination, ulong source, nuint bytes, nint stream);
    int MemsetD32Async(ulong destination, uint value, nuint count, nint stream);
    int StreamCreate(nint* stream, uint flags);
    int StreamSynchronize(nint stream);
    int StreamDestroy(nint stream);
    int EventCreate(nint* cudaEvent, uint flags);
    int EventRecord(nint cudaEvent, nint stream);
    int EventSynchronize(nint cudaEvent);
    int EventDestroy(nint cudaEvent);
    int LaunchKernel(nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ, uint sharedBytes, nint stream, void** parameters, void** extra);
    int GetErrorName(int error, byte** name);

    // ---- cuBLAS (cublas_api.h) ----
    /// <summary>Finds and binds cuBLAS (a CUDA 13 cuBLAS only for a driver of 13000 or newer); throws a Gpt2Exception if absent.</summary>
    void LoadBlas(int driverVersion);
    int BlasCreate(nint* handle);
    int BlasDestroy(nint handle);
    int BlasSetStream(nint handle, nint stream);
    int BlasSetMathMode(nint handle, int mode);
    int GemmEx(nint handle, int transA, int transB, int m, int n, int k, float* alpha, ulong a, int aType, int lda, ulong b, int bType, int ldb,
        float* beta, ulong c, int cType, int ldc, int computeType, int algorithm);
    int GemmStridedBatchedEx(nint handle, int transA, int transB, int m, int n, int k, float* alpha, ulong a, int aType, int lda, long strideA,
        ulong b, int bType, int ldb, long strideB, float* beta, ulong c, int cType, int ldc, long strideC, int batchCount, int computeType, int algorithm);
    byte* BlasGetStatusName(int status);
}

/// <summary>The enum values the engine passes (cuda.h, cublas_api.h, library_types.h).</summary>
internal static class CudaConstants
{
    public const int Success = 0;
    public const int ErrorInvalidValue = 1;
    public const int ErrorOutOfMemory = 2;
    public const int ErrorInvalidImage = 200;
    public const int ErrorNotFound = 500;

    public const int BlasOpN = 0, BlasOpT = 1;
    public const int BlasDefaultMath = 0, BlasTf32TensorOpMath = 3;
    public const int BlasCompute32F = 68, BlasCompute32FFastTf32 = 77;
    public const int BlasGemmDefault = -1;
    public const int DataTypeR32F = 0, DataTypeR16BF = 14;
}
