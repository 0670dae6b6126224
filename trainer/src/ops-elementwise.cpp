/* The trainer's row-wise and element-wise operations on the CPU: RMSNorm, SwiGLU, token embedding and
 * dropout, forward and backward side by side.
 *
 * Non-obvious choice: weight gradients that sum over rows (RMSNorm's dw, the embedding table) are split
 * by column blocks, each block summed over all rows in row order on one thread, so the result is the
 * same for any thread count and no atomics are needed; dropout's mask is a pure function of
 * (seed, element index), so it too is independent of threads and of how the work is split.
 */
#include "ops-internal.h"  // first: sets the file's float options

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace hearth::train::ops {

namespace {
constexpr int64_t COL_BLOCK = 64;
constexpr int64_t ELEM_BLOCK = 4096;  // element-wise work items

inline uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Element i is kept when its 32-bit hash >= p · 2^32, so P(keep) = 1 - p to within 2^-32.
inline uint32_t dropout_threshold(float p) {
  const double t = std::round(double(p) * 4294967296.0);
  return t >= 4294967295.0 ? 4294967295U : uint32_t(t);
}

void dropout_apply(float* out, const float* x, int64_t n, float p, uint64_t seed, bool accumulate) {
  const int nt = detail::threads_for(n * 4);
  const float scale = 1.0f / (1.0f - p);
  const uint64_t sh = splitmix64(seed);  // spread nearby seeds (step, layer, module) apart
  const uint32_t thr = dropout_threshold(p);
  const int64_t n_blocks = (n + ELEM_BLOCK - 1) / ELEM_BLOCK;
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t blk = 0; blk < n_blocks; ++blk) {
    const int64_t i0 = blk * ELEM_BLOCK, m = std::min(ELEM_BLOCK, n - i0);
    detail::dropout_kernel(out + i0, x + i0, i0, m, sh, thr, scale, accumulate);
  }
}
}  // namespace

void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, int64_t n, int64_t d, float eps) {
  const int nt = detail::threads_for(n * d);
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    const double ss = detail::dot_f64(xr, xr, d);
    const float rs = float(1.0 / std::sqrt(ss / double(d) + double(eps)));
    if (rstd) rstd[r] = rs;
    for (int64_t i = 0; i < d; ++i) yr[i] = xr[i] * rs * w[i];
  }
}

void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd,
                      int64_t n, int64_t d) {
  const int nt = detail::threads_for(n * d);
  if (dx) {
    // y_i = x_i r w_i with r = (mean(x²) + eps)^-1/2, dr/dx_j = -r³ x_j / d, so
    // dx_j = r w_j dy_j - r³ x_j / d · Σ_i dy_i w_i x_i.
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < n; ++r) {
      const float* xr = x + r * d;
      const float* dyr = dy + r * d;
      float* dxr = dx + r * d;
      const float rs = rstd[r];
      const double dot = detail::dot3_f64(dyr, w, xr, d);
      const float c = float(dot * double(rs) * double(rs) * double(rs) / double(d));
      for (int64_t i = 0; i < d; ++i) dxr[i] += rs * w[i] * dyr[i] - c * xr[i];
    }
  }
  if (dw) {
    const int64_t n_blocks = (d + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t blk = 0; blk < n_blocks; ++blk) {
      const int64_t c0 = blk * COL_BLOCK, c1 = std::min(d, c0 + COL_BLOCK);
      float acc[COL_BLOCK] = {};
      for (int64_t r = 0; r < n; ++r) {
        const float* xr = x + r * d;
        const float* dyr = dy + r * d;
        const float rs = rstd[r];
        for (int64_t i = c0; i < c1; ++i) acc[i - c0] += dyr[i] * xr[i] * rs;
      }
      for (int64_t i = c0; i < c1; ++i) dw[i] += acc[i - c0];
    }
  }
}

void swiglu_forward(float* h, const float* gate, const float* up, int64_t n) {
  const int nt = detail::threads_for(n * 8);
  const int64_t n_blocks = (n + ELEM_BLOCK - 1) / ELEM_BLOCK;
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t blk = 0; blk < n_blocks; ++blk) {
    const int64_t i0 = blk * ELEM_BLOCK, m = std::min(ELEM_BLOCK, n - i0);
    detail::swiglu_fwd_kernel(h + i0, gate + i0, up + i0, m);
  }
}

void swiglu_backward(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n) {
  if (!dgate && !dup) return;
  const int nt = detail::threads_for(n * 8);
  const int64_t n_blocks = (n + ELEM_BLOCK - 1) / ELEM_BLOCK;
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t blk = 0; blk < n_blocks; ++blk) {
    const int64_t i0 = blk * ELEM_BLOCK, m = std::min(ELEM_BLOCK, n - i0);
    detail::swiglu_bwd_kernel(dgate ? dgate + i0 : nullptr, dup ? dup + i0 : nullptr, dh + i0, gate + i0, up + i0, m);
  }
}

void embedding_forward(float* x, const float* table, const int32_t* tokens, int64_t n, int64_t d) {
  for (int64_t r = 0; r < n; ++r)
    if (tokens[r] < 0)
      throw std::out_of_range("embedding: token id " + std::to_string(tokens[r]) + " at row " +
                              std::to_string(r) + " is negative");
  const int nt = detail::threads_for(n * d);
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t r = 0; r < n; ++r) std::copy(table + int64_t(tokens[r]) * d, table + int64_t(tokens[r] + 1) * d, x + r * d);
}

void embedding_backward(float* dtable, const float* dx, const int32_t* tokens, int64_t n, int64_t d) {
  if (!dtable) return;
  for (int64_t r = 0; r < n; ++r)
    if (tokens[r] < 0)
      throw std::out_of_range("embedding: token id " + std::to_string(tokens[r]) + " at row " +
                              std::to_string(r) + " is negative");
  const int nt = detail::threads_for(n * d);
  const int64_t n_blocks = (d + COL_BLOCK - 1) / COL_BLOCK;
  // Each thread owns a block of columns for every row, so repeated tokens add up in row order.
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t blk = 0; blk < n_blocks; ++blk) {
    const int64_t c0 = blk * COL_BLOCK, c1 = std::min(d, c0 + COL_BLOCK);
    for (int64_t r = 0; r < n; ++r) {
      float* dst = dtable + int64_t(tokens[r]) * d;
      const float* src = dx + r * d;
      for (int64_t i = c0; i < c1; ++i) dst[i] += src[i];
    }
  }
}

void dropout_forward(float* out, const float* x, int64_t n, float p, uint64_t seed) {
  if (p <= 0.0f) {
    if (out != x) std::copy(x, x + n, out);
    return;
  }
  if (p >= 1.0f) {
    std::fill(out, out + n, 0.0f);
    return;
  }
  dropout_apply(out, x, n, p, seed, false);
}

void dropout_backward(float* dx, const float* dout, int64_t n, float p, uint64_t seed) {
  if (!dx || p >= 1.0f) return;
  if (p <= 0.0f) {
    const int nt = detail::threads_for(n);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; ++i) dx[i] += dout[i];
    return;
  }
  dropout_apply(dx, dout, n, p, seed, true);
}

}  // namespace hearth::train::ops
