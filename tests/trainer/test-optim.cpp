/* Unit tests of the optimizer side: learning-rate schedules at their key points, AdamW's first step
 * and decoupled weight decay from the closed forms, clipping against an independent long-double norm,
 * and results that do not depend on the thread count. (Step-by-step agreement with PyTorch is in
 * optim-reference.cpp, label `reference`.)
 *
 * Non-obvious choice: expected schedule values are written from the formulas in docs/training.md, not
 * from calls to learning_rate(), so a change of the schedule has to change the documentation too.
 */
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <numbers>
#include <random>

#include "hearth/trainer/optim.h"

using namespace hearth::train;

namespace {

Param make_param(std::string name, std::vector<int64_t> shape, std::mt19937& rng, float scale, bool decay = true) {
  Param p;
  p.name = std::move(name);
  p.shape = std::move(shape);
  p.decay = decay;
  std::normal_distribution<float> d(0.0f, scale);
  p.value.resize(size_t(p.numel()));
  for (auto& x : p.value) x = d(rng);
  p.grad.resize(p.value.size());
  for (auto& x : p.grad) x = d(rng);
  return p;
}

double cosine(double lr, double r, double progress) {
  return lr * (r + (1 - r) * 0.5 * (1 + std::cos(std::numbers::pi * progress)));
}

}  // namespace

TEST(Schedule, WarmupRisesLinearlyToThePeakAtItsLastStep) {
  for (auto kind : {ScheduleKind::constant, ScheduleKind::linear, ScheduleKind::cosine}) {
    EXPECT_DOUBLE_EQ(learning_rate(kind, 0.4, 0, 100, 4, 0.0), 0.1) << schedule_name(kind);
    EXPECT_DOUBLE_EQ(learning_rate(kind, 0.4, 1, 100, 4, 0.0), 0.2) << schedule_name(kind);
    EXPECT_DOUBLE_EQ(learning_rate(kind, 0.4, 3, 100, 4, 0.0), 0.4) << schedule_name(kind);  // warmup end
    EXPECT_DOUBLE_EQ(learning_rate(kind, 0.4, 4, 100, 4, 0.0), 0.4) << schedule_name(kind);  // decay start
  }
}

TEST(Schedule, ConstantStaysAtLr) {
  for (int64_t s : {0, 5, 50, 99, 150}) EXPECT_DOUBLE_EQ(learning_rate(ScheduleKind::constant, 3e-4, s, 100, 0, 0.1), 3e-4);
}

TEST(Schedule, CosineKeyPoints) {
  const double lr = 2e-4, r = 0.1;
  // warmup 10, total 111: the decay spans steps 10 .. 110 (100 intervals).
  EXPECT_DOUBLE_EQ(learning_rate(ScheduleKind::cosine, lr, 10, 111, 10, r), lr);
  EXPECT_NEAR(learning_rate(ScheduleKind::cosine, lr, 60, 111, 10, r), lr * (r + (1 - r) * 0.5), 1e-18);  // midpoint
  EXPECT_NEAR(learning_rate(ScheduleKind::cosine, lr, 35, 111, 10, r), cosine(lr, r, 0.25), 1e-18);
  EXPECT_NEAR(learning_rate(ScheduleKind::cosine, lr, 110, 111, 10, r), lr * r, 1e-18);  // last step
  EXPECT_NEAR(learning_rate(ScheduleKind::cosine, lr, 500, 111, 10, r), lr * r, 1e-18);  // past the end
  // No warmup: the first step trains at the peak.
  EXPECT_DOUBLE_EQ(learning_rate(ScheduleKind::cosine, lr, 0, 30, 0, 0.0), lr);
  EXPECT_NEAR(learning_rate(ScheduleKind::cosine, lr, 29, 30, 0, 0.0), 0.0, 1e-18);
}

TEST(Schedule, LinearKeyPointsAndMonotone) {
  const double lr = 1.0, r = 0.2;
  EXPECT_DOUBLE_EQ(learning_rate(ScheduleKind::linear, lr, 0, 21, 0, r), 1.0);
  EXPECT_NEAR(learning_rate(ScheduleKind::linear, lr, 10, 21, 0, r), r + (1 - r) * 0.5, 1e-15);
  EXPECT_NEAR(learning_rate(ScheduleKind::linear, lr, 20, 21, 0, r), r, 1e-15);
  for (auto kind : {ScheduleKind::linear, ScheduleKind::cosine}) {
    double prev = 1e9;
    for (int64_t s = 5; s < 60; ++s) {
      const double v = learning_rate(kind, lr, s, 60, 5, r);
      EXPECT_LE(v, prev + 1e-15) << schedule_name(kind) << " step " << s;
      EXPECT_GE(v, lr * r - 1e-15);
      prev = v;
    }
  }
}

TEST(Schedule, DegenerateLengthsGiveFiniteRates) {
  // One step, or no step after warmup: the step gets the peak, never NaN or zero.
  EXPECT_DOUBLE_EQ(learning_rate(ScheduleKind::cosine, 1e-3, 0, 1, 0, 0.0), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate(ScheduleKind::linear, 1e-3, 3, 4, 3, 0.0), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate(ScheduleKind::cosine, 1e-3, 0, 0, 0, 0.0), 1e-3);
}

TEST(AdamW, FirstStepIsLrTimesSignOfGrad) {
  // After one step m̂ = g and v̂ = g², so p1 = p0 - lr · g / (|g| + eps).
  std::mt19937 rng(3);
  Param p = make_param("w", {4, 8}, rng, 1.0f);
  const auto p0 = p.value;
  AdamW opt({&p}, AdamWSettings{0.9, 0.999, 1e-8, 0.0});
  opt.step(1e-2);
  EXPECT_EQ(opt.steps_taken(), 1);
  for (size_t j = 0; j < p.value.size(); ++j) {
    const double g = p.grad[j];
    const double want = p0[j] - 1e-2 * g / (std::fabs(g) + 1e-8);
    EXPECT_NEAR(p.value[j], want, 1e-6 * std::max(1.0, std::fabs(want))) << j;
    EXPECT_NEAR(opt.m()[0][j], 0.1 * g, 1e-7 * std::fabs(g) + 1e-12);
    EXPECT_NEAR(opt.v()[0][j], 0.001 * g * g, 1e-6 * g * g + 1e-15);
  }
}

TEST(AdamW, WeightDecayIsDecoupledAndSkipsNoDecayParams) {
  // With zero gradients the Adam part is 0 / (0 + eps) = 0: only the decay p *= 1 - lr·wd acts.
  std::mt19937 rng(4);
  Param w = make_param("w", {3, 5}, rng, 1.0f, true);
  Param b = make_param("b", {5}, rng, 1.0f, false);
  std::fill(w.grad.begin(), w.grad.end(), 0.0f);
  std::fill(b.grad.begin(), b.grad.end(), 0.0f);
  const auto w0 = w.value, b0 = b.value;
  AdamW opt({&w, &b}, AdamWSettings{0.9, 0.999, 1e-8, 0.1});
  for (int t = 0; t < 5; ++t) opt.step(0.01);
  const double factor = std::pow(1.0 - 0.01 * 0.1, 5);
  for (size_t j = 0; j < w.value.size(); ++j) EXPECT_NEAR(w.value[j], w0[j] * factor, 1e-6 * std::fabs(w0[j]));
  for (size_t j = 0; j < b.value.size(); ++j) EXPECT_EQ(b.value[j], b0[j]);
  // lr 0 changes nothing at all (moments move, weights do not).
  Param z = make_param("z", {6}, rng, 1.0f);
  const auto z0 = z.value;
  AdamW opt2({&z}, AdamWSettings{0.9, 0.999, 1e-8, 0.1});
  opt2.step(0.0);
  EXPECT_EQ(z.value, z0);
}

TEST(AdamW, SameBitsForAnyThreadCount) {
  std::mt19937 rng(5);
  Param a = make_param("a", {300, 400}, rng, 0.2f);  // several chunks, parallel path
  Param a2 = a;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  AdamW o1({&a}, AdamWSettings{0.9, 0.95, 1e-8, 0.05});
  for (int t = 0; t < 3; ++t) o1.step(1e-3);
  omp_set_num_threads(4);
  AdamW o2({&a2}, AdamWSettings{0.9, 0.95, 1e-8, 0.05});
  for (int t = 0; t < 3; ++t) o2.step(1e-3);
  omp_set_num_threads(saved);
  EXPECT_EQ(a.value, a2.value);
  EXPECT_EQ(o1.v()[0], o2.v()[0]);
}

TEST(Clip, NormMatchesLongDoubleAndClipsToMaxNorm) {
  std::mt19937 rng(6);
  std::vector<Param> ps = {make_param("a", {200, 300}, rng, 0.1f), make_param("b", {7}, rng, 3.0f),
                           make_param("c", {50000}, rng, 0.01f)};
  std::vector<Param*> ptrs = {&ps[0], &ps[1], &ps[2]};
  long double sum = 0;
  for (auto& p : ps)
    for (float g : p.grad) sum += (long double)g * g;
  const double want = std::sqrt((double)sum);
  const auto before = ps[1].grad;
  const double norm = clip_grad_norm(ptrs, 1.0);
  EXPECT_NEAR(norm, want, 1e-12 * want);
  ASSERT_GT(norm, 1.0);
  const double scale = 1.0 / (norm + 1e-6);
  for (size_t j = 0; j < before.size(); ++j) EXPECT_FLOAT_EQ(ps[1].grad[j], float(before[j] * scale));
  long double after = 0;
  for (auto& p : ps)
    for (float g : p.grad) after += (long double)g * g;
  EXPECT_NEAR(std::sqrt((double)after), 1.0, 1e-5);
}

TEST(Clip, BelowMaxNormOrDisabledLeavesGradsUntouched) {
  std::mt19937 rng(7);
  Param p = make_param("p", {1000}, rng, 0.001f);
  const auto g0 = p.grad;
  const double norm = clip_grad_norm({&p}, 5.0);
  EXPECT_GT(norm, 0.0);
  EXPECT_EQ(p.grad, g0);
  Param q = make_param("q", {1000}, rng, 10.0f);
  const auto q0 = q.grad;
  EXPECT_GT(clip_grad_norm({&q}, 0.0), 100.0);  // max_norm 0: measure only
  EXPECT_EQ(q.grad, q0);
  EXPECT_EQ(clip_grad_norm({}, 1.0), 0.0);
}

TEST(Clip, NormIsTheSameForAnyThreadCount) {
  std::mt19937 rng(8);
  std::vector<Param> ps = {make_param("a", {1000, 123}, rng, 0.3f), make_param("b", {77777}, rng, 0.3f)};
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const double n1 = clip_grad_norm({&ps[0], &ps[1]}, 0.0);
  omp_set_num_threads(3);
  const double n3 = clip_grad_norm({&ps[0], &ps[1]}, 0.0);
  omp_set_num_threads(saved);
  EXPECT_EQ(n1, n3);
}
