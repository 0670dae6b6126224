/* The trainer's attention on the CPU: rotary embedding (both pair layouts, the engine's frequencies)
 * and causal grouped-query attention, forward and backward.
 *
 * Non-obvious choices:
 * - Attention works per (batch, head, block of query rows) with single-threaded sgemm calls inside
 *   an OpenMP loop: the block of rows [r0, r1) only needs keys [0, r1), so the causal half of the T×T
 *   product is (mostly) skipped, and each (batch, head) result comes from one fixed sequence of sgemm
 *   calls, so it is the same for any thread count (OpenBLAS itself always runs single-threaded).
 * - The backward pass is split by (batch, head). With grouped KV heads, each query head's dK/dV share
 *   goes to its own scratch slice and the group is summed afterwards in head order: no atomics, a fixed
 *   order, and B·n_head work items even when B·n_head_kv is smaller than the thread count.
 * - RoPE angles are position × frequency in double, as engine/src/model-llama.cpp computes them.
 */
#include "ops-internal.h"  // first: sets the file's float options

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace hearth::train::ops {

namespace {

constexpr int64_t Q_BLOCK = 64;  // query rows per sgemm block

// cos/sin of t · f_i for t < T, as (T, half) tables; the last one is kept per thread, since a training
// step rotates q and k of every layer with the same positions and frequencies.
struct RopeTable {
  int64_t T = 0;
  std::vector<double> freq;
  std::vector<float> cos, sin;
};

template <class F>
const RopeTable& rope_table(int64_t T, int64_t half, const std::vector<F>& inv_freq, int nt) {
  thread_local RopeTable tab;
  bool same = tab.T == T && int64_t(tab.freq.size()) == half;
  for (int64_t i = 0; same && i < half; ++i) same = tab.freq[size_t(i)] == double(inv_freq[size_t(i)]);
  if (same) return tab;
  tab.T = T;
  tab.freq.assign(inv_freq.begin(), inv_freq.begin() + half);
  tab.cos.resize(size_t(T * half));
  tab.sin.resize(size_t(T * half));
  float* cs = tab.cos.data();
  float* sn = tab.sin.data();
  const double* fr = tab.freq.data();
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double a = double(t) * fr[i];  // in double, as the engine's RoPE
      cs[t * half + i] = float(std::cos(a));
      sn[t * half + i] = float(std::sin(a));
    }
  return tab;
}

template <class F>
void rope_apply(float* x, int64_t B, int64_t T, int64_t n_heads, int64_t head_dim, const std::vector<F>& inv_freq,
                RopeLayout layout, bool inverse) {
  const int64_t half = head_dim / 2;
  if (head_dim % 2 != 0)
    throw std::invalid_argument("rope: head_dim " + std::to_string(head_dim) + " is odd");
  if (int64_t(inv_freq.size()) < half)
    throw std::invalid_argument("rope: " + std::to_string(inv_freq.size()) + " frequencies given, " +
                                std::to_string(half) + " expected (head_dim/2)");
  if (B <= 0 || T <= 0 || half == 0 || n_heads <= 0) return;
  const int nt = detail::threads_for(B * T * n_heads * head_dim * 2);
  const RopeTable& tab = rope_table(T, half, inv_freq, detail::threads_for(T * half * 64));
  const bool inter = layout == RopeLayout::interleaved;
  const float sgn = inverse ? -1.0f : 1.0f;
  const int64_t rows = B * T;
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t r = 0; r < rows; ++r) {
    const float* c = tab.cos.data() + (r % T) * half;
    const float* sn = tab.sin.data() + (r % T) * half;
    float s[512];  // sin with the direction's sign (half <= 512 in any model; checked below)
    const int64_t hs = std::min<int64_t>(half, 512);
    for (int64_t i = 0; i < hs; ++i) s[i] = sn[i] * sgn;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* hv = x + (r * n_heads + h) * head_dim;
      if (half > 512) {  // never in practice: plain loop
        for (int64_t i = 0; i < half; ++i) {
          const int64_t i0 = inter ? 2 * i : i, i1 = inter ? 2 * i + 1 : i + half;
          const float x0 = hv[i0], x1 = hv[i1], si = sn[i] * sgn;
          hv[i0] = x0 * c[i] - x1 * si;
          hv[i1] = x0 * si + x1 * c[i];
        }
      } else if (inter) {
        for (int64_t i = 0; i < half; ++i) {
          const float x0 = hv[2 * i], x1 = hv[2 * i + 1];
          hv[2 * i] = x0 * c[i] - x1 * s[i];
          hv[2 * i + 1] = x0 * s[i] + x1 * c[i];
        }
      } else {
        float* lo = hv;
        float* hi = hv + half;
        for (int64_t i = 0; i < half; ++i) {
          const float x0 = lo[i], x1 = hi[i];
          lo[i] = x0 * c[i] - x1 * s[i];
          hi[i] = x0 * s[i] + x1 * c[i];
        }
      }
    }
  }
}

std::vector<double> base_inv_freq(const ModelParams& p, const std::vector<float>& divisors) {
  if (p.head_dim < 2) return {};
  const int64_t half = p.head_dim / 2;
  std::vector<double> f;
  f.reserve(size_t(half));
  const double pos_scale = p.rope_scaling.kind == RopeScalingKind::linear && p.rope_scaling.factor > 0
                               ? 1.0 / double(p.rope_scaling.factor)
                               : 1.0;
  for (int64_t i = 0; i < half; ++i) {
    double v = std::pow(double(p.rope_theta), -2.0 * double(i) / double(p.head_dim));
    if (size_t(i) < divisors.size()) v /= double(divisors[size_t(i)]);
    f.push_back(v * pos_scale);
  }
  return f;
}

void check_attention_shape(int64_t n_head, int64_t n_head_kv) {
  if (n_head <= 0 || n_head_kv <= 0 || n_head % n_head_kv != 0)
    throw std::invalid_argument("attention: n_head " + std::to_string(n_head) +
                                " is not a multiple of n_head_kv " + std::to_string(n_head_kv));
}

}  // namespace

void rope_forward(float* x, int64_t B, int64_t T, int64_t n_heads, int64_t head_dim,
                  const std::vector<float>& inv_freq, RopeLayout layout) {
  rope_apply(x, B, T, n_heads, head_dim, inv_freq, layout, false);
}
void rope_backward(float* dx, int64_t B, int64_t T, int64_t n_heads, int64_t head_dim,
                   const std::vector<float>& inv_freq, RopeLayout layout) {
  rope_apply(dx, B, T, n_heads, head_dim, inv_freq, layout, true);
}
void rope_forward(float* x, int64_t B, int64_t T, int64_t n_heads, int64_t head_dim,
                  const std::vector<double>& inv_freq, RopeLayout layout) {
  rope_apply(x, B, T, n_heads, head_dim, inv_freq, layout, false);
}
void rope_backward(float* dx, int64_t B, int64_t T, int64_t n_heads, int64_t head_dim,
                   const std::vector<double>& inv_freq, RopeLayout layout) {
  rope_apply(dx, B, T, n_heads, head_dim, inv_freq, layout, true);
}

std::vector<double> rope_inv_freq_f64(const ModelParams& p) {
  std::vector<float> divisors;
  if (p.rope_scaling.kind == RopeScalingKind::llama3) {
    if (!(p.rope_scaling.factor > 0) || p.rope_scaling.original_ctx <= 0)
      throw std::invalid_argument(
          "rope: llama3 scaling without factor/original context; use the model file's frequency factors "
          "(rope_inv_freq(ModelDesc))");
    divisors = rope_freq_factors(p);
  }
  return base_inv_freq(p, divisors);
}
std::vector<double> rope_inv_freq_f64(const ModelDesc& md) {
  return base_inv_freq(md.params, md.rope_freq_factors);
}
std::vector<float> rope_inv_freq(const ModelParams& p) {
  auto d = rope_inv_freq_f64(p);
  return std::vector<float>(d.begin(), d.end());
}
std::vector<float> rope_inv_freq(const ModelDesc& md) {
  auto d = rope_inv_freq_f64(md);
  return std::vector<float>(d.begin(), d.end());
}

void attention_forward(float* out, float* att, const float* q, const float* k, const float* v, int64_t B,
                       int64_t T, int64_t n_head, int64_t n_head_kv, int64_t hd) {
  check_attention_shape(n_head, n_head_kv);
  if (B <= 0 || T <= 0 || hd <= 0) return;
  const int nt = detail::threads_for(B * n_head * T * T * hd);
  const int64_t qs = n_head * hd, ks = n_head_kv * hd, group = n_head / n_head_kv;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const int64_t n_qblocks = (T + Q_BLOCK - 1) / Q_BLOCK;
  // Work items are (batch, head, query block); round-robin, since later blocks see more keys.
#pragma omp parallel for schedule(static, 1) num_threads(nt)
  for (int64_t w = 0; w < B * n_head * n_qblocks; ++w) {
    const int64_t bh = w / n_qblocks, r0 = (w % n_qblocks) * Q_BLOCK;
    const int64_t b = bh / n_head, h = bh % n_head, kh = h / group;
    const float* qb = q + b * T * qs + h * hd;
    const float* kb = k + b * T * ks + kh * hd;
    const float* vb = v + b * T * ks + kh * hd;
    float* ob = out + b * T * qs + h * hd;
    const int64_t m = std::min(Q_BLOCK, T - r0), ncols = r0 + m;
    float* Pb = att + bh * T * T + r0 * T;
    // S (m, ncols) = scale · Q[r0:r0+m] · K[0:ncols]^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(m), blasint(ncols), blasint(hd), scale,
                qb + r0 * qs, blasint(qs), kb, blasint(ks), 0.0f, Pb, blasint(T));
    for (int64_t i = 0; i < m; ++i) {
      float* pr = Pb + i * T;
      const int64_t valid = r0 + i + 1;  // causal: row t sees keys 0..t
      const float mx = detail::max_f32(pr, valid);
      const double sum = detail::exp_shift_sum(pr, valid, mx);
      const float inv = float(1.0 / sum);
      for (int64_t j = 0; j < valid; ++j) pr[j] *= inv;
      std::fill(pr + valid, pr + T, 0.0f);
    }
    // O[r0:r0+m] = P (m, ncols) · V[0:ncols]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(m), blasint(hd), blasint(ncols), 1.0f, Pb,
                blasint(T), vb, blasint(ks), 0.0f, ob + r0 * qs, blasint(qs));
  }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* att, const float* q,
                        const float* k, const float* v, int64_t B, int64_t T, int64_t n_head,
                        int64_t n_head_kv, int64_t hd) {
  check_attention_shape(n_head, n_head_kv);
  if (B <= 0 || T <= 0 || hd <= 0) return;
  if (!dq && !dk && !dv) return;
  const int nt = detail::threads_for(B * n_head * T * T * hd);
  const int64_t qs = n_head * hd, ks = n_head_kv * hd, group = n_head / n_head_kv;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  // With grouped KV heads, each query head writes its dK/dV share to its own (T, hd) slice, summed over
  // the group afterwards in head order: every (batch, head) is then an independent work item.
  thread_local std::vector<float> group_scratch;
  float* tk = nullptr;
  float* tv = nullptr;
  if (group > 1 && (dk || dv)) {
    const size_t per = size_t(B * n_head * T * hd);
    const size_t need = per * ((dk ? 1 : 0) + (dv ? 1 : 0));
    if (group_scratch.size() < need) group_scratch.resize(need);  // each work item zeroes its own slices
    tk = dk ? group_scratch.data() : nullptr;
    tv = dv ? group_scratch.data() + (dk ? per : 0) : nullptr;
  }
#pragma omp parallel num_threads(nt)
  {
    std::vector<float> ds(size_t(std::min(Q_BLOCK, T) * T));
#pragma omp for schedule(static)
    for (int64_t w = 0; w < B * n_head; ++w) {
      const int64_t b = w / n_head, h = w % n_head, kh = h / group;
      const float* kb = k + b * T * ks + kh * hd;
      const float* vb = v + b * T * ks + kh * hd;
      // dK/dV targets: the tensors themselves (stride ks), or this head's slice (stride hd).
      float* dkb = group > 1 ? (tk ? tk + w * T * hd : nullptr) : (dk ? dk + b * T * ks + kh * hd : nullptr);
      float* dvb = group > 1 ? (tv ? tv + w * T * hd : nullptr) : (dv ? dv + b * T * ks + kh * hd : nullptr);
      const int64_t kvs = group > 1 ? hd : ks;
      if (group > 1) {
        if (dkb) std::fill(dkb, dkb + T * hd, 0.0f);
        if (dvb) std::fill(dvb, dvb + T * hd, 0.0f);
      }
      const float* qb = q + b * T * qs + h * hd;
      const float* dob = dout + b * T * qs + h * hd;
      float* dqb = dq ? dq + b * T * qs + h * hd : nullptr;
      const float* P = att + w * T * T;
      for (int64_t r0 = 0; r0 < T; r0 += Q_BLOCK) {
        const int64_t m = std::min(Q_BLOCK, T - r0), ncols = r0 + m;
        const float* Pb = P + r0 * T;
        const float* dOb = dob + r0 * qs;
        // dV[0:ncols] += P^T (ncols, m) · dO (m, hd)
        if (dvb)
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, blasint(ncols), blasint(hd), blasint(m), 1.0f, Pb,
                      blasint(T), dOb, blasint(qs), 1.0f, dvb, blasint(kvs));
        if (!dqb && !dkb) continue;
        // dP (m, ncols) = dO · V^T, then dS = P ⊙ (dP - Σ_j P dP) (softmax backward, row by row).
        float* dS = ds.data();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(m), blasint(ncols), blasint(hd), 1.0f, dOb,
                    blasint(qs), vb, blasint(ks), 0.0f, dS, blasint(ncols));
        for (int64_t i = 0; i < m; ++i) {
          const float* pr = Pb + i * T;
          float* sr = dS + i * ncols;
          const int64_t valid = r0 + i + 1;
          const float d = float(detail::dot_f64(pr, sr, valid));
          for (int64_t j = 0; j < valid; ++j) sr[j] = pr[j] * (sr[j] - d);
          std::fill(sr + valid, sr + ncols, 0.0f);
        }
        // dQ[r0:r0+m] += scale · dS · K[0:ncols]
        if (dqb)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(m), blasint(hd), blasint(ncols), scale, dS,
                      blasint(ncols), kb, blasint(ks), 1.0f, dqb + r0 * qs, blasint(qs));
        // dK[0:ncols] += scale · dS^T · Q[r0:r0+m]
        if (dkb)
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, blasint(ncols), blasint(hd), blasint(m), scale, dS,
                      blasint(ncols), qb + r0 * qs, blasint(qs), 1.0f, dkb, blasint(kvs));
      }
    }
    if (group > 1) {
      // dK/dV (b, t, kh, :) += Σ over the group's heads in order; rows split over threads.
#pragma omp for schedule(static)
      for (int64_t bt = 0; bt < B * T; ++bt) {
        const int64_t b = bt / T, t = bt % T;
        for (int which = 0; which < 2; ++which) {
          const float* tmp = which == 0 ? tk : tv;
          float* dst = which == 0 ? dk : dv;
          if (!tmp) continue;
          for (int64_t kh = 0; kh < n_head_kv; ++kh) {
            float* o = dst + (b * T + t) * ks + kh * hd;
            const float* s0 = tmp + ((b * n_head + kh * group) * T + t) * hd;
            for (int64_t i = 0; i < hd; ++i) {
              float acc = s0[i];
              for (int64_t g = 1; g < group; ++g) acc += s0[g * T * hd + i];
              o[i] += acc;
            }
          }
        }
      }
    }
  }
}

}  // namespace hearth::train::ops
