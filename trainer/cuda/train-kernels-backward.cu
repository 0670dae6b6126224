/* The layer kernels of train-kernels.h: RMSNorm forward (keeping rstd) and backward, SwiGLU forward and
 * backward, RoPE in both directions and layouts, and the embedding gradient.
 *
 * Non-obvious choice: RMSNorm's dw sums over rows, which the CPU does per column in row order; here each
 * thread owns one column of one block of RMSNORM_DW_ROWS rows (coalesced across the warp), writes a
 * partial, and a second pass adds the partials in block order: the same sum split into fixed pieces,
 * with no atomics. The embedding gradient likewise gives each distinct token to one block (see
 * train-plan.h), which adds its rows in row order, exactly the CPU's sequence of additions.
 */
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "train-kernels-common.cuh"
#include "train-kernels.h"

namespace hearth::train::cuda {

namespace {

using namespace detail;

// One block per row (grid-stride). y may be x: each element is read and written by one thread, after the
// row's sum of squares is complete.
__global__ void rmsnorm_forward_kernel(float* y, float* __restrict__ rstd, const float* x,
                                       const float* __restrict__ w, int64_t n, int64_t d, float eps) {
  __shared__ double sh[THREADS];
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    const float* xr = x + r * d;
    double ss = 0.0;
    for (int64_t i = threadIdx.x; i < d; i += THREADS) ss += double(xr[i]) * double(xr[i]);
    ss = block_sum(ss, sh);
    const float rs = float(1.0 / sqrt(ss / double(d) + double(eps)));
    if (rstd && threadIdx.x == 0) rstd[r] = rs;
    for (int64_t i = threadIdx.x; i < d; i += THREADS) y[r * d + i] = xr[i] * rs * w[i];
  }
}

// dx rows: one block per row (grid-stride).
__global__ void rmsnorm_dx_kernel(float* __restrict__ dx, const float* __restrict__ dy, const float* __restrict__ x,
                                  const float* __restrict__ w, const float* __restrict__ rstd, int64_t n, int64_t d) {
  __shared__ double sh[THREADS];
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    const float* xr = x + r * d;
    const float* dyr = dy + r * d;
    double dot = 0.0;
    for (int64_t i = threadIdx.x; i < d; i += THREADS) dot += double(dyr[i]) * double(w[i]) * double(xr[i]);
    dot = block_sum(dot, sh);
    const float rs = rstd[r];
    const float c = float(dot * double(rs) * double(rs) * double(rs) / double(d));
    for (int64_t i = threadIdx.x; i < d; i += THREADS) dx[r * d + i] += rs * w[i] * dyr[i] - c * xr[i];
  }
}

// grid (column blocks, row blocks): partial[rb][i] = Σ_{rows of block rb} dy·x·rstd, rows in order.
__global__ void rmsnorm_dw_partial_kernel(float* __restrict__ partial, const float* __restrict__ dy,
                                          const float* __restrict__ x, const float* __restrict__ rstd, int64_t n,
                                          int64_t d) {
  const int64_t i = int64_t(blockIdx.x) * THREADS + threadIdx.x;
  if (i >= d) return;
  const int64_t r0 = int64_t(blockIdx.y) * RMSNORM_DW_ROWS;
  const int64_t r1 = r0 + RMSNORM_DW_ROWS < n ? r0 + RMSNORM_DW_ROWS : n;
  float acc = 0.0f;
  for (int64_t r = r0; r < r1; ++r) acc += dy[r * d + i] * x[r * d + i] * rstd[r];
  partial[int64_t(blockIdx.y) * d + i] = acc;
}

__global__ void rmsnorm_dw_sum_kernel(float* __restrict__ dw, const float* __restrict__ partial, int64_t n_parts,
                                      int64_t d) {
  const int64_t i = int64_t(blockIdx.x) * THREADS + threadIdx.x;
  if (i >= d) return;
  float acc = 0.0f;
  for (int64_t p = 0; p < n_parts; ++p) acc += partial[p * d + i];
  dw[i] += acc;
}

// h may be gate or up (in place).
__global__ void swiglu_forward_kernel(float* h, const float* g, const float* u,
                                      int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float gi = g[i];
    h[i] = gi / (1.0f + expf(-gi)) * u[i];
  }
}

// d silu / dg = σ + g σ (1 - σ) = σ (1 + g (1 - σ)), written in the CPU kernel's order.
__global__ void swiglu_backward_kernel(float* __restrict__ dg, float* __restrict__ du, const float* __restrict__ dh,
                                       const float* __restrict__ g, const float* __restrict__ u, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float gi = g[i], dhi = dh[i];
    const float sig = 1.0f / (1.0f + expf(-gi));
    if (dg) dg[i] += dhi * u[i] * sig * (1.0f + gi * (1.0f - sig));
    if (du) du[i] += dhi * gi * sig;
  }
}

// One thread per (row, pair): the angle's cos/sin once, applied to every head of the row.
__global__ void rope_kernel(float* __restrict__ x, int64_t rows, int64_t T, int64_t n_heads, int64_t head_dim,
                            const double* __restrict__ inv_freq, int interleaved, float sgn) {
  const int64_t half = head_dim / 2;
  const int64_t total = rows * half;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = k / half, i = k % half;
    const double a = double(r % T) * inv_freq[i];  // in double, as the CPU's table
    const float c = float(cos(a));
    const float s = float(sin(a)) * sgn;
    const int64_t i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* hv = x + (r * n_heads + h) * head_dim;
      const float x0 = hv[i0], x1 = hv[i1];
      hv[i0] = x0 * c - x1 * s;
      hv[i1] = x0 * s + x1 * c;
    }
  }
}

// One block per distinct token (grid-stride), threads over columns; rows added in row order.
__global__ void embedding_backward_kernel(float* __restrict__ dtable, const float* __restrict__ dx,
                                          const int32_t* __restrict__ plan, int64_t n_segments, int64_t d) {
  const int32_t* seg_id = plan;
  const int32_t* seg_start = plan + n_segments;
  const int32_t* order = plan + 2 * n_segments + 1;
  for (int64_t s = blockIdx.x; s < n_segments; s += gridDim.x) {
    float* dst = dtable + int64_t(seg_id[s]) * d;
    const int64_t k0 = seg_start[s], k1 = seg_start[s + 1];
    for (int64_t i = threadIdx.x; i < d; i += THREADS) {
      float acc = dst[i];
      for (int64_t k = k0; k < k1; ++k) acc += dx[int64_t(order[k]) * d + i];
      dst[i] = acc;
    }
  }
}

cudaError_t rope_apply(float* x, int64_t B, int64_t T, int64_t n_heads, int64_t head_dim, const double* inv_freq,
                       bool interleaved, float sgn, cudaStream_t stream) {
  if (B < 0 || T < 0 || n_heads < 0 || head_dim < 0 || head_dim % 2 != 0) return cudaErrorInvalidValue;
  if (B == 0 || T == 0 || n_heads == 0 || head_dim == 0) return cudaSuccess;
  if (x == nullptr || inv_freq == nullptr) return cudaErrorInvalidValue;
  const int64_t rows = B * T;
  launch(rope_kernel, elem_grid(rows * (head_dim / 2)), THREADS, stream, x, rows, T, n_heads, head_dim, inv_freq,
         interleaved ? 1 : 0, sgn);
  return launch_status();
}

}  // namespace

cudaError_t rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, int64_t n, int64_t d, float eps,
                            cudaStream_t stream) {
  if (n < 0 || d < 0 || (n > 0 && d > 0 && (!y || !x || !w))) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (d == 0) return cudaErrorInvalidValue;
  launch(rmsnorm_forward_kernel, dim3(grid_for(n, 1)), THREADS, stream, y, rstd, x, w, n, d, eps);
  return launch_status();
}

int64_t rmsnorm_dw_partials(int64_t n, int64_t d) {
  if (n <= 0 || d <= 0) return 0;
  return (n + RMSNORM_DW_ROWS - 1) / RMSNORM_DW_ROWS * d;
}

cudaError_t rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd,
                             int64_t n, int64_t d, float* partials, cudaStream_t stream) {
  if (n < 0 || d < 0) return cudaErrorInvalidValue;
  if (n == 0 || d == 0 || (!dx && !dw)) return cudaSuccess;
  if (!dy || !x || !rstd || (dx && !w) || (dw && !partials)) return cudaErrorInvalidValue;
  if (dx) {
    launch(rmsnorm_dx_kernel, dim3(grid_for(n, 1)), THREADS, stream, dx, dy, x, w, rstd, n, d);
    const cudaError_t e = launch_status();
    if (e != cudaSuccess) return e;
  }
  if (dw) {
    const int64_t n_parts = (n + RMSNORM_DW_ROWS - 1) / RMSNORM_DW_ROWS;
    const int64_t col_blocks = (d + THREADS - 1) / THREADS;
    if (n_parts > 65535 || col_blocks > 0x7fffffffLL) return cudaErrorInvalidValue;
    launch(rmsnorm_dw_partial_kernel, dim3(unsigned(col_blocks), unsigned(n_parts)), THREADS, stream, partials, dy, x,
           rstd, n, d);
    cudaError_t e = launch_status();
    if (e != cudaSuccess) return e;
    launch(rmsnorm_dw_sum_kernel, dim3(unsigned(col_blocks)), THREADS, stream, dw,
           static_cast<const float*>(partials), n_parts, d);
    return launch_status();
  }
  return cudaSuccess;
}

cudaError_t swiglu_forward(float* h, const float* gate, const float* up, int64_t n, cudaStream_t stream) {
  if (n < 0 || (n > 0 && (!h || !gate || !up))) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  launch(swiglu_forward_kernel, elem_grid(n), THREADS, stream, h, gate, up, n);
  return launch_status();
}

cudaError_t swiglu_backward(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n,
                            cudaStream_t stream) {
  if (n < 0) return cudaErrorInvalidValue;
  if (n == 0 || (!dgate && !dup)) return cudaSuccess;
  if (!dh || !gate || !up) return cudaErrorInvalidValue;
  launch(swiglu_backward_kernel, elem_grid(n), THREADS, stream, dgate, dup, dh, gate, up, n);
  return launch_status();
}

cudaError_t rope_forward(float* x, int64_t B, int64_t T, int64_t n_heads, int64_t head_dim, const double* inv_freq,
                         bool interleaved, cudaStream_t stream) {
  return rope_apply(x, B, T, n_heads, head_dim, inv_freq, interleaved, 1.0f, stream);
}

cudaError_t rope_backward(float* dx, int64_t B, int64_t T, int64_t n_heads, int64_t head_dim, const double* inv_freq,
                          bool interleaved, cudaStream_t stream) {
  return rope_apply(dx, B, T, n_heads, head_dim, inv_freq, interleaved, -1.0f, stream);
}

cudaError_t embedding_backward(float* dtable, const float* dx, const int32_t* plan, int64_t n_segments, int64_t n_rows,
                               int64_t d, cudaStream_t stream) {
  if (n_segments < 0 || n_rows < 0 || d < 0 || n_segments > n_rows) return cudaErrorInvalidValue;
  if (n_segments == 0 || d == 0) return cudaSuccess;
  if (!dtable || !dx || !plan) return cudaErrorInvalidValue;
  launch(embedding_backward_kernel, dim3(grid_for(n_segments, 1)), THREADS, stream, dtable, dx, plan, n_segments, d);
  return launch_status();
}

}  // namespace hearth::train::cuda
