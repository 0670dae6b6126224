/* Helpers shared by the ops-*.cpp files (not part of the ops contract).
 *
 * Non-obvious choices:
 * - Loops over little work run on the calling thread only (an OpenMP team of one), because waking the
 *   other threads costs more than the work itself; every op splits its work by output element, so the
 *   result is the same either way.
 * - The hot element-wise kernels (exp, softmax sums, SwiGLU) live in ops-kernels.cpp, compiled for
 *   x86-64-v4, -v3 and baseline with one picked at load time (GCC target_clones). Contraction into FMA
 *   is off and reductions use fixed lanes, so every variant gives the same bits.
 */
#pragma once

// Let GCC vectorize loops with comparisons (exp_fast's clamp; without this, -ftrapping-math keeps them
// scalar), and never contract a·b + c into an FMA (values would then depend on the CPU). Include this
// header FIRST in each ops-*.cpp so the whole file is compiled alike.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "fp-contract=off")
#endif

#include <algorithm>
#include <bit>
#include <cstdint>

#include "ops.h"

namespace hearth::train::ops::detail {

// Elements (or multiply-adds) below which a loop is not worth spreading over threads.
constexpr int64_t PAR_MIN_WORK = 1 << 17;

// Threads to use for a loop doing `work` elementary operations.
inline int threads_for(int64_t work) {
  const int t = threads();  // also makes sure OpenBLAS was set to one thread
  return work < PAR_MIN_WORK ? 1 : t;
}

// Row-major C (m, n) = alpha · op(A) · op(B) + beta · C with explicit leading dimensions, spread over the
// ops' threads as a grid of blocks of C, each a single-threaded OpenBLAS call. Must not be called from
// inside an OpenMP parallel region (call cblas_sgemm directly there: OpenBLAS is kept single-threaded).
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// e^x in float without calls or branches, so loops over it vectorize: x = n·ln2 + r (Cody-Waite),
// e^r by Cephes' degree-6 polynomial (about 1 ulp), 2^n through the exponent bits. Inputs are clamped
// to [-87.3, 88.3] (results stay normal floats; e^-87.3 ≈ 1e-38 stands in for smaller values).
inline float exp_fast(float x) {
  x = std::min(std::max(x, -87.3f), 88.3f);
  // Round x·log2(e) to the nearest integer with the 1.5·2^23 trick (no SSE4.1 rounding needed).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const float scale = std::bit_cast<float>(int32_t((int32_t(n) + 127) << 23));
  return er * scale;
}

// Kernels (ops-kernels.cpp), single-threaded: callers split the work.
constexpr int LANES = 8;  // fixed reduction lanes
// Largest of x[0..n), n >= 1.
float max_f32(const float* x, int64_t n);
// Σ x_i, Σ x_i y_i, Σ x_i y_i z_i in double with 8 fixed lanes (same order on every CPU).
double sum_f64(const float* x, int64_t n);
double dot_f64(const float* x, const float* y, int64_t n);
double dot3_f64(const float* x, const float* y, const float* z, int64_t n);
// In place x_i = e^(x_i − shift); returns Σ in double (sum_f64's order).
double exp_shift_sum(float* x, int64_t n, float shift);
// h = silu(g) ⊙ u; backward adds into dg and/or du (either may be null).
void swiglu_fwd_kernel(float* h, const float* g, const float* u, int64_t n);
void swiglu_bwd_kernel(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n);
// Dropout on elements [i0, i0 + n) of a tensor: out (=, or += when accumulate) x · mask · scale, the mask
// bit of element i being hash(seed, i) >= thr (a 32-bit counter-based hash, so independent of threads).
void dropout_kernel(float* out, const float* x, int64_t i0, int64_t n, uint64_t seed, uint32_t thr, float scale,
                    bool accumulate);

}  // namespace hearth::train::ops::detail
