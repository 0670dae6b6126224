/* The trainer ops' hot element-wise kernels: exp with a shift and its sum (softmax), max, dot products
 * in double, SwiGLU forward/backward. Single-threaded; the ops split work over threads around them.
 *
 * Non-obvious choice: each kernel is compiled three times (x86-64-v4 / AVX-512, x86-64-v3 / AVX2, and
 * the baseline) and the loader picks one for the CPU (GCC target_clones), since the build itself targets
 * baseline x86-64. No FMA contraction and fixed 8-lane reductions make every variant bit-identical.
 */
#include "ops-internal.h"  // first: sets the file's float options

namespace hearth::train::ops::detail {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__gnu_linux__)
#define HEARTH_OPS_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HEARTH_OPS_CLONES
#endif

namespace {
constexpr int64_t TILE = 512;  // elements per pass that stay in L1 between the two passes of a kernel
}

HEARTH_OPS_CLONES float max_f32(const float* x, int64_t n) {
  float m[LANES];
  for (int l = 0; l < LANES; ++l) m[l] = x[0];
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int l = 0; l < LANES; ++l) m[l] = m[l] > x[i + l] ? m[l] : x[i + l];
  for (; i < n; ++i) m[0] = m[0] > x[i] ? m[0] : x[i];
  float r = m[0];
  for (int l = 1; l < LANES; ++l) r = r > m[l] ? r : m[l];
  return r;
}

namespace {
inline double fold(const double* s) { return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])); }
}  // namespace

HEARTH_OPS_CLONES double sum_f64(const float* x, int64_t n) {
  double s[LANES] = {};
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int l = 0; l < LANES; ++l) s[l] += double(x[i + l]);
  for (; i < n; ++i) s[0] += double(x[i]);
  return fold(s);
}

HEARTH_OPS_CLONES double dot_f64(const float* x, const float* y, int64_t n) {
  double s[LANES] = {};
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int l = 0; l < LANES; ++l) s[l] += double(x[i + l]) * double(y[i + l]);
  for (; i < n; ++i) s[0] += double(x[i]) * double(y[i]);
  return fold(s);
}

HEARTH_OPS_CLONES double dot3_f64(const float* x, const float* y, const float* z, int64_t n) {
  double s[LANES] = {};
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int l = 0; l < LANES; ++l) s[l] += double(x[i + l]) * double(y[i + l]) * double(z[i + l]);
  for (; i < n; ++i) s[0] += double(x[i]) * double(y[i]) * double(z[i]);
  return fold(s);
}

HEARTH_OPS_CLONES double exp_shift_sum(float* x, int64_t n, float shift) {
  for (int64_t i = 0; i < n; ++i) x[i] = exp_fast(x[i] - shift);
  double s[LANES] = {};
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int l = 0; l < LANES; ++l) s[l] += double(x[i + l]);
  for (; i < n; ++i) s[0] += double(x[i]);
  return fold(s);
}

// Two passes per tile (e^-g first, then the rest): GCC vectorizes the fused loop poorly (it duplicates
// the division for the clamped lanes), the split one well.
HEARTH_OPS_CLONES void swiglu_fwd_kernel(float* h, const float* g, const float* u, int64_t n) {
  for (int64_t t0 = 0; t0 < n; t0 += TILE) {
    const int64_t m = n - t0 < TILE ? n - t0 : TILE;
    float* ht = h + t0;
    const float* gt = g + t0;
    const float* ut = u + t0;
    for (int64_t i = 0; i < m; ++i) ht[i] = exp_fast(-gt[i]);
    for (int64_t i = 0; i < m; ++i) ht[i] = gt[i] / (1.0f + ht[i]) * ut[i];
  }
}

// d silu / dg = sig + g sig (1 - sig) = sig (1 + g (1 - sig))
HEARTH_OPS_CLONES void swiglu_bwd_kernel(float* dg, float* du, const float* dh, const float* g, const float* u,
                                         int64_t n) {
  float sig[TILE];
  for (int64_t t0 = 0; t0 < n; t0 += TILE) {
    const int64_t m = n - t0 < TILE ? n - t0 : TILE;
    const float* gt = g + t0;
    const float* ut = u + t0;
    const float* dht = dh + t0;
    for (int64_t i = 0; i < m; ++i) sig[i] = exp_fast(-gt[i]);
    for (int64_t i = 0; i < m; ++i) sig[i] = 1.0f / (1.0f + sig[i]);
    if (dg) {
      float* d = dg + t0;
      for (int64_t i = 0; i < m; ++i) d[i] += dht[i] * ut[i] * sig[i] * (1.0f + gt[i] * (1.0f - sig[i]));
    }
    if (du) {
      float* d = du + t0;
      for (int64_t i = 0; i < m; ++i) d[i] += dht[i] * gt[i] * sig[i];
    }
  }
}

namespace {
// A 32-bit integer hash with good avalanche (Wellons' "lowbias32"); 32-bit multiplies vectorize.
inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}
}  // namespace

HEARTH_OPS_CLONES void dropout_kernel(float* out, const float* x, int64_t i0, int64_t n, uint64_t seed, uint32_t thr,
                                      float scale, bool accumulate) {
  const uint32_t s1 = uint32_t(seed), s2 = uint32_t(seed >> 32);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t idx = uint64_t(i0 + i);
    const uint32_t h = mix32(mix32(uint32_t(idx) ^ s1) ^ s2 ^ uint32_t(idx >> 32));
    const float m = h >= thr ? scale : 0.0f;
    if (accumulate)
      out[i] += x[i] * m;
    else
      out[i] = x[i] * m;
  }
}

}  // namespace hearth::train::ops::detail
