/* CPU kernels of the forward pass (see cpu-ops.h): tiled matrix products over stored weights, the F32
 * dot product with run-time AVX2/FMA dispatch, RMSNorm.
 *
 * Non-obvious choice: the SIMD variants are compiled with function-level target attributes and chosen
 * once by __builtin_cpu_supports, so one binary built for baseline x86-64 still uses AVX2 where present.
 */
#include "cpu-ops.h"

#include "cpu-features.h"
#include <cmath>
#include <cstring>
#include <vector>

#include "quant-dot.h"
#include "quants.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#ifdef HEARTH_HAVE_OPENBLAS
#include <cblas.h>
#include <mutex>
extern "C" void openblas_set_num_threads(int);
#endif

namespace hearth::cpu {

namespace {

float dot_generic(const float* a, const float* b, int64_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += a[i + j] * b[i + j];
  float r = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  for (; i < n; ++i) r += a[i] * b[i];
  return r;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) float dot_avx2(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(),
         s3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  float r = _mm_cvtss_f32(h);
  for (; i < n; ++i) r += a[i] * b[i];
  return r;
}

__attribute__((target("avx2,f16c"))) void f16_row_avx2(const uint8_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i))));
  for (; i < n; ++i) dst[i] = quants::load_half(src + 2 * i);
}
#endif

void f16_row_generic(const uint8_t* src, float* dst, int64_t n) {
  const float* t = quants::half_table();
  for (int64_t i = 0; i < n; ++i) dst[i] = t[quants::load_u16(src + 2 * i)];
}

struct Dispatch {
  float (*dot)(const float*, const float*, int64_t) = dot_generic;
  void (*f16_row)(const uint8_t*, float*, int64_t) = f16_row_generic;
  const char* level = "generic";
  Dispatch() {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      dot = dot_avx2;
      level = "avx2";
      if (cpu::has_f16c()) f16_row = f16_row_avx2;
    }
#endif
  }
};

const Dispatch& dispatch() {
  static const Dispatch d;
  return d;
}

constexpr int64_t ROW_TILE = 16;
constexpr int64_t SMALL_JOB = 1 << 15;
[[maybe_unused]] constexpr int64_t SGEMM_MIN_TOKENS = 8;
[[maybe_unused]] constexpr int64_t SGEMM_TILE = 128;

}  // namespace

const char* simd_level() { return dispatch().level; }

float dot_f32(const float* a, const float* b, int64_t n) { return dispatch().dot(a, b, n); }

void axpy_f32(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void dequantize_row(const MatView& w, int64_t r, float* dst) {
  const uint8_t* src = w.data + uint64_t(r) * w.row_bytes;
  switch (w.type) {
    case GgmlType::F32:
      std::memcpy(dst, src, size_t(w.row_len) * 4);
      return;
    case GgmlType::F16:
      dispatch().f16_row(src, dst, w.row_len);
      return;
    default: {
      auto ok = dequantize(w.type, src, dst, w.row_len);
      if (!ok) throw std::runtime_error(ok.error().message);
    }
  }
}

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  float scale = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
  if (w)
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
  else
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale;
}

void matmul(ThreadPool& pool, const MatView& w, const float* x, int64_t n_tok, float* y, bool quant_dot) {
  const int64_t k = w.row_len, n_rows = w.n_rows;
  // Below this many multiply-adds a job is cheaper than waking the other threads.
  ThreadPool single(1);
  ThreadPool& tp = n_rows * k * n_tok < SMALL_JOB ? single : pool;
  // Decoding (one token) with a quantized weight: dot the stored blocks against the activation
  // quantized once to Q8 (the memory-bound case; no F32 copy of the row).
  const QuantDot* qd = quant_dot && n_tok <= QUANT_DOT_MAX_TOKENS ? quant_dot_for(w.type) : nullptr;
  if (qd && k % qd->block == 0) {
    std::vector<uint8_t> xq(size_t(n_tok) * qd->act_row_bytes(k));
    for (int64_t t = 0; t < n_tok; ++t) qd->quantize_act(x + t * k, xq.data() + t * qd->act_row_bytes(k), k);
    tp.parallel_for(n_rows, [&](int64_t r0, int64_t r1) {
      for (int64_t t = 0; t < n_tok; ++t) {
        const uint8_t* a = xq.data() + t * qd->act_row_bytes(k);
        for (int64_t r = r0; r < r1; ++r) y[t * n_rows + r] = qd->dot(w.data + uint64_t(r) * w.row_bytes, a, k);
      }
    });
    return;
  }
  const bool direct_f32 = w.type == GgmlType::F32 && (reinterpret_cast<uintptr_t>(w.data) % 4) == 0;
#ifdef HEARTH_HAVE_OPENBLAS
  // Prompt batches: each thread dequantizes tiles of rows once and multiplies them with every token
  // through single-threaded sgemm (Hearth's pool already splits the rows).
  if (n_tok >= SGEMM_MIN_TOKENS) {
    static std::once_flag once;
    std::call_once(once, [] { openblas_set_num_threads(1); });
    tp.parallel_for(n_rows, [&](int64_t r0, int64_t r1) {
      thread_local std::vector<float> tile;
      if (!direct_f32 && tile.size() < size_t(SGEMM_TILE * k)) tile.resize(size_t(SGEMM_TILE * k));
      for (int64_t rt = r0; rt < r1; rt += SGEMM_TILE) {
        int64_t re = std::min(rt + SGEMM_TILE, r1);
        const float* rows;
        if (direct_f32) {
          rows = reinterpret_cast<const float*>(w.data + uint64_t(rt) * w.row_bytes);
        } else {
          for (int64_t r = rt; r < re; ++r) dequantize_row(w, r, tile.data() + (r - rt) * k);
          rows = tile.data();
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n_tok), int(re - rt), int(k), 1.0f, x, int(k), rows,
                    int(k), 0.0f, y + rt, int(n_rows));
      }
    });
    return;
  }
#endif
  tp.parallel_for(n_rows, [&](int64_t r0, int64_t r1) {
    thread_local std::vector<float> buf;
    if (!direct_f32 && buf.size() < size_t(ROW_TILE * k)) buf.resize(size_t(ROW_TILE * k));
    for (int64_t rt = r0; rt < r1; rt += ROW_TILE) {
      int64_t re = std::min(rt + ROW_TILE, r1);
      const float* rows;
      if (direct_f32) {
        rows = reinterpret_cast<const float*>(w.data + uint64_t(rt) * w.row_bytes);
      } else {
        for (int64_t r = rt; r < re; ++r) dequantize_row(w, r, buf.data() + (r - rt) * k);
        rows = buf.data();
      }
      for (int64_t t = 0; t < n_tok; ++t) {
        const float* xt = x + t * k;
        for (int64_t r = rt; r < re; ++r) y[t * n_rows + r] = dot_f32(rows + (r - rt) * k, xt, k);
      }
    }
  });
}

}  // namespace hearth::cpu
