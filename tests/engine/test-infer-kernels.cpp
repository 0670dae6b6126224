/* Unit tests of the CPU kernels: the quantized dot products (SIMD and portable) against the same sum
 * computed here in integers from the blocks' definition, and against the F32 dot of the dequantized
 * row; the tiled matmul against a plain loop for every supported weight type; the thread pool.
 */
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <random>

#include "../../engine/cpu/cpu-ops.h"
#include "../../engine/cpu/quant-dot.h"
#include "hearth/tensor-types.h"

using namespace hearth;

namespace {

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

}  // namespace

TEST(Kernels, QuantDotMatchesIntegerDefinition) {
  const int64_t n = 256;
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    SCOPED_TRACE(type_name(t));
    auto w = randn(n, 1), x = randn(n, 2);
    std::vector<uint8_t> wq(*type_nbytes(t, n));
    ASSERT_TRUE(quantize(t, w.data(), wq.data(), n));
    std::vector<float> wd(n);
    ASSERT_TRUE(dequantize(t, wq.data(), wd.data(), n));
    for (const cpu::QuantDot* qd : {cpu::quant_dot_for(t), cpu::quant_dot_generic_for(t)}) {
      ASSERT_NE(qd, nullptr);
      std::vector<uint8_t> xq(qd->act_row_bytes(n));
      qd->quantize_act(x.data(), xq.data(), n);
      // Expected: sum over blocks of d_w * d_x * sum(q_w * q_x), with q_w = wd / d_w recovered exactly.
      double want = 0;
      for (int64_t b = 0; b < n / 32; ++b) {
        float dx;
        std::memcpy(&dx, xq.data() + b * 36, 4);
        const auto* q = reinterpret_cast<const int8_t*>(xq.data() + b * 36 + 4);
        double s = 0;
        for (int i = 0; i < 32; ++i) s += double(wd[size_t(b * 32 + i)]) * q[i];
        want += s * dx;
        // The activation's rounding is at most half a step.
        for (int i = 0; i < 32; ++i) EXPECT_LE(std::abs(q[i] * dx - x[size_t(b * 32 + i)]), dx * 0.5f + 1e-6f);
      }
      float got = qd->dot(wq.data(), xq.data(), n);
      EXPECT_NEAR(got, want, 1e-4 * std::abs(want) + 1e-4);
      double exact = 0;
      for (int64_t i = 0; i < n; ++i) exact += double(wd[size_t(i)]) * x[size_t(i)];
      EXPECT_NEAR(got, exact, 0.05 * std::sqrt(double(n)));
    }
  }
}

TEST(Kernels, MatmulMatchesPlainLoop) {
  const int64_t k = 256, rows = 37;
  auto w = randn(size_t(k * rows), 3);
  auto x = randn(size_t(k * 9), 4);
  cpu::ThreadPool pool(3);
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,
                     GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    SCOPED_TRACE(type_name(t));
    std::vector<uint8_t> wq(*type_nbytes(t, uint64_t(k * rows)));
    ASSERT_TRUE(quantize(t, w.data(), wq.data(), k * rows));
    std::vector<float> wd(size_t(k * rows));
    ASSERT_TRUE(dequantize(t, wq.data(), wd.data(), k * rows));
    cpu::MatView mv{t, wq.data(), k, rows, *row_nbytes(t, k)};
    for (int64_t n_tok : {1, 3, 9}) {  // 9: the sgemm path when built with OpenBLAS
      for (bool qdot : {false, true}) {
        std::vector<float> y(size_t(n_tok * rows));
        cpu::matmul(pool, mv, x.data(), n_tok, y.data(), qdot);
        double worst = 0;
        for (int64_t tt = 0; tt < n_tok; ++tt)
          for (int64_t r = 0; r < rows; ++r) {
            double s = 0;
            for (int64_t i = 0; i < k; ++i) s += double(wd[size_t(r * k + i)]) * x[size_t(tt * k + i)];
            worst = std::max(worst, std::abs(s - y[size_t(tt * rows + r)]));
          }
        bool approx = qdot && n_tok == 1 && (t == GgmlType::Q8_0 || t == GgmlType::Q4_0);  // 8-bit activations
        EXPECT_LT(worst, approx ? 0.5 : 1e-3) << "tokens " << n_tok << " quant-dot " << qdot;
      }
    }
  }
}

TEST(Kernels, ThreadPoolRunsEveryIndexOnce) {
  cpu::ThreadPool pool(4);
  for (int rep = 0; rep < 200; ++rep) {
    std::vector<std::atomic<int>> hit(1000);
    pool.parallel_for(1000, [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) hit[size_t(i)]++;
    });
    for (auto& h : hit) ASSERT_EQ(h.load(), 1);
  }
  EXPECT_THROW(pool.run([](int i, int) {
    if (i == 1) throw std::runtime_error("x");
  }), std::runtime_error);
}
