/* The optimizer side of train-kernels.h: F32 <-> BF16 casts, the AdamW step, the global gradient norm,
 * clipping and scaling.
 *
 * Non-obvious choice: AdamW spells out the CPU's exact float operations (fmaf where optim.cpp calls
 * std::fma, IEEE division and square root, constants computed on the host in double as optim.cpp does),
 * so a GPU step gives PyTorch's bits as the CPU's does; and the norm keeps the CPU's block grid
 * (GRAD_NORM_BLOCK elements per partial, partials added in order), which only changes the order of the
 * additions inside a block.
 */
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "train-kernels-common.cuh"
#include "train-kernels.h"

namespace hearth::train::cuda {

namespace {

using namespace detail;

__global__ void f32_to_bf16_kernel(const float* __restrict__ x, uint16_t* __restrict__ y, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = f32_to_bf16(x[i]);
}

__global__ void bf16_to_f32_kernel(const uint16_t* __restrict__ x, float* __restrict__ y, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = bf16_to_f32(x[i]);
}

struct AdamWConsts {
  float keep;  // 1 - lr·wd
  int decay;   // apply keep
  float b1, one_b1, b2, one_b2, bc2_sqrt, eps, neg_step;
};

__global__ void adamw_kernel(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ m,
                             float* __restrict__ v, uint16_t* __restrict__ w_bf16, int64_t n, AdamWConsts c) {
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < n; j += int64_t(gridDim.x) * blockDim.x) {
    float pj = w[j];
    if (c.decay) pj = pj * c.keep;
    const float gj = g[j];
    const float mj = fmaf(gj, c.one_b1, m[j] * c.b1);
    const float vj = fmaf(c.one_b2 * gj, gj, v[j] * c.b2);
    m[j] = mj;
    v[j] = vj;
    const float denom = div_rn(sqrt_rn(vj), c.bc2_sqrt) + c.eps;
    const float wj = pj + div_rn(c.neg_step * mj, denom);
    w[j] = wj;
    if (w_bf16) w_bf16[j] = f32_to_bf16(wj);
  }
}

// One block per GRAD_NORM_BLOCK elements of one tensor: partial[blockIdx.x] = Σ g² over the block.
__global__ void sumsq_kernel(const float* __restrict__ g, int64_t n, double* __restrict__ partial) {
  __shared__ double sh[THREADS];
  const int64_t begin = int64_t(blockIdx.x) * GRAD_NORM_BLOCK;
  const int64_t end = begin + GRAD_NORM_BLOCK < n ? begin + GRAD_NORM_BLOCK : n;
  double s = 0.0;
  for (int64_t j = begin + threadIdx.x; j < end; j += THREADS) s += double(g[j]) * double(g[j]);
  s = block_sum(s, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// One block: out[0] = Σ partial (each thread a strided run, then the tree), out[1] = sqrt(out[0]).
__global__ void sum_partials_kernel(const double* __restrict__ partial, int64_t n, double* __restrict__ out) {
  __shared__ double sh[THREADS];
  double s = 0.0;
  for (int64_t j = threadIdx.x; j < n; j += THREADS) s += partial[j];
  s = block_sum(s, sh);
  if (threadIdx.x == 0) {
    out[0] = s;
    out[1] = sqrt(s);
  }
}

__global__ void clip_kernel(float* __restrict__ x, int64_t n, const double* __restrict__ norm_dev, double max_norm) {
  const double norm = *norm_dev;
  if (!(max_norm > 0.0) || !((norm - norm) == 0.0)) return;  // no limit, or the norm is inf / NaN
  const double coef = max_norm / (norm + 1e-6);
  if (!(coef < 1.0)) return;
  const float c = float(coef);
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] *= c;
}

__global__ void scale_kernel(float* __restrict__ x, int64_t n, float c) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] *= c;
}

}  // namespace

cudaError_t f32_to_bf16(const float* x, uint16_t* y, int64_t n, cudaStream_t stream) {
  if (n < 0 || (n > 0 && (x == nullptr || y == nullptr))) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  launch(f32_to_bf16_kernel, elem_grid(n), THREADS, stream, x, y, n);
  return launch_status();
}

cudaError_t bf16_to_f32(const uint16_t* x, float* y, int64_t n, cudaStream_t stream) {
  if (n < 0 || (n > 0 && (x == nullptr || y == nullptr))) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  launch(bf16_to_f32_kernel, elem_grid(n), THREADS, stream, x, y, n);
  return launch_status();
}

cudaError_t adamw_step(float* w, const float* g, float* m, float* v, uint16_t* w_bf16, int64_t n,
                       const AdamWStep& s, cudaStream_t stream) {
  if (n < 0 || s.t < 1 || (n > 0 && (!w || !g || !m || !v))) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  // The constants exactly as AdamW::step computes them (optim.cpp), in double and then rounded.
  const double bc1 = 1.0 - std::pow(s.beta1, double(s.t));
  const double bc2 = 1.0 - std::pow(s.beta2, double(s.t));
  const double wd = s.decay ? s.weight_decay : 0.0;
  AdamWConsts c{};
  c.neg_step = float(-(s.lr / bc1));
  c.bc2_sqrt = float(std::sqrt(bc2));
  c.b1 = float(s.beta1);
  c.one_b1 = float(1.0 - s.beta1);
  c.b2 = float(s.beta2);
  c.one_b2 = float(1.0 - s.beta2);
  c.eps = float(s.eps);
  c.keep = float(1.0 - s.lr * wd);
  c.decay = wd != 0.0 ? 1 : 0;
  launch(adamw_kernel, elem_grid(n), THREADS, stream, w, g, m, v, w_bf16, n, c);
  return launch_status();
}

int64_t grad_norm_partials(const int64_t* sizes_host, int n_tensors) {
  int64_t total = 0;
  for (int k = 0; k < n_tensors; ++k)
    if (sizes_host[k] > 0) total += (sizes_host[k] + GRAD_NORM_BLOCK - 1) / GRAD_NORM_BLOCK;
  return total;
}

cudaError_t grad_norm(const float* const* grads_host, const int64_t* sizes_host, int n_tensors, double* partials,
                      double* out, cudaStream_t stream) {
  if (n_tensors < 0 || out == nullptr || (n_tensors > 0 && (grads_host == nullptr || sizes_host == nullptr)))
    return cudaErrorInvalidValue;
  for (int k = 0; k < n_tensors; ++k)
    if (sizes_host[k] < 0 || (sizes_host[k] > 0 && grads_host[k] == nullptr)) return cudaErrorInvalidValue;
  const int64_t total = grad_norm_partials(sizes_host, n_tensors);
  if (total > 0 && partials == nullptr) return cudaErrorInvalidValue;
  int64_t offset = 0;
  for (int k = 0; k < n_tensors; ++k) {
    const int64_t n = sizes_host[k];
    if (n == 0) continue;
    const int64_t blocks = (n + GRAD_NORM_BLOCK - 1) / GRAD_NORM_BLOCK;
    if (blocks > 0x7fffffffLL) return cudaErrorInvalidValue;
    launch(sumsq_kernel, dim3(unsigned(blocks)), THREADS, stream, grads_host[k], n, partials + offset);
    const cudaError_t e = launch_status();
    if (e != cudaSuccess) return e;
    offset += blocks;
  }
  launch(sum_partials_kernel, dim3(1), THREADS, stream, static_cast<const double*>(partials), total, out);
  return launch_status();
}

cudaError_t clip_by_norm(float* x, int64_t n, const double* norm_dev, double max_norm, cudaStream_t stream) {
  if (n < 0 || norm_dev == nullptr || (n > 0 && x == nullptr)) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  launch(clip_kernel, elem_grid(n), THREADS, stream, x, n, norm_dev, max_norm);
  return launch_status();
}

cudaError_t scale(float* x, int64_t n, float c, cudaStream_t stream) {
  if (n < 0 || (n > 0 && x == nullptr)) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  launch(scale_kernel, elem_grid(n), THREADS, stream, x, n, c);
  return launch_status();
}

}  // namespace hearth::train::cuda
