/* Unit tests of the CPU kernels: the quantized dot products (SIMD and portable) against the same sum
 * computed here in integers from the blocks' definition, and against the F32 dot of the dequantized
 * row; the tiled matmul against a plain loop for every supported weight type; the thread pool.
 */
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
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
    for (const cpu::QuantDot* qd : cpu::quant_dot_variants(t)) {
      SCOPED_TRACE(qd->isa);
      ASSERT_NE(qd->act_block, nullptr);
      std::vector<uint8_t> xq(qd->act_row_bytes(n));
      qd->quantize_act(x.data(), xq.data(), n);
      // Expected: sum over blocks of d_w * d_x * sum(q_w * q_x), with q_w = wd / d_w recovered exactly.
      double want = 0;
      for (int64_t b = 0; b < n / 32; ++b) {
        float dx;
        const int8_t* q = nullptr;
        qd->act_block(xq.data(), n, b, &dx, &q);
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
        // 8-bit activations (the K-quants' only where the integer SIMD kernels are in use).
        const cpu::QuantDot* kd = cpu::quant_dot_for(t);
        bool int_act = kd && kd->act_block != nullptr;
        bool approx = qdot && n_tok == 1 && int_act;
        EXPECT_LT(worst, approx ? 0.5 : 1e-3) << "tokens " << n_tok << " quant-dot " << qdot;
      }
    }
  }
}


// The SIMD activation quantizer of the integer K-quant kernels writes exactly the portable bytes, its
// 16-sums are the sums of its values, and each value is within half a step of the input.
TEST(Kernels, Q8KActivationMatchesPortable) {
  const cpu::QuantDot* qd = cpu::quant_dot_for(GgmlType::Q4_K);
  if (qd->act_block_bytes != cpu::Q8K_ACT_BYTES) GTEST_SKIP() << "no integer K-quant kernel on this CPU";
  uint32_t seed = 10;
  for (int64_t n : {256, 512, 2048, 5632}) {
    auto x = randn(size_t(n), seed++);
    for (int64_t i = 0; i < n; ++i) x[size_t(i)] *= float(1 + (i / 256) % 5) * (i % 7 == 0 ? 10.0f : 1.0f);
    std::vector<uint8_t> simd(cpu::Q8K_ACT_BYTES * size_t(n / 256)), portable(simd.size());
    qd->quantize_act(x.data(), simd.data(), n);
    cpu::quantize_act_q8k(x.data(), portable.data(), n);
    ASSERT_EQ(simd, portable) << "n " << n;
    for (int64_t b = 0; b < n / 256; ++b) {
      const uint8_t* blk = simd.data() + b * cpu::Q8K_ACT_BYTES;
      float d;
      std::memcpy(&d, blk, 4);
      const auto* q = reinterpret_cast<const int8_t*>(blk + 36);
      for (int j = 0; j < 16; ++j) {
        int16_t bs;
        std::memcpy(&bs, blk + 4 + 2 * j, 2);
        int sum = 0;
        for (int i = 0; i < 16; ++i) sum += q[16 * j + i];
        EXPECT_EQ(bs, sum);
      }
      for (int i = 0; i < 256; ++i) EXPECT_LE(std::abs(q[i] * d - x[size_t(b * 256 + i)]), d * 0.5f * 1.0001f);
    }
  }
}

// Each dispatched kernel (SIMD where the CPU has it) on random rows of many lengths, odd row counts and
// varied magnitudes, against (a) the integer definition over the same activation bytes (float summation
// error only: 1e-5 of the sum of absolute terms), (b) the F32 dot of the dequantized row with the exact
// activation: at most the activation's rounding, sum |w_i| * d_block / 2, and (c) the portable kernel.
TEST(Kernels, SimdQuantDotMatchesReference) {
  uint32_t seed = 100;
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    const bool k_quant = t == GgmlType::Q4_K || t == GgmlType::Q6_K;
    const cpu::QuantDot* gen = cpu::quant_dot_generic_for(t);
    ASSERT_NE(gen, nullptr);
    for (const cpu::QuantDot* qd : cpu::quant_dot_variants(t)) {
      SCOPED_TRACE(qd->isa);
      const int64_t ablk = qd->act_block ? qd->block : 0;
      std::vector<int64_t> lengths = {256, 512, 768, 1280, 2048, 5632};
      if (!k_quant) lengths.insert(lengths.end(), {32, 64, 96, 160, 224, 4128});
      for (int64_t n : lengths) {
        for (int64_t rows : {1, 7, 13}) {
          SCOPED_TRACE(std::string(type_name(t)) + " n " + std::to_string(n) + " rows " + std::to_string(rows));
          auto w = randn(size_t(n * rows), seed++), x = randn(size_t(n), seed++);
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t i = 0; i < n; ++i) w[size_t(r * n + i)] *= 0.01f * float(1 + r) * (i % 64 < 8 ? 5.0f : 1.0f);
          for (int64_t i = 0; i < n; ++i) x[size_t(i)] *= i % 96 == 5 ? 20.0f : 1.0f;
          const uint64_t rb = *row_nbytes(t, n);
          std::vector<uint8_t> wq(rb * size_t(rows));
          ASSERT_TRUE(quantize(t, w.data(), wq.data(), n * rows));
          std::vector<float> wd(size_t(n * rows));
          ASSERT_TRUE(dequantize(t, wq.data(), wd.data(), n * rows));
          std::vector<uint8_t> xq(qd->act_row_bytes(n)), xg(gen->act_row_bytes(n));
          qd->quantize_act(x.data(), xq.data(), n);
          gen->quantize_act(x.data(), xg.data(), n);
          for (int64_t r = 0; r < rows; ++r) {
            const float* wr = wd.data() + r * n;
            const float got = qd->dot(wq.data() + r * rb, xq.data(), n);
            double exact = 0, round_bound = 0, want = 0, abs_terms = 0;
            for (int64_t i = 0; i < n; ++i) exact += double(wr[i]) * x[size_t(i)];
            if (ablk > 0) {
              for (int64_t b = 0; b < n / ablk; ++b) {
                float d;
                const int8_t* q = nullptr;
                qd->act_block(xq.data(), n, b, &d, &q);
                for (int64_t i = 0; i < ablk; ++i) {
                  const double term = double(wr[b * ablk + i]) * q[i] * d;
                  want += term;
                  abs_terms += std::abs(term);
                  round_bound += std::abs(double(wr[b * ablk + i])) * d * 0.5;
                }
              }
              EXPECT_NEAR(got, want, 1e-5 * abs_terms + 1e-6) << "row " << r;
            } else {
              for (int64_t i = 0; i < n; ++i) abs_terms += std::abs(double(wr[i]) * x[size_t(i)]);
            }
            EXPECT_NEAR(got, exact, round_bound * 1.001 + 1e-5 * abs_terms + 1e-6) << "row " << r;
            const float portable = gen->dot(wq.data() + r * rb, xg.data(), n);
            // The portable kernel: exact (F32 activation, K-quants) or over the same 8-bit activation.
            const double tol = (k_quant ? round_bound * 1.001 : 0.0) + 1e-5 * abs_terms + 1e-6;
            EXPECT_NEAR(got, portable, tol) << "row " << r;
          }
        }
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

// decode_view's interleaved copies give what the stored rows give: each row dequantizes to the same
// values, and decoding products (single, fused q/k/v over a mix of interleaved and stored matrices of
// different types, fused gate/up/SwiGLU) match the row kernels over the stored rows, on three threads so
// that the row splits cross matrices and groups.
TEST(Kernels, DecodeViewsGiveTheStoredProducts) {
  const int64_t k = 512, rows = 48;
  cpu::ThreadPool pool(3);
  const auto x = randn(size_t(k), 41);
  const std::vector<GgmlType> types = {GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0};
  std::vector<std::vector<uint8_t>> stored(types.size());
  std::vector<cpu::MatView> plain(types.size()), fast(types.size());
  std::vector<std::shared_ptr<const void>> keep(types.size());
  std::vector<std::vector<float>> want(types.size(), std::vector<float>(static_cast<size_t>(rows)));
  std::vector<double> scale(types.size());
  for (size_t i = 0; i < types.size(); ++i) {
    const GgmlType t = types[i];
    SCOPED_TRACE(type_name(t));
    auto w = randn(size_t(k * rows), 42 + uint32_t(i));
    stored[i].resize(*type_nbytes(t, uint64_t(k * rows)));
    ASSERT_TRUE(quantize(t, w.data(), stored[i].data(), k * rows));
    plain[i] = cpu::MatView{t, stored[i].data(), k, rows, *row_nbytes(t, k)};
    const bool copied = cpu::decode_view(plain[i], pool, fast[i], keep[i]);
    EXPECT_EQ(copied, cpu::quant_dot_x8_for(t) != nullptr);
    EXPECT_EQ(fast[i].x8, copied);
    EXPECT_EQ(copied, fast[i].data != plain[i].data);
    std::vector<float> a(static_cast<size_t>(k)), b(static_cast<size_t>(k));
    for (int64_t r = 0; r < rows; ++r) {
      cpu::dequantize_row(plain[i], r, a.data());
      cpu::dequantize_row(fast[i], r, b.data());
      ASSERT_EQ(a, b) << "row " << r;
      double abs_terms = 0;  // the products differ only in summation order: a bound from |w| . |x|
      for (int64_t j = 0; j < k; ++j) abs_terms += std::abs(double(a[size_t(j)]) * x[size_t(j)]);
      scale[i] = std::max(scale[i], 1e-5 * abs_terms);
    }
    cpu::matmul(pool, plain[i], x.data(), 1, want[i].data());
    std::vector<float> got(static_cast<size_t>(rows));
    cpu::matmul(pool, fast[i], x.data(), 1, got.data());
    for (int64_t r = 0; r < rows; ++r) EXPECT_NEAR(got[size_t(r)], want[i][size_t(r)], scale[i]) << "row " << r;
  }
  // Interleaved and stored matrices of every type in one fused product: each the same as alone.
  std::vector<const cpu::MatView*> ws;
  std::vector<std::vector<float>> alone, fused;
  for (size_t i = 0; i < types.size(); ++i)
    for (const cpu::MatView* v : {&fast[i], &plain[i]}) {
      ws.push_back(v);
      alone.emplace_back(static_cast<size_t>(rows));
      cpu::matmul(pool, *v, x.data(), 1, alone.back().data());
      fused.emplace_back(static_cast<size_t>(rows));
    }
  std::vector<float*> ys;
  for (auto& f : fused) ys.push_back(f.data());
  cpu::matvec_multi(pool, ws, x.data(), ys);
  for (size_t i = 0; i < ws.size(); ++i) EXPECT_EQ(fused[i], alone[i]) << "matrix " << i;
  // Gate interleaved (Q4_K), up stored (Q6_K), and both interleaved.
  for (const auto& [gate, up] : {std::pair{&fast[1], &plain[2]}, std::pair{&fast[1], &fast[2]}}) {
    std::vector<float> out(static_cast<size_t>(rows)), g(static_cast<size_t>(rows)), u(static_cast<size_t>(rows));
    cpu::matvec_swiglu(pool, *gate, *up, x.data(), out.data());
    cpu::matmul(pool, *gate, x.data(), 1, g.data());
    cpu::matmul(pool, *up, x.data(), 1, u.data());
    for (int64_t r = 0; r < rows; ++r) {
      const float gr = g[size_t(r)], want_r = gr / (1.0f + std::exp(-gr)) * u[size_t(r)];
      EXPECT_NEAR(out[size_t(r)], want_r, 1e-5 * (std::abs(want_r) + 1)) << "row " << r;
    }
  }
}

// Rows interleaved eight at a time (every type with such a layout): the repacking is lossless, every
// activation quantizer writes the portable bytes, and every kernel gives each row's dot (a) as the integer
// definition over the same activation says (float summation only) and (b) as each row-at-a-time kernel
// with an integer activation does over its own activation of the same x.
TEST(Kernels, InterleavedRowsMatchRowKernel) {
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    SCOPED_TRACE(std::string(type_name(t)));
    const auto variants = cpu::quant_dot_x8_variants(t);
    if (t != GgmlType::Q6_K) {
      ASSERT_FALSE(variants.empty());
    }
    if (variants.empty()) continue;
    const cpu::QuantDotX8* layout = cpu::quant_dot_x8_generic_for(t);
    ASSERT_EQ(layout, variants.front());
    uint32_t seed = 500;
    const std::vector<int64_t> sizes = variants.front()->block == 32 ? std::vector<int64_t>{32, 64, 96, 2048, 5632}
                                                                      : std::vector<int64_t>{256, 512, 2048, 5632};
    for (int64_t n : sizes) {
      SCOPED_TRACE("n " + std::to_string(n));
      auto w = randn(size_t(n * 8), seed++), x = randn(size_t(n), seed++);
      for (int64_t r = 0; r < 8; ++r)
        for (int64_t i = 0; i < n; ++i) w[size_t(r * n + i)] *= 0.01f * float(1 + r) * (i % 64 < 8 ? 5.0f : 1.0f);
      for (int64_t i = 0; i < n; ++i) x[size_t(i)] *= i % 96 == 5 ? 20.0f : 1.0f;
      const uint64_t rb = *row_nbytes(t, n);
      std::vector<uint8_t> wq(rb * 8), group(rb * 8), back(rb);
      ASSERT_TRUE(quantize(t, w.data(), wq.data(), n * 8));
      layout->repack(wq.data(), rb, n, group.data());
      for (int r = 0; r < 8; ++r) {
        layout->unpack(group.data(), n, r, back.data());
        ASSERT_TRUE(std::equal(back.begin(), back.end(), wq.begin() + long(r * rb))) << "row " << r;
      }
      std::vector<float> wd(size_t(n * 8));
      ASSERT_TRUE(dequantize(t, wq.data(), wd.data(), n * 8));
      std::vector<uint8_t> portable_act;
      for (const cpu::QuantDotX8* qd : variants) {
        SCOPED_TRACE(qd->isa);
        ASSERT_EQ(qd->repack, layout->repack);
        std::vector<uint8_t> xq(qd->act_row_bytes(n));
        qd->quantize_act(x.data(), xq.data(), n);
        if (portable_act.empty()) portable_act = xq;
        EXPECT_EQ(xq, portable_act);
        float y8[8];
        qd->dot8(group.data(), xq.data(), n, y8);
        for (int r = 0; r < 8; ++r) {
          double want = 0, abs_terms = 0;
          for (int64_t b = 0; b < n / qd->block; ++b) {
            float d;
            const int8_t* q = nullptr;
            qd->act_block(xq.data(), n, b, &d, &q);
            for (int64_t i = 0; i < qd->block; ++i) {
              const double term = double(wd[size_t(r * n + b * qd->block + i)]) * q[i] * d;
              want += term;
              abs_terms += std::abs(term);
            }
          }
          EXPECT_NEAR(y8[r], want, 1e-5 * abs_terms + 1e-6) << "row " << r;
          for (const cpu::QuantDot* row_kernel : cpu::quant_dot_variants(t)) {
            if (!row_kernel->act_block) continue;  // F32 activation: a different rounding
            std::vector<uint8_t> xr(row_kernel->act_row_bytes(n));
            row_kernel->quantize_act(x.data(), xr.data(), n);
            EXPECT_NEAR(y8[r], row_kernel->dot(wq.data() + r * rb, xr.data(), n), 1e-5 * abs_terms + 1e-6)
                << "row " << r << " vs row kernel " << row_kernel->isa;
          }
        }
      }
    }
  }
}
