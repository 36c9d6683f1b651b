using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using Gpt2Engine.Cuda;
using static Gpt2Engine.Cuda.CudaConstants;

namespace Gpt2Engine.Tests.Cuda;

/// <summary>
/// A CPU stand-in for the CUDA driver and cuBLAS, strict where the real ones are: device memory is native host
/// memory handed out by MemAlloc, and every copy and every GEMM operand must lie inside a live allocation; modules
/// are the engine's PTX text, whose kernel names and parameter lists must match the host-compiled kernels; a launch
/// runs the host-compiled kernel over the emulated grid with the engine's own argument array; GEMMs are a reference
/// column-major GEMM honouring transposes, leading dimensions, strides, alpha, beta (C unread when beta = 0) and types.
/// Everything is synchronous, so streams and events only check their handles.
/// </summary>
internal sealed unsafe partial class HostCudaApi : ICudaApi, IDisposable
{
    private const int BlasInvalidValue = 7, BlasNotSupported = 15;
    private readonly SortedDictionary<ulong, long> _allocations = [];
    private readonly HashSet<nint> _pinned = [];
    private readonly List<Dictionary<string, int[]>> _modules = [];
    private readonly List<(string Name, byte[] Utf8)> _functions = [];
    private readonly Dictionary<nint, long> _events = [];
    private nint _nextHandle = 1;

    /// <summary>Device memory this stand-in will hand out before answering CUDA_ERROR_OUT_OF_MEMORY.</summary>
    public long MemoryLimit { get; set; } = 1L << 32;
    public long MemoryInUse { get; private set; }
    /// <summary>MemAlloc calls that succeeded, ever.</summary>
    public int Allocations { get; private set; }
    /// <summary>The most bytes one device-to-host copy has moved.</summary>
    public long LargestCopyToHost { get; private set; }
    public int Launches { get; private set; }
    public int Gemms { get; private set; }
    public int LiveAllocations => _allocations.Count;

    private static readonly Dictionary<int, string> ErrorNames = new()
    {
        [0] = "CUDA_SUCCESS", [1] = "CUDA_ERROR_INVALID_VALUE", [2] = "CUDA_ERROR_OUT_OF_MEMORY", [200] = "CUDA_ERROR_INVALID_IMAGE",
        [400] = "CUDA_ERROR_INVALID_HANDLE", [500] = "CUDA_ERROR_NOT_FOUND",
    };
    private static readonly Dictionary<int, string> BlasNames = new() { [7] = "CUBLAS_STATUS_INVALID_VALUE", [15] = "CUBLAS_STATUS_NOT_SUPPORTED" };
    private readonly Dictionary<string, nint> _names = [];

    public int Init(uint flags) => flags == 0 ? Success : ErrorInvalidValue;
    public int DriverGetVersion(int* version) { *version = 13000; return Success; }
    public int DeviceGetCount(int* count) { *count = 1; return Success; }
    public int DeviceGet(int* device, int ordinal) { *device = ordinal; return ordinal == 0 ? Success : 101; }
    public int DeviceGetName(byte* name, int length, int device)
    {
        var text = "CPU stand-in\0"u8;
        if (length < text.Length) return ErrorInvalidValue;
        text.CopyTo(new Span<byte>(name, length));
        return Success;
    }
    public int DeviceTotalMem(nuint* bytes, int device) { *bytes = (nuint)MemoryLimit; return Success; }
    public int DevicePrimaryCtxRetain(nint* context, int device) { *context = 0x1000; return Success; }
    public int DevicePrimaryCtxRelease(int device) => Success;
    public int CtxSetCurrent(nint context) => context == 0x1000 ? Success : 201;

    public int ModuleLoadData(nint* module, byte* image)
    {
        string ptx = Marshal.PtrToStringAnsi((nint)image) ?? "";
        if (!ptx.Contains(".version ") || !ptx.Contains(".target ")) return ErrorInvalidImage;
        var entries = new Dictionary<string, int[]>();
        foreach (Match m in EntryPattern().Matches(ptx))
            entries[m.Groups[1].Value] = ParamPattern().Matches(m.Groups[2].Value).Select(p => p.Groups[1].Value == "64" ? 8 : 4).ToArray();
        _modules.Add(entries);
        *module = _modules.Count;
        return Success;
    }

    [GeneratedRegex(@"\.entry (\w+)\(([^)]*)\)")]
    private static partial Regex EntryPattern();
    [GeneratedRegex(@"\.param \.[usbf](8|16|32|64) ")]
    private static partial Regex ParamPattern();

    /// <summary>Found only if the PTX has the entry and the host kernel takes the same parameter sizes.</summary>
    public int ModuleGetFunction(nint* function, nint module, byte* name)
    {
        if (module < 1 || module > _modules.Count) return 400;
        string kernel = Marshal.PtrToStringAnsi((nint)name)!;
        if (!_modules[(int)module - 1].TryGetValue(kernel, out int[]? ptxSizes)) return ErrorNotFound;
        int[]? hostSizes = HostKernels.ParameterSizes(kernel);
        if (hostSizes is null || !hostSizes.SequenceEqual(ptxSizes)) return ErrorInvalidImage;
        _functions.Add((kernel, Encoding.ASCII.GetBytes(kernel + "\0")));
        *function = _functions.Count;
        return Success;
    }

    public int ModuleUnload(nint module) => module >= 1 && module <= _modules.Count ? Success : 400;

    public int MemGetInfo(nuint* free, nuint* total)
    {
        (*free, *total) = ((nuint)Math.Max(0, MemoryLimit - MemoryInUse), (nuint)MemoryLimit);
        return Success;
    }

    public int MemAlloc(ulong* address, nuint bytes)
    {
        if (bytes == 0) return ErrorInvalidValue;
        if (MemoryInUse + (long)bytes > MemoryLimit) return ErrorOutOfMemory;
        *address = (ulong)NativeMemory.AlignedAlloc(bytes, 256);
        _allocations[*address] = (long)bytes;
        MemoryInUse += (long)bytes;
        Allocations++;
        return Success;
    }

    public int MemFree(ulong address)
    {
        if (!_allocations.Remove(address, out long bytes)) return ErrorInvalidValue;
        MemoryInUse -= bytes;
        NativeMemory.AlignedFree((void*)address);
        return Success;
    }

    public int MemAllocHost(void** pointer, nuint bytes)
    {
        *pointer = NativeMemory.Alloc(bytes);
        _pinned.Add((nint)(*pointer));
        return Success;
    }

    public int MemFreeHost(void* pointer)
    {
        if (!_pinned.Remove((nint)pointer)) return ErrorInvalidValue;
        NativeMemory.Free(pointer);
        return Success;
    }

    /// <summary>True if [address, address + bytes) lies inside one live allocation.</summary>
    public bool IsDeviceRange(ulong address, long bytes)
    {
        foreach (var (start, length) in _allocations)
        {
            if (start > address) break;
            if (address + (ulong)bytes <= start + (ulong)length) return true;
        }
        return false;
    }

    public int MemcpyHtoDAsync(ulong destination, void* source, nuint bytes, nint stream)
    {
        if (!IsDeviceRange(destination, (long)bytes)) return ErrorInvalidValue;
        Buffer.MemoryCopy(source, (void*)destination, (long)bytes, (long)bytes);
        return Success;
    }

    public int MemcpyDtoHAsync(void* destination, ulong source, nuint bytes, nint stream)
    {
        if (!IsDeviceRange(source, (long)bytes)) return ErrorInvalidValue;
        LargestCopyToHost = Math.Max(LargestCopyToHost, (long)bytes);
        Buffer.MemoryCopy((void*)source, destination, (long)bytes, (long)bytes);
        return Success;
    }

    public int MemcpyDtoDAsync(ulong destination, ulong source, nuint bytes, nint stream)
    {
        if (!IsDeviceRange(destination, (long)bytes) || !IsDeviceRange(source, (long)bytes)) return ErrorInvalidValue;
        Buffer.MemoryCopy((void*)source, (void*)destination, (long)bytes, (long)bytes);
        return Success;
    }

    public int MemsetD32Async(ulong destination, uint value, nuint count, nint stream)
    {
        if (destination % 4 != 0 || !IsDeviceRange(destination, (long)count * 4)) return ErrorInvalidValue;
        new Span<uint>((void*)destination, checked((int)count)).Fill(value);
        return Success;
    }

    public int StreamCreate(nint* stream, uint flags) { *stream = _nextHandle++; return Success; }
    public int StreamSynchronize(nint stream) => Success;
    public int StreamDestroy(nint stream) => Success;
    public int EventCreate(nint* cudaEvent, uint flags) { *cudaEvent = _nextHandle++; _events[*cudaEvent] = 0; return Success; }
    public int EventRecord(nint cudaEvent, nint stream) { if (!_events.ContainsKey(cudaEvent)) return 400; _events[cudaEvent]++; return Success; }
    public int EventSynchronize(nint cudaEvent) => _events.ContainsKey(cudaEvent) ? Success : 400;
    public int EventDestroy(nint cudaEvent) => _events.Remove(cudaEvent) ? Success : 400;

    public int LaunchKernel(nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ, uint sharedBytes, nint stream, void** parameters, void** extra)
    {
        if (function < 1 || function > _functions.Count) return 400;
        if (extra != null) return ErrorInvalidValue;
        Launches++;
        fixed (byte* name = _functions[(int)function - 1].Utf8)
            return HostKernels.Launch(name, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, parameters);
    }

    public int GetErrorName(int error, byte** name)
    {
        if (!ErrorNames.TryGetValue(error, out string? text)) return ErrorInvalidValue;
        *name = (byte*)Intern(text);
        return Success;
    }

    private nint Intern(string text)
    {
        if (!_names.TryGetValue(text, out nint p)) _names[text] = p = Marshal.StringToHGlobalAnsi(text);
        return p;
    }

    public void LoadBlas(int driverVersion) { }
    public int BlasCreate(nint* handle) { *handle = _nextHandle++; return Success; }
    public int BlasDestroy(nint handle) => Success;
    public int BlasSetStream(nint handle, nint stream) => Success;
    public int BlasSetMathMode(nint handle, int mode) => mode is BlasDefaultMath or BlasTf32TensorOpMath ? Success : BlasInvalidValue;

    public int GemmEx(nint handle, int transA, int transB, int m, int n, int k, float* alpha, ulong a, int aType, int lda, ulong b, int bType, int ldb,
        float* beta, ulong c, int cType, int ldc, int computeType, int algorithm) =>
        GemmStridedBatchedEx(handle, transA, transB, m, n, k, alpha, a, aType, lda, 0, b, bType, ldb, 0, beta, c, cType, ldc, 0, 1, computeType, algorithm);

    public int GemmStridedBatchedEx(nint handle, int transA, int transB, int m, int n, int k, float* alpha, ulong a, int aType, int lda, long strideA,
        ulong b, int bType, int ldb, long strideB, float* beta, ulong c, int cType, int ldc, long strideC, int batchCount, int computeType, int algorithm)
    {
        if (aType != bType || aType is not (DataTypeR32F or DataTypeR16BF) || cType != DataTypeR32F) return BlasNotSupported;
        if (computeType is not (BlasCompute32F or BlasCompute32FFastTf32) || algorithm != BlasGemmDefault) return BlasNotSupported;
        if (transA is not (BlasOpN or BlasOpT) || transB is not (BlasOpN or BlasOpT)) return BlasInvalidValue;
        // Stored shapes, column-major: op(A) is m x k, op(B) is k x n.
        int aRows = transA == BlasOpN ? m : k, aCols = transA == BlasOpN ? k : m;
        int bRows = transB == BlasOpN ? k : n, bCols = transB == BlasOpN ? n : k;
        if (m < 0 || n < 0 || k < 0 || batchCount < 1 || lda < Math.Max(1, aRows) || ldb < Math.Max(1, bRows) || ldc < Math.Max(1, m)) return BlasInvalidValue;
        int elementBytes = aType == DataTypeR16BF ? 2 : 4;
        if (!IsMatrix(a, aRows, aCols, lda, strideA, batchCount, elementBytes) || !IsMatrix(b, bRows, bCols, ldb, strideB, batchCount, elementBytes)
            || !IsMatrix(c, m, n, ldc, strideC, batchCount, 4)) return BlasInvalidValue;
        Gemms++;
        for (int batch = 0; batch < batchCount; batch++)
        {
            float* C = (float*)c + batch * strideC;
            for (int j = 0; j < n; j++)
                for (int i = 0; i < m; i++)
                {
                    double sum = 0;
                    for (int p = 0; p < k; p++)
                    {
                        long ai = batch * strideA + (transA == BlasOpN ? i + (long)p * lda : p + (long)i * lda);
                        long bi = batch * strideB + (transB == BlasOpN ? p + (long)j * ldb : j + (long)p * ldb);
                        sum += (double)Element(a, ai, aType) * Element(b, bi, bType);
                    }
                    float* target = C + i + (long)j * ldc;
                    *target = (float)(*alpha * sum + (*beta == 0 ? 0 : *beta * (double)*target));
                }
        }
        return Success;
    }

    private static float Element(ulong matrix, long index, int type) =>
        type == DataTypeR16BF ? BitConverter.Int32BitsToSingle(((ushort*)matrix)[index] << 16) : ((float*)matrix)[index];

    private bool IsMatrix(ulong address, int rows, int cols, int ld, long stride, int batch, int elementBytes)
    {
        if (rows == 0 || cols == 0) return true;
        long last = (long)(cols - 1) * ld + rows - 1 + (batch - 1) * stride;
        return IsDeviceRange(address, (last + 1) * elementBytes);
    }

    public byte* BlasGetStatusName(int status) => (byte*)Intern(BlasNames.GetValueOrDefault(status, "CUBLAS_STATUS_UNKNOWN"));

    public void Dispose()
    {
        foreach (ulong address in _allocations.Keys) NativeMemory.AlignedFree((void*)address);
        _allocations.Clear();
        foreach (nint p in _names.Values) Marshal.FreeHGlobal(p);
        _names.Clear();
    }
}
