/* AdamW, clipping by the global gradient norm, and the learning-rate schedules.
 *
 * Non-obvious choice: the AdamW update is written in F32 in exactly the order of torch.optim.AdamW's
 * single-tensor path (torch 1.13, the CPU default), fused multiply-adds where torch's AVX2 kernels
 * fuse them: p *= f32(1 - lr·wd); m = fma(g, 1-b1, m·b1); v = fma((1-b2)·g, g, v·b2);
 * denom = sqrt(v) / f32(sqrt(bc2)) + eps; p += (f32(-lr/bc1)·m) / denom, with the bias corrections and
 * the step size computed in double as Python does. The result is PyTorch's bit for bit in the reference
 * test, not just within a tolerance. The global norm is a sum of squares in double over fixed blocks added in
 * a fixed order, so it does not depend on the thread count.
 */
#include "hearth/trainer/optim.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace hearth::train {

namespace {
// Elements per partial sum of the gradient norm: the block grid is fixed, only the assignment of
// blocks to threads varies, and blocks are added in index order afterwards.
constexpr int64_t NORM_BLOCK = 8192;
}  // namespace

AdamW::AdamW(const std::vector<Param*>& params, const AdamWSettings& s) : m_params(params), m_s(s) {
  m_m.resize(params.size());
  m_v.resize(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    m_m[i].assign(size_t(params[i]->numel()), 0.0f);
    m_v[i].assign(size_t(params[i]->numel()), 0.0f);
  }
}

namespace {

struct AdamWConsts {
  float keep;  // 1 - lr·wd (1 when the param has no decay)
  bool decay;
  float b1, one_b1, b2, one_b2, bc2_sqrt, eps, neg_step;
};

// The element loop. Cloned for CPUs with FMA (and a default that calls fmaf): both give the same
// bits, since std::fma rounds once either way; only the speed differs. Nothing else in here can be
// contracted into an FMA (every other sum has a quotient or a lone product on one side).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("fma", "default")))
#endif
void adamw_kernel(float* w, const float* g, float* m, float* v, int64_t begin, int64_t end, const AdamWConsts& c) {
  for (int64_t j = begin; j < end; ++j) {
    float pj = w[j];
    if (c.decay) pj = pj * c.keep;  // torch: param.mul_(1 - lr * weight_decay)
    const float gj = g[j];
    const float mj = std::fma(gj, c.one_b1, m[j] * c.b1);        // exp_avg.mul_(b1).add_(g, alpha=1-b1)
    const float vj = std::fma(c.one_b2 * gj, gj, v[j] * c.b2);   // exp_avg_sq.mul_(b2).addcmul_(g, g, 1-b2)
    m[j] = mj;
    v[j] = vj;
    const float denom = std::sqrt(vj) / c.bc2_sqrt + c.eps;      // (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
    w[j] = pj + (c.neg_step * mj) / denom;                       // param.addcdiv_(exp_avg, denom, -step_size)
  }
}

constexpr int64_t ADAMW_CHUNK = 16384;

}  // namespace

void AdamW::step(double lr) {
  ++m_t;
  const double bc1 = 1.0 - std::pow(m_s.beta1, double(m_t));
  const double bc2 = 1.0 - std::pow(m_s.beta2, double(m_t));
  AdamWConsts c{};
  c.neg_step = float(-(lr / bc1));
  c.bc2_sqrt = float(std::sqrt(bc2));
  c.b1 = float(m_s.beta1);
  c.one_b1 = float(1.0 - m_s.beta1);
  c.b2 = float(m_s.beta2);
  c.one_b2 = float(1.0 - m_s.beta2);
  c.eps = float(m_s.eps);
  for (size_t i = 0; i < m_params.size(); ++i) {
    Param& p = *m_params[i];
    const int64_t n = p.numel();
    if (int64_t(p.value.size()) < n || int64_t(p.grad.size()) < n) continue;  // no grad: nothing to do
    const double wd = p.decay ? m_s.weight_decay : 0.0;
    AdamWConsts ci = c;
    ci.keep = float(1.0 - lr * wd);
    ci.decay = wd != 0.0;
    float* w = p.value.data();
    const float* g = p.grad.data();
    float* m = m_m[i].data();
    float* v = m_v[i].data();
    const int64_t chunks = (n + ADAMW_CHUNK - 1) / ADAMW_CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t k = 0; k < chunks; ++k)
      adamw_kernel(w, g, m, v, k * ADAMW_CHUNK, std::min(n, (k + 1) * ADAMW_CHUNK), ci);
  }
}

double clip_grad_norm(const std::vector<Param*>& params, double max_norm) {
  // Partial sums of squares per (param, block), then added in order.
  std::vector<std::pair<const Param*, int64_t>> blocks;  // (param, first element)
  for (const Param* p : params) {
    const int64_t n = std::min<int64_t>(p->numel(), int64_t(p->grad.size()));
    for (int64_t b = 0; b < n; b += NORM_BLOCK) blocks.emplace_back(p, b);
  }
  std::vector<double> partial(blocks.size(), 0.0);
  const int64_t nb = int64_t(blocks.size());
#pragma omp parallel for schedule(static) if (nb > 4)
  for (int64_t k = 0; k < nb; ++k) {
    const Param* p = blocks[size_t(k)].first;
    const int64_t begin = blocks[size_t(k)].second;
    const int64_t end = std::min<int64_t>(begin + NORM_BLOCK, std::min<int64_t>(p->numel(), int64_t(p->grad.size())));
    double s = 0.0;
    for (int64_t j = begin; j < end; ++j) s += double(p->grad[size_t(j)]) * double(p->grad[size_t(j)]);
    partial[size_t(k)] = s;
  }
  double sum = 0.0;
  for (double s : partial) sum += s;
  const double norm = std::sqrt(sum);
  if (max_norm > 0.0 && std::isfinite(norm)) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) {
      const float c = float(coef);
      for (Param* p : params) {
        const int64_t n = std::min<int64_t>(p->numel(), int64_t(p->grad.size()));
        float* g = p->grad.data();
#pragma omp parallel for schedule(static) if (n > 32768)
        for (int64_t j = 0; j < n; ++j) g[j] *= c;
      }
    }
  }
  return norm;
}

double learning_rate(ScheduleKind kind, double lr, int64_t step, int64_t total, int64_t warmup,
                     double min_lr_ratio) {
  if (step < 0) step = 0;
  if (warmup > 0 && step < warmup) return lr * double(step + 1) / double(warmup);
  if (kind == ScheduleKind::constant) return lr;
  // Progress through the decay: 0 at the first step after warmup, 1 at the last step (total - 1).
  const int64_t span = total - 1 - std::max<int64_t>(warmup, 0);
  double progress = span > 0 ? double(step - std::max<int64_t>(warmup, 0)) / double(span) : 0.0;
  progress = std::clamp(progress, 0.0, 1.0);
  const double r = min_lr_ratio;
  if (kind == ScheduleKind::linear) return lr * (r + (1.0 - r) * (1.0 - progress));
  return lr * (r + (1.0 - r) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
}

}  // namespace hearth::train
