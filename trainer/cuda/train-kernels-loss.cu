/* The fused softmax cross-entropy of train-kernels.h: loss and dlogits over rows of F32 or BF16 logits.
 *
 * Non-obvious choice: three launches with fixed shapes instead of one with atomics: (1) one block counts
 * the rows that take part (the gradient's 1/n_counted must be known before any row is written), (2) one
 * block per row computes its max, Σ exp in double, its loss and its dlogits, (3) one block adds the
 * row losses in a fixed order. The row's own values are re-read for each pass (max, sum, gradient)
 * rather than staged in shared memory, so any vocabulary size works, and in-place dlogits are safe
 * because every element is read and then written by the same thread after the block's last barrier.
 */
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "train-kernels-common.cuh"
#include "train-kernels.h"

namespace hearth::train::cuda {

namespace {

using namespace detail;

__global__ void count_targets_kernel(const int32_t* __restrict__ targets, int64_t n_rows, int64_t vocab,
                                     CrossEntropyStats* __restrict__ stats) {
  __shared__ int64_t sh[THREADS];
  int64_t counted = 0, bad = 0;
  for (int64_t r = threadIdx.x; r < n_rows; r += THREADS) {
    const int64_t t = targets[r];
    if (t >= vocab)
      ++bad;
    else if (t >= 0)
      ++counted;
  }
  counted = block_sum(counted, sh);
  bad = block_sum(bad, sh);
  if (threadIdx.x == 0) {
    stats->n_counted = counted;
    stats->n_bad = bad;
  }
}

// One block per row (grid-stride over rows; every thread of a block walks the same rows, so the
// barriers inside the reductions are reached by all).
__global__ void cross_entropy_rows_kernel(const void* logits, int logits_bf16, void* dlogits, int dlogits_bf16,
                                          const int32_t* __restrict__ targets, int64_t n_rows, int64_t vocab,
                                          float grad_scale, double* __restrict__ row_loss,
                                          const CrossEntropyStats* __restrict__ stats) {
  __shared__ float shf[THREADS];
  __shared__ double shd[THREADS];
  const int64_t counted = stats->n_counted;
  for (int64_t r = blockIdx.x; r < n_rows; r += gridDim.x) {
    const int64_t base = r * vocab;
    const int64_t t = targets[r];
    if (t < 0 || t >= vocab) {  // ignored (or out of range: reported through stats->n_bad)
      if (threadIdx.x == 0) row_loss[r] = 0.0;
      if (dlogits)
        for (int64_t j = threadIdx.x; j < vocab; j += THREADS) store(dlogits, dlogits_bf16, base + j, 0.0f);
      continue;
    }
    const float lt = load(logits, logits_bf16, base + t);
    float mx = load(logits, logits_bf16, base);
    for (int64_t j = threadIdx.x; j < vocab; j += THREADS) {
      const float l = load(logits, logits_bf16, base + j);
      mx = mx > l ? mx : l;
    }
    mx = block_max(mx, shf);
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < vocab; j += THREADS) s += double(expf(load(logits, logits_bf16, base + j) - mx));
    s = block_sum(s, shd);  // ends with a barrier: every read of the row above is done before any write
    if (threadIdx.x == 0) row_loss[r] = log(s) - double(lt - mx);
    if (dlogits) {
      // As the CPU: scale = f32(1/Σ)·g with g = grad_scale / counted; the target's entry minus g.
      const float g = grad_scale / float(counted);
      const float sc = float(1.0 / s) * g;
      for (int64_t j = threadIdx.x; j < vocab; j += THREADS) {
        float d = expf(load(logits, logits_bf16, base + j) - mx) * sc;
        if (j == t) d -= g;
        store(dlogits, dlogits_bf16, base + j, d);
      }
    }
  }
}

__global__ void sum_losses_kernel(const double* __restrict__ row_loss, int64_t n_rows,
                                  CrossEntropyStats* __restrict__ stats) {
  __shared__ double sh[THREADS];
  double s = 0.0;
  for (int64_t r = threadIdx.x; r < n_rows; r += THREADS) s += row_loss[r];
  s = block_sum(s, sh);
  if (threadIdx.x == 0) {
    stats->loss_sum = s;
    stats->loss_mean = stats->n_counted > 0 ? s / double(stats->n_counted) : 0.0;
  }
}

}  // namespace

cudaError_t cross_entropy(const void* logits, DType logits_type, void* dlogits, DType dlogits_type,
                          const int32_t* targets, int64_t n_rows, int64_t vocab, float grad_scale, double* row_loss,
                          CrossEntropyStats* stats, cudaStream_t stream) {
  if (n_rows < 0 || vocab < 1 || stats == nullptr) return cudaErrorInvalidValue;
  if (n_rows > 0 && (logits == nullptr || targets == nullptr || row_loss == nullptr)) return cudaErrorInvalidValue;
  if (dlogits != nullptr && dlogits == logits && dlogits_type != logits_type) return cudaErrorInvalidValue;
  const int lb = logits_type == DType::bf16 ? 1 : 0, db = dlogits_type == DType::bf16 ? 1 : 0;
  launch(count_targets_kernel, dim3(1), THREADS, stream, targets, n_rows, vocab, stats);
  cudaError_t e = launch_status();
  if (e != cudaSuccess) return e;
  if (n_rows > 0) {
    launch(cross_entropy_rows_kernel, dim3(grid_for(n_rows, 1)), THREADS, stream, logits, lb, dlogits, db, targets,
           n_rows, vocab, grad_scale, row_loss, static_cast<const CrossEntropyStats*>(stats));
    e = launch_status();
    if (e != cudaSuccess) return e;
  }
  launch(sum_losses_kernel, dim3(1), THREADS, stream, static_cast<const double*>(row_loss), n_rows, stats);
  return launch_status();
}

}  // namespace hearth::train::cuda
