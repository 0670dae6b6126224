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
 * K-quants are not here yet: they use the dequantize-tile F32 path.
 */
#include "quant-dot.h"

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

__attribute__((target("avx2,fma,f16c"))) float dot_q8_0_avx2(const uint8_t* w, const uint8_t* a, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / QK; ++b, w += quants::Q8_0_BYTES, a += ACT_BYTES) {
    float da;
    std::memcpy(&da, a, 4);
    __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2));
    __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 4));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half_f16c(w) * da), mul_sum_i8(qw, qa), acc);
  }
  return hsum(acc);
}

__attribute__((target("avx2,fma,f16c"))) float dot_q4_0_avx2(const uint8_t* w, const uint8_t* a, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  const __m256i low = _mm256_set1_epi8(0xF), eight = _mm256_set1_epi8(8);
  for (int64_t b = 0; b < n / QK; ++b, w += quants::Q4_0_BYTES, a += ACT_BYTES) {
    float da;
    std::memcpy(&da, a, 4);
    __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2));
    __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(raw), _mm_srli_epi16(raw, 4), 1);
    __m256i qw = _mm256_sub_epi8(_mm256_and_si256(both, low), eight);
    __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 4));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half_f16c(w) * da), mul_sum_i8(qw, qa), acc);
  }
  return hsum(acc);
}
#endif

struct Table {
  QuantDot q8_0{GgmlType::Q8_0, QK, ACT_BYTES, quantize_act_q8, dot_q8_0_generic};
  QuantDot q4_0{GgmlType::Q4_0, QK, ACT_BYTES, quantize_act_q8, dot_q4_0_generic};
  Table() {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
      q8_0.dot = dot_q8_0_avx2;
      q4_0.dot = dot_q4_0_avx2;
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
    case GgmlType::Q8_0: return &table().q8_0;
    case GgmlType::Q4_0: return &table().q4_0;
    default: return nullptr;
  }
}

const QuantDot* quant_dot_generic_for(GgmlType type) {
  static const QuantDot q8{GgmlType::Q8_0, QK, ACT_BYTES, quantize_act_q8, dot_q8_0_generic};
  static const QuantDot q4{GgmlType::Q4_0, QK, ACT_BYTES, quantize_act_q8, dot_q4_0_generic};
  switch (type) {
    case GgmlType::Q8_0: return &q8;
    case GgmlType::Q4_0: return &q4;
    default: return nullptr;
  }
}

}  // namespace hearth::cpu
