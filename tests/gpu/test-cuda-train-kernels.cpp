/* Every trainer CUDA kernel (trainer/cuda/train-kernels.h) against the trainer's CPU op it mirrors
 * (trainer/src/ops.h, optim.cpp) on random inputs (never zeros). Skips itself where no CUDA device is
 * usable; the argument checks run everywhere. The same file also runs on the CPU emulation of CUDA
 * (tests/trainer/cuda-train-emu.cmake, suites ending in "Emulated", smaller shapes).
 *
 * Tolerances: casts and the embedding gradient exact (the same float additions in the same order);
 * AdamW, RMSNorm forward, SwiGLU and RoPE within 1e-6..1e-5 relative (the same operations; only exp,
 * cos/sin and double sums may round differently); reductions that the GPU splits differently (RMSNorm's
 * dw, the gradient norm) within 1e-5 of the sum of the magnitudes of their terms; cross-entropy within
 * 1e-5 relative in F32, 1e-2 with BF16 outputs. The cross-entropy gradient is also checked against
 * central finite differences of the GPU loss itself (F32, small vocabulary).
 *
 * Non-obvious choice: the CPU cross-entropy reference is classifier_forward_backward with the identity
 * as the classifier weight (d = vocab), whose product with the logits is exact, so the CPU op's own
 * softmax and loss code is what the kernel is compared with.
 */
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "cuda-test-util.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "hearth/tensor-types.h"
#include "hearth/trainer/optim.h"
#include "hearth/trainer/param.h"
#include "ops.h"
#include "train-kernels.h"
#include "train-plan.h"

namespace tc = hearth::train::cuda;
namespace ops = hearth::train::ops;

namespace {

using hearth::test::have_gpu;

#ifdef HEARTH_CUDA_EMULATION
bool quick() { return true; }
#define KERNEL_SUITE CudaTrainKernelsEmulated
#define ARGS_SUITE CudaTrainKernelArgsEmulated
#else
// Under compute-sanitizer (HEARTH_SANITIZER_QUICK) the small shapes, as the emulation.
bool quick() { return std::getenv("HEARTH_SANITIZER_QUICK") != nullptr; }
#define KERNEL_SUITE CudaTrainKernels
#define ARGS_SUITE CudaTrainKernelArgs
#endif

#define REQUIRE_GPU() \
  if (!have_gpu()) GTEST_SKIP() << "no usable CUDA device"

using hearth::test::bits;
using hearth::test::DevBuf;
using hearth::test::random_values;

// |got - want| <= rel · scale_i + abs for every i, scale_i = |want_i| unless given; reports the first few.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, double rel, double abs,
                  const std::string& what, const std::vector<double>* scale = nullptr) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double s = scale ? (*scale)[i] : std::fabs(double(want[i]));
    const double err = std::fabs(double(got[i]) - double(want[i]));
    if (!(err <= rel * s + abs)) {
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i] << " (error " << err
                    << ", allowed " << rel * s + abs << ")";
      if (++reported >= 5) return;
    }
  }
}

void expect_bits_equal(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (bits(got[i]) != bits(want[i])) {
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i] << " (bits differ)";
      if (++reported >= 5) return;
    }
}

std::vector<float> bf16_round(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = hearth::bf16_to_fp32(hearth::fp32_to_bf16(x[i]));
  return y;
}

// ---- Casts -----------------------------------------------------------------------------------------

TEST(KERNEL_SUITE, CastsRoundLikeTheCpu) {
  REQUIRE_GPU();
  std::vector<float> x = random_values(quick() ? 1000 : 100000, 1, 3.0f);
  // Ties to even, both directions, the extremes, infinities and a NaN.
  const float specials[] = {1.0f + 1.0f / 256.0f, 1.0f + 3.0f / 256.0f, -(1.0f + 1.0f / 256.0f), 3.3895314e38f,
                            1e-40f, -0.0f, std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()};
  x.insert(x.end(), std::begin(specials), std::end(specials));
  DevBuf<float> dx(x);
  DevBuf<uint16_t> dh(x.size());
  DevBuf<float> back(x.size());
  CUDA_OK(tc::f32_to_bf16(dx.p, dh.p, int64_t(x.size()), nullptr));
  CUDA_OK(tc::bf16_to_f32(dh.p, back.p, int64_t(x.size()), nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto h = dh.download();
  const auto b = back.download();
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(h[i], hearth::fp32_to_bf16(x[i])) << "f32_to_bf16 of " << x[i];
    ASSERT_EQ(bits(b[i]), bits(hearth::bf16_to_fp32(h[i]))) << "bf16_to_f32 of " << h[i];
  }
}

// ---- AdamW -----------------------------------------------------------------------------------------

TEST(KERNEL_SUITE, AdamWMatchesCpuOptimizerOverSteps) {
  REQUIRE_GPU();
  using hearth::train::Param;
  const int64_t n0 = quick() ? 3000 : 70000, n1 = 37;
  Param p0{"w", {n0}, random_values(static_cast<size_t>(n0), 2), {}, true};
  Param p1{"norm", {n1}, random_values(static_cast<size_t>(n1), 3), {}, false};
  hearth::train::AdamWSettings s;
  s.weight_decay = 0.1;
  s.beta2 = 0.95;
  hearth::train::AdamW cpu({&p0, &p1}, s);

  DevBuf<float> w0(p0.value), w1(p1.value), g0(static_cast<size_t>(n0)), g1(static_cast<size_t>(n1));
  DevBuf<float> m0(std::vector<float>(static_cast<size_t>(n0), 0.0f)), v0(std::vector<float>(static_cast<size_t>(n0), 0.0f));
  DevBuf<float> m1(std::vector<float>(static_cast<size_t>(n1), 0.0f)), v1(std::vector<float>(static_cast<size_t>(n1), 0.0f));
  DevBuf<uint16_t> w0_bf16(static_cast<size_t>(n0));
  const double lrs[] = {1e-2, 3e-3, 5e-4};
  for (int k = 0; k < 3; ++k) {
    p0.grad = random_values(static_cast<size_t>(n0), 10 + uint32_t(k), 0.5f);
    p1.grad = random_values(static_cast<size_t>(n1), 20 + uint32_t(k), 2.0f);
    g0.upload(p0.grad);
    g1.upload(p1.grad);
    cpu.step(lrs[k]);
    tc::AdamWStep st;
    st.lr = lrs[k];
    st.beta1 = s.beta1;
    st.beta2 = s.beta2;
    st.eps = s.eps;
    st.weight_decay = s.weight_decay;
    st.t = cpu.steps_taken();
    st.decay = p0.decay;
    CUDA_OK(tc::adamw_step(w0.p, g0.p, m0.p, v0.p, w0_bf16.p, n0, st, nullptr));
    st.decay = p1.decay;
    CUDA_OK(tc::adamw_step(w1.p, g1.p, m1.p, v1.p, nullptr, n1, st, nullptr));
  }
  CUDA_OK(cudaDeviceSynchronize());
  expect_close(w0.download(), p0.value, 1e-6, 1e-9, "w0");
  expect_close(m0.download(), cpu.m()[0], 1e-6, 1e-12, "m0");
  expect_close(v0.download(), cpu.v()[0], 1e-6, 1e-14, "v0");
  expect_close(w1.download(), p1.value, 1e-6, 1e-9, "w1 (no decay)");
  expect_close(m1.download(), cpu.m()[1], 1e-6, 1e-12, "m1");
  expect_close(v1.download(), cpu.v()[1], 1e-6, 1e-14, "v1");
  const auto wg = w0.download();
  const auto wb = w0_bf16.download();
  for (size_t i = 0; i < wg.size(); ++i) ASSERT_EQ(wb[i], hearth::fp32_to_bf16(wg[i])) << "bf16 copy at " << i;
}

// ---- Gradient norm and clipping --------------------------------------------------------------------

TEST(KERNEL_SUITE, GradNormAndClipMatchCpu) {
  REQUIRE_GPU();
  using hearth::train::Param;
  const std::vector<int64_t> sizes = quick() ? std::vector<int64_t>{9000, 3, 8192, 100}
                                             : std::vector<int64_t>{300000, 3, 8192, 8193, 65536};
  std::vector<Param> params;
  for (size_t k = 0; k < sizes.size(); ++k) {
    std::string name = "grad.";
    name += std::to_string(k);
    Param p{name, {sizes[k]}, std::vector<float>(size_t(sizes[k]), 1.0f),
            random_values(size_t(sizes[k]), 30 + uint32_t(k), 0.1f * float(k + 1)), true};
    params.push_back(std::move(p));
  }
  std::vector<std::unique_ptr<DevBuf<float>>> grads;
  std::vector<const float*> ptrs;
  for (const Param& p : params) {
    grads.push_back(std::make_unique<DevBuf<float>>(p.grad));
    ptrs.push_back(grads.back()->p);
  }
  const int nt = int(sizes.size());
  DevBuf<double> partials(size_t(tc::grad_norm_partials(sizes.data(), nt)));
  DevBuf<double> out(2);
  CUDA_OK(tc::grad_norm(ptrs.data(), sizes.data(), nt, partials.p, out.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto first = out.download();
  // Deterministic: a second run gives the same bits.
  CUDA_OK(tc::grad_norm(ptrs.data(), sizes.data(), nt, partials.p, out.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto second = out.download();
  EXPECT_EQ(std::memcmp(first.data(), second.data(), 2 * sizeof(double)), 0) << "grad_norm is not deterministic";

  std::vector<Param*> pp;
  for (Param& p : params) pp.push_back(&p);
  // The CPU's norm (no clipping), then clipping at half of it on both sides.
  const double cpu_norm = hearth::train::clip_grad_norm(pp, 0.0);
  EXPECT_NEAR(first[1], cpu_norm, 1e-12 * cpu_norm);
  EXPECT_NEAR(first[0], cpu_norm * cpu_norm, 1e-12 * cpu_norm * cpu_norm);
  const double max_norm = 0.5 * cpu_norm;
  hearth::train::clip_grad_norm(pp, max_norm);
  for (size_t k = 0; k < params.size(); ++k) {
    CUDA_OK(tc::clip_by_norm(grads[k]->p, sizes[k], out.p + 1, max_norm, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    expect_close(grads[k]->download(), params[k].grad, 1e-6, 0.0, "clipped grad " + std::to_string(k));
  }
  // A limit above the norm changes nothing.
  const auto before = grads[0]->download();
  CUDA_OK(tc::clip_by_norm(grads[0]->p, sizes[0], out.p + 1, 10.0 * cpu_norm, nullptr));
  CUDA_OK(tc::scale(grads[1]->p, sizes[1], 0.25f, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  expect_bits_equal(grads[0]->download(), before, "grad under the limit");
  std::vector<float> quarter = params[1].grad;
  for (float& v : quarter) v *= 0.25f;
  expect_bits_equal(grads[1]->download(), quarter, "scaled grad");
}

// ---- Cross-entropy ---------------------------------------------------------------------------------

struct CeCase {
  std::vector<float> logits;  // n × vocab
  std::vector<int32_t> targets;
  int64_t n = 0, vocab = 0;
};

CeCase make_ce(int64_t n, int64_t vocab, uint32_t seed, float scale) {
  CeCase c;
  c.n = n;
  c.vocab = vocab;
  c.logits = random_values(size_t(n * vocab), seed, scale);
  std::mt19937 rng(seed + 1);
  c.targets.resize(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) c.targets[static_cast<size_t>(r)] = int32_t(rng() % uint32_t(vocab));
  c.targets[1] = -1;  // an ignored row
  c.targets[size_t(n - 1)] = -100;
  c.targets[2] = int32_t(vocab - 1);
  return c;
}

// The CPU op on the given (already rounded) logits: loss sum, counted rows, dlogits.
double cpu_ce(const std::vector<float>& logits, const std::vector<int32_t>& targets, int64_t n, int64_t vocab,
              float grad_scale, int64_t* counted, std::vector<float>* dlogits) {
  std::vector<float> eye(size_t(vocab * vocab), 0.0f);
  for (int64_t i = 0; i < vocab; ++i) eye[size_t(i * vocab + i)] = 1.0f;
  dlogits->assign(size_t(n * vocab), 0.0f);
  std::vector<float> scratch;
  return ops::classifier_forward_backward(dlogits->data(), nullptr, logits.data(), eye.data(), targets.data(), n,
                                          vocab, vocab, grad_scale, counted, scratch, 16);
}

tc::CrossEntropyStats read_stats(const DevBuf<tc::CrossEntropyStats>& s) { return s.download()[0]; }

TEST(KERNEL_SUITE, CrossEntropyF32MatchesCpu) {
  REQUIRE_GPU();
  const int64_t n = quick() ? 6 : 40, vocab = quick() ? 700 : 3000;  // vocab > THREADS: strided rows
  const CeCase c = make_ce(n, vocab, 40, 4.0f);
  const float grad_scale = 0.5f;
  int64_t counted = 0;
  std::vector<float> want;
  const double loss_sum = cpu_ce(c.logits, c.targets, n, vocab, grad_scale, &counted, &want);

  DevBuf<float> logits(c.logits), dlogits(size_t(n * vocab));
  DevBuf<int32_t> targets(c.targets);
  DevBuf<double> row_loss(static_cast<size_t>(n));
  DevBuf<tc::CrossEntropyStats> stats(1);
  CUDA_OK(tc::cross_entropy(logits.p, tc::DType::f32, dlogits.p, tc::DType::f32, targets.p, n, vocab, grad_scale,
                            row_loss.p, stats.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto st = read_stats(stats);
  EXPECT_EQ(st.n_counted, counted);
  EXPECT_EQ(st.n_bad, 0);
  EXPECT_NEAR(st.loss_sum, loss_sum, 1e-6 * loss_sum);
  EXPECT_NEAR(st.loss_mean, loss_sum / double(counted), 1e-6 * loss_sum / double(counted));
  const double max_grad = grad_scale / double(counted);
  expect_close(dlogits.download(), want, 1e-5, 1e-7 * max_grad, "dlogits");
  const auto rl = row_loss.download();
  EXPECT_EQ(rl[1], 0.0);
  EXPECT_EQ(rl[size_t(n - 1)], 0.0);

  // In place: dlogits written over the logits give the same values.
  CUDA_OK(tc::cross_entropy(logits.p, tc::DType::f32, logits.p, tc::DType::f32, targets.p, n, vocab, grad_scale,
                            row_loss.p, stats.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  expect_bits_equal(logits.download(), dlogits.download(), "in-place dlogits");
}

TEST(KERNEL_SUITE, CrossEntropyBf16MatchesCpu) {
  REQUIRE_GPU();
  const int64_t n = quick() ? 5 : 24, vocab = quick() ? 600 : 2000;
  CeCase c = make_ce(n, vocab, 50, 4.0f);
  std::vector<uint16_t> lb(c.logits.size());
  for (size_t i = 0; i < lb.size(); ++i) lb[i] = hearth::fp32_to_bf16(c.logits[i]);
  const std::vector<float> rounded = bf16_round(c.logits);
  int64_t counted = 0;
  std::vector<float> want;
  const double loss_sum = cpu_ce(rounded, c.targets, n, vocab, 1.0f, &counted, &want);

  DevBuf<uint16_t> logits(lb), dlogits_bf16(size_t(n * vocab));
  DevBuf<float> dlogits_f32(size_t(n * vocab));
  DevBuf<int32_t> targets(c.targets);
  DevBuf<double> row_loss(static_cast<size_t>(n));
  DevBuf<tc::CrossEntropyStats> stats(1);
  // BF16 logits, F32 gradient: the inputs are the same numbers as the CPU's, so F32 tolerances.
  CUDA_OK(tc::cross_entropy(logits.p, tc::DType::bf16, dlogits_f32.p, tc::DType::f32, targets.p, n, vocab, 1.0f,
                            row_loss.p, stats.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  auto st = read_stats(stats);
  EXPECT_EQ(st.n_counted, counted);
  EXPECT_NEAR(st.loss_sum, loss_sum, 1e-6 * loss_sum);
  const double max_grad = 1.0 / double(counted);
  expect_close(dlogits_f32.download(), want, 1e-5, 1e-7 * max_grad, "dlogits (F32 from BF16 logits)");

  // BF16 gradient, in place over the BF16 logits.
  CUDA_OK(tc::cross_entropy(logits.p, tc::DType::bf16, logits.p, tc::DType::bf16, targets.p, n, vocab, 1.0f,
                            row_loss.p, stats.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  st = read_stats(stats);
  EXPECT_NEAR(st.loss_sum, loss_sum, 1e-6 * loss_sum);
  const auto got_bits = logits.download();
  std::vector<float> got(got_bits.size());
  for (size_t i = 0; i < got.size(); ++i) got[i] = hearth::bf16_to_fp32(got_bits[i]);
  expect_close(got, want, 1e-2, 1e-6 * max_grad, "dlogits (BF16, in place)");
}

TEST(KERNEL_SUITE, CrossEntropyGradientMatchesFiniteDifferences) {
  REQUIRE_GPU();
  const int64_t n = 4, vocab = quick() ? 7 : 13;
  CeCase c = make_ce(n, vocab, 60, 2.0f);  // rows 1 and 3 ignored
  DevBuf<float> logits(c.logits), dlogits(size_t(n * vocab));
  DevBuf<int32_t> targets(c.targets);
  DevBuf<double> row_loss(static_cast<size_t>(n));
  DevBuf<tc::CrossEntropyStats> stats(1);
  CUDA_OK(tc::cross_entropy(logits.p, tc::DType::f32, dlogits.p, tc::DType::f32, targets.p, n, vocab, 1.0f,
                            row_loss.p, stats.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto grad = dlogits.download();
  const float h = 1e-2f;
  std::vector<float> x = c.logits;
  for (int64_t i = 0; i < n * vocab; ++i) {
    double f[2];
    for (int side = 0; side < 2; ++side) {
      x[static_cast<size_t>(i)] = c.logits[static_cast<size_t>(i)] + (side ? -h : h);
      logits.upload(x);
      CUDA_OK(tc::cross_entropy(logits.p, tc::DType::f32, nullptr, tc::DType::f32, targets.p, n, vocab, 1.0f,
                                row_loss.p, stats.p, nullptr));
      CUDA_OK(cudaDeviceSynchronize());
      f[side] = read_stats(stats).loss_mean;
    }
    x[static_cast<size_t>(i)] = c.logits[static_cast<size_t>(i)];
    // The perturbation actually applied, in float.
    const double step = double(c.logits[static_cast<size_t>(i)] + h) - double(c.logits[static_cast<size_t>(i)] - h);
    const double fd = (f[0] - f[1]) / step;
    EXPECT_NEAR(grad[static_cast<size_t>(i)], fd, 2e-4 + 1e-3 * std::fabs(fd)) << "logit " << i;
  }
}

TEST(KERNEL_SUITE, CrossEntropyReportsTargetsPastTheVocabulary) {
  REQUIRE_GPU();
  const int64_t n = 5, vocab = 300;
  CeCase c = make_ce(n, vocab, 70, 1.0f);
  c.targets[3] = int32_t(vocab);  // out of range: reported, not counted, zero gradient
  DevBuf<float> logits(c.logits), dlogits(random_values(size_t(n * vocab), 71));
  DevBuf<int32_t> targets(c.targets);
  DevBuf<double> row_loss(static_cast<size_t>(n));
  DevBuf<tc::CrossEntropyStats> stats(1);
  CUDA_OK(tc::cross_entropy(logits.p, tc::DType::f32, dlogits.p, tc::DType::f32, targets.p, n, vocab, 1.0f,
                            row_loss.p, stats.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto st = read_stats(stats);
  EXPECT_EQ(st.n_bad, 1);
  EXPECT_EQ(st.n_counted, 2);  // rows 0 and 2 (1 and 4 ignored, 3 out of range)
  const auto d = dlogits.download();
  for (int64_t j = 0; j < vocab; ++j) ASSERT_EQ(d[size_t(3 * vocab + j)], 0.0f);
  double row_sum = 0.0;
  for (int64_t j = 0; j < vocab; ++j) row_sum += d[static_cast<size_t>(j)];
  EXPECT_NEAR(row_sum, 0.0, 1e-6);  // a counted row's softmax minus one-hot sums to zero
}

// ---- RMSNorm ---------------------------------------------------------------------------------------

TEST(KERNEL_SUITE, RmsNormForwardAndBackwardMatchCpu) {
  REQUIRE_GPU();
  const int64_t n = quick() ? 150 : 1000, d = quick() ? 300 : 2048;  // n not a multiple of RMSNORM_DW_ROWS
  const float eps = 1e-5f;
  const auto x = random_values(size_t(n * d), 80, 2.0f), w = random_values(static_cast<size_t>(d), 81);
  const auto dy = random_values(size_t(n * d), 82), dx0 = random_values(size_t(n * d), 83),
             dw0 = random_values(static_cast<size_t>(d), 84);
  std::vector<float> y(size_t(n * d)), rstd(static_cast<size_t>(n));
  ops::rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), n, d, eps);
  std::vector<float> dx = dx0, dw = dw0;
  ops::rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rstd.data(), n, d);

  DevBuf<float> gx(x), gw(w), gy(size_t(n * d)), grstd(static_cast<size_t>(n)), gdy(dy), gdx(dx0), gdw(dw0);
  DevBuf<float> partials(size_t(tc::rmsnorm_dw_partials(n, d)));
  CUDA_OK(tc::rmsnorm_forward(gy.p, grstd.p, gx.p, gw.p, n, d, eps, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  expect_close(grstd.download(), rstd, 1e-6, 0.0, "rstd");
  expect_close(gy.download(), y, 1e-6, 0.0, "y");
  // The backward from the CPU's rstd, so it is checked on its own.
  grstd.upload(rstd);
  CUDA_OK(tc::rmsnorm_backward(gdx.p, gdw.p, gdy.p, gx.p, gw.p, grstd.p, n, d, partials.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  // dx: the accumulated value's scale is |dx0| + |the added term|.
  std::vector<double> sx(size_t(n * d)), sw(static_cast<size_t>(d));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < d; ++i) {
      const size_t k = size_t(r * d + i);
      sx[k] = std::fabs(dx0[k]) + std::fabs(double(dx[k]) - double(dx0[k]));
      sw[static_cast<size_t>(i)] += std::fabs(double(dy[k]) * x[k] * rstd[static_cast<size_t>(r)]);
    }
  for (int64_t i = 0; i < d; ++i) sw[static_cast<size_t>(i)] += std::fabs(dw0[static_cast<size_t>(i)]);
  expect_close(gdx.download(), dx, 1e-5, 0.0, "dx", &sx);
  expect_close(gdw.download(), dw, 1e-5, 0.0, "dw", &sw);

  // dx only and dw only leave the other alone.
  DevBuf<float> only_dx(dx0), only_dw(dw0);
  CUDA_OK(tc::rmsnorm_backward(only_dx.p, nullptr, gdy.p, gx.p, gw.p, grstd.p, n, d, nullptr, nullptr));
  CUDA_OK(tc::rmsnorm_backward(nullptr, only_dw.p, gdy.p, gx.p, gw.p, grstd.p, n, d, partials.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  expect_bits_equal(only_dx.download(), gdx.download(), "dx alone");
  expect_bits_equal(only_dw.download(), gdw.download(), "dw alone");

  // The forward in place (y over x), without rstd.
  DevBuf<float> in_place(x);
  CUDA_OK(tc::rmsnorm_forward(in_place.p, nullptr, in_place.p, gw.p, n, d, eps, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  expect_bits_equal(in_place.download(), gy.download(), "y in place");
}

// ---- SwiGLU ----------------------------------------------------------------------------------------

TEST(KERNEL_SUITE, SwiGluForwardAndBackwardMatchCpu) {
  REQUIRE_GPU();
  const int64_t n = quick() ? 5000 : 300000;
  const auto g = random_values(static_cast<size_t>(n), 90, 4.0f), u = random_values(static_cast<size_t>(n), 91), dh = random_values(static_cast<size_t>(n), 92);
  const auto dg0 = random_values(static_cast<size_t>(n), 93, 0.1f), du0 = random_values(static_cast<size_t>(n), 94, 0.1f);
  std::vector<float> h(static_cast<size_t>(n)), dg = dg0, du = du0;
  ops::swiglu_forward(h.data(), g.data(), u.data(), n);
  ops::swiglu_backward(dg.data(), du.data(), dh.data(), g.data(), u.data(), n);

  DevBuf<float> gg(g), gu(u), gdh(dh), gh(static_cast<size_t>(n)), gdg(dg0), gdu(du0), only_du(du0);
  CUDA_OK(tc::swiglu_forward(gh.p, gg.p, gu.p, n, nullptr));
  CUDA_OK(tc::swiglu_backward(gdg.p, gdu.p, gdh.p, gg.p, gu.p, n, nullptr));
  CUDA_OK(tc::swiglu_backward(nullptr, only_du.p, gdh.p, gg.p, gu.p, n, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  expect_close(gh.download(), h, 1e-5, 0.0, "h");
  std::vector<double> sg(static_cast<size_t>(n)), su(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    sg[static_cast<size_t>(i)] = std::fabs(dg0[static_cast<size_t>(i)]) + std::fabs(double(dg[static_cast<size_t>(i)]) - dg0[static_cast<size_t>(i)]);
    su[static_cast<size_t>(i)] = std::fabs(du0[static_cast<size_t>(i)]) + std::fabs(double(du[static_cast<size_t>(i)]) - du0[static_cast<size_t>(i)]);
  }
  expect_close(gdg.download(), dg, 1e-5, 0.0, "dgate", &sg);
  expect_close(gdu.download(), du, 1e-5, 0.0, "dup", &su);
  expect_bits_equal(only_du.download(), gdu.download(), "dup without dgate");
  DevBuf<float> in_place(g);  // h written over gate
  CUDA_OK(tc::swiglu_forward(in_place.p, in_place.p, gu.p, n, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  expect_bits_equal(in_place.download(), gh.download(), "h in place");
}

// ---- RoPE ------------------------------------------------------------------------------------------

TEST(KERNEL_SUITE, RopeBothLayoutsBothDirectionsMatchCpu) {
  REQUIRE_GPU();
  const int64_t B = 2, T = quick() ? 37 : 300, n_heads = 3, hd = quick() ? 16 : 64;
  std::vector<double> inv_freq(size_t(hd / 2));
  for (int64_t i = 0; i < hd / 2; ++i) inv_freq[static_cast<size_t>(i)] = std::pow(10000.0, -2.0 * double(i) / double(hd));
  DevBuf<double> gfreq(inv_freq);
  for (const bool interleaved : {false, true}) {
    const auto layout = interleaved ? hearth::RopeLayout::interleaved : hearth::RopeLayout::half_split;
    for (const bool backward : {false, true}) {
      const std::string what = std::string(interleaved ? "interleaved" : "half-split") + (backward ? " backward" : " forward");
      auto x = random_values(size_t(B * T * n_heads * hd), backward ? 100 : 101);
      DevBuf<float> gx(x);
      if (backward) {
        ops::rope_backward(x.data(), B, T, n_heads, hd, inv_freq, layout);
        CUDA_OK(tc::rope_backward(gx.p, B, T, n_heads, hd, gfreq.p, interleaved, nullptr));
      } else {
        ops::rope_forward(x.data(), B, T, n_heads, hd, inv_freq, layout);
        CUDA_OK(tc::rope_forward(gx.p, B, T, n_heads, hd, gfreq.p, interleaved, nullptr));
      }
      CUDA_OK(cudaDeviceSynchronize());
      expect_close(gx.download(), x, 1e-5, 2e-6, what);
    }
  }
}

// ---- Embedding -------------------------------------------------------------------------------------

TEST(KERNEL_SUITE, EmbeddingBackwardEqualsCpu) {
  REQUIRE_GPU();
  const int64_t n = quick() ? 60 : 4096, vocab = quick() ? 25 : 3000, d = quick() ? 70 : 512;
  std::mt19937 rng(110);
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (auto& t : tokens) t = int32_t(rng() % uint32_t(vocab));
  tokens[5] = tokens[6] = tokens[n - 1] = 3;  // a token repeated, far apart
  const auto dx = random_values(size_t(n * d), 111), table0 = random_values(size_t(vocab * d), 112);
  std::vector<float> want = table0;
  ops::embedding_backward(want.data(), dx.data(), tokens.data(), n, d);

  auto plan = tc::plan_embedding_backward(tokens.data(), n, vocab);
  ASSERT_TRUE(plan.has_value()) << plan.error().to_string();
  DevBuf<int32_t> gplan(plan->packed);
  DevBuf<float> gdx(dx), gtable(table0);
  CUDA_OK(tc::embedding_backward(gtable.p, gdx.p, gplan.p, plan->n_segments, n, d, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  expect_bits_equal(gtable.download(), want, "dtable");
}

// ---- Dropout (added for the device trainer) ---------------------------------------------------------

TEST(KERNEL_SUITE, DropoutMasksAreTheCpusBitForBit) {
  REQUIRE_GPU();
  // Not a multiple of the CPU's 4096-element work blocks; a seed with both halves set.
  const int64_t n = quick() ? 9001 : 300007;
  const auto x = random_values(static_cast<size_t>(n), 120), dx0 = random_values(static_cast<size_t>(n), 121);
  for (const float p : {0.1f, 0.5f, 0.9f}) {
    const uint64_t seed = 0x123456789abcdef0ULL + uint64_t(p * 100);
    const std::string what = "dropout p=" + std::to_string(p);
    std::vector<float> out(static_cast<size_t>(n)), dx = dx0;
    ops::dropout_forward(out.data(), x.data(), n, p, seed);
    ops::dropout_backward(dx.data(), x.data(), n, p, seed);
    DevBuf<float> gx(x), gout(static_cast<size_t>(n)), gdx(dx0), in_place(x);
    CUDA_OK(tc::dropout_forward(gout.p, gx.p, n, p, seed, nullptr));
    CUDA_OK(tc::dropout_forward(in_place.p, in_place.p, n, p, seed, nullptr));
    CUDA_OK(tc::dropout_backward(gdx.p, gx.p, n, p, seed, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    const auto got = gout.download();
    expect_bits_equal(got, out, what + " forward");
    expect_bits_equal(in_place.download(), out, what + " forward in place");
    expect_bits_equal(gdx.download(), dx, what + " backward");
    // The mask really drops about p of the elements (a mask of all ones would also match a broken CPU op).
    int64_t dropped = 0;
    for (float v : got) dropped += v == 0.0f;
    EXPECT_NEAR(double(dropped) / double(n), p, 0.02) << what;
  }
  // p = 0: a copy, and the backward adds dout; p = 1: zeros, and the backward adds nothing.
  DevBuf<float> gx(x), gout(static_cast<size_t>(n)), gdx(dx0), gdx1(dx0);
  CUDA_OK(tc::dropout_forward(gout.p, gx.p, n, 0.0f, 7, nullptr));
  CUDA_OK(tc::dropout_backward(gdx.p, gx.p, n, 0.0f, 7, nullptr));
  CUDA_OK(tc::dropout_backward(gdx1.p, gx.p, n, 1.0f, 7, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<float> dx = dx0;
  ops::dropout_backward(dx.data(), x.data(), n, 0.0f, 7);
  expect_bits_equal(gout.download(), x, "dropout p=0 forward");
  expect_bits_equal(gdx.download(), dx, "dropout p=0 backward");
  expect_bits_equal(gdx1.download(), dx0, "dropout p=1 backward");
  CUDA_OK(tc::dropout_forward(gout.p, gx.p, n, 1.0f, 7, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  for (float v : gout.download()) ASSERT_EQ(v, 0.0f) << "dropout p=1 forward";
}

// ---- Bias gradient, q/k permutes, x += y ----------------------------------------------------------------

TEST(KERNEL_SUITE, BiasGradientMatchesCpu) {
  REQUIRE_GPU();
  const int64_t out = quick() ? 300 : 3000;  // more than one block of columns
  // One row block (the CPU's exact sum) and several (a remainder block too).
  for (const int64_t n : {int64_t(50), quick() ? int64_t(200) : int64_t(4100)}) {
    const std::string what = "dbias n=" + std::to_string(n);
    const auto dy = random_values(size_t(n * out), 130), db0 = random_values(static_cast<size_t>(out), 131);
    std::vector<float> db = db0;
    ops::linear_backward(nullptr, nullptr, db.data(), dy.data(), nullptr, nullptr, n, 4, out);
    DevBuf<float> gdy(dy), gdb(db0), partials(size_t(tc::bias_grad_partials(n, out)));
    CUDA_OK(tc::bias_backward(gdb.p, gdy.p, n, out, partials.p, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    if (n <= tc::BIAS_GRAD_ROWS) {
      expect_bits_equal(gdb.download(), db, what);
    } else {
      std::vector<double> sc(static_cast<size_t>(out));
      for (int64_t j = 0; j < out; ++j) {
        sc[size_t(j)] = std::fabs(db0[size_t(j)]);
        for (int64_t r = 0; r < n; ++r) sc[size_t(j)] += std::fabs(dy[size_t(r * out + j)]);
      }
      expect_close(gdb.download(), db, 1e-6, 0.0, what, &sc);
    }
  }
}

TEST(KERNEL_SUITE, QkPermutesMoveColumnsLikeTheCpu) {
  REQUIRE_GPU();
  const int64_t n = quick() ? 13 : 1000, heads = 3, hd = quick() ? 8 : 64;
  const auto x = random_values(size_t(n * heads * hd), 140);
  // train-model.cpp perm_to_hf: stored column 2i+s of a head is Hugging Face column s·hd/2 + i.
  std::vector<float> want(x.size());
  for (int64_t r = 0; r < n * heads; ++r)
    for (int64_t i = 0; i < hd / 2; ++i)
      for (int64_t s = 0; s < 2; ++s) want[size_t(r * hd + s * hd / 2 + i)] = x[size_t(r * hd + 2 * i + s)];
  DevBuf<float> gx(x), ghf(x.size()), gback(x.size());
  CUDA_OK(tc::qk_to_hf(ghf.p, gx.p, n, heads, hd, nullptr));
  CUDA_OK(tc::qk_from_hf(gback.p, ghf.p, n, heads, hd, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  expect_bits_equal(ghf.download(), want, "qk_to_hf");
  expect_bits_equal(gback.download(), x, "qk_from_hf(qk_to_hf(x))");
}

TEST(KERNEL_SUITE, AddInPlaceAndHeadMajorPermutes) {
  REQUIRE_GPU();
  const int64_t B = 2, T = quick() ? 7 : 129, H = 5, hd = quick() ? 60 : 64;  // rows of H·hd wider than a block
  const int64_t n = B * T * H * hd;
  const auto x = random_values(static_cast<size_t>(n), 150), y = random_values(static_cast<size_t>(n), 151);
  std::vector<float> sum(static_cast<size_t>(n)), hm(static_cast<size_t>(n)), acc(static_cast<size_t>(n));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t d = 0; d < hd; ++d) {
          const size_t rm = size_t(((b * T + t) * H + h) * hd + d), hmi = size_t(((b * H + h) * T + t) * hd + d);
          hm[hmi] = x[rm];
          acc[rm] = y[rm] + x[rm];  // from_head_major(hm) accumulated onto y gives y + x
        }
  for (int64_t i = 0; i < n; ++i) sum[size_t(i)] = x[size_t(i)] + y[size_t(i)];
  DevBuf<float> gx(x), gy(y), gsum(x), ghm(static_cast<size_t>(n)), gback(static_cast<size_t>(n)), gacc(y);
  CUDA_OK(tc::add_inplace(gsum.p, gy.p, n, nullptr));
  CUDA_OK(tc::to_head_major(ghm.p, gx.p, B, T, H, hd, nullptr));
  CUDA_OK(tc::from_head_major(gback.p, ghm.p, B, T, H, hd, false, nullptr));
  CUDA_OK(tc::from_head_major(gacc.p, ghm.p, B, T, H, hd, true, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  expect_bits_equal(gsum.download(), sum, "add_inplace");
  expect_bits_equal(ghm.download(), hm, "to_head_major");
  expect_bits_equal(gback.download(), x, "from_head_major(to_head_major(x))");
  expect_bits_equal(gacc.download(), acc, "from_head_major accumulating");
}

// ---- Softmax of the attention scores, forward and backward ------------------------------------------

TEST(KERNEL_SUITE, CausalSoftmaxAndBackwardMatchTheDefinition) {
  REQUIRE_GPU();
  const float scale = 0.3f;
  // Lengths for each of the kernels' register widths (T <= 128, 256) and past them (any length).
  const std::vector<int64_t> Ts = quick() ? std::vector<int64_t>{1, 9, 33, 200, 600}
                                          : std::vector<int64_t>{1, 9, 33, 200, 600, 2048, 2100};
  for (const int64_t T : Ts) {
    const int64_t n_mat = T > 100 ? 1 : 3;
    const std::string what = "T=" + std::to_string(T);
    const auto s = random_values(size_t(n_mat * T * T), 160, 8.0f), dp = random_values(size_t(n_mat * T * T), 161);
    // Reference in double: p_j = exp(scale·s_j - max) / Σ over j <= i; ds_j = p_j (dp_j - Σ_k p_k dp_k).
    std::vector<float> p(s.size()), ds(s.size());
    std::vector<double> ds_scale(s.size());
    for (int64_t r = 0; r < n_mat * T; ++r) {
      const int64_t valid = r % T + 1;
      const float* sr = s.data() + r * T;
      double mx = -1e300, sum = 0, dot = 0;
      for (int64_t j = 0; j < valid; ++j) mx = std::max(mx, double(sr[j] * scale));
      for (int64_t j = 0; j < valid; ++j) sum += std::exp(double(sr[j] * scale) - mx);
      for (int64_t j = 0; j < T; ++j)
        p[size_t(r * T + j)] = j < valid ? float(std::exp(double(sr[j] * scale) - mx) / sum) : 0.0f;
      for (int64_t j = 0; j < valid; ++j) dot += double(p[size_t(r * T + j)]) * dp[size_t(r * T + j)];
      for (int64_t j = 0; j < T; ++j) {
        const size_t k = size_t(r * T + j);
        ds[k] = j < valid ? float(double(p[k]) * (double(dp[k]) - dot)) : 0.0f;
        ds_scale[k] = double(p[k]) * (std::fabs(double(dp[k])) + std::fabs(dot));
      }
    }
    DevBuf<float> gs(s), gp(p), gdp(dp);
    DevBuf<uint16_t> p16(s.size()), ds16(s.size());
    CUDA_OK(tc::causal_softmax(gs.p, p16.p, n_mat, T, scale, nullptr));
    CUDA_OK(tc::softmax_backward(gdp.p, ds16.p, gp.p, n_mat, T, 1.0f, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    const auto got_p = gs.download(), got_ds = gdp.download();
    expect_close(got_p, p, 2e-6, 1e-12, what + " softmax");
    expect_close(got_ds, ds, 2e-6, 0.0, what + " softmax backward", &ds_scale);
    for (int64_t r = 0; r < n_mat * T; ++r)  // exactly 0 above the diagonal
      for (int64_t j = r % T + 1; j < T; ++j) {
        ASSERT_EQ(bits(got_p[size_t(r * T + j)]), 0u) << what << " p row " << r << " col " << j;
        ASSERT_EQ(bits(got_ds[size_t(r * T + j)]), 0u) << what << " ds row " << r << " col " << j;
      }
    const auto h16 = p16.download(), d16 = ds16.download();
    for (size_t i = 0; i < s.size(); ++i) {
      ASSERT_EQ(h16[i], hearth::fp32_to_bf16(got_p[i])) << what << " BF16 p[" << i << "]";
      ASSERT_EQ(d16[i], hearth::fp32_to_bf16(got_ds[i])) << what << " BF16 ds[" << i << "]";
    }
    // The backward's scale multiplies the result.
    DevBuf<float> gdp2(dp);
    CUDA_OK(tc::softmax_backward(gdp2.p, nullptr, gp.p, n_mat, T, scale, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    std::vector<float> scaled(ds.size());
    std::vector<double> scaled_scale(ds.size());
    for (size_t i = 0; i < ds.size(); ++i) {
      scaled[i] = ds[i] * scale;
      scaled_scale[i] = ds_scale[i] * scale;
    }
    expect_close(gdp2.download(), scaled, 2e-6, 0.0, what + " scaled softmax backward", &scaled_scale);
  }
}

// ---- Arguments (no GPU needed: rejected before any launch) ------------------------------------------

TEST(ARGS_SUITE, BadArgumentsAreRejected) {
  float* f = reinterpret_cast<float*>(uintptr_t(256));  // never dereferenced: each call fails first
  double* dd = reinterpret_cast<double*>(uintptr_t(256));
  int32_t* ip = reinterpret_cast<int32_t*>(uintptr_t(256));
  auto* st = reinterpret_cast<tc::CrossEntropyStats*>(uintptr_t(256));
  EXPECT_EQ(tc::f32_to_bf16(f, nullptr, 4, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(tc::bf16_to_f32(nullptr, f, -1, nullptr), cudaErrorInvalidValue);
  tc::AdamWStep s;
  s.t = 0;  // steps count from 1 (bias correction 1 - beta^0 = 0 would divide by zero)
  EXPECT_EQ(tc::adamw_step(f, f, f, f, nullptr, 4, s, nullptr), cudaErrorInvalidValue);
  s.t = 1;
  EXPECT_EQ(tc::adamw_step(f, nullptr, f, f, nullptr, 4, s, nullptr), cudaErrorInvalidValue);
  const int64_t sizes[2] = {10, -1};
  const float* ptrs[2] = {f, f};
  EXPECT_EQ(tc::grad_norm(ptrs, sizes, 2, dd, dd, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(tc::grad_norm(ptrs, sizes, 1, nullptr, dd, nullptr), cudaErrorInvalidValue);  // no scratch
  EXPECT_EQ(tc::clip_by_norm(f, 4, nullptr, 1.0, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(tc::cross_entropy(f, tc::DType::f32, f, tc::DType::bf16, ip, 2, 10, 1.0f, dd, st, nullptr),
            cudaErrorInvalidValue);  // in place with another type
  EXPECT_EQ(tc::cross_entropy(f, tc::DType::f32, nullptr, tc::DType::f32, ip, 2, 0, 1.0f, dd, st, nullptr),
            cudaErrorInvalidValue);  // empty vocabulary
  EXPECT_EQ(tc::cross_entropy(f, tc::DType::f32, nullptr, tc::DType::f32, ip, 2, 10, 1.0f, nullptr, st, nullptr),
            cudaErrorInvalidValue);  // no row_loss
  EXPECT_EQ(tc::rmsnorm_backward(nullptr, f, f, f, f, f, 4, 8, nullptr, nullptr), cudaErrorInvalidValue);  // no scratch
  EXPECT_EQ(tc::rmsnorm_forward(f, f, f, f, 4, 0, 1e-5f, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(tc::rope_forward(f, 1, 4, 2, 7, dd, false, nullptr), cudaErrorInvalidValue);  // odd head_dim
  EXPECT_EQ(tc::rope_backward(f, -1, 4, 2, 8, dd, true, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(tc::swiglu_backward(f, f, nullptr, f, f, 4, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(tc::embedding_backward(f, f, ip, 5, 4, 8, nullptr), cudaErrorInvalidValue);  // more tokens than rows
  // Sizes that need no work succeed without touching anything.
  EXPECT_EQ(tc::scale(nullptr, 0, 2.0f, nullptr), cudaSuccess);
  EXPECT_EQ(tc::swiglu_backward(nullptr, nullptr, nullptr, nullptr, nullptr, 100, nullptr), cudaSuccess);
  EXPECT_EQ(tc::grad_norm_partials(sizes, 1), 1);
  const int64_t big[3] = {8192, 8193, 0};
  EXPECT_EQ(tc::grad_norm_partials(big, 3), 3);
  EXPECT_EQ(tc::rmsnorm_dw_partials(65, 10), 20);
  // Added for the device trainer.
  EXPECT_EQ(tc::qk_to_hf(f, f, 2, 2, 8, nullptr), cudaErrorInvalidValue);           // in place
  EXPECT_EQ(tc::qk_from_hf(f, f + 64, 2, 2, 7, nullptr), cudaErrorInvalidValue);    // odd head_dim
  EXPECT_EQ(tc::dropout_forward(f, nullptr, 4, 0.5f, 1, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(tc::dropout_backward(f, f, -1, 0.5f, 1, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(tc::bias_backward(f, f, 4, 8, nullptr, nullptr), cudaErrorInvalidValue);  // no scratch
  EXPECT_EQ(tc::add_inplace(f, nullptr, 4, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(tc::to_head_major(f, f, 1, 2, 2, 4, nullptr), cudaErrorInvalidValue);    // in place
  EXPECT_EQ(tc::from_head_major(f, f + 64, -1, 2, 2, 4, false, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(tc::causal_softmax(nullptr, nullptr, 2, 4, 1.0f, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(tc::softmax_backward(f, nullptr, nullptr, 2, 4, 1.0f, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(tc::bias_backward(nullptr, f, 4, 8, nullptr, nullptr), cudaSuccess);      // dbias not wanted
  EXPECT_EQ(tc::dropout_backward(nullptr, f, 4, 0.5f, 1, nullptr), cudaSuccess);
  EXPECT_EQ(tc::bias_grad_partials(65, 10), 20);
}

}  // namespace
