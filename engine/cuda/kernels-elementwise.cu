/* The element-wise and normalization kernels of engine/cuda/kernels.h: F32 -> BF16 / F16 conversion,
 * RMSNorm, bias, residual add, SwiGLU, RoPE and the F16 KV-cache store.
 *
 * Non-obvious choice: RoPE computes each angle in double (positions times frequencies reach 1e5 radians
 * in long contexts, where a float angle would be off by whole hundredths) and rotates with
 * non-contracted F32 multiplies (__fmul_rn), the same operations as the CPU backend, so the two agree to
 * the last bit whenever the double cos/sin round to the same float.
 */
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels-common.cuh"
#include "kernels.h"
#include "quant-decode.cuh"

namespace hearth::cuda {

namespace {

using namespace detail;

constexpr int EW_THREADS = 256;

__global__ void f32_to_bf16_kernel(const float* __restrict__ x, uint16_t* __restrict__ y, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = qd::float_to_bf16(x[i]);
}

__global__ void f32_to_f16_kernel(const float* __restrict__ x, uint16_t* __restrict__ y, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = qd::float_to_half(x[i]);
}

// One block per row. x and out may alias: each element is read and written by the same thread, and
// all reads of the sum pass finish before the block barrier.
__global__ void rms_norm_kernel(const float* x, const float* __restrict__ w, float* out, int64_t n, float eps) {
  __shared__ float part[32];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * n;
  float* o = out + row * n;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = xr[i];
    ss += v * v;
  }
  ss = warp_sum(ss);
  const int lane = int(threadIdx.x & 31u), wid = int(threadIdx.x >> 5);
  if (lane == 0) part[wid] = ss;
  __syncthreads();
  if (wid == 0) {
    const int n_warps = int((blockDim.x + 31) / 32);
    float v = lane < n_warps ? part[lane] : 0.0f;
    v = warp_sum(v);
    if (lane == 0) part[0] = v;
  }
  __syncthreads();
  const float scale = float(1.0 / sqrt(double(part[0]) / double(n) + double(eps)));
  if (w != nullptr) {
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) o[i] = xr[i] * scale * w[i];
  } else {
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) o[i] = xr[i] * scale;
  }
}

__global__ void add_bias_kernel(float* __restrict__ x, const float* __restrict__ b, int64_t n_rows, int64_t n) {
  const int64_t total = n_rows * n;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    x[i] += b[i % n];
}

__global__ void add_kernel(float* __restrict__ x, const float* __restrict__ y, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] += y[i];
}

__global__ void swiglu_kernel(const float* gate, const float* __restrict__ up, float* out, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

// One thread per (token, pair): the angle is computed once and applied to every head.
__global__ void rope_kernel(float* __restrict__ x, int64_t n_tok, int64_t n_heads, int64_t head_dim,
                            const int32_t* __restrict__ pos_dev, const double* __restrict__ inv_freq,
                            double pos_scale, bool interleaved) {
  const int64_t half = head_dim / 2;
  const int64_t total = n_tok * half;
  const int64_t pos0 = *pos_dev;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = idx / half, i = idx % half;
    const double a = double(pos0 + t) * pos_scale * inv_freq[i];
    double sd, cd;
    sincos(a, &sd, &cd);
    const float c = float(cd), s = float(sd);
    const int64_t i0 = interleaved ? 2 * i : i;
    const int64_t i1 = interleaved ? 2 * i + 1 : i + half;
    float* xt = x + t * n_heads * head_dim;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* hv = xt + h * head_dim;
      const float x0 = hv[i0], x1 = hv[i1];
      hv[i0] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
      hv[i1] = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
    }
  }
}

__global__ void kv_store_kernel(const float* __restrict__ k, const float* __restrict__ v, uint16_t* __restrict__ k_cache,
                                uint16_t* __restrict__ v_cache, int64_t n_tok, int64_t kv_dim,
                                const int32_t* __restrict__ pos_dev) {
  const int64_t total = n_tok * kv_dim;
  const int64_t base = int64_t(*pos_dev) * kv_dim;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    k_cache[base + i] = qd::float_to_half(k[i]);
    v_cache[base + i] = qd::float_to_half(v[i]);
  }
}

unsigned ew_grid(int64_t n) { return grid_for(n, EW_THREADS, 65535LL * 8); }

}  // namespace

cudaError_t f32_to_bf16(const float* x, uint16_t* y, int64_t n, cudaStream_t stream) {
  if (n < 0 || (n > 0 && (x == nullptr || y == nullptr))) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  launch(f32_to_bf16_kernel, ew_grid(n), EW_THREADS, 0, stream, x, y, n);
  return launch_status();
}

cudaError_t f32_to_f16(const float* x, uint16_t* y, int64_t n, cudaStream_t stream) {
  if (n < 0 || (n > 0 && (x == nullptr || y == nullptr))) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  launch(f32_to_f16_kernel, ew_grid(n), EW_THREADS, 0, stream, x, y, n);
  return launch_status();
}

cudaError_t rms_norm(const float* x, const float* w, float* out, int64_t n_rows, int64_t n, float eps,
                     cudaStream_t stream) {
  if (x == nullptr || out == nullptr || n_rows < 1 || n < 1 || n_rows > 0x7fffffffLL) return cudaErrorInvalidValue;
  const int threads = n <= 128 ? 64 : (n <= 1024 ? 128 : 256);
  launch(rms_norm_kernel, unsigned(n_rows), threads, 0, stream, x, w, out, n, eps);
  return launch_status();
}

cudaError_t add_bias(float* x, const float* b, int64_t n_rows, int64_t n, cudaStream_t stream) {
  if (x == nullptr || b == nullptr || n_rows < 1 || n < 1) return cudaErrorInvalidValue;
  launch(add_bias_kernel, ew_grid(n_rows * n), EW_THREADS, 0, stream, x, b, n_rows, n);
  return launch_status();
}

cudaError_t add(float* x, const float* y, int64_t n, cudaStream_t stream) {
  if (x == nullptr || y == nullptr || n < 1) return cudaErrorInvalidValue;
  launch(add_kernel, ew_grid(n), EW_THREADS, 0, stream, x, y, n);
  return launch_status();
}

cudaError_t swiglu(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream) {
  if (gate == nullptr || up == nullptr || out == nullptr || n < 1) return cudaErrorInvalidValue;
  launch(swiglu_kernel, ew_grid(n), EW_THREADS, 0, stream, gate, up, out, n);
  return launch_status();
}

cudaError_t rope(float* x, int64_t n_tok, int64_t n_heads, int64_t head_dim, const int32_t* pos_dev,
                 const double* inv_freq, double pos_scale, bool interleaved, cudaStream_t stream) {
  if (x == nullptr || pos_dev == nullptr || inv_freq == nullptr || n_tok < 1 || n_heads < 1 || head_dim < 2 ||
      head_dim % 2 != 0)
    return cudaErrorInvalidValue;
  launch(rope_kernel, ew_grid(n_tok * (head_dim / 2)), EW_THREADS, 0, stream, x, n_tok, n_heads, head_dim, pos_dev, inv_freq,
                                                                         pos_scale, interleaved);
  return launch_status();
}

cudaError_t kv_store(const float* k, const float* v, uint16_t* k_cache, uint16_t* v_cache, int64_t n_tok,
                     int64_t kv_dim, const int32_t* pos_dev, cudaStream_t stream) {
  if (k == nullptr || v == nullptr || k_cache == nullptr || v_cache == nullptr || pos_dev == nullptr || n_tok < 1 ||
      kv_dim < 1)
    return cudaErrorInvalidValue;
  launch(kv_store_kernel, ew_grid(n_tok * kv_dim), EW_THREADS, 0, stream, k, v, k_cache, v_cache, n_tok, kv_dim, pos_dev);
  return launch_status();
}

}  // namespace hearth::cuda
