/* The trainer's matrix operations on the CPU: thread settings, gemm, Linear forward/backward and the
 * fused classifier (matmul + softmax + cross-entropy, chunked over rows).
 *
 * Non-obvious choices:
 * - Matrix products split C into a grid of blocks, one single-threaded OpenBLAS sgemm per OpenMP thread,
 *   instead of using OpenBLAS's own threads: a second thread pool would spin on the cores while the
 *   OpenMP loops between products run, and one pool keeps every op's threading in one place.
 * - Every reduction that OpenMP runs is split by OUTPUT element (a bias column, a row's loss), never by
 *   a thread-private partial summed afterwards, so no result depends on how the rows were shared out;
 *   the classifier's loss is summed per row first and then in row order.
 */
#include "ops-internal.h"  // first: sets the file's float options

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>

namespace hearth::train::ops {

namespace {
std::atomic<int> g_threads{0};
}  // namespace

void set_threads(int n) {
  if (n <= 0) n = std::max(1, omp_get_num_procs());
  g_threads.store(n);
  omp_set_num_threads(n);
  // OpenBLAS always runs single-threaded inside our OpenMP loops (see detail::sgemm): one pool of
  // threads, none left spinning while the other pool works.
  openblas_set_num_threads(1);
}

int threads() {
  int n = g_threads.load();
  if (n <= 0) {
    set_threads(0);  // first use without set_threads(): all of the machine's cores
    n = g_threads.load();
  }
  return n;
}

namespace detail {

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : c[i * ldc + j] * beta;
    return;
  }
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  const int nt = threads_for(m * n * k / 64);
  if (nt <= 1) {
    cblas_sgemm(CblasRowMajor, ta, tb, blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
                beta, c, blasint(ldc));
    return;
  }
  // A grid of pm × pn blocks of C, one per thread; each thread packs its rows of A and columns of B, so
  // the grid that minimises (m/pm + n/pn) packs least. Blocks are at least 16 wide where possible.
  int pm = 1, pn = 1;
  double best = 1e300;
  for (int d = 1; d <= nt; ++d) {
    if (nt % d != 0) continue;
    const int e = nt / d;
    if ((d > 1 && m / d < 16) || (e > 1 && n / e < 16)) continue;
    const double cost = double(m) / d + double(n) / e;
    if (cost < best) best = cost, pm = d, pn = e;
  }
  if (pm * pn == 1) {
    // Too small to split evenly by nt: split the longer side into as many 16-wide blocks as fit.
    if (m >= n)
      pm = int(std::clamp<int64_t>(m / 16, 1, nt));
    else
      pn = int(std::clamp<int64_t>(n / 16, 1, nt));
  }
  const int blocks = pm * pn;
#pragma omp parallel for schedule(static) num_threads(std::min(nt, blocks))
  for (int blk = 0; blk < blocks; ++blk) {
    const int bi = blk / pn, bj = blk % pn;
    // Boundaries on multiples of 16 (the kernels' widths) except the last.
    auto edge = [](int64_t len, int parts, int idx) {
      if (idx >= parts) return len;
      return std::min(len, (len * idx / parts + 8) / 16 * 16);
    };
    const int64_t i0 = edge(m, pm, bi), i1 = edge(m, pm, bi + 1);
    const int64_t j0 = edge(n, pn, bj), j1 = edge(n, pn, bj + 1);
    if (i1 <= i0 || j1 <= j0) continue;
    const float* ab = trans_a ? a + i0 : a + i0 * lda;
    const float* bb = trans_b ? b + j0 * ldb : b + j0;
    cblas_sgemm(CblasRowMajor, ta, tb, blasint(i1 - i0), blasint(j1 - j0), blasint(k), alpha, ab, blasint(lda), bb,
                blasint(ldb), beta, c + i0 * ldc + j0, blasint(ldc));
  }
}

}  // namespace detail

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          const float* b, float beta, float* c) {
  detail::sgemm(trans_a, trans_b, m, n, k, alpha, a, trans_a ? m : k, b, trans_b ? k : n, beta, c, n);
}

void linear_forward(float* y, const float* x, const float* w, const float* bias, int64_t n, int64_t in,
                    int64_t out, bool accumulate) {
  if (n <= 0 || out <= 0) return;
  const int nt = detail::threads_for(n * out);
  float beta = accumulate ? 1.0f : 0.0f;
  if (bias) {
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < n; ++r) {
      float* yr = y + r * out;
      if (accumulate)
        for (int64_t j = 0; j < out; ++j) yr[j] += bias[j];
      else
        for (int64_t j = 0; j < out; ++j) yr[j] = bias[j];
    }
    beta = 1.0f;
  }
  // y (n, out) = x (n, in) · w^T, w stored (out, in).
  gemm(false, true, n, out, in, 1.0f, x, w, beta, y);
}

void linear_backward(float* dx, float* dw, float* dbias, const float* dy, const float* x, const float* w,
                     int64_t n, int64_t in, int64_t out) {
  if (n <= 0) return;
  const int nt = detail::threads_for(n * out);
  if (dx) gemm(false, false, n, in, out, 1.0f, dy, w, 1.0f, dx);   // dx (n, in) += dy (n, out) · w (out, in)
  if (dw) gemm(true, false, out, in, n, 1.0f, dy, x, 1.0f, dw);    // dw (out, in) += dy^T · x
  if (dbias) {
    // Column sums, split by column blocks so each sum runs in row order on one thread.
    constexpr int64_t COLS = 64;
    const int64_t n_blocks = (out + COLS - 1) / COLS;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t blk = 0; blk < n_blocks; ++blk) {
      const int64_t c0 = blk * COLS, c1 = std::min(out, c0 + COLS);
      float acc[COLS] = {};
      for (int64_t r = 0; r < n; ++r) {
        const float* dyr = dy + r * out;
        for (int64_t j = c0; j < c1; ++j) acc[j - c0] += dyr[j];
      }
      for (int64_t j = c0; j < c1; ++j) dbias[j] += acc[j - c0];
    }
  }
}

double classifier_forward_backward(float* dx, float* dw, const float* x, const float* w, const int32_t* targets,
                                   int64_t n, int64_t d, int64_t vocab, float grad_scale, int64_t* n_counted,
                                   std::vector<float>& scratch, int64_t chunk) {
  if (chunk <= 0) chunk = 64;
  int64_t counted = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (targets[r] >= vocab)
      throw std::out_of_range("classifier: target " + std::to_string(targets[r]) + " at row " +
                              std::to_string(r) + " is outside the vocabulary of " + std::to_string(vocab));
    if (targets[r] >= 0) ++counted;
  }
  if (n_counted) *n_counted = counted;
  if (counted == 0 || n <= 0) return 0.0;

  const int nt = detail::threads_for(std::min(chunk, n) * vocab * 4);
  const bool want_grad = dx || dw;
  const float g = grad_scale / float(counted);
  chunk = std::min(chunk, n);
  if (scratch.size() < size_t(chunk * vocab)) scratch.resize(size_t(chunk * vocab));
  float* logits = scratch.data();
  std::vector<double> row_loss(size_t(chunk), 0.0);
  double total = 0.0;

  for (int64_t r0 = 0; r0 < n; r0 += chunk) {
    const int64_t m = std::min(chunk, n - r0);
    bool any = false;
    for (int64_t r = r0; r < r0 + m; ++r) any = any || targets[r] >= 0;
    if (!any) continue;
    gemm(false, true, m, vocab, d, 1.0f, x + r0 * d, w, 0.0f, logits);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < m; ++i) {
      float* lr = logits + i * vocab;
      const int32_t t = targets[r0 + i];
      if (t < 0) {
        row_loss[size_t(i)] = 0.0;
        if (want_grad) std::fill(lr, lr + vocab, 0.0f);
        continue;
      }
      const float mx = detail::max_f32(lr, vocab);
      const float lt = lr[t] - mx;
      const double sum = detail::exp_shift_sum(lr, vocab, mx);
      // loss = logsumexp - logit[target], both relative to the max so nothing overflows.
      row_loss[size_t(i)] = std::log(sum) - double(lt);
      if (want_grad) {
        const float scale = float(1.0 / sum) * g;
        for (int64_t j = 0; j < vocab; ++j) lr[j] *= scale;
        lr[t] -= g;
      }
    }
    for (int64_t i = 0; i < m; ++i) total += row_loss[size_t(i)];
    if (want_grad) {
      if (dx) gemm(false, false, m, d, vocab, 1.0f, logits, w, 1.0f, dx + r0 * d);  // dx += dlogits · W
      if (dw) gemm(true, false, vocab, d, m, 1.0f, logits, x + r0 * d, 1.0f, dw);   // dW += dlogits^T · x
    }
  }
  return total;
}

}  // namespace hearth::train::ops
