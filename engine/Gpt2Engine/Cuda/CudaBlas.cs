namespace Gpt2Engine.Cuda;

/// <summary>A row-major matrix operand: address, row length in memory (ld), batch stride in elements, element type.</summary>
internal readonly record struct GemmOperand(ulong Address, int Ld, long Stride = 0, int DataType = CudaConstants.DataTypeR32F);

/// <summary>
/// A cuBLAS handle on the context's stream, with GEMMs stated row-major. cuBLAS is column-major, and a row-major
/// matrix is the column-major view of its transpose, so C = op(A) op(B) (row-major) is computed as the column-major
/// C^T = op(B)^T op(A)^T: operands swapped, m and n swapped, transpose flags kept, each ld its row length.
/// </summary>
internal sealed unsafe class CudaBlas : IDisposable
{
    private readonly CudaContext _context;
    private readonly nint _handle;

    /// <summary>Lets fp32 GEMMs use TF32 tensor cores (about 1e-3 relative error; off for parity tests).</summary>
    public bool AllowTf32 { get; set; }

    public CudaBlas(CudaContext context)
    {
        _context = context;
        context.Api.LoadBlas(context.DriverVersion);
        context.Bind();
        nint handle;
        Check(context.Api.BlasCreate(&handle), "cublasCreate_v2");
        _handle = handle;
        Check(context.Api.BlasSetStream(handle, context.Stream), "cublasSetStream_v2");
        Check(context.Api.BlasSetMathMode(handle, CudaConstants.BlasDefaultMath), "cublasSetMathMode");
    }

    /// <summary>
    /// Row-major C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C, over <paramref name="batch"/> matrices at the operands'
    /// strides. A transposed operand is stored [K,M] (or [N,K] for B).
    /// </summary>
    public void Gemm(bool transA, bool transB, int M, int N, int K, float alpha, GemmOperand a, GemmOperand b, float beta, GemmOperand c, int batch = 1)
    {
        _context.Bind();
        int opA = transA ? CudaConstants.BlasOpT : CudaConstants.BlasOpN, opB = transB ? CudaConstants.BlasOpT : CudaConstants.BlasOpN;
        // fp32 inputs may use TF32; bf16 inputs always accumulate in fp32.
        int compute = AllowTf32 && a.DataType == CudaConstants.DataTypeR32F ? CudaConstants.BlasCompute32FFastTf32 : CudaConstants.BlasCompute32F;
        if (batch == 1)
            Check(_context.Api.GemmEx(_handle, opB, opA, N, M, K, &alpha, b.Address, b.DataType, b.Ld, a.Address, a.DataType, a.Ld,
                &beta, c.Address, c.DataType, c.Ld, compute, CudaConstants.BlasGemmDefault), "cublasGemmEx");
        else
            Check(_context.Api.GemmStridedBatchedEx(_handle, opB, opA, N, M, K, &alpha, b.Address, b.DataType, b.Ld, b.Stride, a.Address, a.DataType, a.Ld, a.Stride,
                &beta, c.Address, c.DataType, c.Ld, c.Stride, batch, compute, CudaConstants.BlasGemmDefault), "cublasGemmStridedBatchedEx");
    }

    private void Check(int status, string call)
    {
        if (status == 0) return;
        byte* name = _context.Api.BlasGetStatusName(status);
        throw new CudaException(call, status, name == null ? "unknown cublasStatus_t" : System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)name) ?? "?");
    }

    public void Dispose()
    {
        _context.Bind();
        Check(_context.Api.BlasDestroy(_handle), "cublasDestroy_v2");
    }
}
