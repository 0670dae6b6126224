/* TrainBlas (train-blas.h): the trainer's row-major matrix products on the GPU, through the engine's
 * dlopen'ed cuBLAS (cublasGemmEx, cublasGemmStridedBatchedEx).
 *
 * Non-obvious choice: F32 products ask for CUBLAS_COMPUTE_32F_PEDANTIC, not just the default math mode:
 * the compute type, unlike the handle's math mode, cannot be overridden by NVIDIA_TF32_OVERRIDE or a
 * library default, so an F32 product is never silently done in TF32 (which would break the "F32 within
 * 1e-5 of the CPU" promise).
 *
 * Compiled only with the CUDA backend: hearth_trainer globs this file in every build, so without
 * HEARTH_HAVE_CUDA it is empty.
 */
#ifdef HEARTH_HAVE_CUDA

#include "train-blas.h"

#include <algorithm>
#include <climits>
#include <string>

#include "cublas-loader.h"  // engine/cuda

namespace hearth::train::cuda {

struct TrainBlas::Impl {
  const ::hearth::cuda::CublasApi* api = nullptr;
  cublasHandle_t handle = nullptr;
  cudaStream_t stream = nullptr;
};

namespace {

// One product's checked arguments, in cuBLAS's column-major terms.
struct Call {
  cublasOperation_t op_a = CUBLAS_OP_N, op_b = CUBLAS_OP_N;
  int m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
  cudaDataType type = CUDA_R_32F;
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F_PEDANTIC;
};

std::string shape_text(bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
  return std::string(ta ? "T" : "N") + (tb ? "T" : "N") + " m=" + std::to_string(m) + " n=" + std::to_string(n) +
         " k=" + std::to_string(k);
}

Unexpected bad(const std::string& what, bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
  return make_error(ErrorCode::invalid_argument, "TrainBlas gemm (" + shape_text(ta, tb, m, n, k) + "): " + what);
}

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

// Checks a row-major product's arguments and turns them into the column-major product of the
// transposes: c^T (n, m) = op(b)^T (n, k) · op(a)^T (k, m). A row-major matrix stored (r, c) with row
// stride ld is the column-major (c, r) matrix with leading dimension ld, i.e. its own transpose, so
// op(b)^T is b's storage as is (OP_N) when b is not transposed, and transposed (OP_T) when it is.
Expected<Call> plan(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const Mat& a, const Mat& b, const float* c,
                    int64_t ldc) {
  if (m < 0 || n < 0 || k < 0) return bad("negative size", ta, tb, m, n, k);
  if (a.type != b.type) return bad("operands of different types (F32 and BF16)", ta, tb, m, n, k);
  const int64_t cols_a = ta ? m : k, cols_b = tb ? k : n;
  const int64_t lda = a.ld ? a.ld : cols_a, ldb = b.ld ? b.ld : cols_b, ldc_ = ldc ? ldc : n;
  if (a.ld < 0 || lda < cols_a) return bad("row stride of a " + std::to_string(lda) + " < " + std::to_string(cols_a), ta, tb, m, n, k);
  if (b.ld < 0 || ldb < cols_b) return bad("row stride of b " + std::to_string(ldb) + " < " + std::to_string(cols_b), ta, tb, m, n, k);
  if (ldc < 0 || ldc_ < n) return bad("row stride of c " + std::to_string(ldc_) + " < " + std::to_string(n), ta, tb, m, n, k);
  if (!fits_int(m) || !fits_int(n) || !fits_int(k) || !fits_int(lda) || !fits_int(ldb) || !fits_int(ldc_))
    return bad("a size or stride does not fit cuBLAS's 32-bit int", ta, tb, m, n, k);
  if (m > 0 && n > 0 && !c) return bad("c is null", ta, tb, m, n, k);
  if (m > 0 && n > 0 && k > 0 && (!a.p || !b.p)) return bad("an operand is null", ta, tb, m, n, k);
  Call call;
  call.op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;  // first factor of the column-major product
  call.op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  call.m = int(n);
  call.n = int(m);
  call.k = int(k);
  call.lda = int(std::max<int64_t>(lda, 1));
  call.ldb = int(std::max<int64_t>(ldb, 1));
  call.ldc = int(std::max<int64_t>(ldc_, 1));
  call.type = a.type == DType::bf16 ? CUDA_R_16BF : CUDA_R_32F;
  call.compute = a.type == DType::bf16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_PEDANTIC;
  return call;
}

}  // namespace

TrainBlas::TrainBlas(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

TrainBlas::~TrainBlas() {
  if (m_impl && m_impl->handle) m_impl->api->destroy(m_impl->handle);
}

cudaStream_t TrainBlas::stream() const { return m_impl->stream; }

Expected<std::unique_ptr<TrainBlas>> TrainBlas::create(cudaStream_t stream) {
  std::string why;
  const ::hearth::cuda::CublasApi* api = ::hearth::cuda::cublas_api(&why);
  if (!api)
    return make_error(ErrorCode::unsupported, why,
                      "install the CUDA toolkit's cuBLAS (libcublas.so.12 or .13) or train on the CPU");
  auto impl = std::make_unique<Impl>();
  impl->api = api;
  impl->stream = stream;
  if (cublasStatus_t s = api->create(&impl->handle); s != CUBLAS_STATUS_SUCCESS)
    return make_error(ErrorCode::internal,
                      "cuBLAS could not start (" + api->library + "): " + ::hearth::cuda::cublas_status_text(*api, s));
  std::unique_ptr<TrainBlas> blas(new TrainBlas(std::move(impl)));  // destroys the handle on the error paths
  if (cublasStatus_t s = api->set_stream(blas->m_impl->handle, stream); s != CUBLAS_STATUS_SUCCESS)
    return make_error(ErrorCode::internal, "cublasSetStream: " + ::hearth::cuda::cublas_status_text(*api, s));
  if (cublasStatus_t s = api->set_math_mode(blas->m_impl->handle, CUBLAS_DEFAULT_MATH); s != CUBLAS_STATUS_SUCCESS)
    return make_error(ErrorCode::internal, "cublasSetMathMode: " + ::hearth::cuda::cublas_status_text(*api, s));
  return blas;
}

Expected<void> TrainBlas::gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, Mat a, Mat b,
                               float beta, float* c, int64_t ldc) {
  HEARTH_TRY(const Call call, plan(trans_a, trans_b, m, n, k, a, b, c, ldc));
  if (m == 0 || n == 0) return {};
  const auto& api = *m_impl->api;
  const cublasStatus_t s =
      api.gemm_ex(m_impl->handle, call.op_b, call.op_a, call.m, call.n, call.k, &alpha, b.p, call.type, call.ldb, a.p,
                  call.type, call.lda, &beta, c, CUDA_R_32F, call.ldc, call.compute, CUBLAS_GEMM_DEFAULT);
  if (s != CUBLAS_STATUS_SUCCESS)
    return make_error(ErrorCode::internal, "cublasGemmEx (" + shape_text(trans_a, trans_b, m, n, k) + ", " +
                                               (a.type == DType::bf16 ? "BF16" : "F32") +
                                               "): " + ::hearth::cuda::cublas_status_text(api, s));
  return {};
}

Expected<void> TrainBlas::gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, Mat a,
                                       int64_t stride_a, Mat b, int64_t stride_b, float beta, float* c, int64_t ldc,
                                       int64_t stride_c, int64_t batch) {
  HEARTH_TRY(const Call call, plan(trans_a, trans_b, m, n, k, a, b, c, ldc));
  if (batch < 0 || !fits_int(batch)) return bad("batch " + std::to_string(batch) + " out of range", trans_a, trans_b, m, n, k);
  if (stride_a < 0 || stride_b < 0 || stride_c < 0) return bad("negative batch stride", trans_a, trans_b, m, n, k);
  if (m == 0 || n == 0 || batch == 0) return {};
  const auto& api = *m_impl->api;
  const cublasStatus_t s = api.gemm_strided_batched_ex(
      m_impl->handle, call.op_b, call.op_a, call.m, call.n, call.k, &alpha, b.p, call.type, call.ldb, stride_b, a.p,
      call.type, call.lda, stride_a, &beta, c, CUDA_R_32F, call.ldc, stride_c, int(batch), call.compute,
      CUBLAS_GEMM_DEFAULT);
  if (s != CUBLAS_STATUS_SUCCESS)
    return make_error(ErrorCode::internal, "cublasGemmStridedBatchedEx (" + shape_text(trans_a, trans_b, m, n, k) +
                                               ", batch " + std::to_string(batch) + ", " +
                                               (a.type == DType::bf16 ? "BF16" : "F32") +
                                               "): " + ::hearth::cuda::cublas_status_text(api, s));
  return {};
}

}  // namespace hearth::train::cuda

#endif  // HEARTH_HAVE_CUDA
