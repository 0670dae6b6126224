/* The KV cache (see kv-cache.h).
 *
 * Non-obvious choice: F16 values are converted to F32 per element inside the attention dot products
 * (F16C where the CPU has it) instead of converting whole rows into a scratch buffer: attention reads
 * each cached value once per head, so a separate conversion pass would only add memory traffic.
 */
#include "kv-cache.h"

#include "../cpu/cpu-features.h"
#include <algorithm>
#include <cstring>

#include "quants.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace hearth {

namespace {

float dot_f16_generic(const uint16_t* k, const float* q, int64_t n) {
  const float* t = quants::half_table();
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += t[k[i]] * q[i];
    s1 += t[k[i + 1]] * q[i + 1];
    s2 += t[k[i + 2]] * q[i + 2];
    s3 += t[k[i + 3]] * q[i + 3];
  }
  float r = (s0 + s1) + (s2 + s3);
  for (; i < n; ++i) r += t[k[i]] * q[i];
  return r;
}
void axpy_f16_generic(float w, const uint16_t* v, float* out, int64_t n) {
  const float* t = quants::half_table();
  for (int64_t i = 0; i < n; ++i) out[i] += w * t[v[i]];
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma,f16c"))) float dot_f16_avx2(const uint16_t* k, const float* q, int64_t n) {
  __m256 s = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    s = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + i))),
                        _mm256_loadu_ps(q + i), s);
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  float r = _mm_cvtss_f32(h);
  const float* t = quants::half_table();
  for (; i < n; ++i) r += t[k[i]] * q[i];
  return r;
}
__attribute__((target("avx2,fma,f16c"))) void axpy_f16_avx2(float w, const uint16_t* v, float* out, int64_t n) {
  __m256 wv = _mm256_set1_ps(w);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i,
                     _mm256_fmadd_ps(wv, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i))),
                                     _mm256_loadu_ps(out + i)));
  const float* t = quants::half_table();
  for (; i < n; ++i) out[i] += w * t[v[i]];
}
#endif

struct F16Kernels {
  float (*dot)(const uint16_t*, const float*, int64_t) = dot_f16_generic;
  void (*axpy)(float, const uint16_t*, float*, int64_t) = axpy_f16_generic;
  F16Kernels() {
#if defined(__x86_64__)
    if (cpu::has_avx2_fma_f16c()) {
      dot = dot_f16_avx2;
      axpy = axpy_f16_avx2;
    }
#endif
  }
};
const F16Kernels& f16k() {
  static const F16Kernels k;
  return k;
}

}  // namespace

const char* kv_type_name(KvType t) { return t == KvType::f16 ? "f16" : "f32"; }

KvCache::KvCache(int64_t n_layer, int64_t n_ctx, int64_t row_len, KvType type)
    : m_n_layer(n_layer), m_n_ctx(n_ctx), m_row_len(row_len), m_type(type),
      m_elem(type == KvType::f16 ? 2 : 4), m_k(size_t(n_layer)), m_v(size_t(n_layer)) {}

void KvCache::ensure(int64_t n_pos) {
  if (n_pos <= m_capacity) return;
  int64_t cap = std::max<int64_t>(m_capacity * 2, 256);
  cap = std::min(std::max(cap, n_pos), m_n_ctx);
  size_t bytes = size_t(cap) * size_t(m_row_len) * m_elem;
  for (int64_t l = 0; l < m_n_layer; ++l) {
    m_k[size_t(l)].resize(bytes);
    m_v[size_t(l)].resize(bytes);
  }
  m_capacity = cap;
}

uint64_t KvCache::bytes() const { return uint64_t(2) * uint64_t(m_n_layer) * uint64_t(m_capacity) * m_row_len * m_elem; }

void KvCache::store(std::vector<uint8_t>& buf, int64_t pos, const float* row) {
  uint8_t* dst = buf.data() + size_t(pos) * size_t(m_row_len) * m_elem;
  if (m_type == KvType::f32) {
    std::memcpy(dst, row, size_t(m_row_len) * 4);
  } else {
    auto* h = reinterpret_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < m_row_len; ++i) h[i] = quants::float_to_half(row[i]);
  }
}

void KvCache::store_k(int64_t layer, int64_t pos, const float* row) { store(m_k[size_t(layer)], pos, row); }
void KvCache::store_v(int64_t layer, int64_t pos, const float* row) { store(m_v[size_t(layer)], pos, row); }

float KvCache::dot_k(int64_t layer, int64_t pos, int64_t offset, const float* q, int64_t n) const {
  size_t idx = size_t(pos) * size_t(m_row_len) + size_t(offset);
  if (m_type == KvType::f32) {
    const float* k = reinterpret_cast<const float*>(m_k[size_t(layer)].data()) + idx;
    float s = 0;
    for (int64_t i = 0; i < n; ++i) s += k[i] * q[i];
    return s;
  }
  return f16k().dot(reinterpret_cast<const uint16_t*>(m_k[size_t(layer)].data()) + idx, q, n);
}

void KvCache::add_v(int64_t layer, int64_t pos, int64_t offset, float w, float* out, int64_t n) const {
  size_t idx = size_t(pos) * size_t(m_row_len) + size_t(offset);
  if (m_type == KvType::f32) {
    const float* v = reinterpret_cast<const float*>(m_v[size_t(layer)].data()) + idx;
    for (int64_t i = 0; i < n; ++i) out[i] += w * v[i];
    return;
  }
  f16k().axpy(w, reinterpret_cast<const uint16_t*>(m_v[size_t(layer)].data()) + idx, out, n);
}

}  // namespace hearth
