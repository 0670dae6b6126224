/* cuBLAS for engine-test-cuda-runner-emulated and trainer-test-cuda-train-attention-emulated:
 * hearth::cuda::cublas_api() with a plain CPU cublasGemmEx and cublasGemmStridedBatchedEx that follow
 * cuBLAS's documented column-major semantics (C = op(A) op(B), leading dimensions, OP_N and OP_T, batch
 * strides in elements), with F32/F16/BF16 inputs, F32 output and F32 accumulation. Its definitions come before the
 * archive's, so the real loader is never linked into that test.
 * Non-obvious choice: it rejects what real cuBLAS would (TF32 compute, mixed input types, a leading
 * dimension shorter than the matrix), so a runner that asks for those fails here too. */
#include <cstdint>
#include <string>
#include <vector>

#include "../../../engine/cuda/cublas-loader.h"
#include "hearth/tensor-types.h"

struct cublasContext {
  cudaStream_t stream = nullptr;
};

namespace {

float load(cudaDataType t, const void* p, int64_t i) {
  switch (t) {
    case CUDA_R_32F: return static_cast<const float*>(p)[i];
    case CUDA_R_16F: return hearth::fp16_to_fp32(static_cast<const uint16_t*>(p)[i]);
    case CUDA_R_16BF: return hearth::bf16_to_fp32(static_cast<const uint16_t*>(p)[i]);
  }
  return 0;
}

cublasStatus_t create(cublasHandle_t* h) {
  *h = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t destroy(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t set_stream(cublasHandle_t h, cudaStream_t s) {
  h->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t set_math_mode(cublasHandle_t, cublasMath_t m) {
  return m == CUBLAS_DEFAULT_MATH ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_SUPPORTED;
}

// One strided batch of column-major products (cublasGemmStridedBatchedEx's semantics; gemm_ex is batch 1).
cublasStatus_t gemm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void* alpha, const void* A, cudaDataType at, int lda, long long stride_a,
                            const void* B, cudaDataType bt, int ldb, long long stride_b, const void* beta, void* C,
                            cudaDataType ct, int ldc, long long stride_c, int batch, cublasComputeType_t compute) {
  if (!h || m < 0 || n < 0 || k < 0 || batch < 0 || ta == CUBLAS_OP_C || tb == CUBLAS_OP_C)
    return CUBLAS_STATUS_INVALID_VALUE;
  // F32 accumulation only: COMPUTE_32F for any input type, COMPUTE_32F_PEDANTIC (no TF32) too.
  if ((compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_PEDANTIC) || at != bt || ct != CUDA_R_32F)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  // op(A) is m x k: A is m x k (lda >= m) for OP_N, k x m (lda >= k) for OP_T; likewise B.
  if (lda < (ta == CUBLAS_OP_N ? m : k) || ldb < (tb == CUBLAS_OP_N ? k : n) || ldc < m || lda < 1 || ldb < 1 ||
      ldc < 1)
    return CUBLAS_STATUS_INVALID_VALUE;
  const size_t esize = at == CUDA_R_32F ? 4 : 2;
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  for (int bi = 0; bi < batch; ++bi) {
    const void* Ab = static_cast<const char*>(A) + size_t(bi) * size_t(stride_a) * esize;
    const void* Bb = static_cast<const char*>(B) + size_t(bi) * size_t(stride_b) * esize;
    float* c = static_cast<float*>(C) + int64_t(bi) * stride_c;
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        float acc = 0;
        for (int l = 0; l < k; ++l) {
          float av = load(at, Ab, ta == CUBLAS_OP_N ? int64_t(i) + int64_t(l) * lda : int64_t(l) + int64_t(i) * lda);
          float bv = load(bt, Bb, tb == CUBLAS_OP_N ? int64_t(l) + int64_t(j) * ldb : int64_t(j) + int64_t(l) * ldb);
          acc += av * bv;
        }
        float& out = c[int64_t(i) + int64_t(j) * ldc];
        out = a * acc + (b != 0 ? b * out : 0.0f);
      }
  }
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t gemm_ex(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                       const void* alpha, const void* A, cudaDataType at, int lda, const void* B, cudaDataType bt,
                       int ldb, const void* beta, void* C, cudaDataType ct, int ldc, cublasComputeType_t compute,
                       cublasGemmAlgo_t) {
  return gemm_batched(h, ta, tb, m, n, k, alpha, A, at, lda, 0, B, bt, ldb, 0, beta, C, ct, ldc, 0, 1, compute);
}

cublasStatus_t gemm_strided_batched_ex(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                       int k, const void* alpha, const void* A, cudaDataType at, int lda,
                                       long long stride_a, const void* B, cudaDataType bt, int ldb, long long stride_b,
                                       const void* beta, void* C, cudaDataType ct, int ldc, long long stride_c,
                                       int batch, cublasComputeType_t compute, cublasGemmAlgo_t) {
  return gemm_batched(h, ta, tb, m, n, k, alpha, A, at, lda, stride_a, B, bt, ldb, stride_b, beta, C, ct, ldc,
                      stride_c, batch, compute);
}

}  // namespace

namespace hearth::cuda {

const CublasApi* cublas_api(std::string*) {
  static const CublasApi api = [] {
    CublasApi a;
    a.create = create;
    a.destroy = destroy;
    a.set_stream = set_stream;
    a.set_math_mode = set_math_mode;
    a.gemm_ex = gemm_ex;
    a.gemm_strided_batched_ex = gemm_strided_batched_ex;
    a.library = "emulated cuBLAS";
    return a;
  }();
  return &api;
}

std::string cublas_status_text(const CublasApi&, cublasStatus_t s) { return "cuBLAS status " + std::to_string(int(s)); }

}  // namespace hearth::cuda
