/* Quantized dot-product kernels (see quant-dot.h): Q8_0 and Q4_0 weight rows against activations
 * quantized to 8 bits per 32-value block, with an AVX2 version chosen at run time and a portable one.
 *
 * Non-obvious choices:
 * - The activation block keeps its scale as an F32 (36 bytes a block) rather than ggml's F16: it is
 *   made once per product and read from cache, so the extra bytes cost nothing, and it removes one
 *   rounding from the result.
 * - AVX2 multiplies signed bytes with _mm256_maddubs_epi16, which needs one unsigned operand: the
 *   weight's absolute value times the activation carrying the weight's sign (the sign_epi8 trick).
 *   Products of at most 127·127 summed in pairs stay inside int16.
 * - Q4_K and Q6_K rows are decoded in registers against the F32 activation (no 8-bit rounding), so
 *   their decoding is exact up to summation order.
 */
#include "quant-dot.h"

#include "cpu-features.h"
#include <cmath>
#include <cstring>

#include "quants.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace hearth::cpu {

namespace {

constexpr int QK = 32;
constexpr uint64_t ACT_BYTES = 4 + QK;  // float d, int8 qs[32]

void quantize_act_q8(const float* x, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / QK; ++b) {
    const float* xb = x + b * QK;
    float amax = 0;
    for (int i = 0; i < QK; ++i) amax = std::max(amax, std::fabs(xb[i]));
    float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    uint8_t* o = dst + b * ACT_BYTES;
    std::memcpy(o, &d, 4);
    auto* q = reinterpret_cast<int8_t*>(o + 4);
    for (int i = 0; i < QK; ++i) q[i] = int8_t(std::lrintf(xb[i] * id));
  }
}

float dot_q8_0_generic(const uint8_t* w, const uint8_t* a, int64_t n) {
  float s = 0;
  for (int64_t b = 0; b < n / QK; ++b, w += quants::Q8_0_BYTES, a += ACT_BYTES) {
    float da;
    std::memcpy(&da, a, 4);
    const auto* qw = reinterpret_cast<const int8_t*>(w + 2);
    const auto* qa = reinterpret_cast<const int8_t*>(a + 4);
    int32_t acc = 0;
    for (int i = 0; i < QK; ++i) acc += int32_t(qw[i]) * qa[i];
    s += quants::load_half(w) * da * float(acc);
  }
  return s;
}

float dot_q4_0_generic(const uint8_t* w, const uint8_t* a, int64_t n) {
  float s = 0;
  for (int64_t b = 0; b < n / QK; ++b, w += quants::Q4_0_BYTES, a += ACT_BYTES) {
    float da;
    std::memcpy(&da, a, 4);
    const uint8_t* qs = w + 2;
    const auto* qa = reinterpret_cast<const int8_t*>(a + 4);
    int32_t acc = 0;
    for (int i = 0; i < QK / 2; ++i) {
      acc += (int32_t(qs[i] & 0xF) - 8) * qa[i];
      acc += (int32_t(qs[i] >> 4) - 8) * qa[i + QK / 2];
    }
    s += quants::load_half(w) * da * float(acc);
  }
  return s;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma,f16c"))) inline float hsum(__m256 v) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}
// Eight int32 partial sums of the products of 32 signed bytes, as floats.
__attribute__((target("avx2,fma,f16c"))) inline __m256 mul_sum_i8(__m256i x, __m256i y) {
  __m256i ax = _mm256_sign_epi8(x, x);
  __m256i sy = _mm256_sign_epi8(y, x);
  __m256i p16 = _mm256_maddubs_epi16(ax, sy);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}
__attribute__((target("avx2,fma,f16c"))) inline float half_f16c(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// One block: its scale times the 8 partial sums of its products.
__attribute__((target("avx2,fma,f16c"))) inline __m256 q8_block(const uint8_t* w, const uint8_t* a) {
  float da;
  std::memcpy(&da, a, 4);
  __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2));
  __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 4));
  return _mm256_mul_ps(_mm256_set1_ps(half_f16c(w) * da), mul_sum_i8(qw, qa));
}
__attribute__((target("avx2,fma,f16c"))) inline __m256 q4_block(const uint8_t* w, const uint8_t* a) {
  const __m256i low = _mm256_set1_epi8(0xF), eight = _mm256_set1_epi8(8);
  float da;
  std::memcpy(&da, a, 4);
  __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2));
  __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(raw), _mm_srli_epi16(raw, 4), 1);
  __m256i qw = _mm256_sub_epi8(_mm256_and_si256(both, low), eight);
  __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 4));
  return _mm256_mul_ps(_mm256_set1_ps(half_f16c(w) * da), mul_sum_i8(qw, qa));
}

// Two independent accumulators so consecutive blocks do not wait on each other's additions.
__attribute__((target("avx2,fma,f16c"))) float dot_q8_0_avx2(const uint8_t* w, const uint8_t* a, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const int64_t nb = n / QK;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * quants::Q8_0_BYTES, a += 2 * ACT_BYTES) {
    acc0 = _mm256_add_ps(acc0, q8_block(w, a));
    acc1 = _mm256_add_ps(acc1, q8_block(w + quants::Q8_0_BYTES, a + ACT_BYTES));
  }
  if (b < nb) acc0 = _mm256_add_ps(acc0, q8_block(w, a));
  return hsum(_mm256_add_ps(acc0, acc1));
}

__attribute__((target("avx2,fma,f16c"))) float dot_q4_0_avx2(const uint8_t* w, const uint8_t* a, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const int64_t nb = n / QK;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * quants::Q4_0_BYTES, a += 2 * ACT_BYTES) {
    acc0 = _mm256_add_ps(acc0, q4_block(w, a));
    acc1 = _mm256_add_ps(acc1, q4_block(w + quants::Q4_0_BYTES, a + ACT_BYTES));
  }
  if (b < nb) acc0 = _mm256_add_ps(acc0, q4_block(w, a));
  return hsum(_mm256_add_ps(acc0, acc1));
}
#endif

// ---- K-quants: the row's blocks are decoded in registers and multiplied with the F32 activation; the
// activation block carries its 8 sub-block sums so Q4_K's minimums cost one multiply per sub-block.
constexpr int QKK = 256;
constexpr uint64_t ACT_K_BYTES = 4 * (QKK + 8);

void prepare_act_k(const float* x, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / QKK; ++b) {
    float* o = reinterpret_cast<float*>(dst + b * ACT_K_BYTES);
    std::memcpy(o, x + b * QKK, QKK * 4);
    for (int j = 0; j < 8; ++j) {
      float s = 0;
      for (int i = 0; i < 32; ++i) s += x[b * QKK + j * 32 + i];
      o[QKK + j] = s;
    }
  }
}

inline void scale_min_k4(const uint8_t* s, int j, int& sc, int& mn) {
  if (j < 4) {
    sc = s[j] & 63;
    mn = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// 32 nibbles (low or high halves of 32 bytes) times 32 floats, in 8 lanes the compiler vectorizes.
__attribute__((always_inline)) inline float nib_dot(const uint8_t* q, int shift, const float* x) {
  float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < 32; i += 8)
    for (int l = 0; l < 8; ++l) lane[l] += float((q[i + l] >> shift) & 0xF) * x[i + l];
  return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}

__attribute__((always_inline)) inline float q4_k_body(const uint8_t* w, const uint8_t* a, int64_t n) {
  const float* ht = quants::half_table();
  float total = 0;
  for (int64_t b = 0; b < n / QKK; ++b, w += quants::Q4_K_BYTES, a += ACT_K_BYTES) {
    const float* x = reinterpret_cast<const float*>(a);
    const float d = ht[quants::load_u16(w)], dmin = ht[quants::load_u16(w + 2)];
    const uint8_t* s = w + 4;
    const uint8_t* q = w + 16;
    float acc = 0, macc = 0;
    for (int c = 0; c < 4; ++c, q += 32) {
      int sc1, mn1, sc2, mn2;
      scale_min_k4(s, 2 * c, sc1, mn1);
      scale_min_k4(s, 2 * c + 1, sc2, mn2);
      acc += float(sc1) * nib_dot(q, 0, x + 64 * c) + float(sc2) * nib_dot(q, 4, x + 64 * c + 32);
      macc += float(mn1) * x[QKK + 2 * c] + float(mn2) * x[QKK + 2 * c + 1];
    }
    total += d * acc - dmin * macc;
  }
  return total;
}

__attribute__((always_inline)) inline float q6_k_body(const uint8_t* w, const uint8_t* a, int64_t n) {
  const float* ht = quants::half_table();
  float total = 0;
  for (int64_t b = 0; b < n / QKK; ++b, w += quants::Q6_K_BYTES, a += ACT_K_BYTES) {
    const float* x = reinterpret_cast<const float*>(a);
    const uint8_t* ql = w;
    const uint8_t* qh = w + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
    const float d = ht[quants::load_u16(w + 208)];
    float acc = 0;
    for (int c = 0; c < 2; ++c, ql += 64, qh += 32, sc += 8, x += 128) {
      for (int half = 0; half < 2; ++half) {
        float l1[8] = {0}, l2[8] = {0}, l3[8] = {0}, l4[8] = {0};
        for (int i = half * 16; i < half * 16 + 16; i += 8)
          for (int l = 0; l < 8; ++l) {
            const int k = i + l;
            l1[l] += float(int((ql[k] & 0xF) | (((qh[k] >> 0) & 3) << 4)) - 32) * x[k];
            l2[l] += float(int((ql[k + 32] & 0xF) | (((qh[k] >> 2) & 3) << 4)) - 32) * x[k + 32];
            l3[l] += float(int((ql[k] >> 4) | (((qh[k] >> 4) & 3) << 4)) - 32) * x[k + 64];
            l4[l] += float(int((ql[k + 32] >> 4) | (((qh[k] >> 6) & 3) << 4)) - 32) * x[k + 96];
          }
        float s1 = 0, s2 = 0, s3 = 0, s4 = 0;
        for (int l = 0; l < 8; ++l) s1 += l1[l], s2 += l2[l], s3 += l3[l], s4 += l4[l];
        acc += float(sc[half + 0]) * s1 + float(sc[half + 2]) * s2 + float(sc[half + 4]) * s3 + float(sc[half + 6]) * s4;
      }
    }
    total += d * acc;
  }
  return total;
}

float dot_q4_k_generic(const uint8_t* w, const uint8_t* a, int64_t n) { return q4_k_body(w, a, n); }
float dot_q6_k_generic(const uint8_t* w, const uint8_t* a, int64_t n) { return q6_k_body(w, a, n); }
#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) float dot_q4_k_avx2(const uint8_t* w, const uint8_t* a, int64_t n) {
  const float* ht = quants::half_table();
  const __m256i m4 = _mm256_set1_epi8(0xF);
  float total = 0;
  alignas(32) uint8_t q[2][32];
  for (int64_t b = 0; b < n / QKK; ++b, w += quants::Q4_K_BYTES, a += ACT_K_BYTES) {
    const float* x = reinterpret_cast<const float*>(a);
    const float d = ht[quants::load_u16(w)], dmin = ht[quants::load_u16(w + 2)];
    const uint8_t* s = w + 4;
    const uint8_t* qs = w + 16;
    __m256 acc = _mm256_setzero_ps();
    float macc = 0;
    for (int c = 0; c < 4; ++c, qs += 32) {
      int sc[2], mn[2];
      scale_min_k4(s, 2 * c, sc[0], mn[0]);
      scale_min_k4(s, 2 * c + 1, sc[1], mn[1]);
      __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs));
      _mm256_store_si256(reinterpret_cast<__m256i*>(q[0]), _mm256_and_si256(raw, m4));
      _mm256_store_si256(reinterpret_cast<__m256i*>(q[1]), _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4));
      for (int h = 0; h < 2; ++h) {
        const float* xx = x + 64 * c + 32 * h;
        __m256 s0 = _mm256_setzero_ps();
        for (int i = 0; i < 32; i += 8)
          s0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q[h] + i)))),
                               _mm256_loadu_ps(xx + i), s0);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(float(sc[h])), s0, acc);
        macc += float(mn[h]) * x[QKK + 2 * c + h];
      }
    }
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    total += d * _mm_cvtss_f32(r) - dmin * macc;
  }
  return total;
}
__attribute__((target("avx2,fma"))) float dot_q6_k_avx2(const uint8_t* w, const uint8_t* a, int64_t n) {
  const float* ht = quants::half_table();
  const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
  __m256 total = _mm256_setzero_ps();
  alignas(32) int8_t q[4][32];
  for (int64_t b = 0; b < n / QKK; ++b, w += quants::Q6_K_BYTES, a += ACT_K_BYTES) {
    const float* x = reinterpret_cast<const float*>(a);
    const uint8_t* ql = w;
    const uint8_t* qh = w + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
    const float d = ht[quants::load_u16(w + 208)];
    for (int c = 0; c < 2; ++c, ql += 64, qh += 32, sc += 8, x += 128) {
      __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
#define HEARTH_Q6_HI(sh) _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, sh), m2), 4)
      _mm256_store_si256(reinterpret_cast<__m256i*>(q[0]), _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(l0, m4), HEARTH_Q6_HI(0)), off));
      _mm256_store_si256(reinterpret_cast<__m256i*>(q[1]), _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(l1, m4), HEARTH_Q6_HI(2)), off));
      _mm256_store_si256(reinterpret_cast<__m256i*>(q[2]),
                         _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), HEARTH_Q6_HI(4)), off));
      _mm256_store_si256(reinterpret_cast<__m256i*>(q[3]),
                         _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), HEARTH_Q6_HI(6)), off));
      for (int g = 0; g < 4; ++g)
        for (int half = 0; half < 2; ++half) {
          const int8_t* qq = q[g] + 16 * half;
          const float* xx = x + 32 * g + 16 * half;
          __m256 s0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qq)))),
                                    _mm256_loadu_ps(xx));
          s0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qq + 8)))),
                               _mm256_loadu_ps(xx + 8), s0);
          total = _mm256_fmadd_ps(_mm256_set1_ps(d * float(sc[2 * g + half])), s0, total);
        }
#undef HEARTH_Q6_HI
    }
  }
  __m128 r = _mm_add_ps(_mm256_castps256_ps128(total), _mm256_extractf128_ps(total, 1));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}
#endif

// ---- F16 rows against the F32 activation (copied as is): F16C conversion inside the dot.
void copy_act_f32(const float* x, uint8_t* dst, int64_t n) { std::memcpy(dst, x, size_t(n) * 4); }
float dot_f16_generic(const uint8_t* w, const uint8_t* a, int64_t n) {
  const float* ht = quants::half_table();
  const float* x = reinterpret_cast<const float*>(a);
  float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < n; i += 8)
    for (int l = 0; l < 8; ++l) lane[l] += ht[quants::load_u16(w + 2 * (i + l))] * x[i + l];
  return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}
#if defined(__x86_64__)
__attribute__((target("avx2,fma,f16c"))) float dot_f16_avx2(const uint8_t* w, const uint8_t* a, int64_t n) {
  const float* x = reinterpret_cast<const float*>(a);
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i))), _mm256_loadu_ps(x + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i + 16))),
                         _mm256_loadu_ps(x + i + 8), s1);
  }
  for (; i < n; i += 8)
    s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i))), _mm256_loadu_ps(x + i), s0);
  return hsum(_mm256_add_ps(s0, s1));
}
#endif

struct Table {
  QuantDot f16{GgmlType::F16, 8, 32, copy_act_f32, dot_f16_generic};
  QuantDot q8_0{GgmlType::Q8_0, QK, ACT_BYTES, quantize_act_q8, dot_q8_0_generic};
  QuantDot q4_0{GgmlType::Q4_0, QK, ACT_BYTES, quantize_act_q8, dot_q4_0_generic};
  QuantDot q4_k{GgmlType::Q4_K, QKK, ACT_K_BYTES, prepare_act_k, dot_q4_k_generic};
  QuantDot q6_k{GgmlType::Q6_K, QKK, ACT_K_BYTES, prepare_act_k, dot_q6_k_generic};
  Table() {
#if defined(__x86_64__)
    if (cpu::has_avx2_fma_f16c()) {
      q8_0.dot = dot_q8_0_avx2;
      q4_0.dot = dot_q4_0_avx2;
      f16.dot = dot_f16_avx2;
      q4_k.dot = dot_q4_k_avx2;
      q6_k.dot = dot_q6_k_avx2;
    }
#endif
  }
};

const Table& table() {
  static const Table t;
  return t;
}

}  // namespace

const QuantDot* quant_dot_for(GgmlType type) {
  switch (type) {
    case GgmlType::F16: return &table().f16;
    case GgmlType::Q8_0: return &table().q8_0;
    case GgmlType::Q4_0: return &table().q4_0;
    case GgmlType::Q4_K: return &table().q4_k;
    case GgmlType::Q6_K: return &table().q6_k;
    default: return nullptr;
  }
}

const QuantDot* quant_dot_generic_for(GgmlType type) {
  static const QuantDot q8{GgmlType::Q8_0, QK, ACT_BYTES, quantize_act_q8, dot_q8_0_generic};
  static const QuantDot q4{GgmlType::Q4_0, QK, ACT_BYTES, quantize_act_q8, dot_q4_0_generic};
  static const QuantDot q4k{GgmlType::Q4_K, QKK, ACT_K_BYTES, prepare_act_k, dot_q4_k_generic};
  static const QuantDot q6k{GgmlType::Q6_K, QKK, ACT_K_BYTES, prepare_act_k, dot_q6_k_generic};
  static const QuantDot f16{GgmlType::F16, 8, 32, copy_act_f32, dot_f16_generic};
  switch (type) {
    case GgmlType::F16: return &f16;
    case GgmlType::Q8_0: return &q8;
    case GgmlType::Q4_0: return &q4;
    case GgmlType::Q4_K: return &q4k;
    case GgmlType::Q6_K: return &q6k;
    default: return nullptr;
  }
}

}  // namespace hearth::cpu
