using System.Runtime.InteropServices;
using System.Text;

namespace Gpt2Engine.Cuda;

/// <summary>
/// One GPU as the engine uses it: the device's primary context (which cuBLAS shares), one stream that every copy,
/// kernel and GEMM is queued on, and checked wrappers over the memory calls. Every driver result goes through
/// <see cref="Check"/>, so a failure surfaces as a <see cref="CudaException"/> naming the call and the error.
/// </summary>
internal sealed unsafe class CudaContext : IDisposable
{
    private static long s_contexts;
    [ThreadStatic] private static long t_current;   // the id of the context last made current on this thread

    private readonly long _id = Interlocked.Increment(ref s_contexts);

    private readonly int _device;
    private readonly nint _context;
    private bool _disposed;

    public ICudaApi Api { get; }
    public nint Stream { get; }
    public string DeviceName { get; }
    public long TotalMemory { get; }
    public int DriverVersion { get; }

    public CudaContext(ICudaApi api, int ordinal)
    {
        Api = api;
        Check(api.Init(0), "cuInit");
        int version, count, device;
        Check(api.DriverGetVersion(&version), "cuDriverGetVersion");
        DriverVersion = version;
        Check(api.DeviceGetCount(&count), "cuDeviceGetCount");
        if (ordinal < 0 || ordinal >= count) throw new Gpt2Exception($"no CUDA device {ordinal} (this machine has {count})");
        Check(api.DeviceGet(&device, ordinal), "cuDeviceGet");
        _device = device;
        byte* name = stackalloc byte[256];
        Check(api.DeviceGetName(name, 256, device), "cuDeviceGetName");
        DeviceName = Marshal.PtrToStringUTF8((nint)name) ?? "?";
        nuint bytes;
        Check(api.DeviceTotalMem(&bytes, device), "cuDeviceTotalMem_v2");
        TotalMemory = (long)bytes;
        nint context;
        Check(api.DevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain");
        _context = context;
        try
        {
            Bind();
            nint stream;
            Check(api.StreamCreate(&stream, 0), "cuStreamCreate");
            Stream = stream;
        }
        catch
        {
            api.DevicePrimaryCtxRelease(device);
            throw;
        }
    }

    /// <summary>Makes the context current on the calling thread (the driver's notion of "current" is per thread).</summary>
    public void Bind()
    {
        if (t_current == _id) return;
        Check(Api.CtxSetCurrent(_context), "cuCtxSetCurrent");
        t_current = _id;
    }

    public void Check(int status, string call)
    {
        if (status == CudaConstants.Success) return;
        byte* name = null;
        string text = Api.GetErrorName(status, &name) == CudaConstants.Success && name != null ? Marshal.PtrToStringUTF8((nint)name) ?? "?" : "unknown CUresult";
        throw new CudaException(call, status, text);
    }

    public ulong Allocate(long bytes)
    {
        Bind();
        ulong address;
        int status = Api.MemAlloc(&address, (nuint)Math.Max(bytes, 4));
        if (status == CudaConstants.ErrorOutOfMemory)
            throw new Gpt2Exception($"out of GPU memory allocating {bytes / (1024.0 * 1024.0):F1} MiB on {DeviceName}");
        Check(status, "cuMemAlloc_v2");
        return address;
    }

    /// <summary>The device's free and total bytes; other processes' allocations count against the free ones.</summary>
    public (long Free, long Total) MemoryInfo()
    {
        Bind();
        nuint free, total;
        Check(Api.MemGetInfo(&free, &total), "cuMemGetInfo_v2");
        return ((long)free, (long)total);
    }

    public void Free(ulong address)
    {
        Bind();
        Check(Api.MemFree(address), "cuMemFree_v2");
    }

    /// <summary>Sets <paramref name="bytes"/> (a multiple of 4) to zero, queued on the stream.</summary>
    public void Zero(ulong address, long bytes)
    {
        Bind();
        Check(Api.MemsetD32Async(address, 0, (nuint)(bytes / 4), Stream), "cuMemsetD32Async");
    }

    public void CopyToDevice(ulong destination, void* source, long bytes)
    {
        Bind();
        Check(Api.MemcpyHtoDAsync(destination, source, (nuint)bytes, Stream), "cuMemcpyHtoDAsync_v2");
    }

    /// <summary>Copies to host memory and waits for it, so the destination is ready on return.</summary>
    public void CopyToHost(void* destination, ulong source, long bytes)
    {
        Bind();
        Check(Api.MemcpyDtoHAsync(destination, source, (nuint)bytes, Stream), "cuMemcpyDtoHAsync_v2");
        Synchronize();
    }

    public void CopyOnDevice(ulong destination, ulong source, long bytes)
    {
        Bind();
        Check(Api.MemcpyDtoDAsync(destination, source, (nuint)bytes, Stream), "cuMemcpyDtoDAsync_v2");
    }

    public void Synchronize()
    {
        Bind();
        Check(Api.StreamSynchronize(Stream), "cuStreamSynchronize");
    }

    /// <summary>A module from PTX text (made NUL-terminated, as cuModuleLoadData requires).</summary>
    public nint LoadModule(string ptx, string name)
    {
        Bind();
        byte[] image = Encoding.ASCII.GetBytes(ptx + "\0");
        nint module;
        fixed (byte* p = image) Check(Api.ModuleLoadData(&module, p), $"cuModuleLoadData({name})");
        return module;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Bind();
        Check(Api.StreamSynchronize(Stream), "cuStreamSynchronize");
        Check(Api.StreamDestroy(Stream), "cuStreamDestroy_v2");
        Check(Api.DevicePrimaryCtxRelease(_device), "cuDevicePrimaryCtxRelease_v2");
        t_current = 0;
    }
}
