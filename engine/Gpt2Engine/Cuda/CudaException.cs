namespace Gpt2Engine.Cuda;

/// <summary>A failed CUDA driver or cuBLAS call, named with its error: "cuMemAlloc_v2: CUDA_ERROR_OUT_OF_MEMORY".</summary>
public sealed class CudaException(string call, int status, string statusName)
    : Gpt2Exception($"CUDA: {call} failed with {statusName} ({status})")
{
    public string Call { get; } = call;
    public int Status { get; } = status;
}
