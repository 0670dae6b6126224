/* Internal: matrix products for the trainer's CUDA path, over cuBLAS loaded by the engine
 * (engine/cuda/cublas-loader.h: dlopen, so nothing links cuBLAS). Row-major in, row-major out, with the
 * CPU ops' conventions (trainer/src/ops.h gemm()): c (m, n) = alpha · op(a) · op(b) + beta · c.
 *
 * Precision is chosen by the operands' type: both F32 → F32 inputs, F32 compute with TF32 disabled
 * (CUBLAS_COMPUTE_32F_PEDANTIC), so results match the CPU's sgemm to rounding; both BF16 → BF16 inputs
 * with F32 accumulation (CUBLAS_COMPUTE_32F). The output c is always F32. Mixed operand types are an
 * invalid_argument error.
 *
 * Non-obvious choice: row-major products are issued as the column-major product of the transposes
 * (c^T = op(b)^T · op(a)^T), so no operand is ever copied or transposed in memory.
 *
 * Threads: one thread per TrainBlas; all its work is enqueued on the stream given to create().
 * Compiled only with the CUDA backend (HEARTH_HAVE_CUDA); plain C++ (no device code).
 */
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "hearth/error.h"
#include "train-kernels.h"  // trainer/cuda: DType

namespace hearth::train::cuda {

// A matrix operand: device pointer, element type, row stride in elements (0: dense, i.e. the number of
// columns as stored).
struct Mat {
  const void* p = nullptr;
  DType type = DType::f32;
  int64_t ld = 0;
};

class TrainBlas {
 public:
  // Loads cuBLAS, creates a handle bound to `stream`. Errors: unsupported ("cuBLAS not found ..."),
  // internal (handle creation failed, with cuBLAS's status text).
  static Expected<std::unique_ptr<TrainBlas>> create(cudaStream_t stream);
  ~TrainBlas();

  // a is (m, k) after op (stored (k, m) when trans_a); b is (k, n) after op (stored (n, k) when
  // trans_b); c (m, n) with row stride ldc (0: n). Errors: invalid_argument (sizes, types), internal
  // (cuBLAS status text).
  Expected<void> gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, Mat a, Mat b,
                      float beta, float* c, int64_t ldc = 0);
  // `batch` independent products; matrix i of a / b / c starts stride_a / stride_b / stride_c ELEMENTS
  // after matrix i - 1 (cublasGemmStridedBatchedEx).
  Expected<void> gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, Mat a,
                              int64_t stride_a, Mat b, int64_t stride_b, float beta, float* c, int64_t ldc,
                              int64_t stride_c, int64_t batch);

  // The stream given to create() (device-attention.cpp enqueues its kernels there).
  cudaStream_t stream() const;

  struct Impl;

 private:
  explicit TrainBlas(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace hearth::train::cuda
