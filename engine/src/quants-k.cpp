/* The K-quants (256-element super-blocks): dequantization of Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and Q8_K
 * exactly as ggml decodes them, and quantizers for Q4_K, Q5_K and Q6_K.
 *
 * Non-obvious choice: the quantizers fit each sub-block's scale (and min) in float first, then quantize
 * those to the 6- or 8-bit codes against the super-block scale *as stored in fp16*, and only then round
 * each weight to its level using the effective (code * stored scale) values, so every rounding step sees
 * exactly what the decoder will compute.
 */
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quants.h"

namespace hearth::quants {

// The 12 bytes of packed 6-bit scales and mins of Q4_K and Q5_K: sub-blocks 0..3 keep their 6 bits in
// bytes 0..7; sub-blocks 4..7 keep their low 4 bits in bytes 8..11 and their top 2 bits in the top bits
// of bytes 0..7.
static inline void unpack_scale_min(const uint8_t* s, int j, int& sc, int& mn) {
  if (j < 4) {
    sc = s[j] & 63;
    mn = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

static void pack_scale_min(const int* ls, const int* lm, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = uint8_t((ls[j] & 63) | ((ls[j + 4] >> 4) << 6));
    s[j + 4] = uint8_t((lm[j] & 63) | ((lm[j + 4] >> 4) << 6));
    s[j + 8] = uint8_t((ls[j + 4] & 0xF) | ((lm[j + 4] & 0xF) << 4));
  }
}

// ---- dequantization --------------------------------------------------------------------------------

void dequantize_q2_k(const uint8_t* x, float* y, int64_t nb) {
  const float* ht = half_table();
  for (int64_t b = 0; b < nb; ++b, x += Q2_K_BYTES) {
    const uint8_t* scales = x;
    const uint8_t* q = x + 16;
    const float d = ht[load_u16(x + 80)];
    const float dmin = ht[load_u16(x + 82)];
    int is = 0;
    for (int n = 0; n < QK_K; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half) {
          const uint8_t sc = scales[is++];
          const float dl = d * float(sc & 0xF);
          const float ml = dmin * float(sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * float((q[l + 16 * half] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void dequantize_q3_k(const uint8_t* x, float* y, int64_t nb) {
  const float* ht = half_table();
  for (int64_t b = 0; b < nb; ++b, x += Q3_K_BYTES) {
    const uint8_t* hmask = x;
    const uint8_t* q = x + 32;
    const uint8_t* s = x + 96;
    const float d_all = ht[load_u16(x + 108)];
    // 16 six-bit scales: low 4 bits in bytes 0..7 (low nibbles first), high 2 bits in bytes 8..11.
    int scales[16];
    for (int i = 0; i < 16; ++i) {
      int low = i < 8 ? (s[i] & 0xF) : (s[i - 8] >> 4);
      int high = (s[8 + (i % 4)] >> (2 * (i / 4))) & 3;
      scales[i] = (low | (high << 4)) - 32;
    }
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < QK_K; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
        for (int half = 0; half < 2; ++half) {
          const float dl = d_all * float(scales[is++]);
          for (int l = 16 * half; l < 16 * half + 16; ++l) {
            int v = int((q[l] >> shift) & 3) - ((hmask[l] & m) ? 0 : 4);
            *y++ = dl * float(v);
          }
        }
      }
    }
  }
}

void dequantize_q4_k(const uint8_t* x, float* y, int64_t nb) {
  const float* ht = half_table();
  for (int64_t b = 0; b < nb; ++b, x += Q4_K_BYTES) {
    const float d = ht[load_u16(x)];
    const float dmin = ht[load_u16(x + 2)];
    const uint8_t* s = x + 4;
    const uint8_t* q = x + 16;
    for (int c = 0; c < 4; ++c, q += 32) {
      int sc, mn;
      unpack_scale_min(s, 2 * c, sc, mn);
      const float d1 = d * float(sc), m1 = dmin * float(mn);
      unpack_scale_min(s, 2 * c + 1, sc, mn);
      const float d2 = d * float(sc), m2 = dmin * float(mn);
      for (int l = 0; l < 32; ++l) y[l] = d1 * float(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) y[l + 32] = d2 * float(q[l] >> 4) - m2;
      y += 64;
    }
  }
}

void dequantize_q5_k(const uint8_t* x, float* y, int64_t nb) {
  const float* ht = half_table();
  for (int64_t b = 0; b < nb; ++b, x += Q5_K_BYTES) {
    const float d = ht[load_u16(x)];
    const float dmin = ht[load_u16(x + 2)];
    const uint8_t* s = x + 4;
    const uint8_t* qh = x + 16;
    const uint8_t* q = x + 48;
    for (int c = 0; c < 4; ++c, q += 32) {
      int sc, mn;
      unpack_scale_min(s, 2 * c, sc, mn);
      const float d1 = d * float(sc), m1 = dmin * float(mn);
      unpack_scale_min(s, 2 * c + 1, sc, mn);
      const float d2 = d * float(sc), m2 = dmin * float(mn);
      const int b1 = 2 * c, b2 = 2 * c + 1;  // bit of qh[l] holding the fifth bit of each sub-block
      for (int l = 0; l < 32; ++l) y[l] = d1 * float((q[l] & 0xF) | (((qh[l] >> b1) & 1) << 4)) - m1;
      for (int l = 0; l < 32; ++l) y[l + 32] = d2 * float((q[l] >> 4) | (((qh[l] >> b2) & 1) << 4)) - m2;
      y += 64;
    }
  }
}

void dequantize_q6_k(const uint8_t* x, float* y, int64_t nb) {
  const float* ht = half_table();
  for (int64_t b = 0; b < nb; ++b, x += Q6_K_BYTES) {
    const uint8_t* ql = x;
    const uint8_t* qh = x + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(x + 192);
    const float d = ht[load_u16(x + 208)];
    for (int n = 0; n < QK_K; n += 128, ql += 64, qh += 32, sc += 8, y += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = (d * float(sc[is + 0])) * float(q1);
        y[l + 32] = (d * float(sc[is + 2])) * float(q2);
        y[l + 64] = (d * float(sc[is + 4])) * float(q3);
        y[l + 96] = (d * float(sc[is + 6])) * float(q4);
      }
    }
  }
}

void dequantize_q8_k(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += Q8_K_BYTES, y += QK_K) {
    float d;
    std::memcpy(&d, x, 4);
    const int8_t* qs = reinterpret_cast<const int8_t*>(x + 4);
    for (int j = 0; j < QK_K; ++j) y[j] = d * float(qs[j]);
  }
}

// ---- quantization ----------------------------------------------------------------------------------

// Shared by Q4_K and Q5_K: eight sub-blocks of 32, x ≈ (d * ls) * q - (dmin * lm), q in [0, nmax].
// Writes d, dmin and the packed scales at y[0..16) and returns the levels in q[256].
static void quantize_k_affine(const float* x, uint8_t* y, int nmax, uint8_t* q) {
  float scale[8], min[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    AffineFit f = fit_affine(x + 32 * j, 32, nmax, true);
    scale[j] = f.a;
    min[j] = -f.b;
    max_scale = std::max(max_scale, scale[j]);
    max_min = std::max(max_min, min[j]);
  }
  store_half(y, std::min(max_scale / 63.0f, 65504.0f));
  store_half(y + 2, std::min(max_min / 63.0f, 65504.0f));
  const float d = load_half(y), dmin = load_half(y + 2);
  int ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = d > 0 ? round_clamp(scale[j] / d, 0, 63) : 0;
    lm[j] = dmin > 0 ? round_clamp(min[j] / dmin, 0, 63) : 0;
  }
  pack_scale_min(ls, lm, y + 4);
  for (int j = 0; j < 8; ++j) {
    const float ds = d * float(ls[j]);
    const float ms = dmin * float(lm[j]);
    const float ids = ds > 0 ? 1.0f / ds : 0.0f;
    for (int l = 0; l < 32; ++l) q[32 * j + l] = uint8_t(round_clamp((x[32 * j + l] + ms) * ids, 0, nmax));
  }
}

void quantize_q4_k(const float* x, uint8_t* y, int64_t nb) {
  uint8_t q[QK_K];
  for (int64_t b = 0; b < nb; ++b, x += QK_K, y += Q4_K_BYTES) {
    quantize_k_affine(x, y, 15, q);
    uint8_t* qs = y + 16;
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) qs[32 * c + l] = uint8_t(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
  }
}

void quantize_q5_k(const float* x, uint8_t* y, int64_t nb) {
  uint8_t q[QK_K];
  for (int64_t b = 0; b < nb; ++b, x += QK_K, y += Q5_K_BYTES) {
    quantize_k_affine(x, y, 31, q);
    uint8_t* qh = y + 16;
    uint8_t* qs = y + 48;
    std::memset(qh, 0, 32);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t lo = q[64 * c + l], hi = q[64 * c + 32 + l];
        qs[32 * c + l] = uint8_t((lo & 0xF) | ((hi & 0xF) << 4));
        qh[l] = uint8_t(qh[l] | ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
    }
  }
}

// Fits a symmetric scale to each of the sixteen 16-value sub-blocks of a super-block (levels in
// [lo, hi]) and returns the scale of largest magnitude, which sets the super-block scale d.
static float fit_sixteen_symmetric(const float* x, int lo, int hi, float scale[16]) {
  float max_abs = 0, max_scale = 0;
  for (int j = 0; j < 16; ++j) {
    scale[j] = fit_symmetric(x + 16 * j, 16, lo, hi);
    if (std::fabs(scale[j]) > max_abs) {
      max_abs = std::fabs(scale[j]);
      max_scale = scale[j];
    }
  }
  return max_scale;
}

void quantize_q6_k(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += QK_K, y += Q6_K_BYTES) {
    float scale[16];
    const float max_scale = fit_sixteen_symmetric(x, -32, 31, scale);
    // Sub-block scales become int8 codes in [-128, 127] of the super-block scale d; the largest maps to
    // -128 (the end with more room), so d has the opposite sign of that sub-block's scale.
    store_half(y + 208, std::clamp(max_scale / -128.0f, -65504.0f, 65504.0f));
    const float d = load_half(y + 208);
    int8_t* sc = reinterpret_cast<int8_t*>(y + 192);
    uint8_t q[QK_K];
    for (int j = 0; j < 16; ++j) {
      const int ls = d != 0 ? round_clamp(scale[j] / d, -128, 127) : 0;
      sc[j] = int8_t(ls);
      const float ds = d * float(ls);
      const float ids = ds != 0 ? 1.0f / ds : 0.0f;
      for (int l = 0; l < 16; ++l) q[16 * j + l] = uint8_t(round_clamp(x[16 * j + l] * ids, -32, 31) + 32);
    }
    uint8_t* ql = y;
    uint8_t* qh = y + 128;
    for (int h = 0; h < 2; ++h) {
      const uint8_t* qq = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = qq[l], q2 = qq[l + 32], q3 = qq[l + 64], q4 = qq[l + 96];
        ql[64 * h + l] = uint8_t((q1 & 0xF) | ((q3 & 0xF) << 4));
        ql[64 * h + l + 32] = uint8_t((q2 & 0xF) | ((q4 & 0xF) << 4));
        qh[32 * h + l] = uint8_t((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

// Q2_K: sixteen sub-blocks of 16, x ≈ (d * (sc & 0xF)) * q - dmin * (sc >> 4), q in [0, 3].
void quantize_q2_k(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += QK_K, y += Q2_K_BYTES) {
    float scale[16], min[16];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      AffineFit f = fit_affine(x + 16 * j, 16, 3, true);
      scale[j] = f.a;
      min[j] = -f.b;
      max_scale = std::max(max_scale, scale[j]);
      max_min = std::max(max_min, min[j]);
    }
    store_half(y + 80, std::min(max_scale / 15.0f, 65504.0f));
    store_half(y + 82, std::min(max_min / 15.0f, 65504.0f));
    const float d = load_half(y + 80), dmin = load_half(y + 82);
    uint8_t q[QK_K];
    for (int j = 0; j < 16; ++j) {
      const int ls = d > 0 ? round_clamp(scale[j] / d, 0, 15) : 0;
      const int lm = dmin > 0 ? round_clamp(min[j] / dmin, 0, 15) : 0;
      y[j] = uint8_t(ls | (lm << 4));
      const float ds = d * float(ls), ms = dmin * float(lm);
      const float ids = ds > 0 ? 1.0f / ds : 0.0f;
      for (int l = 0; l < 16; ++l) q[16 * j + l] = uint8_t(round_clamp((x[16 * j + l] + ms) * ids, 0, 3));
    }
    // Byte l of each 32-byte half holds elements l, l+32, l+64, l+96 of that half, two bits each.
    uint8_t* qs = y + 16;
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        const uint8_t* qq = q + 128 * h + l;
        qs[32 * h + l] = uint8_t(qq[0] | (qq[32] << 2) | (qq[64] << 4) | (qq[96] << 6));
      }
  }
}

// Q3_K: sixteen sub-blocks of 16, x ≈ (d * (sc - 32)) * q, q in [-4, 3], six-bit scale codes sc.
void quantize_q3_k(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += QK_K, y += Q3_K_BYTES) {
    float scale[16];
    const float max_scale = fit_sixteen_symmetric(x, -4, 3, scale);
    // As in Q6_K: the largest sub-block scale maps to code -32, the end with more room.
    store_half(y + 108, std::clamp(max_scale / -32.0f, -65504.0f, 65504.0f));
    const float d = load_half(y + 108);
    int sc[16];
    uint8_t q[QK_K];  // levels + 4, in [0, 7]
    for (int j = 0; j < 16; ++j) {
      const int ls = d != 0 ? round_clamp(scale[j] / d, -32, 31) : 0;
      sc[j] = ls + 32;
      const float ds = d * float(ls);
      const float ids = ds != 0 ? 1.0f / ds : 0.0f;
      for (int l = 0; l < 16; ++l) q[16 * j + l] = uint8_t(round_clamp(x[16 * j + l] * ids, -4, 3) + 4);
    }
    uint8_t* hmask = y;
    uint8_t* qs = y + 32;
    uint8_t* s = y + 96;
    std::memset(y, 0, 108);
    for (int i = 0; i < 16; ++i) {
      s[i % 8] = uint8_t(s[i % 8] | ((sc[i] & 0xF) << (i < 8 ? 0 : 4)));
      s[8 + i % 4] = uint8_t(s[8 + i % 4] | ((sc[i] >> 4) << (2 * (i / 4))));
    }
    // Element 128h + 32j + l: low two bits at bits 2j of qs[32h + l], the third bit at bit 4h + j of
    // hmask[l] (set means "do not subtract 4").
    for (int h = 0; h < 2; ++h)
      for (int j = 0; j < 4; ++j)
        for (int l = 0; l < 32; ++l) {
          const uint8_t v = q[128 * h + 32 * j + l];
          qs[32 * h + l] = uint8_t(qs[32 * h + l] | ((v & 3) << (2 * j)));
          hmask[l] = uint8_t(hmask[l] | ((v >> 2) << (4 * h + j)));
        }
  }
}

}  // namespace hearth::quants
