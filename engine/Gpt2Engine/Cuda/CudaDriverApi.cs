using System.Runtime.InteropServices;

namespace Gpt2Engine.Cuda;

/// <summary>
/// <see cref="ICudaApi"/> over the real libraries: the NVIDIA driver (libcuda.so.1 / nvcuda.dll) and cuBLAS,
/// loaded with <see cref="NativeLibrary"/> from an explicit list of names and bound by their exported (versioned)
/// symbols as unmanaged function pointers. No CUDA SDK is needed at build time.
/// </summary>
internal sealed unsafe class CudaDriverApi : ICudaApi
{
    /// <summary>A full path to the driver library, for unusual installs.</summary>
    public const string DriverPathVariable = "GPT2_ENGINE_LIBCUDA";
    /// <summary>A full path to libcublas (its libcublasLt is loaded from the same folder first).</summary>
    public const string BlasPathVariable = "GPT2_ENGINE_LIBCUBLAS";

    private static readonly string[] DriverNames = OperatingSystem.IsWindows() ? ["nvcuda.dll"] : ["libcuda.so.1", "libcuda.so"];

    private nint _blas;

    // driver
    private readonly delegate* unmanaged<uint, int> _cuInit;
    private readonly delegate* unmanaged<int*, int> _cuDriverGetVersion;
    private readonly delegate* unmanaged<int*, int> _cuDeviceGetCount;
    private readonly delegate* unmanaged<int*, int, int> _cuDeviceGet;
    private readonly delegate* unmanaged<byte*, int, int, int> _cuDeviceGetName;
    private readonly delegate* unmanaged<nuint*, int, int> _cuDeviceTotalMem;
    private readonly delegate* unmanaged<nint*, int, int> _cuDevicePrimaryCtxRetain;
    private readonly delegate* unmanaged<int, int> _cuDevicePrimaryCtxRelease;
    private readonly delegate* unmanaged<nint, int> _cuCtxSetCurrent;
    private readonly delegate* unmanaged<nint*, byte*, int> _cuModuleLoadData;
    private readonly delegate* unmanaged<nint*, nint, byte*, int> _cuModuleGetFunction;
    private readonly delegate* unmanaged<nint, int> _cuModuleUnload;
    private readonly delegate* unmanaged<nuint*, nuint*, int> _cuMemGetInfo;
    private readonly delegate* unmanaged<ulong*, nuint, int> _cuMemAlloc;
    private readonly delegate* unmanaged<ulong, int> _cuMemFree;
    private readonly delegate* unmanaged<void**, nuint, int> _cuMemAllocHost;
    private readonly delegate* unmanaged<void*, int> _cuMemFreeHost;
    private readonly delegate* unmanaged<ulong, void*, nuint, nint, int> _cuMemcpyHtoDAsync;
    private readonly delegate* unmanaged<void*, ulong, nuint, nint, int> _cuMemcpyDtoHAsync;
    private readonly delegate* unmanaged<ulong, ulong, nuint, nint, int> _cuMemcpyDtoDAsync;
    private readonly delegate* unmanaged<ulong, uint, nuint, nint, int> _cuMemsetD32Async;
    private readonly delegate* unmanaged<nint*, uint, int> _cuStreamCreate;
    private readonly delegate* unmanaged<nint, int> _cuStreamSynchronize;
    private readonly delegate* unmanaged<nint, int> _cuStreamDestroy;
    private readonly delegate* unmanaged<nint*, uint, int> _cuEventCreate;
    private readonly delegate* unmanaged<nint, nint, int> _cuEventRecord;
    private readonly delegate* unmanaged<nint, int> _cuEventSynchronize;
    private readonly delegate* unmanaged<nint, int> _cuEventDestroy;
    private readonly delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int> _cuLaunchKernel;
    private readonly delegate* unmanaged<int, byte**, int> _cuGetErrorName;

    // cuBLAS, bound on first use (after the driver version is known)
    private delegate* unmanaged<nint*, int> _cublasCreate;
    private delegate* unmanaged<nint, int> _cublasDestroy;
    private delegate* unmanaged<nint, nint, int> _cublasSetStream;
    private delegate* unmanaged<nint, int, int> _cublasSetMathMode;
    private delegate* unmanaged<nint, int, int, int, int, int, float*, ulong, int, int, ulong, int, int, float*, ulong, int, int, int, int, int> _cublasGemmEx;
    private delegate* unmanaged<nint, int, int, int, int, int, float*, ulong, int, int, long, ulong, int, int, long, float*, ulong, int, int, long, int, int, int, int> _cublasGemmStridedBatchedEx;
    private delegate* unmanaged<int, byte*> _cublasGetStatusName;

    private CudaDriverApi(nint driver, string driverName)
    {
        nint Bind(string symbol) => NativeLibrary.TryGetExport(driver, symbol, out nint f) ? f
            : throw new Gpt2Exception($"{driverName} has no {symbol}: the NVIDIA driver is too old or not a real driver");
        _cuInit = (delegate* unmanaged<uint, int>)Bind("cuInit");
        _cuDriverGetVersion = (delegate* unmanaged<int*, int>)Bind("cuDriverGetVersion");
        _cuDeviceGetCount = (delegate* unmanaged<int*, int>)Bind("cuDeviceGetCount");
        _cuDeviceGet = (delegate* unmanaged<int*, int, int>)Bind("cuDeviceGet");
        _cuDeviceGetName = (delegate* unmanaged<byte*, int, int, int>)Bind("cuDeviceGetName");
        _cuDeviceTotalMem = (delegate* unmanaged<nuint*, int, int>)Bind("cuDeviceTotalMem_v2");
        _cuDevicePrimaryCtxRetain = (delegate* unmanaged<nint*, int, int>)Bind("cuDevicePrimaryCtxRetain");
        _cuDevicePrimaryCtxRelease = (delegate* unmanaged<int, int>)Bind("cuDevicePrimaryCtxRelease_v2");
        _cuCtxSetCurrent = (delegate* unmanaged<nint, int>)Bind("cuCtxSetCurrent");
        _cuModuleLoadData = (delegate* unmanaged<nint*, byte*, int>)Bind("cuModuleLoadData");
        _cuModuleGetFunction = (delegate* unmanaged<nint*, nint, byte*, int>)Bind("cuModuleGetFunction");
        _cuModuleUnload = (delegate* unmanaged<nint, int>)Bind("cuModuleUnload");
        _cuMemGetInfo = (delegate* unmanaged<nuint*, nuint*, int>)Bind("cuMemGetInfo_v2");
        _cuMemAlloc = (delegate* unmanaged<ulong*, nuint, int>)Bind("cuMemAlloc_v2");
        _cuMemFree = (delegate* unmanaged<ulong, int>)Bind("cuMemFree_v2");
        _cuMemAllocHost = (delegate* unmanaged<void**, nuint, int>)Bind("cuMemAllocHost_v2");
        _cuMemFreeHost = (delegate* unmanaged<void*, int>)Bind("cuMemFreeHost");
        _cuMemcpyHtoDAsync = (delegate* unmanaged<ulong, void*, nuint, nint, int>)Bind("cuMemcpyHtoDAsync_v2");
        _cuMemcpyDtoHAsync = (delegate* unmanaged<void*, ulong, nuint, nint, int>)Bind("cuMemcpyDtoHAsync_v2");
        _cuMemcpyDtoDAsync = (delegate* unmanaged<ulong, ulong, nuint, nint, int>)Bind("cuMemcpyDtoDAsync_v2");
        _cuMemsetD32Async = (delegate* unmanaged<ulong, uint, nuint, nint, int>)Bind("cuMemsetD32Async");
        _cuStreamCreate = (delegate* unmanaged<nint*, uint, int>)Bind("cuStreamCreate");
        _cuStreamSynchronize = (delegate* unmanaged<nint, int>)Bind("cuStreamSynchronize");
        _cuStreamDestroy = (delegate* unmanaged<nint, int>)Bind("cuStreamDestroy_v2");
        _cuEventCreate = (delegate* unmanaged<nint*, uint, int>)Bind("cuEventCreate");
        _cuEventRecord = (delegate* unmanaged<nint, nint, int>)Bind("cuEventRecord");
        _cuEventSynchronize = (delegate* unmanaged<nint, int>)Bind("cuEventSynchronize");
        _cuEventDestroy = (delegate* unmanaged<nint, int>)Bind("cuEventDestroy_v2");
        _cuLaunchKernel = (delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int>)Bind("cuLaunchKernel");
        _cuGetErrorName = (delegate* unmanaged<int, byte**, int>)Bind("cuGetErrorName");
    }

    /// <summary>Loads the driver library, or says why not ("no NVIDIA driver found (libcuda.so.1)").</summary>
    public static bool TryLoad(out CudaDriverApi? api, out string reason)
    {
        string? overridePath = Environment.GetEnvironmentVariable(DriverPathVariable);
        return TryLoad(string.IsNullOrEmpty(overridePath) ? DriverNames : [overridePath], out api, out reason);
    }

    /// <summary>The first of <paramref name="candidates"/> (library names or paths) that loads and has every symbol.</summary>
    internal static bool TryLoad(IReadOnlyList<string> candidates, out CudaDriverApi? api, out string reason)
    {
        api = null;
        foreach (string name in candidates)
        {
            if (!NativeLibrary.TryLoad(name, out nint handle)) continue;
            try
            {
                api = new CudaDriverApi(handle, name);
                reason = "";
                return true;
            }
            catch (Gpt2Exception e)
            {
                NativeLibrary.Free(handle);
                reason = e.Message;
                return false;
            }
        }
        reason = $"no NVIDIA driver found ({candidates[0]})";
        return false;
    }

    /// <summary>
    /// Loads cuBLAS for the given driver version: a CUDA 13 cuBLAS needs a driver of 13000 or newer, so older
    /// drivers only try the CUDA 12 names.
    /// </summary>
    public void LoadBlas(int driverVersion)
    {
        if (_blas != 0) return;
        string? overridePath = Environment.GetEnvironmentVariable(BlasPathVariable);
        var candidates = new List<string>();
        if (!string.IsNullOrEmpty(overridePath))
        {
            string lt = Path.Combine(Path.GetDirectoryName(overridePath) ?? "", Path.GetFileName(overridePath).Replace("cublas", "cublasLt"));
            NativeLibrary.TryLoad(lt, out _);   // libcublas needs libcublasLt; outside the search path load it first
            candidates.Add(overridePath);
        }
        else
        {
            foreach (int major in driverVersion >= 13000 ? new[] { 13, 12 } : [12])
                candidates.Add(OperatingSystem.IsWindows() ? $"cublas64_{major}.dll" : $"libcublas.so.{major}");
            if (!OperatingSystem.IsWindows()) candidates.Add("libcublas.so");
        }
        string? loaded = candidates.FirstOrDefault(c => NativeLibrary.TryLoad(c, out _blas));
        if (loaded is null)
            throw new Gpt2Exception($"cuBLAS not found ({string.Join(", ", candidates)}); install it or set {BlasPathVariable} to its full path");
        nint Bind(string symbol) => NativeLibrary.TryGetExport(_blas, symbol, out nint f) ? f : throw new Gpt2Exception($"{loaded} has no {symbol}");
        _cublasCreate = (delegate* unmanaged<nint*, int>)Bind("cublasCreate_v2");
        _cublasDestroy = (delegate* unmanaged<nint, int>)Bind("cublasDestroy_v2");
        _cublasSetStream = (delegate* unmanaged<nint, nint, int>)Bind("cublasSetStream_v2");
        _cublasSetMathMode = (delegate* unmanaged<nint, int, int>)Bind("cublasSetMathMode");
        _cublasGemmEx = (delegate* unmanaged<nint, int, int, int, int, int, float*, ulong, int, int, ulong, int, int, float*, ulong, int, int, int, int, int>)Bind("cublasGemmEx");
        _cublasGemmStridedBatchedEx = (delegate* unmanaged<nint, int, int, int, int, int, float*, ulong, int, int, long, ulong, int, int, long, float*, ulong, int, int, long, int, int, int, int>)Bind("cublasGemmStridedBatchedEx");
        _cublasGetStatusName = (delegate* unmanaged<int, byte*>)Bind("cublasGetStatusName");
    }

    public int Init(uint flags) => _cuInit(flags);
    public int DriverGetVersion(int* version) => _cuDriverGetVersion(version);
    public int DeviceGetCount(int* count) => _cuDeviceGetCount(count);
    public int DeviceGet(int* device, int ordinal) => _cuDeviceGet(device, ordinal);
    public int DeviceGetName(byte* name, int length, int device) => _cuDeviceGetName(name, length, device);
    public int DeviceTotalMem(nuint* bytes, int device) => _cuDeviceTotalMem(bytes, device);
    public int DevicePrimaryCtxRetain(nint* context, int device) => _cuDevicePrimaryCtxRetain(context, device);
    public int DevicePrimaryCtxRelease(int device) => _cuDevicePrimaryCtxRelease(device);
    public int CtxSetCurrent(nint context) => _cuCtxSetCurrent(context);
    public int ModuleLoadData(nint* module, byte* image) => _cuModuleLoadData(module, image);
    public int ModuleGetFunction(nint* function, nint module, byte* name) => _cuModuleGetFunction(function, module, name);
    public int ModuleUnload(nint module) => _cuModuleUnload(module);
    public int MemGetInfo(nuint* free, nuint* total) => _cuMemGetInfo(free, total);
    public int MemAlloc(ulong* address, nuint bytes) => _cuMemAlloc(address, bytes);
    public int MemFree(ulong address) => _cuMemFree(address);
    public int MemAllocHost(void** pointer, nuint bytes) => _cuMemAllocHost(pointer, bytes);
    public int MemFreeHost(void* pointer) => _cuMemFreeHost(pointer);
    public int MemcpyHtoDAsync(ulong destination, void* source, nuint bytes, nint stream) => _cuMemcpyHtoDAsync(destination, source, bytes, stream);
    public int MemcpyDtoHAsync(void* destination, ulong source, nuint bytes, nint stream) => _cuMemcpyDtoHAsync(destination, source, bytes, stream);
    public int MemcpyDtoDAsync(ulong destination, ulong source, nuint bytes, nint stream) => _cuMemcpyDtoDAsync(destination, source, bytes, stream);
    public int MemsetD32Async(ulong destination, uint value, nuint count, nint stream) => _cuMemsetD32Async(destination, value, count, stream);
    public int StreamCreate(nint* stream, uint flags) => _cuStreamCreate(stream, flags);
    public int StreamSynchronize(nint stream) => _cuStreamSynchronize(stream);
    public int StreamDestroy(nint stream) => _cuStreamDestroy(stream);
    public int EventCreate(nint* cudaEvent, uint flags) => _cuEventCreate(cudaEvent, flags);
    public int EventRecord(nint cudaEvent, nint stream) => _cuEventRecord(cudaEvent, stream);
    public int EventSynchronize(nint cudaEvent) => _cuEventSynchronize(cudaEvent);
    public int EventDestroy(nint cudaEvent) => _cuEventDestroy(cudaEvent);
    public int LaunchKernel(nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ, uint sharedBytes, nint stream, void** parameters, void** extra) =>
        _cuLaunchKernel(function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, stream, parameters, extra);
    public int GetErrorName(int error, byte** name) => _cuGetErrorName(error, name);

    public int BlasCreate(nint* handle) => _cublasCreate(handle);
    public int BlasDestroy(nint handle) => _cublasDestroy(handle);
    public int BlasSetStream(nint handle, nint stream) => _cublasSetStream(handle, stream);
    public int BlasSetMathMode(nint handle, int mode) => _cublasSetMathMode(handle, mode);
    public int GemmEx(nint handle, int transA, int transB, int m, int n, int k, float* alpha, ulong a, int aType, int lda, ulong b, int bType, int ldb,
        float* beta, ulong c, int cType, int ldc, int computeType, int algorithm) =>
        _cublasGemmEx(handle, transA, transB, m, n, k, alpha, a, aType, lda, b, bType, ldb, beta, c, cType, ldc, computeType, algorithm);
    public int GemmStridedBatchedEx(nint handle, int transA, int transB, int m, int n, int k, float* alpha, ulong a, int aType, int lda, long strideA,
        ulong b, int bType, int ldb, long strideB, float* beta, ulong c, int cType, int ldc, long strideC, int batchCount, int computeType, int algorithm) =>
        _cublasGemmStridedBatchedEx(handle, transA, transB, m, n, k, alpha, a, aType, lda, strideA, b, bType, ldb, strideB, beta, c, cType, ldc, strideC, batchCount, computeType, algorithm);
    public byte* BlasGetStatusName(int status) => _cublasGetStatusName(status);
}
