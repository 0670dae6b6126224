/* The attention kernels of train-kernels.h that trainer/src/device-attention.cpp puts around its cuBLAS
 * products: the head-major permutes (B·T, H, hd) <-> (B, H, T, hd), the causal softmax of the score
 * matrices and the softmax backward.
 *
 * Non-obvious choice: the softmax uses the CPU attention's own exponential (ops-internal.h exp_fast, a
 * Cody-Waite reduction and a degree-6 polynomial), written out here with the same float operations; with
 * --fmad=false each e^x is then the CPU's bits, and a probability differs from the CPU's only through the
 * order of the row sum (in double on both sides) and the score products themselves. One warp per row
 * (shuffle reductions, no block barriers); rows of up to 256 keys stay in registers (read and written
 * once). Longer rows are re-read, mostly from L1/L2: caching them too costs registers (nvcc -Xptxas -v on
 * sm_90: the 2048-key variant spilled and needed 255 registers, the 256-key one 62 forward / 80 backward).
 */
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "train-kernels-common.cuh"
#include "train-kernels.h"

namespace hearth::train::cuda {

namespace {

using namespace detail;

// ops::detail::exp_fast, operation for operation (see ops-internal.h).
__device__ __forceinline__ float exp_fast(float x) {
  x = x < -87.3f ? -87.3f : x;  // std::min(std::max(x, -87.3f), 88.3f), NaN included
  x = 88.3f < x ? 88.3f : x;
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const float scale = as_float(uint32_t((int32_t(n) + 127) << 23));
  return er * scale;
}

// dst (B, H, T, hd) from src (B, T, H, hd): one block per row r = b·T + t of src (grid-stride), its threads
// over the row's H·hd columns. Reads are contiguous, writes contiguous per head, and the only 64-bit
// division is once per row (per element it would cost more than the copy itself).
__global__ void to_head_major_kernel(float* __restrict__ dst, const float* __restrict__ src, int64_t rows, int64_t T,
                                     int H, int hd) {
  const int w = H * hd;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t b = r / T, t = r - b * T;
    const float* srow = src + r * w;
    float* dbase = dst + (b * H * T + t) * hd;
    for (int c = int(threadIdx.x); c < w; c += THREADS) {
      const int h = c / hd, d = c - h * hd;
      dbase[int64_t(h) * T * hd + d] = srow[c];
    }
  }
}

// dst (B, T, H, hd) (=, or += when accumulate) from src (B, H, T, hd): one block per row of dst, as above.
__global__ void from_head_major_kernel(float* __restrict__ dst, const float* __restrict__ src, int64_t rows,
                                       int64_t T, int H, int hd, int accumulate) {
  const int w = H * hd;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t b = r / T, t = r - b * T;
    float* drow = dst + r * w;
    const float* sbase = src + (b * H * T + t) * hd;
    for (int c = int(threadIdx.x); c < w; c += THREADS) {
      const int h = c / hd, d = c - h * hd;
      const float v = sbase[int64_t(h) * T * hd + d];
      if (accumulate)
        drow[c] += v;
      else
        drow[c] = v;
    }
  }
}

constexpr int WARPS = THREADS / 32;  // rows per block of the softmax kernels (one warp per row)

// Butterfly reductions over a warp: every lane ends with the same value (a + b == b + a), so the result
// does not depend on the lane and is the same run to run.
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) {
    const float w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// One warp per row of the (n_mat·T, T) scores (grid-stride over blocks of WARPS rows); row r is position
// i = r % T of its matrix. As ops::attention_forward: x_j = scale·s_j, max over j <= i,
// e_j = exp_fast(x_j - max), sum in double, p_j = e_j · f32(1/sum); p_j = 0 for j > i.
// N > 0: each lane keeps its N values of the row in registers (rows of at most 32·N), so the row is read
// once and written once; N == 0: any length, re-reading the row. Lane l adds its columns l, l + 32, ...
// in the same order either way, so both give the same bits.
template <int N>
__global__ void causal_softmax_kernel(float* s, uint16_t* __restrict__ p16, int64_t rows, int64_t T, float scale) {
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
  for (int64_t r = int64_t(blockIdx.x) * WARPS + warp; r < rows; r += int64_t(gridDim.x) * WARPS) {
    float* row = s + r * T;
    const int64_t valid = r % T + 1;
    float mx = -INFINITY;
    if constexpr (N > 0) {
      float x[N];
#pragma unroll
      for (int c = 0; c < N; ++c) {
        const int64_t j = lane + 32 * c;
        x[c] = j < valid ? row[j] * scale : -INFINITY;
        mx = x[c] > mx ? x[c] : mx;
      }
      mx = warp_max(mx);
      double sum = 0.0;
#pragma unroll
      for (int c = 0; c < N; ++c)
        if (lane + 32 * c < valid) {
          x[c] = exp_fast(x[c] - mx);
          sum += double(x[c]);
        }
      sum = warp_sum(sum);
      const float inv = float(1.0 / sum);
#pragma unroll
      for (int c = 0; c < N; ++c) {
        const int64_t j = lane + 32 * c;
        if (j < T) {
          const float p = j < valid ? x[c] * inv : 0.0f;
          row[j] = p;
          if (p16) p16[r * T + j] = f32_to_bf16(p);
        }
      }
    } else {
      for (int64_t j = lane; j < valid; j += 32) {
        const float x = row[j] * scale;
        mx = x > mx ? x : mx;
      }
      mx = warp_max(mx);
      double sum = 0.0;
      for (int64_t j = lane; j < valid; j += 32) {
        const float e = exp_fast(row[j] * scale - mx);
        row[j] = e;
        sum += double(e);
      }
      sum = warp_sum(sum);
      const float inv = float(1.0 / sum);
      for (int64_t j = lane; j < T; j += 32) {
        const float p = j < valid ? row[j] * inv : 0.0f;
        row[j] = p;
        if (p16) p16[r * T + j] = f32_to_bf16(p);
      }
    }
  }
}

// One warp per row: d = Σ_{j<=i} p_j·dp_j (double, then float as the CPU), ds_j = scale·(p_j·(dp_j - d)),
// 0 above the diagonal. N as causal_softmax_kernel's (p and dp kept in registers).
template <int N>
__global__ void softmax_backward_kernel(float* dp, uint16_t* __restrict__ ds16, const float* __restrict__ p,
                                        int64_t rows, int64_t T, float scale) {
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
  for (int64_t r = int64_t(blockIdx.x) * WARPS + warp; r < rows; r += int64_t(gridDim.x) * WARPS) {
    float* drow = dp + r * T;
    const float* prow = p + r * T;
    const int64_t valid = r % T + 1;
    double dot = 0.0;
    if constexpr (N > 0) {
      float pv[N], dv[N];
#pragma unroll
      for (int c = 0; c < N; ++c) {
        const int64_t j = lane + 32 * c;
        pv[c] = j < valid ? prow[j] : 0.0f;
        dv[c] = j < valid ? drow[j] : 0.0f;
        if (j < valid) dot += double(pv[c]) * double(dv[c]);
      }
      const float d = float(warp_sum(dot));
#pragma unroll
      for (int c = 0; c < N; ++c) {
        const int64_t j = lane + 32 * c;
        if (j < T) {
          const float v = j < valid ? scale * (pv[c] * (dv[c] - d)) : 0.0f;
          drow[j] = v;
          if (ds16) ds16[r * T + j] = f32_to_bf16(v);
        }
      }
    } else {
      for (int64_t j = lane; j < valid; j += 32) dot += double(prow[j]) * double(drow[j]);
      const float d = float(warp_sum(dot));
      for (int64_t j = lane; j < T; j += 32) {
        const float v = j < valid ? scale * (prow[j] * (drow[j] - d)) : 0.0f;
        drow[j] = v;
        if (ds16) ds16[r * T + j] = f32_to_bf16(v);
      }
    }
  }
}

// Negative sizes, or a row (H·hd values) past int: the kernels index within a row in 32 bits.
bool bad_dims(int64_t B, int64_t T, int64_t H, int64_t hd) {
  return B < 0 || T < 0 || H < 0 || hd < 0 || (hd > 0 && H > int64_t(INT32_MAX) / hd);
}

}  // namespace

cudaError_t to_head_major(float* dst, const float* src, int64_t B, int64_t T, int64_t H, int64_t hd,
                          cudaStream_t stream) {
  if (bad_dims(B, T, H, hd)) return cudaErrorInvalidValue;
  const int64_t total = B * T * H * hd;
  if (total == 0) return cudaSuccess;
  if (!dst || !src || dst == src) return cudaErrorInvalidValue;
  launch(to_head_major_kernel, grid_for(B * T, 1), THREADS, stream, dst, src, B * T, T, int(H), int(hd));
  return launch_status();
}

cudaError_t from_head_major(float* dst, const float* src, int64_t B, int64_t T, int64_t H, int64_t hd,
                            bool accumulate, cudaStream_t stream) {
  if (bad_dims(B, T, H, hd)) return cudaErrorInvalidValue;
  const int64_t total = B * T * H * hd;
  if (total == 0) return cudaSuccess;
  if (!dst || !src || dst == src) return cudaErrorInvalidValue;
  launch(from_head_major_kernel, grid_for(B * T, 1), THREADS, stream, dst, src, B * T, T, int(H), int(hd),
         accumulate ? 1 : 0);
  return launch_status();
}

cudaError_t causal_softmax(float* scores, uint16_t* p_bf16, int64_t n_mat, int64_t T, float scale,
                           cudaStream_t stream) {
  if (n_mat < 0 || T < 0) return cudaErrorInvalidValue;
  const int64_t rows = n_mat * T;
  if (rows == 0) return cudaSuccess;
  if (!scores) return cudaErrorInvalidValue;
  const unsigned grid = grid_for(rows, WARPS);
  if (T <= 128)
    launch(causal_softmax_kernel<4>, grid, THREADS, stream, scores, p_bf16, rows, T, scale);
  else if (T <= 256)
    launch(causal_softmax_kernel<8>, grid, THREADS, stream, scores, p_bf16, rows, T, scale);
  else
    launch(causal_softmax_kernel<0>, grid, THREADS, stream, scores, p_bf16, rows, T, scale);
  return launch_status();
}

cudaError_t softmax_backward(float* dp, uint16_t* ds_bf16, const float* p, int64_t n_mat, int64_t T, float scale,
                             cudaStream_t stream) {
  if (n_mat < 0 || T < 0) return cudaErrorInvalidValue;
  const int64_t rows = n_mat * T;
  if (rows == 0) return cudaSuccess;
  if (!dp || !p) return cudaErrorInvalidValue;
  const unsigned grid = grid_for(rows, WARPS);
  if (T <= 128)
    launch(softmax_backward_kernel<4>, grid, THREADS, stream, dp, ds_bf16, p, rows, T, scale);
  else if (T <= 256)
    launch(softmax_backward_kernel<8>, grid, THREADS, stream, dp, ds_bf16, p, rows, T, scale);
  else
    launch(softmax_backward_kernel<0>, grid, THREADS, stream, dp, ds_bf16, p, rows, T, scale);
  return launch_status();
}

}  // namespace hearth::train::cuda
