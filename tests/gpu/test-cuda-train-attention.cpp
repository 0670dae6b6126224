/* The trainer's GPU matrix products (trainer/src/train-blas.h) and attention (device-attention.h) against
 * plain CPU references: TrainBlas gemm / gemm_batched against a double-precision loop over the same
 * (for BF16: BF16-rounded) inputs, for every transpose combination with padded row and batch strides;
 * attention_forward / attention_backward against ops::attention_forward / attention_backward for MHA and
 * GQA (n_head 4 with n_head_kv 4, 2 and 1) at several sequence lengths, odd ones included. Skips itself
 * where no CUDA device is usable. The same file runs on the CPU emulation of CUDA and cuBLAS
 * (tests/trainer/cuda-train-attention-emu.cmake, suites ending in "Emulated", smaller shapes).
 *
 * Tolerances: products within 1e-5 (F32) / 1e-3 (BF16) of the sum of the magnitudes of their terms;
 * attention outputs and gradients within 1e-5 (F32) / 2e-2 (BF16) of the largest magnitude of the CPU's
 * tensor (the BF16 path rounds q, k, v, the probabilities and dS to 8 significant bits).
 *
 * Non-obvious choice: the backward runs from the GPU's own probabilities (as the device trainer does), so
 * the backward's error includes the forward's; gradients start from random values, which checks that
 * they accumulate.
 */
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "cuda-test-util.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "device-attention.h"
#include "hearth/tensor-types.h"
#include "ops.h"
#include "train-blas.h"

namespace tc = hearth::train::cuda;
namespace ops = hearth::train::ops;

namespace {

using hearth::test::DevBuf;
using hearth::test::have_gpu;
using hearth::test::random_values;

#ifdef HEARTH_CUDA_EMULATION
bool quick() { return true; }
#define BLAS_SUITE CudaTrainBlasEmulated
#define ATTN_SUITE CudaTrainAttentionEmulated
#else
bool quick() { return std::getenv("HEARTH_SANITIZER_QUICK") != nullptr; }
#define BLAS_SUITE CudaTrainBlas
#define ATTN_SUITE CudaTrainAttention
#endif

#define REQUIRE_GPU() \
  if (!have_gpu()) GTEST_SKIP() << "no usable CUDA device"

std::unique_ptr<tc::TrainBlas> make_blas() {
  auto b = tc::TrainBlas::create(nullptr);
  if (!b) {
    ADD_FAILURE() << "TrainBlas::create: " << b.error().to_string();
    return nullptr;
  }
  return std::move(*b);
}

std::vector<uint16_t> to_bf16(const std::vector<float>& x) {
  std::vector<uint16_t> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = hearth::fp32_to_bf16(x[i]);
  return y;
}
std::vector<float> bf16_round(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = hearth::bf16_to_fp32(hearth::fp32_to_bf16(x[i]));
  return y;
}

// ---- TrainBlas -------------------------------------------------------------------------------------

// A row-major operand stored (rows, cols) with row stride ld inside a batch of `batch` matrices `stride`
// elements apart; padding is random too (the product must not read it).
struct HostMat {
  int64_t rows, cols, ld, stride, batch;
  std::vector<float> v;
  HostMat(int64_t r, int64_t c, int64_t pad, int64_t b, uint32_t seed)
      : rows(r), cols(c), ld(c + pad), stride(r * (c + pad) + 7 * pad), batch(b),
        v(random_values(size_t(stride * b), seed)) {}
  float at(int64_t bi, int64_t i, int64_t j) const { return v[size_t(bi * stride + i * ld + j)]; }
};

// c (per batch, (m, n) with ldc) = alpha · op(a) · op(b) + beta · c0, in double; scale = the magnitudes.
void reference_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const HostMat& a, const HostMat& b,
                    float beta, const std::vector<float>& c0, int64_t ldc, int64_t stride_c, int64_t batch,
                    std::vector<double>& want, std::vector<double>& scale) {
  want.assign(c0.begin(), c0.end());
  scale.assign(c0.size(), 0.0);
  for (int64_t bi = 0; bi < batch; ++bi)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0, mag = 0;
        for (int64_t l = 0; l < k; ++l) {
          const double x = ta ? a.at(bi, l, i) : a.at(bi, i, l), y = tb ? b.at(bi, j, l) : b.at(bi, l, j);
          acc += x * y;
          mag += std::fabs(x * y);
        }
        const size_t o = size_t(bi * stride_c + i * ldc + j);
        want[o] = double(alpha) * acc + double(beta) * c0[o];
        scale[o] = std::fabs(double(alpha)) * mag + std::fabs(double(beta) * c0[o]);
      }
}

// One product (batch == 0: gemm, else gemm_batched) in F32 or BF16, checked against reference_gemm;
// returns the largest error relative to the magnitudes.
double check_gemm(tc::TrainBlas& blas, bool bf16, bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t batch) {
  const bool batched = batch > 0;
  const int64_t nb = batched ? batch : 1;
  const uint32_t seed = uint32_t(1000 + 8 * ta + 4 * tb + 2 * bf16 + batched);
  HostMat a(ta ? k : m, ta ? m : k, 3, nb, seed), b(tb ? n : k, tb ? k : n, 5, nb, seed + 100);
  const int64_t ldc = n + 2, stride_c = m * ldc + 11;
  const auto c0 = random_values(size_t(stride_c * nb), seed + 200);
  const float alpha = 0.75f, beta = 0.5f;
  std::string what = std::string(bf16 ? "BF16 " : "F32 ") + (batched ? "gemm_batched " : "gemm ") + (ta ? "T" : "N") +
                     (tb ? "T" : "N");
  if (bf16) {  // the reference multiplies the rounded values
    a.v = bf16_round(a.v);
    b.v = bf16_round(b.v);
  }
  std::vector<double> want, scale;
  reference_gemm(ta, tb, m, n, k, alpha, a, b, beta, c0, ldc, stride_c, nb, want, scale);

  DevBuf<float> gc(c0), ga32(a.v), gb32(b.v);
  DevBuf<uint16_t> ga16(to_bf16(a.v)), gb16(to_bf16(b.v));
  const tc::DType ty = bf16 ? tc::DType::bf16 : tc::DType::f32;
  const tc::Mat ma{bf16 ? static_cast<const void*>(ga16.p) : ga32.p, ty, a.ld};
  const tc::Mat mb{bf16 ? static_cast<const void*>(gb16.p) : gb32.p, ty, b.ld};
  hearth::Expected<void> r =
      batched ? blas.gemm_batched(ta, tb, m, n, k, alpha, ma, a.stride, mb, b.stride, beta, gc.p, ldc, stride_c, batch)
              : blas.gemm(ta, tb, m, n, k, alpha, ma, mb, beta, gc.p, ldc);
  EXPECT_TRUE(r.has_value()) << what << ": " << r.error().to_string();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const auto got = gc.download();
  const double tol = bf16 ? 1e-3 : 1e-5;
  double worst = 0;
  int reported = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - want[i]);
    // Padding (between n and ldc, between matrices) keeps its value: scale 0 and want = c0 there.
    const double allowed = tol * scale[i];
    if (scale[i] > 0) worst = std::max(worst, err / scale[i]);
    if (!(err <= allowed) && reported++ < 5)
      ADD_FAILURE() << what << " [" << i << "]: got " << got[i] << ", want " << want[i] << " (error " << err
                    << ", allowed " << allowed << ")";
  }
  return worst;
}

TEST(BLAS_SUITE, ProductsMatchTheCpuForEveryTransposeAndStride) {
  REQUIRE_GPU();
  auto blas = make_blas();
  ASSERT_TRUE(blas);
  const int64_t m = quick() ? 13 : 130, n = quick() ? 9 : 70, k = quick() ? 17 : 300;
  for (const bool bf16 : {false, true}) {
    double worst = 0;
    for (const bool ta : {false, true})
      for (const bool tb : {false, true}) {
        worst = std::max(worst, check_gemm(*blas, bf16, ta, tb, m, n, k, 0));
        worst = std::max(worst, check_gemm(*blas, bf16, ta, tb, m, n, k, 3));
      }
    std::printf("RESULT train-blas-%s max_rel_err %.3g\n", bf16 ? "bf16" : "f32", worst);
  }
}

TEST(BLAS_SUITE, BadOperandsAreErrorsNotCrashes) {
  REQUIRE_GPU();
  auto blas = make_blas();
  ASSERT_TRUE(blas);
  DevBuf<float> a(64), c(64);
  DevBuf<uint16_t> h(64);
  const tc::Mat f32{a.p, tc::DType::f32, 0}, b16{h.p, tc::DType::bf16, 0};
  auto mixed = blas->gemm(false, false, 4, 4, 4, 1.0f, f32, b16, 0.0f, c.p);
  ASSERT_FALSE(mixed.has_value());
  EXPECT_EQ(mixed.error().code, hearth::ErrorCode::invalid_argument);
  auto short_ld = blas->gemm(false, false, 4, 4, 4, 1.0f, tc::Mat{a.p, tc::DType::f32, 3}, f32, 0.0f, c.p);
  ASSERT_FALSE(short_ld.has_value());
  EXPECT_EQ(short_ld.error().code, hearth::ErrorCode::invalid_argument);
  auto short_ldc = blas->gemm(false, false, 4, 4, 4, 1.0f, f32, f32, 0.0f, c.p, 2);
  EXPECT_FALSE(short_ldc.has_value());
  auto negative = blas->gemm_batched(false, false, 4, 4, 4, 1.0f, f32, 16, f32, 16, 0.0f, c.p, 0, 16, -1);
  EXPECT_FALSE(negative.has_value());
  auto empty = blas->gemm(false, false, 0, 4, 4, 1.0f, f32, f32, 0.0f, c.p);  // nothing to do
  EXPECT_TRUE(empty.has_value());
}

// ---- Attention -------------------------------------------------------------------------------------

// Largest |got - want| over the largest |want|.
double rel_to_max(const std::vector<float>& got, const std::vector<float>& want) {
  double e = 0, mx = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    e = std::max(e, std::fabs(double(got[i]) - double(want[i])));
    mx = std::max(mx, std::fabs(double(want[i])));
  }
  return mx > 0 ? e / mx : e;
}

struct AttnErrors {
  double out = 0, att = 0, dq = 0, dk = 0, dv = 0;
};

// One shape in one precision: forward and backward against the CPU ops.
AttnErrors check_attention(tc::TrainBlas& blas, bool bf16, const tc::AttnShape& s) {
  const std::string what = std::string(bf16 ? "BF16" : "F32") + " B=" + std::to_string(s.B) + " T=" +
                           std::to_string(s.T) + " heads " + std::to_string(s.n_head) + "/" +
                           std::to_string(s.n_head_kv) + " hd=" + std::to_string(s.hd);
  const size_t nq = size_t(s.B * s.T * s.n_head * s.hd), nkv = size_t(s.B * s.T * s.n_head_kv * s.hd),
               ntt = size_t(s.B * s.n_head * s.T * s.T);
  const uint32_t seed = uint32_t(s.T * 31 + s.n_head_kv * 7 + bf16);
  const auto q = random_values(nq, seed, 1.5f), k = random_values(nkv, seed + 1, 1.5f),
             v = random_values(nkv, seed + 2), dout = random_values(nq, seed + 3);
  const auto dq0 = random_values(nq, seed + 4, 0.1f), dk0 = random_values(nkv, seed + 5, 0.1f),
             dv0 = random_values(nkv, seed + 6, 0.1f);
  std::vector<float> out(nq), att(ntt), dq = dq0, dk = dk0, dv = dv0;
  ops::attention_forward(out.data(), att.data(), q.data(), k.data(), v.data(), s.B, s.T, s.n_head, s.n_head_kv, s.hd);
  ops::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), att.data(), q.data(), k.data(), v.data(), s.B,
                          s.T, s.n_head, s.n_head_kv, s.hd);

  DevBuf<float> gq(q), gk(k), gv(v), gdout(dout), gout(nq), gatt(ntt), gdq(dq0), gdk(dk0), gdv(dv0);
  DevBuf<uint8_t> scratch(size_t(tc::attention_scratch_bytes(s, bf16)));
  AttnErrors e;
  auto f = tc::attention_forward(blas, bf16, gout.p, gatt.p, gq.p, gk.p, gv.p, s, scratch.p);
  EXPECT_TRUE(f.has_value()) << what << ": " << f.error().to_string();
  auto b = tc::attention_backward(blas, bf16, gdq.p, gdk.p, gdv.p, gdout.p, gatt.p, gq.p, gk.p, gv.p, s, scratch.p);
  EXPECT_TRUE(b.has_value()) << what << ": " << b.error().to_string();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const auto got_att = gatt.download();
  e.out = rel_to_max(gout.download(), out);
  e.att = rel_to_max(got_att, att);
  e.dq = rel_to_max(gdq.download(), dq);
  e.dk = rel_to_max(gdk.download(), dk);
  e.dv = rel_to_max(gdv.download(), dv);
  const double tol = bf16 ? 2e-2 : 1e-5;
  EXPECT_LE(e.out, tol) << what << " out";
  EXPECT_LE(e.att, tol) << what << " att";
  EXPECT_LE(e.dq, tol) << what << " dq";
  EXPECT_LE(e.dk, tol) << what << " dk";
  EXPECT_LE(e.dv, tol) << what << " dv";
  // The upper triangle of the probabilities is exactly 0, as the CPU writes it.
  for (int64_t m = 0; m < s.B * s.n_head; ++m)
    for (int64_t i = 0; i < s.T; ++i)
      for (int64_t j = i + 1; j < s.T; ++j)
        if (got_att[size_t((m * s.T + i) * s.T + j)] != 0.0f) {
          ADD_FAILURE() << what << " att above the diagonal at matrix " << m << " (" << i << ", " << j << ")";
          return e;
        }
  return e;
}

TEST(ATTN_SUITE, ForwardAndBackwardMatchCpuForMhaAndGqa) {
  REQUIRE_GPU();
  auto blas = make_blas();
  ASSERT_TRUE(blas);
  const std::vector<int64_t> Ts = quick() ? std::vector<int64_t>{1, 7, 20} : std::vector<int64_t>{1, 7, 64, 129, 300};
  const int64_t B = 2, hd = quick() ? 8 : 64;
  for (const bool bf16 : {false, true}) {
    AttnErrors worst;
    for (const int64_t n_head_kv : {4, 2, 1})
      for (const int64_t T : Ts) {
        const AttnErrors e = check_attention(*blas, bf16, tc::AttnShape{B, T, 4, n_head_kv, hd});
        worst.out = std::max(worst.out, e.out);
        worst.att = std::max(worst.att, e.att);
        worst.dq = std::max(worst.dq, e.dq);
        worst.dk = std::max(worst.dk, e.dk);
        worst.dv = std::max(worst.dv, e.dv);
      }
    std::printf("RESULT train-attention-%s max_rel_err out %.3g att %.3g dq %.3g dk %.3g dv %.3g\n",
                bf16 ? "bf16" : "f32", worst.out, worst.att, worst.dq, worst.dk, worst.dv);
  }
}

TEST(ATTN_SUITE, EachGradientAloneEqualsItsShareOfTheFullBackward) {
  REQUIRE_GPU();
  auto blas = make_blas();
  ASSERT_TRUE(blas);
  const tc::AttnShape s{1, quick() ? 9 : 100, 4, 2, quick() ? 8 : 32};
  const size_t nq = size_t(s.B * s.T * s.n_head * s.hd), nkv = size_t(s.B * s.T * s.n_head_kv * s.hd);
  DevBuf<float> gq(random_values(nq, 1)), gk(random_values(nkv, 2)), gv(random_values(nkv, 3)),
      gdout(random_values(nq, 4)), gout(nq), gatt(size_t(s.B * s.n_head * s.T * s.T));
  for (const bool bf16 : {false, true}) {  // BF16 shares scratch regions between steps: same results alone
    SCOPED_TRACE(bf16 ? "BF16" : "F32");
    DevBuf<uint8_t> scratch(size_t(tc::attention_scratch_bytes(s, bf16)));
    ASSERT_TRUE(tc::attention_forward(*blas, bf16, gout.p, gatt.p, gq.p, gk.p, gv.p, s, scratch.p).has_value());
    const auto z = std::vector<float>(nq, 0.0f), zkv = std::vector<float>(nkv, 0.0f);
    DevBuf<float> dq(z), dk(zkv), dv(zkv), dq1(z), dk1(zkv), dv1(zkv);
    ASSERT_TRUE(tc::attention_backward(*blas, bf16, dq.p, dk.p, dv.p, gdout.p, gatt.p, gq.p, gk.p, gv.p, s, scratch.p)
                    .has_value());
    // Each alone needs only its inputs: dQ no q, dK no k, dV none of q, k, v.
    ASSERT_TRUE(tc::attention_backward(*blas, bf16, dq1.p, nullptr, nullptr, gdout.p, gatt.p, nullptr, gk.p, gv.p, s,
                                       scratch.p)
                    .has_value());
    ASSERT_TRUE(tc::attention_backward(*blas, bf16, nullptr, dk1.p, nullptr, gdout.p, gatt.p, gq.p, nullptr, gv.p, s,
                                       scratch.p)
                    .has_value());
    ASSERT_TRUE(tc::attention_backward(*blas, bf16, nullptr, nullptr, dv1.p, gdout.p, gatt.p, nullptr, nullptr,
                                       nullptr, s, scratch.p)
                    .has_value());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(dq1.download(), dq.download());
    EXPECT_EQ(dk1.download(), dk.download());
    EXPECT_EQ(dv1.download(), dv.download());
  }
}

TEST(ATTN_SUITE, BadShapesAreErrors) {
  REQUIRE_GPU();
  auto blas = make_blas();
  ASSERT_TRUE(blas);
  DevBuf<float> buf(1024);
  const tc::AttnShape not_multiple{1, 4, 3, 2, 8}, empty{1, 0, 4, 4, 8};
  auto r = tc::attention_forward(*blas, false, buf.p, buf.p, buf.p, buf.p, buf.p, not_multiple, buf.p);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, hearth::ErrorCode::invalid_argument);
  EXPECT_NE(r.error().message.find("multiple"), std::string::npos) << r.error().message;
  EXPECT_FALSE(tc::attention_backward(*blas, false, buf.p, buf.p, buf.p, buf.p, buf.p, buf.p, buf.p, buf.p, empty,
                                      buf.p)
                   .has_value());
  EXPECT_EQ(tc::attention_scratch_bytes(empty, false), 0u);
  const tc::AttnShape s{2, 16, 4, 2, 8};
  // At least dP (B, n_head, T, T) and one head-major (B, n_head, T, hd) tensor in F32, in either precision.
  for (const bool bf16 : {false, true})
    EXPECT_GE(tc::attention_scratch_bytes(s, bf16), uint64_t(4 * (2 * 4 * 16 * 16 + 2 * 4 * 16 * 8))) << bf16;
}

}  // namespace
