/* The device trainer's small kernels of train-kernels.h: dropout (forward and backward), a Linear's bias
 * gradient, the q/k column permutation between the GGUF (interleaved) and Hugging Face (half-split)
 * layouts, and x += y.
 *
 * Non-obvious choice: dropout's mask is the CPU's own counter hash (ops-kernels.cpp's mix32 applied to the
 * element index and the splitmix64'd seed) with the threshold and the float scale computed on the host
 * exactly as ops::dropout_* do, so the GPU keeps and scales precisely the CPU's elements, bit for bit,
 * however the grid splits the work.
 */
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "train-kernels-common.cuh"
#include "train-kernels.h"

namespace hearth::train::cuda {

namespace {

using namespace detail;

// ---- dropout (the CPU's hash: trainer/src/ops-kernels.cpp, ops-elementwise.cpp) --------------------

uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint32_t dropout_threshold(float p) {
  const double t = std::round(double(p) * 4294967296.0);
  return t >= 4294967295.0 ? 4294967295U : uint32_t(t);
}

__device__ __forceinline__ uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// out (=, or += when accumulate) x · (hash(seed, i) >= thr ? scale : 0).
__global__ void dropout_kernel(float* out, const float* x, int64_t n, uint32_t s1, uint32_t s2, uint32_t thr,
                               float scale, int accumulate) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const uint64_t idx = uint64_t(i);
    const uint32_t h = mix32(mix32(uint32_t(idx) ^ s1) ^ s2 ^ uint32_t(idx >> 32));
    const float m = h >= thr ? scale : 0.0f;
    if (accumulate)
      out[i] += x[i] * m;
    else
      out[i] = x[i] * m;
  }
}

cudaError_t dropout_apply(float* out, const float* x, int64_t n, float p, uint64_t seed, bool accumulate,
                          cudaStream_t stream) {
  const float scale = 1.0f / (1.0f - p);  // in float, as the CPU
  const uint64_t sh = splitmix64(seed);
  launch(dropout_kernel, elem_grid(n), THREADS, stream, out, x, n, uint32_t(sh), uint32_t(sh >> 32),
         dropout_threshold(p), scale, accumulate ? 1 : 0);
  return launch_status();
}

// ---- element-wise ---------------------------------------------------------------------------------

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] += y[i];
}

__global__ void fill_zero_kernel(float* x, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = 0.0f;
}

__global__ void copy_kernel(float* __restrict__ y, const float* __restrict__ x, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = x[i];
}

// ---- bias gradient --------------------------------------------------------------------------------

// grid (column blocks, row blocks): partial[rb][j] = Σ_{rows of block rb} dy[r][j], rows in order (as the
// CPU's per-column loop, which starts from 0 and adds rows in order).
__global__ void bias_partial_kernel(float* __restrict__ partial, const float* __restrict__ dy, int64_t n,
                                    int64_t out) {
  const int64_t j = int64_t(blockIdx.x) * THREADS + threadIdx.x;
  if (j >= out) return;
  const int64_t r0 = int64_t(blockIdx.y) * BIAS_GRAD_ROWS;
  const int64_t r1 = r0 + BIAS_GRAD_ROWS < n ? r0 + BIAS_GRAD_ROWS : n;
  float acc = 0.0f;
  for (int64_t r = r0; r < r1; ++r) acc += dy[r * out + j];
  partial[int64_t(blockIdx.y) * out + j] = acc;
}

__global__ void bias_sum_kernel(float* __restrict__ dbias, const float* __restrict__ partial, int64_t n_parts,
                                int64_t out) {
  const int64_t j = int64_t(blockIdx.x) * THREADS + threadIdx.x;
  if (j >= out) return;
  float acc = 0.0f;
  for (int64_t p = 0; p < n_parts; ++p) acc += partial[p * out + j];
  dbias[j] += acc;
}

// ---- q/k column permutation -----------------------------------------------------------------------

// One thread per destination element. to_hf: d[s·half + i] = s_[2i + s]; from_hf: d[2i + s] = s_[s·half + i].
__global__ void qk_perm_kernel(float* __restrict__ dst, const float* __restrict__ src, int64_t total, int64_t hd,
                               int to_hf) {
  const int64_t half = hd / 2;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t base = e - e % hd, c = e % hd;  // column c of one head of one row
    int64_t from;
    if (to_hf)
      from = c < half ? 2 * c : 2 * (c - half) + 1;
    else
      from = (c % 2 == 0 ? 0 : half) + c / 2;
    dst[e] = src[base + from];
  }
}

cudaError_t qk_perm(float* dst, const float* src, int64_t n, int64_t heads, int64_t hd, bool to_hf,
                    cudaStream_t stream) {
  if (n < 0 || heads < 0 || hd < 0 || hd % 2 != 0) return cudaErrorInvalidValue;
  const int64_t total = n * heads * hd;
  if (total == 0) return cudaSuccess;
  if (!dst || !src || dst == src) return cudaErrorInvalidValue;
  launch(qk_perm_kernel, elem_grid(total), THREADS, stream, dst, src, total, hd, to_hf ? 1 : 0);
  return launch_status();
}

}  // namespace

cudaError_t dropout_forward(float* out, const float* x, int64_t n, float p, uint64_t seed, cudaStream_t stream) {
  if (n < 0 || !(p == p)) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (!out || !x) return cudaErrorInvalidValue;
  if (p <= 0.0f) {
    if (out == x) return cudaSuccess;
    launch(copy_kernel, elem_grid(n), THREADS, stream, out, x, n);
    return launch_status();
  }
  if (p >= 1.0f) {
    launch(fill_zero_kernel, elem_grid(n), THREADS, stream, out, n);
    return launch_status();
  }
  return dropout_apply(out, x, n, p, seed, false, stream);
}

cudaError_t dropout_backward(float* dx, const float* dout, int64_t n, float p, uint64_t seed, cudaStream_t stream) {
  if (n < 0 || !(p == p)) return cudaErrorInvalidValue;
  if (n == 0 || !dx || p >= 1.0f) return cudaSuccess;
  if (!dout) return cudaErrorInvalidValue;
  if (p <= 0.0f) return add_inplace(dx, dout, n, stream);
  return dropout_apply(dx, dout, n, p, seed, true, stream);
}

int64_t bias_grad_partials(int64_t n, int64_t out) {
  if (n <= 0 || out <= 0) return 0;
  return (n + BIAS_GRAD_ROWS - 1) / BIAS_GRAD_ROWS * out;
}

cudaError_t bias_backward(float* dbias, const float* dy, int64_t n, int64_t out, float* partials,
                          cudaStream_t stream) {
  if (n < 0 || out < 0) return cudaErrorInvalidValue;
  if (n == 0 || out == 0 || !dbias) return cudaSuccess;
  if (!dy || !partials) return cudaErrorInvalidValue;
  const int64_t n_parts = (n + BIAS_GRAD_ROWS - 1) / BIAS_GRAD_ROWS;
  if (n_parts > 65535) return cudaErrorInvalidValue;  // grid.y limit: 4 million rows
  const unsigned col_blocks = unsigned((out + THREADS - 1) / THREADS);
  launch(bias_partial_kernel, dim3(col_blocks, unsigned(n_parts)), THREADS, stream, partials, dy, n, out);
  launch(bias_sum_kernel, dim3(col_blocks), THREADS, stream, dbias, static_cast<const float*>(partials), n_parts, out);
  return launch_status();
}

cudaError_t qk_to_hf(float* dst, const float* src, int64_t n, int64_t heads, int64_t hd, cudaStream_t stream) {
  return qk_perm(dst, src, n, heads, hd, true, stream);
}

cudaError_t qk_from_hf(float* dst, const float* src, int64_t n, int64_t heads, int64_t hd, cudaStream_t stream) {
  return qk_perm(dst, src, n, heads, hd, false, stream);
}

cudaError_t add_inplace(float* x, const float* y, int64_t n, cudaStream_t stream) {
  if (n < 0) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (!x || !y) return cudaErrorInvalidValue;
  launch(add_kernel, elem_grid(n), THREADS, stream, x, y, n);
  return launch_status();
}

}  // namespace hearth::train::cuda
