/* Half-precision conversion and the 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1):
 * dequantization exactly as ggml decodes them, and quantizers of our own.
 *
 * Non-obvious choice: the quantizers search a few candidate scales and refine each by least squares,
 * and always quantize with the scale *as stored* (rounded to fp16), so the stored block is the best one
 * we found for its own decoder rather than for an unrounded scale that no reader ever sees.
 */
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>

#include "quants.h"

namespace hearth::quants {

// ---- fp16 ----------------------------------------------------------------------------------------

static float half_to_float_slow(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) return std::bit_cast<float>(sign);
    float v = float(mant) * 0x1p-24f;  // subnormal: exact in float
    return std::bit_cast<float>(std::bit_cast<uint32_t>(v) | sign);
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

namespace {
struct HalfTable {
  std::array<float, 65536> v;
  HalfTable() {
    for (uint32_t i = 0; i < 65536; ++i) v[i] = half_to_float_slow(uint16_t(i));
  }
};
}  // namespace

const float* half_table() {
  static const HalfTable table;  // thread-safe one-time initialisation
  return table.v.data();
}

float half_to_float(uint16_t h) { return half_to_float_slow(h); }

uint16_t float_to_half(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  uint16_t sign = uint16_t((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {  // inf or NaN (NaN stays a quiet NaN)
    return uint16_t(sign | 0x7c00 | (ax > 0x7f800000u ? (0x200 | ((ax >> 13) & 0x3ff)) : 0));
  }
  if (ax >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // rounds to >= 65520: infinity
  if (ax < 0x38800000u) {                                 // below 2^-14: a half subnormal (or zero)
    float v = std::bit_cast<float>(ax) * 0x1p24f;         // exact scaling by a power of two
    return uint16_t(sign | uint16_t(std::nearbyint(v)));  // ties to even; 1024 encodes 2^-14 correctly
  }
  uint32_t odd = (ax >> 13) & 1;
  ax += 0xc8000fffu + odd;  // rebias the exponent by -112 and round to nearest even
  return uint16_t(sign | (ax >> 13));
}

// ---- fitting helpers -----------------------------------------------------------------------------

AffineFit fit_affine(const float* x, int n, int nmax, bool offset_nonpositive) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (offset_nonpositive) lo = std::min(lo, 0.0f);
  if (!(hi > lo)) return {0.0f, lo};

  AffineFit best{(hi - lo) / float(nmax), lo};
  double best_err = INFINITY;
  std::array<int, 512> q{};
  // Candidate grids: the plain min..max grid and a few slightly finer or coarser ones.
  for (int step = -6; step <= 6; ++step) {
    float a = (hi - lo) / (float(nmax) + 0.12f * float(step));
    if (!(a > 0)) continue;
    float ia = 1.0f / a;
    double sq = 0, sqq = 0, sx = 0, sqx = 0;
    for (int i = 0; i < n; ++i) {
      int qi = std::clamp(int(std::lround((x[i] - lo) * ia)), 0, nmax);
      q[size_t(i)] = qi;
      sq += qi;
      sqq += double(qi) * qi;
      sx += x[i];
      sqx += double(qi) * x[i];
    }
    // Least-squares a', b' for these q: minimise sum (a q + b - x)^2.
    double det = n * sqq - sq * sq;
    double fa, fb;
    if (det > 0) {
      fa = (n * sqx - sq * sx) / det;
      fb = (sqq * sx - sq * sqx) / det;
    } else {
      fa = a;
      fb = lo;
    }
    if (offset_nonpositive && fb > 0) {
      fb = 0;
      fa = sqq > 0 ? sqx / sqq : a;
    }
    if (fa < 0) fa = 0;
    double err = 0;
    for (int i = 0; i < n; ++i) {
      // Error after re-rounding each element to its nearest level for (fa, fb), as the packer will.
      double qi = fa > 0 ? std::clamp(std::nearbyint((x[i] - fb) / fa), 0.0, double(nmax)) : 0.0;
      double e = fa * qi + fb - x[i];
      err += e * e;
    }
    if (err < best_err) {
      best_err = err;
      best = {float(fa), float(fb)};
    }
  }
  return best;
}

float fit_symmetric(const float* x, int n, int qmin, int qmax) {
  float amax = 0, mx = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      mx = x[i];
    }
  }
  if (amax == 0) return 0.0f;
  // The value of largest magnitude maps to the end of the range that has more room (qmin, e.g. -8),
  // so d carries the opposite sign of that value.
  float best_d = mx / float(qmin);
  double best_err = INFINITY;
  for (int step = -6; step <= 6; ++step) {
    float d = mx / (float(qmin) + 0.1f * float(step));
    float id = 1.0f / d;
    double sxq = 0, sqq = 0;
    for (int i = 0; i < n; ++i) {
      double qi = std::clamp(std::nearbyint(double(x[i] * id)), double(qmin), double(qmax));
      sxq += x[i] * qi;
      sqq += qi * qi;
    }
    double fd = sqq > 0 ? sxq / sqq : d;  // least-squares scale for these q
    double err = 0;
    for (int i = 0; i < n; ++i) {
      double qi = std::clamp(std::nearbyint(x[i] / fd), double(qmin), double(qmax));
      double e = fd * qi - x[i];
      err += e * e;
    }
    if (err < best_err) {
      best_err = err;
      best_d = float(fd);
    }
  }
  return best_d;
}

static inline int round_clamp(float v, int lo, int hi) {
  return std::clamp(int(std::lround(v)), lo, hi);
}

// ---- dequantization --------------------------------------------------------------------------------

void dequantize_q4_0(const uint8_t* x, float* y, int64_t nb) {
  const float* ht = half_table();
  for (int64_t b = 0; b < nb; ++b, x += Q4_0_BYTES, y += QK) {
    const float d = ht[load_u16(x)];
    const uint8_t* qs = x + 2;
    for (int j = 0; j < QK / 2; ++j) {
      y[j] = float(int(qs[j] & 0xF) - 8) * d;
      y[j + QK / 2] = float(int(qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q4_1(const uint8_t* x, float* y, int64_t nb) {
  const float* ht = half_table();
  for (int64_t b = 0; b < nb; ++b, x += Q4_1_BYTES, y += QK) {
    const float d = ht[load_u16(x)];
    const float m = ht[load_u16(x + 2)];
    const uint8_t* qs = x + 4;
    for (int j = 0; j < QK / 2; ++j) {
      y[j] = float(qs[j] & 0xF) * d + m;
      y[j + QK / 2] = float(qs[j] >> 4) * d + m;
    }
  }
}

void dequantize_q5_0(const uint8_t* x, float* y, int64_t nb) {
  const float* ht = half_table();
  for (int64_t b = 0; b < nb; ++b, x += Q5_0_BYTES, y += QK) {
    const float d = ht[load_u16(x)];
    const uint32_t qh = load_u32(x + 2);  // bit j: the fifth bit of element j
    const uint8_t* qs = x + 6;
    for (int j = 0; j < QK / 2; ++j) {
      int lo = int((qs[j] & 0xF) | (((qh >> j) & 1) << 4));
      int hi = int((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
      y[j] = float(lo - 16) * d;
      y[j + QK / 2] = float(hi - 16) * d;
    }
  }
}

void dequantize_q5_1(const uint8_t* x, float* y, int64_t nb) {
  const float* ht = half_table();
  for (int64_t b = 0; b < nb; ++b, x += Q5_1_BYTES, y += QK) {
    const float d = ht[load_u16(x)];
    const float m = ht[load_u16(x + 2)];
    const uint32_t qh = load_u32(x + 4);
    const uint8_t* qs = x + 8;
    for (int j = 0; j < QK / 2; ++j) {
      uint32_t lo = (qs[j] & 0xF) | (((qh >> j) & 1) << 4);
      uint32_t hi = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      y[j] = float(lo) * d + m;
      y[j + QK / 2] = float(hi) * d + m;
    }
  }
}

void dequantize_q8_0(const uint8_t* x, float* y, int64_t nb) {
  const float* ht = half_table();
  for (int64_t b = 0; b < nb; ++b, x += Q8_0_BYTES, y += QK) {
    const float d = ht[load_u16(x)];
    const int8_t* qs = reinterpret_cast<const int8_t*>(x + 2);
    for (int j = 0; j < QK; ++j) y[j] = float(qs[j]) * d;
  }
}

void dequantize_q8_1(const uint8_t* x, float* y, int64_t nb) {
  const float* ht = half_table();
  for (int64_t b = 0; b < nb; ++b, x += Q8_1_BYTES, y += QK) {
    const float d = ht[load_u16(x)];  // x + 2 holds d * sum(qs): only the dot products use it
    const int8_t* qs = reinterpret_cast<const int8_t*>(x + 4);
    for (int j = 0; j < QK; ++j) y[j] = float(qs[j]) * d;
  }
}

// ---- quantization ----------------------------------------------------------------------------------

void quantize_q8_0(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += QK, y += Q8_0_BYTES) {
    float amax = 0;
    for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(x[j]));
    store_half(y, std::min(amax / 127.0f, 65504.0f));
    const float d = load_half(y);
    const float id = d > 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK; ++j) y[2 + j] = uint8_t(int8_t(round_clamp(x[j] * id, -127, 127)));
  }
}

void quantize_q4_0(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += QK, y += Q4_0_BYTES) {
    float d0 = fit_symmetric(x, QK, -8, 7);
    store_half(y, std::clamp(d0, -65504.0f, 65504.0f));
    const float d = load_half(y);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK / 2; ++j) {
      int lo = round_clamp(x[j] * id, -8, 7) + 8;
      int hi = round_clamp(x[j + QK / 2] * id, -8, 7) + 8;
      y[2 + j] = uint8_t(lo | (hi << 4));
    }
  }
}

void quantize_q5_0(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += QK, y += Q5_0_BYTES) {
    float d0 = fit_symmetric(x, QK, -16, 15);
    store_half(y, std::clamp(d0, -65504.0f, 65504.0f));
    const float d = load_half(y);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; ++j) {
      int lo = round_clamp(x[j] * id, -16, 15) + 16;
      int hi = round_clamp(x[j + QK / 2] * id, -16, 15) + 16;
      y[6 + j] = uint8_t((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= uint32_t(lo >> 4) << j;
      qh |= uint32_t(hi >> 4) << (j + 16);
    }
    std::memcpy(y + 2, &qh, 4);
  }
}

// x ≈ d * q + m with q in [0, nmax]; stores d and m, returns them as stored.
static void store_affine(const float* x, uint8_t* y, int nmax, float& d, float& m) {
  AffineFit f = fit_affine(x, QK, nmax, false);
  store_half(y, std::clamp(f.a, 0.0f, 65504.0f));
  store_half(y + 2, std::clamp(f.b, -65504.0f, 65504.0f));
  d = load_half(y);
  m = load_half(y + 2);
}

void quantize_q4_1(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += QK, y += Q4_1_BYTES) {
    float d, m;
    store_affine(x, y, 15, d, m);
    const float id = d > 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK / 2; ++j) {
      int lo = round_clamp((x[j] - m) * id, 0, 15);
      int hi = round_clamp((x[j + QK / 2] - m) * id, 0, 15);
      y[4 + j] = uint8_t(lo | (hi << 4));
    }
  }
}

void quantize_q5_1(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += QK, y += Q5_1_BYTES) {
    float d, m;
    store_affine(x, y, 31, d, m);
    const float id = d > 0 ? 1.0f / d : 0.0f;
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; ++j) {
      int lo = round_clamp((x[j] - m) * id, 0, 31);
      int hi = round_clamp((x[j + QK / 2] - m) * id, 0, 31);
      y[8 + j] = uint8_t((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= uint32_t(lo >> 4) << j;
      qh |= uint32_t(hi >> 4) << (j + 16);
    }
    std::memcpy(y + 4, &qh, 4);
  }
}

}  // namespace hearth::quants
