/* Quantized dot-product kernels (see quant-dot.h): Q8_0, Q4_0, Q4_K, Q6_K and F16 weight rows against the
 * activation, with an AVX2 version chosen at run time and a portable one; Q4_0, Q4_K and Q6_K also eight
 * interleaved rows at a time (AVX2 and AVX-512 VNNI).
 *
 * Non-obvious choices:
 * - The activation block keeps its scale as an F32 (36 bytes a block) rather than ggml's F16: it is
 *   made once per product and read from cache, so the extra bytes cost nothing, and it removes one
 *   rounding from the result.
 * - AVX2 multiplies signed bytes with _mm256_maddubs_epi16, which needs one unsigned operand: the
 *   weight's absolute value times the activation carrying the weight's sign (the sign_epi8 trick).
 *   Products of at most 127·127 summed in pairs stay inside int16.
 * - The portable Q4_K and Q6_K kernels decode rows against the F32 activation (exact up to summation
 *   order); the AVX2 ones use integer dots against a 256-value 8-bit activation carrying its 16-value
 *   sums (the table entry brings its own activation format), trading the activation's rounding for
 *   about three times the decode speed.
 * - The interleaved K-quant layouts put each super-block's bytes in the order the kernel reads them: Q6_K's
 *   first layout (ql words, then qh words) made the kernel read three streams a few hundred bytes apart,
 *   and from memory it ran at a third of the plain read rate (the prefetchers lost track); in order it
 *   runs at the read rate. Q6_K's values are also re-packed (not just reordered) so that the AVX2 kernel
 *   clears the 1.3x bar: 11 bit operations per four vectors instead of 17.
 */
#include "quant-dot.h"

#include "cpu-features.h"
#include <cmath>
#include <cstring>
#include <vector>

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

// Q4_0: the 16 bytes are loaded into both halves and shifted by 0 or 4 bits per half (low nibbles are
// values 0..15, high ones 16..31). The nibbles (0..15) stay unsigned for maddubs and the offset 8 is taken
// off as 8 * (the activation's pair sums), a second maddubs, instead of signing both operands.
__attribute__((target("avx2,fma,f16c"))) inline __m256 q4_0_block(const uint8_t* w, const uint8_t* a) {
  const __m256i low = _mm256_set1_epi8(0xF), eight = _mm256_set1_epi8(8);
  float da;
  std::memcpy(&da, a, 4);
  __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2)));
  __m256i nib = _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_setr_epi64x(0, 0, 4, 4)), low);
  __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 4));
  __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(nib, qa), _mm256_maddubs_epi16(eight, qa));
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

__attribute__((target("avx2,fma,f16c"))) inline __m256 scale(const uint8_t* w, const uint8_t* a) {
  float da;
  std::memcpy(&da, a, 4);
  return _mm256_set1_ps(half_f16c(w) * da);
}

// Four blocks a step into four accumulators, each scaled with one FMA.
__attribute__((target("avx2,fma,f16c"))) float dot_q4_0_avx2(const uint8_t* w, const uint8_t* a, int64_t n) {
  constexpr uint64_t WB = quants::Q4_0_BYTES;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  const int64_t nb = n / QK;
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4, w += 4 * WB, a += 4 * ACT_BYTES) {
    acc0 = _mm256_fmadd_ps(scale(w, a), q4_0_block(w, a), acc0);
    acc1 = _mm256_fmadd_ps(scale(w + WB, a + ACT_BYTES), q4_0_block(w + WB, a + ACT_BYTES), acc1);
    acc2 = _mm256_fmadd_ps(scale(w + 2 * WB, a + 2 * ACT_BYTES), q4_0_block(w + 2 * WB, a + 2 * ACT_BYTES), acc2);
    acc3 = _mm256_fmadd_ps(scale(w + 3 * WB, a + 3 * ACT_BYTES), q4_0_block(w + 3 * WB, a + 3 * ACT_BYTES), acc3);
  }
  for (; b < nb; ++b, w += WB, a += ACT_BYTES) acc0 = _mm256_fmadd_ps(scale(w, a), q4_0_block(w, a), acc0);
  return hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
}

#endif

// ---- Q4_0 x8 (see quant-dot.h). The activation keeps per block its scale, -8 times the sum of its
// values (the weights' offset 8, applied once per block for all eight rows) and its 32 int8 values.
constexpr uint64_t ACT_X8_BYTES = 4 + 4 + QK;  // float d, int32 -8*sum, int8 q[32]

void quantize_act_x8(const float* x, uint8_t* dst, int64_t n, void (*q8)(const float*, uint8_t*, int64_t)) {
  for (int64_t b = 0; b < n / QK; ++b) {
    uint8_t tmp[ACT_BYTES];
    q8(x + b * QK, tmp, QK);
    uint8_t* o = dst + b * ACT_X8_BYTES;
    std::memcpy(o, tmp, 4);
    int32_t sum = 0;
    for (int i = 0; i < QK; ++i) sum += int8_t(tmp[4 + i]);
    const int32_t neg8 = -8 * sum;
    std::memcpy(o + 4, &neg8, 4);
    std::memcpy(o + 8, tmp + 4, QK);
  }
}
void quantize_act_x8_generic(const float* x, uint8_t* dst, int64_t n) { quantize_act_x8(x, dst, n, quantize_act_q8); }

void act_block_x8(const uint8_t* act, int64_t, int64_t b, float* d, const int8_t** q) {
  std::memcpy(d, act + b * ACT_X8_BYTES, 4);
  *q = reinterpret_cast<const int8_t*>(act + b * ACT_X8_BYTES + 8);
}

void dot8_q4_0_generic(const uint8_t* g, const uint8_t* a, int64_t n, float* y8) {
  for (int r = 0; r < 8; ++r) y8[r] = 0;
  for (int64_t b = 0; b < n / QK; ++b, g += Q4_0_X8_BLOCK, a += ACT_X8_BYTES) {
    float da;
    std::memcpy(&da, a, 4);
    const auto* qa = reinterpret_cast<const int8_t*>(a + 8);
    for (int r = 0; r < 8; ++r) {
      int32_t acc = 0;
      for (int c = 0; c < 4; ++c)
        for (int m = 0; m < 4; ++m) {
          const uint8_t byte = g[16 + 32 * c + 4 * r + m];
          acc += (int32_t(byte & 0xF) - 8) * qa[4 * c + m] + (int32_t(byte >> 4) - 8) * qa[16 + 4 * c + m];
        }
      y8[r] += quants::load_half(g + 2 * r) * da * float(acc);
    }
  }
}

#if defined(__x86_64__)
// Eight lanes (rows) each += the dot of its four unsigned bytes in `v` with the four signed bytes `a4`.
__attribute__((target("avx2,fma,f16c"))) inline __m256i dot4_avx2(__m256i acc, __m256i v, const uint8_t* a4) {
  int32_t x;
  std::memcpy(&x, a4, 4);
  const __m256i p = _mm256_maddubs_epi16(v, _mm256_set1_epi32(x));  // pair sums below 2*15*127
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}
#define HEARTH_VNNI_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
HEARTH_VNNI_TARGET inline __m256i dot4_vnni(__m256i acc, __m256i v, const uint8_t* a4) {
  int32_t x;
  std::memcpy(&x, a4, 4);
  return _mm256_dpbusd_epi32(acc, v, _mm256_set1_epi32(x));
}

// One body for both instruction sets; two integer accumulators per block so consecutive dots overlap.
#define HEARTH_DOT8_Q4_0_BODY(DOT4)                                                                          \
  const __m256i m4 = _mm256_set1_epi8(0xF);                                                                 \
  __m256 acc = _mm256_setzero_ps();                                                                         \
  for (int64_t b = 0; b < n / QK; ++b, g += Q4_0_X8_BLOCK, a += ACT_X8_BYTES) {                             \
    const uint8_t* qa = a + 8;                                                                              \
    const __m256i c0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 16));                       \
    const __m256i c1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 48));                       \
    const __m256i c2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 80));                       \
    const __m256i c3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 112));                      \
    int32_t neg8;                                                                                           \
    std::memcpy(&neg8, a + 4, 4);                                                                           \
    __m256i s0 = _mm256_set1_epi32(neg8), s1 = _mm256_setzero_si256();                                      \
    s0 = DOT4(s0, _mm256_and_si256(c0, m4), qa + 0);                                                        \
    s1 = DOT4(s1, _mm256_and_si256(c1, m4), qa + 4);                                                        \
    s0 = DOT4(s0, _mm256_and_si256(c2, m4), qa + 8);                                                        \
    s1 = DOT4(s1, _mm256_and_si256(c3, m4), qa + 12);                                                       \
    s0 = DOT4(s0, _mm256_and_si256(_mm256_srli_epi16(c0, 4), m4), qa + 16);                                 \
    s1 = DOT4(s1, _mm256_and_si256(_mm256_srli_epi16(c1, 4), m4), qa + 20);                                 \
    s0 = DOT4(s0, _mm256_and_si256(_mm256_srli_epi16(c2, 4), m4), qa + 24);                                 \
    s1 = DOT4(s1, _mm256_and_si256(_mm256_srli_epi16(c3, 4), m4), qa + 28);                                 \
    float da;                                                                                               \
    std::memcpy(&da, a, 4);                                                                                 \
    const __m256 sc = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g))),  \
                                    _mm256_set1_ps(da));                                                    \
    acc = _mm256_fmadd_ps(sc, _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc);                           \
  }                                                                                                         \
  _mm256_storeu_ps(y8, acc);

__attribute__((target("avx2,fma,f16c"))) void dot8_q4_0_avx2(const uint8_t* g, const uint8_t* a, int64_t n, float* y8) {
  HEARTH_DOT8_Q4_0_BODY(dot4_avx2)
}
HEARTH_VNNI_TARGET void dot8_q4_0_vnni(const uint8_t* g, const uint8_t* a, int64_t n, float* y8) {
  HEARTH_DOT8_Q4_0_BODY(dot4_vnni)
}
#undef HEARTH_DOT8_Q4_0_BODY

// The same bytes as quantize_act_x8_generic: identical scale, x * id rounded to nearest even.
__attribute__((target("avx2,fma,f16c"))) void quantize_act_x8_avx2(const float* x, uint8_t* dst, int64_t n) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < n / QK; ++b, x += QK, dst += ACT_X8_BYTES) {
    const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16),
                 v3 = _mm256_loadu_ps(x + 24);
    const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, abs_mask), _mm256_and_ps(v1, abs_mask)),
                                   _mm256_max_ps(_mm256_and_ps(v2, abs_mask), _mm256_and_ps(v3, abs_mask)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float d = _mm_cvtss_f32(h) / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    const __m256 vid = _mm256_set1_ps(id);
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vid)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vid));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vid)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vid));
    // Values lie in [-127, 127]: the saturating packs never saturate; the permutation undoes their lane order.
    const __m256i p8 = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 8),
                        _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    const __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
    const int32_t neg8 = -8 * _mm_cvtsi128_si32(t);
    std::memcpy(dst, &d, 4);
    std::memcpy(dst + 4, &neg8, 4);
  }
}
#endif

void act_block_q8(const uint8_t* act, int64_t, int64_t b, float* d, const int8_t** q) {
  std::memcpy(d, act + b * ACT_BYTES, 4);
  *q = reinterpret_cast<const int8_t*>(act + b * ACT_BYTES + 4);
}

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

// ---- Integer K-quant kernels (AVX2): the activation is quantized to 8 bits per 256-value block with the
// sums of each 16 values (Q8K_BYTES: float d, int16 bsums[16], int8 q[256]), so a weight block's offset
// (Q4_K's minimums, Q6_K's -32) is one multiply of its scales with those sums instead of touching every value.
constexpr uint64_t Q8K_BSUMS = 4, Q8K_QS = 4 + 32;
constexpr uint64_t Q8K_BYTES = Q8K_ACT_BYTES;
static_assert(Q8K_BYTES == Q8K_QS + QKK);

// Scalar rounding with lrintf (the same as _mm256_cvtps_epi32 in the default rounding mode).
}  // namespace

void quantize_act_q8k(const float* x, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / QKK; ++b) {
    const float* xb = x + b * QKK;
    float amax = 0;
    for (int i = 0; i < QKK; ++i) amax = std::max(amax, std::fabs(xb[i]));
    float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    uint8_t* o = dst + b * Q8K_BYTES;
    std::memcpy(o, &d, 4);
    auto* q = reinterpret_cast<int8_t*>(o + Q8K_QS);
    for (int i = 0; i < QKK; ++i) q[i] = int8_t(std::lrintf(xb[i] * id));
    for (int j = 0; j < 16; ++j) {
      int16_t s = 0;
      for (int i = 0; i < 16; ++i) s = int16_t(s + q[16 * j + i]);
      std::memcpy(o + Q8K_BSUMS + 2 * j, &s, 2);
    }
  }
}

namespace {

#if defined(__x86_64__)
// The same bytes as quantize_act_q8k: identical scale, product x*id and round-to-nearest-even.
__attribute__((target("avx2,fma,f16c"))) void quantize_act_q8k_avx2(const float* x, uint8_t* dst, int64_t n) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < n / QKK; ++b) {
    const float* xb = x + b * QKK;
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < QKK; i += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(xb + i), abs_mask));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float amax = _mm_cvtss_f32(h);
    const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    uint8_t* o = dst + b * Q8K_BYTES;
    std::memcpy(o, &d, 4);
    const __m256 vid = _mm256_set1_ps(id);
    for (int j = 0; j < QKK; j += 32) {
      __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + j), vid));
      __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + j + 8), vid));
      __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + j + 16), vid));
      __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + j + 24), vid));
      // Sums of 16: (i0 + i1) and (i2 + i3), eight lanes each.
      __m256i s01 = _mm256_add_epi32(i0, i1), s23 = _mm256_add_epi32(i2, i3);
      __m256i s = _mm256_hadd_epi32(s01, s23);  // lanes: s01[0..1] s01[2..3] s23[0..1] s23[2..3] | same, upper
      s = _mm256_hadd_epi32(s, s);
      __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));  // [S01, S23, S01, S23]
      const int16_t s0 = int16_t(_mm_cvtsi128_si32(t)), s1 = int16_t(_mm_extract_epi32(t, 1));
      std::memcpy(o + Q8K_BSUMS + 2 * (j / 16), &s0, 2);
      std::memcpy(o + Q8K_BSUMS + 2 * (j / 16 + 1), &s1, 2);
      // Narrow to bytes (values within [-127, 127], so saturation never applies) and undo the lane interleave.
      __m256i p16 = _mm256_packs_epi32(i0, i1), p16b = _mm256_packs_epi32(i2, i3);
      __m256i p8 = _mm256_packs_epi16(p16, p16b);
      p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + Q8K_QS + j), p8);
    }
  }
}

__attribute__((target("avx2,fma,f16c"))) float dot_q4_k_q8k_avx2(const uint8_t* w, const uint8_t* a, int64_t n) {
  const __m256i m4 = _mm256_set1_epi8(0xF);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / QKK; ++b, w += quants::Q4_K_BYTES, a += Q8K_BYTES) {
    float da;
    std::memcpy(&da, a, 4);
    const float d = half_f16c(w) * da, dmin = half_f16c(w + 2) * da;
    // The twelve scale bytes hold eight 6-bit scales and eight 6-bit minimums; decoded four at a time.
    uint32_t u[3];
    std::memcpy(u, w + 4, 12);
    const uint32_t sc_lo = u[0] & 0x3f3f3f3fu, mn_lo = u[1] & 0x3f3f3f3fu;
    const uint32_t sc_hi = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    const uint32_t mn_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    const __m128i sc16 = _mm_cvtepu8_epi16(_mm_setr_epi32(int(sc_lo), int(sc_hi), 0, 0));
    const __m128i mn16 = _mm_cvtepu8_epi16(_mm_setr_epi32(int(mn_lo), int(mn_hi), 0, 0));
    // Lane j: minimum j times the activation's sum over sub-block j (two 16-sums).
    const __m256i mdup = _mm256_set_m128i(_mm_unpackhi_epi16(mn16, mn16), _mm_unpacklo_epi16(mn16, mn16));
    const __m256i mprod = _mm256_madd_epi16(mdup, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + Q8K_BSUMS)));
    const __m256i sc256 = _mm256_broadcastsi128_si256(sc16);
    const uint8_t* qs = w + 16;
    const uint8_t* qa = a + Q8K_QS;
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
      const __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
      // Nibbles (0..15) are the unsigned operand: pair sums stay below 2*15*127.
      const __m256i p_lo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qa + 64 * c)));
      const __m256i p_hi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qa + 64 * c + 32)));
      const __m256i s_lo = _mm256_shuffle_epi8(sc256, _mm256_set1_epi16(short(((4 * c + 1) << 8) | (4 * c))));
      const __m256i s_hi = _mm256_shuffle_epi8(sc256, _mm256_set1_epi16(short(((4 * c + 3) << 8) | (4 * c + 2))));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(_mm256_madd_epi16(p_lo, s_lo), _mm256_madd_epi16(p_hi, s_hi)));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    acc = _mm256_fnmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(mprod), acc);
  }
  return hsum(acc);
}

__attribute__((target("avx2,fma,f16c"))) float dot_q6_k_q8k_avx2(const uint8_t* w, const uint8_t* a, int64_t n) {
  const __m256i m4 = _mm256_set1_epi8(0xF);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / QKK; ++b, w += quants::Q6_K_BYTES, a += Q8K_BYTES) {
    float da;
    std::memcpy(&da, a, 4);
    const float d = half_f16c(w + 208) * da;
    const uint8_t* ql = w;
    const uint8_t* qh = w + 128;
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192));
    // The stored values are q + 32 with q in [-32, 31]: sum(sc * (u - 32) * a) = sum(sc * u * a) - 32 * sum(sc * bsum).
    const __m256i corr = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8),
                                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + Q8K_BSUMS)));
    const uint8_t* qa = a + Q8K_QS;
    // The 16 scales as int16: lanes 0..7 hold sc[0..7] and 8..15 sc[8..15]; each half c is copied to both
    // 128-bit lanes so that one in-lane shuffle gives a group's [sc[2g] x8 | sc[2g+1] x8].
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    const __m256i sc_half[2] = {_mm256_permute2x128_si256(sc16, sc16, 0x00), _mm256_permute2x128_si256(sc16, sc16, 0x11)};
    const __m256i m30 = _mm256_set1_epi8(0x30);
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 2; ++c, ql += 64, qh += 32, qa += 128) {
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
      // Two high bits of each value moved to bits 4..5 of its byte (16-bit shifts; the mask drops spill-over).
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
      q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, m30));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
      for (int g = 0; g < 4; ++g) {
        // Unsigned 6-bit values times signed activations: pair sums stay below 2*63*127.
        const __m256i p = _mm256_maddubs_epi16(q[g], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qa + 32 * g)));
        const short lo = short(((4 * g + 1) << 8) | (4 * g)), hi = short(((4 * g + 3) << 8) | (4 * g + 2));
        const __m256i s = _mm256_shuffle_epi8(sc_half[c], _mm256_setr_epi16(lo, lo, lo, lo, lo, lo, lo, lo, hi, hi, hi, hi, hi, hi, hi, hi));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
      }
    }
    sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(corr, 5));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum(acc);
}
#endif

// ---- Q4_K x8 (see quant-dot.h), against the Q8K activation of the row kernels (shared with them).
constexpr uint64_t Q4K_X8_SCALES = 32, Q4K_X8_QS = 128;

// Row r's 12 scale bytes and 128 nibble bytes of one interleaved super-block.
inline void q4_k_x8_row(const uint8_t* g, int r, uint8_t* scales, uint8_t* qs) {
  for (int w = 0; w < 3; ++w) std::memcpy(scales + 4 * w, g + Q4K_X8_SCALES + 32 * w + 4 * r, 4);
  for (int w = 0; w < 32; ++w) std::memcpy(qs + 4 * w, g + Q4K_X8_QS + 32 * w + 4 * r, 4);
}

// The integer definition: per row, d * sum_j sc_j * (nibbles . q over sub-block j) - dmin * sum_j mn_j * sum_j(q).
void dot8_q4_k_generic(const uint8_t* g, const uint8_t* a, int64_t n, float* y8) {
  for (int r = 0; r < 8; ++r) y8[r] = 0;
  for (int64_t b = 0; b < n / QKK; ++b, g += Q4_K_X8_BLOCK, a += Q8K_BYTES) {
    float da;
    std::memcpy(&da, a, 4);
    const auto* qa = reinterpret_cast<const int8_t*>(a + Q8K_QS);
    int16_t bs[16];
    std::memcpy(bs, a + Q8K_BSUMS, 32);
    for (int r = 0; r < 8; ++r) {
      uint8_t s[12], q[128];
      q4_k_x8_row(g, r, s, q);
      int32_t sumi = 0, mins = 0;
      for (int j = 0; j < 8; ++j) {
        int sc, mn;
        scale_min_k4(s, j, sc, mn);
        const int shift = (j % 2) * 4;
        int32_t acc = 0;
        for (int i = 0; i < 32; ++i) acc += int32_t((q[32 * (j / 2) + i] >> shift) & 0xF) * qa[32 * j + i];
        sumi += sc * acc;
        mins += mn * (int32_t(bs[2 * j]) + bs[2 * j + 1]);
      }
      y8[r] += quants::load_half(g + 2 * r) * da * float(sumi) - quants::load_half(g + 16 + 2 * r) * da * float(mins);
    }
  }
}

#if defined(__x86_64__)
// The eight rows' 6-bit scales (sc[0]: scales 0..3, sc[1]: 4..7) and minimums (mn[0], mn[1]), byte j of a
// row's 32-bit lane being sub-block j (or 4 + j): the row kernel's scalar decoding on eight lanes.
struct ScalesX8 {
  __m256i sc[2], mn[2];
};
__attribute__((target("avx2,fma,f16c"))) inline ScalesX8 q4_k_x8_scales(const uint8_t* g) {
  const __m256i u0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + Q4K_X8_SCALES));
  const __m256i u1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + Q4K_X8_SCALES + 32));
  const __m256i u2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + Q4K_X8_SCALES + 64));
  const __m256i m3f = _mm256_set1_epi8(0x3f), m0f = _mm256_set1_epi8(0x0f), m03 = _mm256_set1_epi8(0x03);
  ScalesX8 s;
  s.sc[0] = _mm256_and_si256(u0, m3f);
  s.mn[0] = _mm256_and_si256(u1, m3f);
  // 16-bit shifts: the masks keep each byte's own bits.
  s.sc[1] = _mm256_or_si256(_mm256_and_si256(u2, m0f), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(u0, 6), m03), 4));
  s.mn[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(u2, 4), m0f),
                            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(u1, 6), m03), 4));
  return s;
}

// Per row: sum_j mn_j * (the activation's sum over sub-block j), j < 8, as int32 lanes. The activation's
// 16-sums become 32-sums S_j, paired (S0,S2), (S1,S3), (S4,S6), (S5,S7) as int16 and broadcast; each
// minimum vector splits into its even and odd bytes as int16, and madd does the rest.
__attribute__((target("avx2,fma,f16c"))) inline __m256i q4_k_x8_mins(const ScalesX8& s, const uint8_t* a) {
  const __m256i s32 = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + Q8K_BSUMS)),
                                        _mm256_set1_epi16(1));  // [S0..S3 | S4..S7]
  const __m256i p = _mm256_packs_epi32(_mm256_shuffle_epi32(s32, 0xD8), _mm256_setzero_si256());  // |S| <= 32*127
  const __m256i p02 = _mm256_permutevar8x32_epi32(p, _mm256_set1_epi32(0));
  const __m256i p13 = _mm256_permutevar8x32_epi32(p, _mm256_set1_epi32(1));
  const __m256i p46 = _mm256_permutevar8x32_epi32(p, _mm256_set1_epi32(4));
  const __m256i p57 = _mm256_permutevar8x32_epi32(p, _mm256_set1_epi32(5));
  const __m256i even = _mm256_set1_epi16(0x00ff);
  __m256i m = _mm256_madd_epi16(_mm256_and_si256(s.mn[0], even), p02);
  m = _mm256_add_epi32(m, _mm256_madd_epi16(_mm256_srli_epi16(s.mn[0], 8), p13));
  m = _mm256_add_epi32(m, _mm256_madd_epi16(_mm256_and_si256(s.mn[1], even), p46));
  return _mm256_add_epi32(m, _mm256_madd_epi16(_mm256_srli_epi16(s.mn[1], 8), p57));
}

// Byte j of each 32-bit lane of v, as int16 in both halves of the lane (AVX2 madd) or as int32 (VNNI).
__attribute__((target("avx2,fma,f16c"))) inline __m256i lane_byte16(__m256i v, int j) {
  const char z = char(0x80);
  const __m128i m = _mm_setr_epi8(char(j), z, char(j), z, char(4 + j), z, char(4 + j), z, char(8 + j), z, char(8 + j), z,
                                  char(12 + j), z, char(12 + j), z);
  return _mm256_shuffle_epi8(v, _mm256_broadcastsi128_si256(m));
}
__attribute__((target("avx2,fma,f16c"))) inline __m256i lane_byte32(__m256i v, int j) {
  const char z = char(0x80);
  const __m128i m = _mm_setr_epi8(char(j), z, z, z, char(4 + j), z, z, z, char(8 + j), z, z, z, char(12 + j), z, z, z);
  return _mm256_shuffle_epi8(v, _mm256_broadcastsi128_si256(m));
}
__attribute__((target("avx2,fma,f16c"))) inline __m256i bcast4(const uint8_t* p) {
  int32_t x;
  std::memcpy(&x, p, 4);
  return _mm256_set1_epi32(x);
}

// The float part of a super-block: acc += d8 * da * sumi - dmin8 * da * mins (a row per lane).
__attribute__((target("avx2,fma,f16c"))) inline __m256 q4_k_x8_finish(__m256 acc, const uint8_t* g, const uint8_t* a,
                                                                      __m256i sumi, __m256i mins) {
  float da;
  std::memcpy(&da, a, 4);
  const __m256 vda = _mm256_set1_ps(da);
  const __m256 d8 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g))), vda);
  const __m256 m8 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + 16))), vda);
  acc = _mm256_fmadd_ps(d8, _mm256_cvtepi32_ps(sumi), acc);
  return _mm256_fnmadd_ps(m8, _mm256_cvtepi32_ps(mins), acc);
}

// AVX2: per sub-block, the eight maddubs products (pair sums of nibble * activation, |.| <= 2*15*127) add up
// in int16 (|.| <= 16*15*127 < 32768), and one madd with the row's scale (int16 in both halves of the
// lane) both finishes the pair sums and applies the scale.
__attribute__((target("avx2,fma,f16c"))) void dot8_q4_k_avx2(const uint8_t* g, const uint8_t* a, int64_t n, float* y8) {
  const __m256i m4 = _mm256_set1_epi8(0xF);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / QKK; ++b, g += Q4_K_X8_BLOCK, a += Q8K_BYTES) {
    const ScalesX8 s = q4_k_x8_scales(g);
    const uint8_t* qa = a + Q8K_QS;
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const uint8_t* q = g + Q4K_X8_QS + 256 * c;
      __m256i lo16 = _mm256_setzero_si256(), hi16 = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int p = 0; p < 8; ++p) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * p));
        lo16 = _mm256_add_epi16(lo16, _mm256_maddubs_epi16(_mm256_and_si256(v, m4), bcast4(qa + 64 * c + 4 * p)));
        hi16 = _mm256_add_epi16(hi16, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4),
                                                           bcast4(qa + 64 * c + 32 + 4 * p)));
      }
      const __m256i sv = s.sc[c / 2];
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(lo16, lane_byte16(sv, 2 * (c % 2))));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(hi16, lane_byte16(sv, 2 * (c % 2) + 1)));
    }
    acc = q4_k_x8_finish(acc, g, a, sumi, q4_k_x8_mins(s, a));
  }
  _mm256_storeu_ps(y8, acc);
}

// AVX-512 VNNI (256-bit): vpdpbusd sums each sub-block in int32 lanes; one vpmulld applies the scale. The
// high nibbles stay in place (16 times their value: no shift per vector) and their sums are divided by 16
// exactly once per sub-block (|sum| <= 32*240*127, times 63 and eight sub-blocks still inside int32).
HEARTH_VNNI_TARGET void dot8_q4_k_vnni(const uint8_t* g, const uint8_t* a, int64_t n, float* y8) {
  const __m256i m4 = _mm256_set1_epi8(0xF);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / QKK; ++b, g += Q4_K_X8_BLOCK, a += Q8K_BYTES) {
    const ScalesX8 s = q4_k_x8_scales(g);
    const uint8_t* qa = a + Q8K_QS;
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const uint8_t* q = g + Q4K_X8_QS + 256 * c;
      __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int p = 0; p < 8; ++p) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * p));
        lo = _mm256_dpbusd_epi32(lo, _mm256_and_si256(v, m4), bcast4(qa + 64 * c + 4 * p));
        hi = _mm256_dpbusd_epi32(hi, _mm256_andnot_si256(m4, v), bcast4(qa + 64 * c + 32 + 4 * p));
      }
      const __m256i sv = s.sc[c / 2];
      sumi = _mm256_add_epi32(sumi, _mm256_mullo_epi32(lo, lane_byte32(sv, 2 * (c % 2))));
      sumi = _mm256_add_epi32(sumi, _mm256_mullo_epi32(_mm256_srai_epi32(hi, 4), lane_byte32(sv, 2 * (c % 2) + 1)));
    }
    acc = q4_k_x8_finish(acc, g, a, sumi, q4_k_x8_mins(s, a));
  }
  _mm256_storeu_ps(y8, acc);
}
#endif

// ---- Q6_K x8 (see quant-dot.h), against the Q8K activation of the row kernels (shared with them).
constexpr uint64_t Q6K_X8_SCALES = 16, Q6K_X8_Q = 16 + 32 * 4;

// The integer definition: per row, d * sum_j sc_j * ((u - 32) . q over the 16 values of sub-block j).
void dot8_q6_k_generic(const uint8_t* g, const uint8_t* a, int64_t n, float* y8) {
  for (int r = 0; r < 8; ++r) y8[r] = 0;
  for (int64_t b = 0; b < n / QKK; ++b, g += Q6_K_X8_BLOCK, a += Q8K_BYTES) {
    float da;
    std::memcpy(&da, a, 4);
    const auto* qa = reinterpret_cast<const int8_t*>(a + Q8K_QS);
    for (int r = 0; r < 8; ++r) {
      uint8_t blk[quants::Q6_K_BYTES];
      unpack_q6_k_x8(g, QKK, r, blk);
      const uint8_t* ql = blk;
      const uint8_t* qh = blk + 128;
      const auto* sc = reinterpret_cast<const int8_t*>(blk + 192);
      int32_t sumi = 0;
      for (int v = 0; v < QKK; ++v) {
        const int c = v / 128, k = (v % 128) / 32, i = v % 32;
        const int low = (ql[64 * c + 32 * (k % 2) + i] >> (4 * (k / 2))) & 0xF;
        const int high = (qh[32 * c + i] >> (2 * k)) & 3;
        sumi += sc[v / 16] * (low + 16 * high - 32) * qa[v];
      }
      y8[r] += quants::load_half(g + 2 * r) * da * float(sumi);
    }
  }
}

#if defined(__x86_64__)
// Byte j of each 32-bit lane of v, sign-extended to the lane.
__attribute__((target("avx2,fma,f16c"))) inline __m256i lane_sbyte32(__m256i v, int j) {
  const char z = char(0x80);
  const __m128i m = _mm_setr_epi8(z, z, z, char(j), z, z, z, char(4 + j), z, z, z, char(8 + j), z, z, z, char(12 + j));
  return _mm256_srai_epi32(_mm256_shuffle_epi8(v, _mm256_broadcastsi128_si256(m)), 24);
}
// acc (a row per int32 lane) += the dots of v0 and v1 (four unsigned bytes < 64 a lane) with the four
// activation bytes at a0 and a1. AVX2: the two maddubs pair sums (each |.| <= 2*63*127) add in int16.
__attribute__((target("avx2,fma,f16c"))) inline __m256i dot4x2_avx2(__m256i acc, __m256i v0, const uint8_t* a0, __m256i v1,
                                                                    const uint8_t* a1) {
  const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(v0, bcast4(a0)), _mm256_maddubs_epi16(v1, bcast4(a1)));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}
HEARTH_VNNI_TARGET inline __m256i dot4x2_vnni(__m256i acc, __m256i v0, const uint8_t* a0, __m256i v1, const uint8_t* a1) {
  return _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(acc, v0, bcast4(a0)), v1, bcast4(a1));
}

// Per half h of chunk c (values 128c + 32k + 16h + 0..15 for the quarters k = 0..3, i.e. sub-blocks
// 8c + 2k + h): four steps p, each giving the four quarters' values from its X, Y, Z vectors (the low six
// bits of each, and their top two bits gathered). Each sub-block's sum starts at -32 times the
// activation's 16-sum (the stored values are q + 32), then takes the row's scale with one vpmulld.
#define HEARTH_DOT8_Q6_K_BODY(DOT4X2)                                                                        \
  const __m256i m3f = _mm256_set1_epi8(0x3F);                                                               \
  __m256 acc = _mm256_setzero_ps();                                                                         \
  for (int64_t b = 0; b < n / QKK; ++b, g += Q6_K_X8_BLOCK, a += Q8K_BYTES) {                               \
    int32_t init[16];                                                                                       \
    for (int j = 0; j < 16; ++j) {                                                                          \
      int16_t bs;                                                                                           \
      std::memcpy(&bs, a + Q8K_BSUMS + 2 * j, 2);                                                           \
      init[j] = -32 * int32_t(bs);                                                                          \
    }                                                                                                       \
    const uint8_t* qa = a + Q8K_QS;                                                                         \
    __m256i sumi = _mm256_setzero_si256();                                                                  \
    _Pragma("GCC unroll 2") for (int c = 0; c < 2; ++c) {                                                   \
      _Pragma("GCC unroll 2") for (int h = 0; h < 2; ++h) {                                                 \
        __m256i s[4];                                                                                       \
        for (int k = 0; k < 4; ++k) s[k] = _mm256_set1_epi32(init[8 * c + 2 * k + h]);                      \
        _Pragma("GCC unroll 2") for (int p = 4 * h; p < 4 * h + 4; p += 2) {                                \
          __m256i q[2][4];                                                                                  \
          for (int e = 0; e < 2; ++e) {                                                                     \
            const uint8_t* step = g + Q6K_X8_Q + 96 * (8 * c + p + e);                                      \
            const __m256i X = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(step));                  \
            const __m256i Y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(step + 32));             \
            const __m256i Z = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(step + 64));             \
            q[e][0] = _mm256_and_si256(X, m3f);                                                             \
            q[e][1] = _mm256_and_si256(Y, m3f);                                                             \
            q[e][2] = _mm256_and_si256(Z, m3f);                                                             \
            /* 16-bit shifts of bits 6..7 of each byte stay inside the byte */                              \
            q[e][3] = _mm256_or_si256(_mm256_or_si256(_mm256_srli_epi16(_mm256_andnot_si256(m3f, X), 6),    \
                                                      _mm256_srli_epi16(_mm256_andnot_si256(m3f, Y), 4)),   \
                                      _mm256_srli_epi16(_mm256_andnot_si256(m3f, Z), 2));                   \
          }                                                                                                 \
          for (int k = 0; k < 4; ++k) {                                                                     \
            const uint8_t* ak = qa + 128 * c + 32 * k + 4 * p;                                              \
            s[k] = DOT4X2(s[k], q[0][k], ak, q[1][k], ak + 4);                                              \
          }                                                                                                 \
        }                                                                                                   \
        for (int k = 0; k < 4; ++k) {                                                                       \
          const int j = 8 * c + 2 * k + h;                                                                  \
          const __m256i sc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + Q6K_X8_SCALES + 32 * (j / 4))); \
          sumi = _mm256_add_epi32(sumi, _mm256_mullo_epi32(s[k], lane_sbyte32(sc, j % 4)));                 \
        }                                                                                                   \
      }                                                                                                     \
    }                                                                                                       \
    float da;                                                                                               \
    std::memcpy(&da, a, 4);                                                                                 \
    const __m256 d8 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g))), _mm256_set1_ps(da)); \
    acc = _mm256_fmadd_ps(d8, _mm256_cvtepi32_ps(sumi), acc);                                               \
  }                                                                                                         \
  _mm256_storeu_ps(y8, acc);

__attribute__((target("avx2,fma,f16c"))) void dot8_q6_k_avx2(const uint8_t* g, const uint8_t* a, int64_t n, float* y8) {
  HEARTH_DOT8_Q6_K_BODY(dot4x2_avx2)
}
HEARTH_VNNI_TARGET void dot8_q6_k_vnni(const uint8_t* g, const uint8_t* a, int64_t n, float* y8) {
  HEARTH_DOT8_Q6_K_BODY(dot4x2_vnni)
}
#undef HEARTH_DOT8_Q6_K_BODY
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

void act_block_q8k(const uint8_t* act, int64_t, int64_t b, float* d, const int8_t** q) {
  std::memcpy(d, act + b * Q8K_BYTES, 4);
  *q = reinterpret_cast<const int8_t*>(act + b * Q8K_BYTES + Q8K_QS);
}

#define Q4_0_X8 repack_q4_0_x8, unpack_q4_0_x8
#define Q4_K_X8 repack_q4_k_x8, unpack_q4_k_x8
#define Q6_K_X8 repack_q6_k_x8, unpack_q6_k_x8

// Every kernel, by type: the portable one first, then the SIMD ones in rising order of preference.
struct Table {
  std::vector<QuantDot> f16, q8_0, q4_0, q4_k, q6_k;
  Table() {
    f16.push_back({GgmlType::F16, 8, 32, copy_act_f32, dot_f16_generic});
    q8_0.push_back({GgmlType::Q8_0, QK, ACT_BYTES, quantize_act_q8, dot_q8_0_generic, act_block_q8});
    q4_0.push_back({GgmlType::Q4_0, QK, ACT_BYTES, quantize_act_q8, dot_q4_0_generic, act_block_q8});
    q4_k.push_back({GgmlType::Q4_K, QKK, ACT_K_BYTES, prepare_act_k, dot_q4_k_generic});
    q6_k.push_back({GgmlType::Q6_K, QKK, ACT_K_BYTES, prepare_act_k, dot_q6_k_generic});
    q4_0_x8.push_back({GgmlType::Q4_0, QK, ACT_X8_BYTES, quantize_act_x8_generic, dot8_q4_0_generic, act_block_x8, Q4_0_X8, "generic"});
    q4_k_x8.push_back({GgmlType::Q4_K, QKK, Q8K_BYTES, quantize_act_q8k, dot8_q4_k_generic, act_block_q8k, Q4_K_X8, "generic"});
    q6_k_x8.push_back({GgmlType::Q6_K, QKK, Q8K_BYTES, quantize_act_q8k, dot8_q6_k_generic, act_block_q8k, Q6_K_X8, "generic"});
#if defined(__x86_64__)
    if (cpu::has_avx2_fma_f16c()) {
      f16.push_back({GgmlType::F16, 8, 32, copy_act_f32, dot_f16_avx2, nullptr, "avx2"});
      q8_0.push_back({GgmlType::Q8_0, QK, ACT_BYTES, quantize_act_q8, dot_q8_0_avx2, act_block_q8, "avx2"});
      q4_0.push_back({GgmlType::Q4_0, QK, ACT_BYTES, quantize_act_q8, dot_q4_0_avx2, act_block_q8, "avx2"});
      // K-quants switch to the integer path, with its own activation format.
      q4_k.push_back({GgmlType::Q4_K, QKK, Q8K_BYTES, quantize_act_q8k_avx2, dot_q4_k_q8k_avx2, act_block_q8k, "avx2"});
      q6_k.push_back({GgmlType::Q6_K, QKK, Q8K_BYTES, quantize_act_q8k_avx2, dot_q6_k_q8k_avx2, act_block_q8k, "avx2"});
      q4_0_x8.push_back({GgmlType::Q4_0, QK, ACT_X8_BYTES, quantize_act_x8_avx2, dot8_q4_0_avx2, act_block_x8, Q4_0_X8, "avx2"});
      q4_k_x8.push_back({GgmlType::Q4_K, QKK, Q8K_BYTES, quantize_act_q8k_avx2, dot8_q4_k_avx2, act_block_q8k, Q4_K_X8, "avx2"});
      q6_k_x8.push_back({GgmlType::Q6_K, QKK, Q8K_BYTES, quantize_act_q8k_avx2, dot8_q6_k_avx2, act_block_q8k, Q6_K_X8, "avx2"});
    }
    if (cpu::has_avx512_vnni()) {
      q4_0_x8.push_back({GgmlType::Q4_0, QK, ACT_X8_BYTES, quantize_act_x8_avx2, dot8_q4_0_vnni, act_block_x8, Q4_0_X8, "avx512-vnni"});
      q4_k_x8.push_back({GgmlType::Q4_K, QKK, Q8K_BYTES, quantize_act_q8k_avx2, dot8_q4_k_vnni, act_block_q8k, Q4_K_X8, "avx512-vnni"});
      q6_k_x8.push_back({GgmlType::Q6_K, QKK, Q8K_BYTES, quantize_act_q8k_avx2, dot8_q6_k_vnni, act_block_q8k, Q6_K_X8, "avx512-vnni"});
    }
#endif
  }
  std::vector<QuantDotX8> q4_0_x8, q4_k_x8, q6_k_x8;
  const std::vector<QuantDotX8>* x8_of(GgmlType type) const {
    switch (type) {
      case GgmlType::Q4_0: return &q4_0_x8;
      case GgmlType::Q4_K: return &q4_k_x8;
      case GgmlType::Q6_K: return &q6_k_x8;
      default: return nullptr;
    }
  }
  const std::vector<QuantDot>* of(GgmlType type) const {
    switch (type) {
      case GgmlType::F16: return &f16;
      case GgmlType::Q8_0: return &q8_0;
      case GgmlType::Q4_0: return &q4_0;
      case GgmlType::Q4_K: return &q4_k;
      case GgmlType::Q6_K: return &q6_k;
      default: return nullptr;
    }
  }
};

const Table& table() {
  static const Table t;
  return t;
}

}  // namespace

const QuantDot* quant_dot_for(GgmlType type) {
  const auto* v = table().of(type);
  return v ? &v->back() : nullptr;
}

const QuantDot* quant_dot_generic_for(GgmlType type) {
  const auto* v = table().of(type);
  return v ? &v->front() : nullptr;
}

void repack_q4_0_x8(const uint8_t* rows, uint64_t row_bytes, int64_t k, uint8_t* group) {
  for (int64_t b = 0; b < k / QK; ++b, group += Q4_0_X8_BLOCK) {
    for (int r = 0; r < 8; ++r) {
      const uint8_t* blk = rows + uint64_t(r) * row_bytes + uint64_t(b) * quants::Q4_0_BYTES;
      std::memcpy(group + 2 * r, blk, 2);
      for (int c = 0; c < 4; ++c) std::memcpy(group + 16 + 32 * c + 4 * r, blk + 2 + 4 * c, 4);
    }
  }
}

void unpack_q4_0_x8(const uint8_t* group, int64_t k, int r, uint8_t* row) {
  for (int64_t b = 0; b < k / QK; ++b, group += Q4_0_X8_BLOCK, row += quants::Q4_0_BYTES) {
    std::memcpy(row, group + 2 * r, 2);
    for (int c = 0; c < 4; ++c) std::memcpy(row + 2 + 4 * c, group + 16 + 32 * c + 4 * r, 4);
  }
}

void repack_q4_k_x8(const uint8_t* rows, uint64_t row_bytes, int64_t k, uint8_t* group) {
  for (int64_t b = 0; b < k / QKK; ++b, group += Q4_K_X8_BLOCK) {
    for (int r = 0; r < 8; ++r) {
      const uint8_t* blk = rows + uint64_t(r) * row_bytes + uint64_t(b) * quants::Q4_K_BYTES;
      std::memcpy(group + 2 * r, blk, 2);
      std::memcpy(group + 16 + 2 * r, blk + 2, 2);
      for (int w = 0; w < 35; ++w) std::memcpy(group + 32 + 32 * w + 4 * r, blk + 4 + 4 * w, 4);
    }
  }
}

void unpack_q4_k_x8(const uint8_t* group, int64_t k, int r, uint8_t* row) {
  for (int64_t b = 0; b < k / QKK; ++b, group += Q4_K_X8_BLOCK, row += quants::Q4_K_BYTES) {
    std::memcpy(row, group + 2 * r, 2);
    std::memcpy(row + 2, group + 16 + 2 * r, 2);
    for (int w = 0; w < 35; ++w) std::memcpy(row + 4 + 4 * w, group + 32 + 32 * w + 4 * r, 4);
  }
}

// Q6_K stores d last; the group puts the eight d first, the scale words, then the values re-packed (see
// quant-dot.h) in 16 steps of three 32-byte slots, the order the kernel reads them.
void repack_q6_k_x8(const uint8_t* rows, uint64_t row_bytes, int64_t k, uint8_t* group) {
  for (int64_t b = 0; b < k / QKK; ++b, group += Q6_K_X8_BLOCK) {
    for (int r = 0; r < 8; ++r) {
      const uint8_t* blk = rows + uint64_t(r) * row_bytes + uint64_t(b) * quants::Q6_K_BYTES;
      std::memcpy(group + 2 * r, blk + 208, 2);
      for (int w = 0; w < 4; ++w) std::memcpy(group + 16 + 32 * w + 4 * r, blk + 192 + 4 * w, 4);
      for (int c = 0; c < 2; ++c)
        for (int i = 0; i < 32; ++i) {
          const uint8_t l0 = blk[64 * c + i], l1 = blk[64 * c + 32 + i], h = blk[128 + 32 * c + i];
          const int v0 = (l0 & 0xF) | ((h & 3) << 4), v1 = (l1 & 0xF) | (((h >> 2) & 3) << 4);
          const int v2 = (l0 >> 4) | (((h >> 4) & 3) << 4), v3 = (l1 >> 4) | ((h >> 6) << 4);
          uint8_t* slot = group + Q6K_X8_Q + 96 * uint64_t(8 * c + i / 4) + 4 * r + i % 4;
          slot[0] = uint8_t(v0 | ((v3 & 3) << 6));
          slot[32] = uint8_t(v1 | (((v3 >> 2) & 3) << 6));
          slot[64] = uint8_t(v2 | ((v3 >> 4) << 6));
        }
    }
  }
}

void unpack_q6_k_x8(const uint8_t* group, int64_t k, int r, uint8_t* row) {
  for (int64_t b = 0; b < k / QKK; ++b, group += Q6_K_X8_BLOCK, row += quants::Q6_K_BYTES) {
    std::memcpy(row + 208, group + 2 * r, 2);
    for (int w = 0; w < 4; ++w) std::memcpy(row + 192 + 4 * w, group + 16 + 32 * w + 4 * r, 4);
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < 32; ++i) {
        const uint8_t* slot = group + Q6K_X8_Q + 96 * uint64_t(8 * c + i / 4) + 4 * r + i % 4;
        const int v0 = slot[0] & 63, v1 = slot[32] & 63, v2 = slot[64] & 63;
        const int v3 = (slot[0] >> 6) | ((slot[32] >> 6) << 2) | ((slot[64] >> 6) << 4);
        row[64 * c + i] = uint8_t((v0 & 0xF) | ((v2 & 0xF) << 4));
        row[64 * c + 32 + i] = uint8_t((v1 & 0xF) | ((v3 & 0xF) << 4));
        row[128 + 32 * c + i] = uint8_t((v0 >> 4) | ((v1 >> 4) << 2) | ((v2 >> 4) << 4) | ((v3 >> 4) << 6));
      }
  }
}

const QuantDotX8* quant_dot_x8_for(GgmlType type) {
  const auto* v = table().x8_of(type);
  return v && v->size() > 1 && v->back().decode ? &v->back() : nullptr;
}

const QuantDotX8* quant_dot_x8_generic_for(GgmlType type) {
  const auto* v = table().x8_of(type);
  return v ? &v->front() : nullptr;
}

std::vector<const QuantDotX8*> quant_dot_x8_variants(GgmlType type) {
  std::vector<const QuantDotX8*> out;
  if (const auto* v = table().x8_of(type))
    for (const QuantDotX8& q : *v) out.push_back(&q);
  return out;
}

std::vector<const QuantDot*> quant_dot_variants(GgmlType type) {
  std::vector<const QuantDot*> out;
  if (const auto* v = table().of(type))
    for (const QuantDot& q : *v) out.push_back(&q);
  return out;
}

}  // namespace hearth::cpu
