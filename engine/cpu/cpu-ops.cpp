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
#include <map>
#include <mutex>
#include <stdexcept>
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
  thread_local std::vector<uint8_t> unpacked;
  if (w.x8) {
    if (unpacked.size() < w.row_bytes) unpacked.resize(w.row_bytes);
    const QuantDotX8* layout = quant_dot_x8_generic_for(w.type);
    if (!layout) throw std::runtime_error("interleaved rows of a type without an interleaved layout");
    layout->unpack(w.data + uint64_t(r / X8_ROWS * X8_ROWS) * w.row_bytes, w.row_len, int(r % X8_ROWS), unpacked.data());
    src = unpacked.data();
  }
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

namespace {

// A decode product: the kernel for its weights (row-at-a-time or eight interleaved rows) and the
// quantized activation it reads.
struct DecodeItem {
  const MatView* w = nullptr;
  float* y = nullptr;
  const QuantDot* qd = nullptr;
  const QuantDotX8* qx = nullptr;
  const uint8_t* act = nullptr;
};

// Rows [r0, r1) of an item; for x8 weights r0 and r1 are multiples of 8.
void decode_rows(const DecodeItem& it, int64_t r0, int64_t r1) {
  const MatView& w = *it.w;
  if (it.qx) {
    for (int64_t r = r0; r < r1; r += X8_ROWS) it.qx->dot8(w.data + uint64_t(r) * w.row_bytes, it.act, w.row_len, it.y + r);
  } else {
    for (int64_t r = r0; r < r1; ++r) it.y[r] = it.qd->dot(w.data + uint64_t(r) * w.row_bytes, it.act, w.row_len);
  }
}

// Kernels and activations for `items` (whose w and y are set): each distinct activation format is
// quantized once into `store`.
void prepare_decode(std::span<DecodeItem> items, const float* x, std::vector<std::vector<uint8_t>>& store) {
  struct Made {
    void (*fn)(const float*, uint8_t*, int64_t);
    int64_t k;
    const uint8_t* act;
  };
  std::vector<Made> made;
  for (DecodeItem& it : items) {
    const MatView& w = *it.w;
    void (*fn)(const float*, uint8_t*, int64_t);
    uint64_t bytes;
    if (w.x8) {
      it.qx = quant_dot_x8_for(w.type);
      fn = it.qx->quantize_act, bytes = it.qx->act_row_bytes(w.row_len);
    } else {
      it.qd = quant_dot_for(w.type);
      fn = it.qd->quantize_act, bytes = it.qd->act_row_bytes(w.row_len);
    }
    for (const Made& m : made)
      if (m.fn == fn && m.k == w.row_len) it.act = m.act;
    if (!it.act) {
      store.emplace_back(bytes);
      fn(x, store.back().data(), w.row_len);
      it.act = store.back().data();
      made.push_back({fn, w.row_len, it.act});
    }
  }
}

// Splits the rows of all items among the threads in proportion to the bytes they read, in units of eight
// rows (so interleaved groups stay whole), and calls fn(item index, r0, r1) for each thread's share.
template <class Fn>
void split_rows(int ti, int nt, std::span<const DecodeItem> items, const Fn& fn) {
  uint64_t total = 0;
  for (const DecodeItem& it : items) total += uint64_t(it.w->n_rows) * it.w->row_bytes;
  const uint64_t lo = total * uint64_t(ti) / uint64_t(nt), hi = total * uint64_t(ti + 1) / uint64_t(nt);
  uint64_t start = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const MatView& w = *items[i].w;
    const uint64_t unit = uint64_t(X8_ROWS) * w.row_bytes, units = (uint64_t(w.n_rows) + X8_ROWS - 1) / X8_ROWS;
    // Unit u belongs to the thread whose byte range holds the unit's first byte, start + u * unit.
    auto first_unit_at_or_after = [&](uint64_t pos) {
      return pos <= start ? uint64_t(0) : std::min(units, (pos - start + unit - 1) / unit);
    };
    const uint64_t u0 = first_unit_at_or_after(lo), u1 = first_unit_at_or_after(hi);
    if (u0 < u1) fn(i, int64_t(u0) * X8_ROWS, std::min(w.n_rows, int64_t(u1) * X8_ROWS));
    start += uint64_t(w.n_rows) * w.row_bytes;
  }
}

bool decodable(const MatView& w, bool quant_dot) {
  if (!quant_dot) return false;
  if (w.x8) return quant_dot_x8_for(w.type) != nullptr;
  const QuantDot* qd = quant_dot_for(w.type);
  return qd && w.row_len % qd->block == 0;
}

ThreadPool& pool_for(ThreadPool& pool, int64_t work) {
  static thread_local ThreadPool single(1);
  return work < SMALL_JOB ? single : pool;
}

}  // namespace

void matvec_multi(ThreadPool& pool, std::span<const MatView* const> ws, const float* x, std::span<float* const> ys,
                  bool quant_dot) {
  bool all = true;
  int64_t work = 0;
  for (const MatView* w : ws) all = all && decodable(*w, quant_dot), work += w->n_rows * w->row_len;
  if (!all) {
    for (size_t i = 0; i < ws.size(); ++i) matmul(pool, *ws[i], x, 1, ys[i], quant_dot);
    return;
  }
  std::vector<DecodeItem> items(ws.size());
  for (size_t i = 0; i < ws.size(); ++i) items[i].w = ws[i], items[i].y = ys[i];
  std::vector<std::vector<uint8_t>> acts;
  prepare_decode(items, x, acts);
  pool_for(pool, work).run([&](int ti, int nt) {
    split_rows(ti, nt, items, [&](size_t i, int64_t r0, int64_t r1) { decode_rows(items[i], r0, r1); });
  });
}

void matvec_swiglu(ThreadPool& pool, const MatView& gate, const MatView& up, const float* x, float* out,
                   bool quant_dot) {
  auto silu_mul = [](float g, float u) { return g / (1.0f + std::exp(-g)) * u; };
  thread_local std::vector<float> u;
  if (u.size() < size_t(up.n_rows)) u.resize(size_t(up.n_rows));
  if (!decodable(gate, quant_dot) || !decodable(up, quant_dot) || gate.n_rows != up.n_rows) {
    matmul(pool, gate, x, 1, out, quant_dot);
    matmul(pool, up, x, 1, u.data(), quant_dot);
    for (int64_t i = 0; i < gate.n_rows; ++i) out[i] = silu_mul(out[i], u[size_t(i)]);
    return;
  }
  DecodeItem items[2];
  items[0].w = &gate, items[0].y = out, items[1].w = &up, items[1].y = u.data();
  std::vector<std::vector<uint8_t>> acts;
  prepare_decode(items, x, acts);
  // Both matrices split by the gate's rows: a thread's rows of up are the ones its gate rows need.
  const DecodeItem split[] = {items[0]};
  float* uv = u.data();
  pool_for(pool, 2 * gate.n_rows * gate.row_len).run([&](int ti, int nt) {
    split_rows(ti, nt, split, [&](size_t, int64_t r0, int64_t r1) {
      decode_rows(items[0], r0, r1);
      decode_rows(items[1], r0, r1);
      for (int64_t i = r0; i < r1; ++i) out[i] = silu_mul(out[i], uv[i]);
    });
  });
}

bool decode_view(const MatView& w, ThreadPool& pool, MatView& out, std::shared_ptr<const void>& keep) {
  out = w;
  keep.reset();
  const QuantDotX8* qx = quant_dot_x8_for(w.type);
  if (w.x8 || !qx || w.n_rows % X8_ROWS != 0 || w.row_len % qx->block != 0) return false;
  // One copy per stored matrix, whichever session made it first; kept while any session holds it.
  static std::mutex mutex;
  static std::map<const uint8_t*, std::weak_ptr<const std::vector<uint8_t>>> copies;
  std::lock_guard<std::mutex> lock(mutex);
  std::shared_ptr<const std::vector<uint8_t>> copy = copies[w.data].lock();
  if (!copy) {
    auto made = std::make_shared<std::vector<uint8_t>>(uint64_t(w.n_rows) * w.row_bytes);
    const uint64_t group = uint64_t(X8_ROWS) * w.row_bytes;
    pool.parallel_for(w.n_rows / X8_ROWS, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) qx->repack(w.data + uint64_t(g) * group, w.row_bytes, w.row_len, made->data() + uint64_t(g) * group);
    });
    copy = made;
    copies[w.data] = copy;
    for (auto it = copies.begin(); it != copies.end();) it = it->second.expired() ? copies.erase(it) : std::next(it);
  }
  out.data = copy->data();
  out.x8 = true;
  keep = copy;
  return true;
}

void matmul(ThreadPool& pool, const MatView& w, const float* x, int64_t n_tok, float* y, bool quant_dot) {
  const int64_t k = w.row_len, n_rows = w.n_rows;
  // Below this many multiply-adds a job is cheaper than waking the other threads.
  ThreadPool& tp = pool_for(pool, n_rows * k * n_tok);
  // Decoding (one token) with a quantized weight: dot the stored blocks against the activation
  // quantized once to Q8 (the memory-bound case; no F32 copy of the row).
  if (n_tok == 1 && decodable(w, quant_dot)) {
    const MatView* ws[] = {&w};
    float* ys[] = {y};
    matvec_multi(tp, ws, x, ys, quant_dot);
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
