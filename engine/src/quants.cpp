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
  double sx = 0, sxx = 0;
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    sx += x[i];
    sxx += double(x[i]) * x[i];
  }
  if (offset_nonpositive) lo = std::min(lo, 0.0f);
  if (!(hi > lo)) return {0.0f, lo};

  AffineFit best{(hi - lo) / float(nmax), lo};
  double best_err = INFINITY;
  // Candidate grids: the plain min..max grid and a few slightly finer or coarser ones. For each, the
  // levels q are fixed by rounding and (a, b) re-fitted by least squares; the residual of that fit,
  // from the sums alone, ranks the candidates (re-rounding with the fitted a, b only lowers it).
  for (int step = -4; step <= 4; ++step) {
    const float a = (hi - lo) / (float(nmax) + 0.15f * float(step));
    if (!(a > 0)) continue;
    const float ia = 1.0f / a;
    // Float/int accumulators (exact for the integer sums; n <= 32 keeps the float sum accurate) keep
    // this innermost loop free of long double-precision dependency chains.
    int isq = 0, isqq = 0;
    float fsqx = 0;
    for (int i = 0; i < n; ++i) {
      const int qi = round_clamp((x[i] - lo) * ia, 0, nmax);
      isq += qi;
      isqq += qi * qi;
      fsqx += float(qi) * x[i];
    }
    const double sq = isq, sqq = isqq, sqx = fsqx;
    double fa, fb;
    const double det = n * sqq - sq * sq;
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
    // sum (fa q + fb - x)^2 expanded into the sums.
    const double err = fa * fa * sqq + 2 * fa * fb * sq + n * fb * fb - 2 * fa * sqx - 2 * fb * sx + sxx;
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
  // so d carries the opposite sign of that value. For fixed levels q the least-squares scale is
  // sum(x q) / sum(q q), with residual sum(x x) - sum(x q)^2 / sum(q q): maximising sum(x q)^2 / sum(q q)
  // picks the best candidate without a second pass.
  float best_d = mx / float(qmin);
  double best_score = -1;
  for (int step = -4; step <= 4; ++step) {
    const float d = mx / (float(qmin) + 0.15f * float(step));
    const float id = 1.0f / d;
    float fsxq = 0;
    int isqq = 0;
    for (int i = 0; i < n; ++i) {
      const int qi = round_clamp(x[i] * id, qmin, qmax);
      fsxq += x[i] * float(qi);
      isqq += qi * qi;
    }
    const double sxq = fsxq, sqq = isqq;
    if (sqq > 0 && sxq * sxq / sqq > best_score) {
      best_score = sxq * sxq / sqq;
      best_d = float(sxq / sqq);
    }
  }
  return best_d;
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
