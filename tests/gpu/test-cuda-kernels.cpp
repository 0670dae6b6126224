/* Every CUDA inference kernel (engine/cuda/kernels.h) against the CPU backend on random inputs (never
 * zeros). Skips itself where no CUDA device is usable; the argument checks run everywhere.
 *
 * Tolerances, per precision: conversions, dequantize_bf16, get_rows and kv_store are exact (the device
 * decoders round as the CPU's do); matvec against hearth::cpu::dot_f32 of the dequantized rows within
 * 1e-5 of sum_i |w_i x_i| (both sides sum in F32, in different orders; activations stay F32 for every
 * weight type, so this holds for quantized weights too); rms_norm, swiglu, rope within 1e-5 relative
 * (2e-6 absolute for rope's unit-size values); attention within 1e-5 absolute (values in [-1, 1])
 * of a double-precision loop over the same F16-rounded cache.
 *
 * Non-obvious choice: positions are always passed through device memory, as the runner does for CUDA
 * graphs, and the decode attention is checked near 0 and near n_ctx so both the first split and the
 * early-exit of splits past the current length are exercised.
 */
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "cuda-test-util.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu-ops.h"
#include "hearth/tensor-types.h"
#include "kernels.h"

namespace hc = hearth::cuda;
using hearth::GgmlType;

namespace {

using hearth::test::have_gpu;

// Under compute-sanitizer (tests/gpu/run.sh sets HEARTH_SANITIZER_QUICK) fewer shapes: every kernel and
// code path still runs, but not every combination.
// The CPU emulation of the kernels (tests/engine/cuda-emu.cmake) runs the quick set too, under its own
// suite names so that ctest lists both executables' tests apart.
#ifdef HEARTH_CUDA_EMULATION
constexpr bool EMULATED = true;
bool quick() { return true; }
#define KERNEL_SUITE CudaKernelsEmulated
#define ARGS_SUITE CudaKernelArgsEmulated
#else
constexpr bool EMULATED = false;
bool quick() { return std::getenv("HEARTH_SANITIZER_QUICK") != nullptr; }
#define KERNEL_SUITE CudaKernels
#define ARGS_SUITE CudaKernelArgs
#endif

#define REQUIRE_GPU() \
  if (!have_gpu()) GTEST_SKIP() << "no usable CUDA device"

using hearth::test::bits;
using hearth::test::DevBuf;
using hearth::test::random_values;

// A weight matrix stored as `type`, rows `row_bytes` apart (>= the packed size), and its F32 decode.
struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> f32;  // n_rows * k, as hearth::dequantize decodes the stored rows
  uint64_t row_bytes = 0;
};

Weights make_weights(GgmlType type, int64_t n_rows, int64_t k, uint64_t pad, uint32_t seed) {
  Weights w;
  const uint64_t packed = hearth::row_nbytes(type, k).value();
  w.row_bytes = packed + pad;
  w.bytes.assign(size_t(w.row_bytes * uint64_t(n_rows)), 0xA5);
  w.f32.resize(size_t(n_rows * k));
  const auto src = random_values(size_t(n_rows * k), seed);
  for (int64_t r = 0; r < n_rows; ++r) {
    uint8_t* row = w.bytes.data() + uint64_t(r) * w.row_bytes;
    EXPECT_TRUE(hearth::quantize(type, src.data() + r * k, row, k).has_value());
    EXPECT_TRUE(hearth::dequantize(type, row, w.f32.data() + r * k, k).has_value());
  }
  return w;
}

// Copies `w` to the device at byte offset `offset` of a fresh allocation (to test unaligned rows).
struct DevWeights {
  DevBuf<uint8_t> buf;
  const void* ptr;
  DevWeights(const Weights& w, size_t offset) : buf(w.bytes.size() + offset), ptr(buf.p + offset) {
    cudaMemcpy(buf.p + offset, w.bytes.data(), w.bytes.size(), cudaMemcpyHostToDevice);
  }
};

void check_matvec(GgmlType type, int64_t n_rows, int64_t k, int64_t n_tok, uint64_t pad, size_t offset,
                  uint32_t seed, size_t x_off = 0) {
  SCOPED_TRACE(std::string(hearth::type_name(type)) + " n_rows " + std::to_string(n_rows) + " k " +
               std::to_string(k) + " n_tok " + std::to_string(n_tok) + " pad " + std::to_string(pad) + " offset " +
               std::to_string(offset) + " x offset " + std::to_string(x_off));
  const Weights w = make_weights(type, n_rows, k, pad, seed);
  const auto x = random_values(size_t(n_tok * k), seed + 1);
  DevWeights dw(w, offset);
  // x at x_off floats into its buffer (x_off 1: not 16-byte aligned, so the kernel loads it by floats).
  std::vector<float> xpad(x_off, 0.0f);
  xpad.insert(xpad.end(), x.begin(), x.end());
  DevBuf<float> dx(xpad), dy(size_t(n_tok * n_rows));
  ASSERT_TRUE(dw.buf.p && dx.p && dy.p);
  CUDA_OK(hc::matvec(type, dw.ptr, w.row_bytes, n_rows, k, dx.p + x_off, n_tok, dy.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto y = dy.download();
  double worst = 0;
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t r = 0; r < n_rows; ++r) {
      const float* wr = w.f32.data() + r * k;
      const float* xt = x.data() + t * k;
      const float want = hearth::cpu::dot_f32(wr, xt, k);
      double l1 = 0;
      for (int64_t i = 0; i < k; ++i) l1 += std::fabs(double(wr[i]) * xt[i]);
      const double err = std::fabs(double(y[size_t(t * n_rows + r)]) - want) / l1;
      worst = std::max(worst, err);
      ASSERT_LE(err, 1e-5) << "row " << r << " token " << t << ": gpu " << y[size_t(t * n_rows + r)] << ", cpu " << want;
    }
  std::printf("matvec %s %lldx%lld n_tok %lld: max |gpu - cpu| / sum|w x| = %.2e\n", hearth::type_name(type),
              (long long)n_rows, (long long)k, (long long)n_tok, worst);
}

const GgmlType WEIGHT_TYPES[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                                 GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K};

int64_t block_of(GgmlType t) { return hearth::type_traits(t)->block_size; }

}  // namespace

// ---- argument validation (no GPU needed: nothing is launched) --------------------------------------

TEST(ARGS_SUITE, RejectsWhatTheKernelsCannotTake) {
  float* fake = reinterpret_cast<float*>(uintptr_t(1) << 20);  // never dereferenced: the checks come first
  const void* wfake = fake;
  EXPECT_EQ(hc::matvec(GgmlType::Q5_K, wfake, 176, 4, 256, fake, 1, fake, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(hc::matvec(GgmlType::Q4_K, wfake, 144, 4, 100, fake, 1, fake, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(hc::matvec(GgmlType::Q4_K, wfake, 144, 4, 256, fake, 0, fake, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(hc::matvec(GgmlType::Q4_K, wfake, 144, 4, 256, fake, hc::MATVEC_MAX_TOKENS + 1, fake, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(hc::matvec(GgmlType::Q4_K, wfake, 100, 4, 256, fake, 1, fake, nullptr), cudaErrorInvalidValue)
      << "row_bytes shorter than the row";
  EXPECT_EQ(hc::dequantize_bf16(GgmlType::Q8_0, wfake, 34, 4, 48, reinterpret_cast<uint16_t*>(fake), nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(hc::get_rows(GgmlType::IQ4_XS, wfake, 136, 256, reinterpret_cast<int32_t*>(fake), 1, fake, nullptr),
            cudaErrorInvalidValue);
  EXPECT_FALSE(hc::weight_type_supported(GgmlType::Q5_0));
  for (GgmlType t : WEIGHT_TYPES) EXPECT_TRUE(hc::weight_type_supported(t)) << hearth::type_name(t);

  hc::AttentionShape s;
  s.n_tok = 1, s.n_head = 8, s.n_head_kv = 8, s.head_dim = 72, s.n_ctx = 128, s.scale = 0.1f;
  auto* h16 = reinterpret_cast<uint16_t*>(fake);
  auto* pos = reinterpret_cast<int32_t*>(fake);
  EXPECT_EQ(hc::attention(fake, h16, h16, fake, s, pos, fake, nullptr), cudaErrorInvalidValue) << "head_dim 72";
  s.head_dim = 64;
  s.n_head_kv = 3;
  EXPECT_EQ(hc::attention(fake, h16, h16, fake, s, pos, fake, nullptr), cudaErrorInvalidValue) << "8 heads / 3";
  s.n_head_kv = 2;
  s.n_tok = 0;
  EXPECT_EQ(hc::attention(fake, h16, h16, fake, s, pos, fake, nullptr), cudaErrorInvalidValue) << "n_tok 0";
  s.n_tok = 1;
  s.n_ctx = 4096;
  EXPECT_GT(hc::attention_scratch_bytes(s), 0u) << "decode over a long cache splits the keys";
  EXPECT_EQ(hc::attention(fake, h16, h16, fake, s, pos, nullptr, nullptr), cudaErrorInvalidValue)
      << "decode needs its scratch";
  s.n_tok = 4;
  EXPECT_EQ(hc::attention_scratch_bytes(s), 0u) << "prefill needs none";
}

// ---- weights ------------------------------------------------------------------------------------------

TEST(KERNEL_SUITE, MatvecEveryTypeMatchesTheCpuDot) {
  REQUIRE_GPU();
  uint32_t seed = 10;
  for (GgmlType t : WEIGHT_TYPES) {
    const int64_t bs = block_of(t);
    const int64_t k = bs == 1 ? 1024 : (bs == 32 ? 32 * 37 : 256 * 5);  // odd block counts
    for (int64_t n_tok = 1; n_tok <= hc::MATVEC_MAX_TOKENS; ++n_tok)
      if (!quick() || n_tok == 1 || n_tok == 2 || n_tok == hc::MATVEC_MAX_TOKENS) check_matvec(t, 67, k, n_tok, 0, 0, seed++);
    check_matvec(t, 2051, k, 1, 0, 0, seed++);  // two rows per warp, odd row count
    if (!EMULATED || t == GgmlType::Q4_K) check_matvec(t, 2051, k, 3, 0, 0, seed++);
    check_matvec(t, 1, k, 1, 0, 0, seed++);
  }
}

TEST(KERNEL_SUITE, MatvecOddShapesAndAlignments) {
  REQUIRE_GPU();
  // Plain types with k not a multiple of the 16-byte vector, padded rows, and rows at odd offsets.
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16}) {
    check_matvec(t, 33, 101, 1, 0, 0, 100);
    check_matvec(t, 33, 101, 8, 0, 0, 101);
    check_matvec(t, 33, 96, 2, 4, 0, 102);   // rows 16-byte aligned? no: padded by 4
    check_matvec(t, 33, 96, 5, 0, 4, 103);   // base offset 4
  }
  // Quantized rows whose start is only 2- (or 4-, for Q4_K) byte aligned, and padded rows.
  check_matvec(GgmlType::Q8_0, 45, 32 * 3, 7, 0, 2, 110);
  check_matvec(GgmlType::Q4_0, 45, 32 * 3, 7, 0, 2, 111);
  check_matvec(GgmlType::Q6_K, 45, 256 * 3, 7, 0, 2, 112);
  check_matvec(GgmlType::Q4_K, 45, 256 * 3, 7, 0, 4, 113);
  check_matvec(GgmlType::Q4_K, 45, 256 * 3, 2, 16, 0, 114);
  check_matvec(GgmlType::Q6_K, 45, 256 * 2, 2, 6, 0, 115);
  // Activations that are not 16-byte aligned.
  check_matvec(GgmlType::Q4_K, 45, 256 * 2, 3, 0, 0, 116, 1);
  check_matvec(GgmlType::Q8_0, 45, 32 * 4, 1, 0, 0, 117, 1);
  check_matvec(GgmlType::F16, 45, 64, 2, 0, 0, 118, 1);
}

TEST(KERNEL_SUITE, DequantizeBf16IsExact) {
  REQUIRE_GPU();
  uint32_t seed = 200;
  for (GgmlType t : WEIGHT_TYPES) {
    SCOPED_TRACE(hearth::type_name(t));
    const int64_t bs = block_of(t), n_rows = 19;
    const int64_t k = bs == 1 ? 77 : bs * 3;
    const Weights w = make_weights(t, n_rows, k, bs == 1 ? 4 : 0, seed++);  // padded plain rows
    DevWeights dw(w, 0);
    // Output at offset 0 (vector stores) and at offset 1 element (2-byte stores).
    for (size_t off : {size_t(0), size_t(1)}) {
      DevBuf<uint16_t> out(size_t(n_rows * k) + off);
      CUDA_OK(hc::dequantize_bf16(t, dw.ptr, w.row_bytes, n_rows, k, out.p + off, nullptr));
      CUDA_OK(cudaDeviceSynchronize());
      const auto got = out.download();
      for (size_t i = 0; i < size_t(n_rows * k); ++i)
        ASSERT_EQ(got[i + off], hearth::fp32_to_bf16(w.f32[i])) << "element " << i << ", output offset " << off;
    }
  }
}

TEST(KERNEL_SUITE, GetRowsIsExact) {
  REQUIRE_GPU();
  uint32_t seed = 300;
  for (GgmlType t : WEIGHT_TYPES) {
    SCOPED_TRACE(hearth::type_name(t));
    const int64_t bs = block_of(t), n_rows = 50;
    const int64_t k = bs == 1 ? 130 : bs * 2;
    const Weights w = make_weights(t, n_rows, k, 0, seed++);
    const std::vector<int32_t> ids = {7, 0, 49, 7, 23, 1, 48};
    DevWeights dw(w, 0);
    DevBuf<int32_t> dids(ids);
    DevBuf<float> out(ids.size() * size_t(k));
    CUDA_OK(hc::get_rows(t, dw.ptr, w.row_bytes, k, dids.p, int64_t(ids.size()), out.p, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    const auto got = out.download();
    for (size_t r = 0; r < ids.size(); ++r)
      for (int64_t i = 0; i < k; ++i)
        ASSERT_EQ(bits(got[r * size_t(k) + size_t(i)]), bits(w.f32[size_t(ids[r]) * size_t(k) + size_t(i)]))
            << "row " << r << " element " << i;
  }
}

TEST(KERNEL_SUITE, ConversionsMatchTheEngineBitForBit) {
  REQUIRE_GPU();
  auto x = random_values(100003, 400, 70000.0f);  // past the half range too
  const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 65504.0f, 65520.0f, 65519.0f, 6.0e-8f, 3.0e-8f,
                            2.9e-8f, 1e-40f, -1e-45f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048};
  for (float s : specials) x.push_back(s);
  for (size_t i = 0; i < 5000; ++i) x.push_back(x[i] * 1e-9f);  // subnormal halves
  DevBuf<float> dx(x);
  DevBuf<uint16_t> b(x.size()), h(x.size());
  CUDA_OK(hc::f32_to_bf16(dx.p, b.p, int64_t(x.size()), nullptr));
  CUDA_OK(hc::f32_to_f16(dx.p, h.p, int64_t(x.size()), nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto gb = b.download(), gh = h.download();
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(gb[i], hearth::fp32_to_bf16(x[i])) << "bf16 of " << x[i];
    ASSERT_EQ(gh[i], hearth::fp32_to_fp16(x[i])) << "f16 of " << x[i];
  }
}

// ---- element-wise ----------------------------------------------------------------------------------

TEST(KERNEL_SUITE, RmsNormMatchesTheCpu) {
  REQUIRE_GPU();
  struct Case {
    int64_t rows, n;
    bool weight, in_place;
  };
  for (Case c : {Case{3, 4096, true, false}, Case{5, 2048, true, true}, Case{40, 64, true, true},
                 Case{7, 128, false, false}, Case{2, 5000, false, true}, Case{1, 1, true, false}}) {
    SCOPED_TRACE("rows " + std::to_string(c.rows) + " n " + std::to_string(c.n));
    const auto x = random_values(size_t(c.rows * c.n), uint32_t(500 + c.n), 3.0f);
    const auto w = random_values(size_t(c.n), uint32_t(501 + c.n));
    DevBuf<float> dx(x), dw(w), dout(x.size());
    float* out = c.in_place ? dx.p : dout.p;
    CUDA_OK(hc::rms_norm(dx.p, c.weight ? dw.p : nullptr, out, c.rows, c.n, 1e-5f, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    const auto got = c.in_place ? dx.download() : dout.download();
    std::vector<float> want(size_t(c.n));
    for (int64_t r = 0; r < c.rows; ++r) {
      hearth::cpu::rms_norm(x.data() + r * c.n, c.weight ? w.data() : nullptr, c.n, 1e-5f, want.data());
      for (int64_t i = 0; i < c.n; ++i)
        ASSERT_NEAR(got[size_t(r * c.n + i)], want[size_t(i)], 1e-5 * std::fabs(want[size_t(i)]) + 1e-30)
            << "row " << r << " element " << i;
    }
  }
}

TEST(KERNEL_SUITE, BiasAddSwigluMatchTheCpu) {
  REQUIRE_GPU();
  const int64_t rows = 5, n = 1031;
  const auto x = random_values(size_t(rows * n), 600, 4.0f), b = random_values(size_t(n), 601),
             y = random_values(size_t(rows * n), 602, 6.0f);
  DevBuf<float> dx(x), db(b), dy(y), dout(x.size());
  CUDA_OK(hc::add_bias(dx.p, db.p, rows, n, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  auto got = dx.download();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(got[size_t(r * n + i)], x[size_t(r * n + i)] + b[size_t(i)]) << r << "," << i;

  dx.upload(x);
  CUDA_OK(hc::add(dx.p, dy.p, rows * n, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  got = dx.download();
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(got[i], x[i] + y[i]) << i;

  for (bool in_place : {false, true}) {
    dx.upload(x);
    float* out = in_place ? dx.p : dout.p;
    CUDA_OK(hc::swiglu(dx.p, dy.p, out, rows * n, nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    got = in_place ? dx.download() : dout.download();
    for (size_t i = 0; i < x.size(); ++i) {
      const float g = x[i], want = g / (1.0f + std::exp(-g)) * y[i];
      ASSERT_NEAR(got[i], want, 1e-5 * std::fabs(want) + 1e-30) << "in_place " << in_place << " element " << i;
    }
  }
}

TEST(KERNEL_SUITE, RopeBothLayoutsAtSmallAndLargePositions) {
  REQUIRE_GPU();
  for (int64_t hd : {64, 128}) {
    for (bool interleaved : {false, true}) {
      for (int32_t pos0 : {0, 3, 99990}) {
        for (double pos_scale : {1.0, 0.25}) {
          SCOPED_TRACE("head_dim " + std::to_string(hd) + (interleaved ? " interleaved" : " halves") + " pos " +
                       std::to_string(pos0) + " scale " + std::to_string(pos_scale));
          const int64_t n_tok = 3, n_heads = 5;
          std::vector<double> inv_freq(size_t(hd / 2));
          for (int64_t i = 0; i < hd / 2; ++i) inv_freq[size_t(i)] = std::pow(500000.0, -2.0 * double(i) / double(hd));
          const auto x = random_values(size_t(n_tok * n_heads * hd), uint32_t(700 + hd + pos0));
          DevBuf<float> dx(x);
          DevBuf<double> dfreq(inv_freq);
          DevBuf<int32_t> dpos(std::vector<int32_t>{pos0});
          CUDA_OK(hc::rope(dx.p, n_tok, n_heads, hd, dpos.p, dfreq.p, pos_scale, interleaved, nullptr));
          CUDA_OK(cudaDeviceSynchronize());
          const auto got = dx.download();
          std::vector<float> want = x;
          for (int64_t t = 0; t < n_tok; ++t)
            for (int64_t i = 0; i < hd / 2; ++i) {
              const double a = double(pos0 + t) * pos_scale * inv_freq[size_t(i)];
              const float c = float(std::cos(a)), s = float(std::sin(a));
              for (int64_t h = 0; h < n_heads; ++h) {
                float* hv = want.data() + (t * n_heads + h) * hd;
                const int64_t i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + hd / 2;
                const float x0 = hv[i0], x1 = hv[i1];
                hv[i0] = x0 * c - x1 * s;
                hv[i1] = x0 * s + x1 * c;
              }
            }
          for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-6) << "element " << i;
        }
      }
    }
  }
}

TEST(KERNEL_SUITE, KvStoreWritesF16RowsAtTheDevicePosition) {
  REQUIRE_GPU();
  const int64_t n_ctx = 20, kv_dim = 96, n_tok = 3;
  const int32_t pos0 = 16;
  const auto k = random_values(size_t(n_tok * kv_dim), 800, 100.0f), v = random_values(size_t(n_tok * kv_dim), 801);
  const std::vector<uint16_t> init(size_t(n_ctx * kv_dim), 0x1234);
  DevBuf<float> dk(k), dv(v);
  DevBuf<uint16_t> kc(init), vc(init);
  DevBuf<int32_t> dpos(std::vector<int32_t>{pos0});
  CUDA_OK(hc::kv_store(dk.p, dv.p, kc.p, vc.p, n_tok, kv_dim, dpos.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto gk = kc.download(), gv = vc.download();
  for (int64_t j = 0; j < n_ctx; ++j)
    for (int64_t i = 0; i < kv_dim; ++i) {
      const size_t at = size_t(j * kv_dim + i);
      const bool written = j >= pos0 && j < pos0 + n_tok;
      const size_t src = size_t((j - pos0) * kv_dim + i);
      ASSERT_EQ(gk[at], written ? hearth::fp32_to_fp16(k[src]) : uint16_t(0x1234)) << "row " << j << " col " << i;
      ASSERT_EQ(gv[at], written ? hearth::fp32_to_fp16(v[src]) : uint16_t(0x1234)) << "row " << j << " col " << i;
    }
}

// ---- attention ------------------------------------------------------------------------------------

namespace {

void check_attention(int64_t n_head, int64_t n_head_kv, int64_t hd, int64_t n_tok, int64_t n_ctx, int32_t pos0,
                     uint32_t seed) {
  SCOPED_TRACE("heads " + std::to_string(n_head) + "/" + std::to_string(n_head_kv) + " head_dim " + std::to_string(hd) +
               " n_tok " + std::to_string(n_tok) + " n_ctx " + std::to_string(n_ctx) + " pos " + std::to_string(pos0));
  const int64_t kv_dim = n_head_kv * hd, qd = n_head * hd;
  // The whole cache holds random values (rows past the current length too: they must be ignored).
  const auto kf = random_values(size_t(n_ctx * kv_dim), seed), vf = random_values(size_t(n_ctx * kv_dim), seed + 1);
  std::vector<uint16_t> kh(kf.size()), vh(vf.size());
  for (size_t i = 0; i < kf.size(); ++i) kh[i] = hearth::fp32_to_fp16(kf[i]), vh[i] = hearth::fp32_to_fp16(vf[i]);
  const auto q = random_values(size_t(n_tok * qd), seed + 2, 2.0f);
  hc::AttentionShape s;
  s.n_tok = n_tok, s.n_head = n_head, s.n_head_kv = n_head_kv, s.head_dim = hd, s.n_ctx = n_ctx;
  s.scale = float(1.0 / std::sqrt(double(hd)));
  DevBuf<float> dq(q), dout(size_t(n_tok * qd));
  DevBuf<uint16_t> dk(kh), dv(vh);
  DevBuf<int32_t> dpos(std::vector<int32_t>{pos0});
  const size_t scratch_bytes = hc::attention_scratch_bytes(s);
  DevBuf<uint8_t> scratch(scratch_bytes);
  CUDA_OK(hc::attention(dq.p, dk.p, dv.p, dout.p, s, dpos.p, scratch_bytes ? scratch.p : nullptr, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto got = dout.download();
  const int64_t group = n_head / n_head_kv;
  double worst = 0;
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t h = 0; h < n_head; ++h) {
      const int64_t kvh = h / group, n_pos = pos0 + t + 1;
      std::vector<double> sc(static_cast<size_t>(n_pos));
      double mx = -INFINITY;
      for (int64_t j = 0; j < n_pos; ++j) {
        double d = 0;
        for (int64_t i = 0; i < hd; ++i)
          d += double(q[size_t(t * qd + h * hd + i)]) * hearth::fp16_to_fp32(kh[size_t(j * kv_dim + kvh * hd + i)]);
        sc[size_t(j)] = d * double(s.scale);
        mx = std::max(mx, sc[size_t(j)]);
      }
      double sum = 0;
      for (auto& v : sc) sum += (v = std::exp(v - mx));
      for (int64_t i = 0; i < hd; ++i) {
        double o = 0;
        for (int64_t j = 0; j < n_pos; ++j) o += sc[size_t(j)] * hearth::fp16_to_fp32(vh[size_t(j * kv_dim + kvh * hd + i)]);
        o /= sum;
        const double err = std::fabs(got[size_t(t * qd + h * hd + i)] - o);
        worst = std::max(worst, err);
        ASSERT_LE(err, 1e-5) << "token " << t << " head " << h << " dim " << i << ": gpu "
                             << got[size_t(t * qd + h * hd + i)] << ", reference " << o;
      }
    }
  std::printf("attention %lld/%lld hd %lld n_tok %lld pos %d: max abs error %.2e\n", (long long)n_head,
              (long long)n_head_kv, (long long)hd, (long long)n_tok, pos0, worst);
}

}  // namespace

TEST(KERNEL_SUITE, AttentionMatchesADoubleLoopOverTheF16Cache) {
  REQUIRE_GPU();
  const int64_t n_ctx = EMULATED ? 200 : 1000;  // the emulation runs each GPU thread as an OS thread
  uint32_t seed = 900;
  // GQA with a group of 8 (32/4; 16/2 in the emulation) and plain multi-head attention (8/8; 4/4).
  for (auto [nh, nkv] : {std::pair<int64_t, int64_t>{EMULATED ? 16 : 32, EMULATED ? 2 : 4},
                         {EMULATED ? 4 : 8, EMULATED ? 4 : 8}})
    for (int64_t hd : {64, 128})
      for (int64_t n_tok : {1, 7})
        for (int32_t pos0 : {0, 5, int32_t(n_ctx - n_tok - 40), int32_t(n_ctx - n_tok)})
          if (!quick() || pos0 == 5 || pos0 == int32_t(n_ctx - n_tok)) check_attention(nh, nkv, hd, n_tok, n_ctx, pos0, seed++);
}

TEST(KERNEL_SUITE, AttentionOtherHeadDimsAndShapes) {
  REQUIRE_GPU();
  uint32_t seed = 1000;
  for (int64_t hd : {80, 96, 256}) {
    check_attention(12, 4, hd, 1, 300, 299, seed++);
    check_attention(12, 4, hd, 9, 300, EMULATED ? 40 : 100, seed++);
  }
  check_attention(24, 8, 128, 1, 64, 31, seed++);     // group of 3, a single split
  // Group of 16 (two blocks per KV head) and many splits (the most, 256, on the GPU).
  if (EMULATED)
    check_attention(16, 1, 64, 1, 1500, 1499, seed++);
  else
    check_attention(16, 1, 64, 1, 20000, 19999, seed++);
  check_attention(16, 1, 64, EMULATED ? 20 : 70, 512, 200, seed++);  // long prefill tile loop
  check_attention(4, 4, 128, 33, 33, 0, seed++);        // a whole prompt from position 0
}
