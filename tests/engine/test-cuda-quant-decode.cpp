/* The CUDA kernels' block decoders (engine/cuda/quant-decode.cuh), run on the host, against the engine's
 * hearth::dequantize and half/bfloat16 conversions: the chunk indexing and bit unpacking the GPU kernels
 * use, verified on a machine without a GPU.
 *
 * Non-obvious choice: results must be bit-identical (both NaN counts as equal): the decoders mirror the
 * CPU's arithmetic operation for operation, so any difference is an indexing or unpacking bug, never
 * rounding. Blocks are random bytes; half scales are redrawn until finite and non-zero so that almost
 * every value is an ordinary number, and a second pass keeps fully random bytes (NaN/inf scales).
 */
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "../../engine/cuda/quant-decode.cuh"
#include "hearth/tensor-types.h"

namespace qd = hearth::cuda::qd;
using hearth::GgmlType;

namespace {

uint32_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

bool same(float a, float b) { return (std::isnan(a) && std::isnan(b)) || bits(a) == bits(b); }

// A random half that is finite and non-zero.
uint16_t random_half(std::mt19937& rng) {
  for (;;) {
    uint16_t h = uint16_t(rng());
    if (((h >> 10) & 0x1f) != 31 && (h & 0x7fff) != 0) return h;
  }
}

// Offsets of the f16 scales inside one block of each type (redrawn when `finite_scales`).
std::vector<int> half_offsets(GgmlType t) {
  switch (t) {
    case GgmlType::Q8_0:
    case GgmlType::Q4_0: return {0};
    case GgmlType::Q4_K: return {0, 2};
    case GgmlType::Q6_K: return {208};
    default: return {};
  }
}

std::vector<uint8_t> random_blocks(GgmlType t, int block_bytes, int n_blocks, bool finite_scales, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> buf(size_t(block_bytes) * size_t(n_blocks));
  for (auto& b : buf) b = uint8_t(rng());
  for (int i = 0; i < n_blocks && finite_scales; ++i) {
    for (int off : half_offsets(t)) {
      uint16_t h = random_half(rng);
      std::memcpy(&buf[size_t(i) * size_t(block_bytes) + size_t(off)], &h, 2);
    }
    if (t == GgmlType::F16)  // every element of a plain F16 block is a "scale"
      for (int e = 0; e < block_bytes / 2; ++e) {
        uint16_t h = random_half(rng);
        std::memcpy(&buf[size_t(i) * size_t(block_bytes) + size_t(2 * e)], &h, 2);
      }
  }
  return buf;
}

// Decodes n_blocks blocks with the chunk decoders of T and compares with hearth::dequantize.
template <class T>
void check_type(GgmlType t, bool finite_scales) {
  const int n_blocks = T::VALUES >= 256 ? 64 : 512;
  const auto buf = random_blocks(t, T::BYTES, n_blocks, finite_scales, 1234u + uint32_t(t) + (finite_scales ? 0u : 99u));
  std::vector<float> want(size_t(n_blocks) * T::VALUES);
  ASSERT_TRUE(hearth::dequantize(t, buf.data(), want.data(), int64_t(want.size())).has_value());
  std::vector<float> got(want.size(), 0.0f);
  for (int b = 0; b < n_blocks; ++b) qd::decode_block<T>(buf.data() + size_t(b) * T::BYTES, got.data() + size_t(b) * T::VALUES);
  int64_t bad = 0, finite = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isfinite(want[i])) ++finite;
    if (!same(want[i], got[i])) {
      if (bad < 5) {
        ADD_FAILURE() << hearth::type_name(t) << " element " << i << " (block " << i / T::VALUES << ", index "
                      << i % T::VALUES << "): decoder " << got[i] << ", dequantize " << want[i];
      }
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0) << hearth::type_name(t);
  if (finite_scales) {
    EXPECT_GT(finite, int64_t(want.size()) * 9 / 10) << "test data should be mostly finite";
  }
}

// Each element of a block is produced by exactly one (chunk, run, i).
template <class T>
void check_coverage() {
  std::vector<int> hits(T::VALUES, 0);
  for (int c = 0; c < T::CHUNKS; ++c)
    for (int r = 0; r < T::NRUN; ++r)
      for (int i = 0; i < T::RUN; ++i) {
        int e = T::run_start(c, r) + i;
        ASSERT_GE(e, 0);
        ASSERT_LT(e, T::VALUES);
        ++hits[size_t(e)];
      }
  for (int e = 0; e < T::VALUES; ++e) EXPECT_EQ(hits[size_t(e)], 1) << "element " << e;
  // The kernels load activations of a run as float4 when RUN is a multiple of 4: runs must start aligned.
  if (T::RUN % 4 == 0) {
    for (int c = 0; c < T::CHUNKS; ++c)
      for (int r = 0; r < T::NRUN; ++r) EXPECT_EQ(T::run_start(c, r) % 4, 0);
  }
}

}  // namespace

TEST(CudaQuantDecode, HalfToFloatAllBitPatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float want = hearth::fp16_to_fp32(uint16_t(h));
    float got = qd::half_to_float(uint16_t(h));
    ASSERT_EQ(bits(want), bits(got)) << "half 0x" << std::hex << h;
  }
}

TEST(CudaQuantDecode, Bf16ToFloatAllBitPatterns) {
  for (uint32_t h = 0; h < 65536; ++h)
    ASSERT_EQ(bits(hearth::bf16_to_fp32(uint16_t(h))), bits(qd::bf16_to_float(uint16_t(h)))) << h;
}

TEST(CudaQuantDecode, FloatToHalfAndBf16MatchTheEngine) {
  // Every 61st bit pattern of the 2^32 (all exponents, signs, NaNs, subnormals) plus the boundaries.
  std::vector<uint32_t> extra = {0u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u, 0x477fefffu,
                                 0x477ff000u, 0x38800000u, 0x387fffffu, 0x33000000u, 0x33000001u, 0x32ffffffu,
                                 0x3f800000u, 0x00000001u, 0x7f7fffffu};
  uint64_t checked = 0;
  auto check = [&](uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    ASSERT_EQ(hearth::fp32_to_fp16(f), qd::float_to_half(f)) << "float bits 0x" << std::hex << b;
    ASSERT_EQ(hearth::fp32_to_bf16(f), qd::float_to_bf16(f)) << "float bits 0x" << std::hex << b;
    ++checked;
  };
  for (uint32_t b : extra) check(b);
  for (uint64_t b = 0; b < (1ull << 32); b += 61) check(uint32_t(b));
  // Around every half rounding boundary in the normal and subnormal range (ties to even).
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    float lo = hearth::fp16_to_fp32(uint16_t(h)), hi = hearth::fp16_to_fp32(uint16_t(h + 1));
    float mid = (lo + hi) / 2;  // exact in float
    check(bits(mid));
    check(bits(mid) + 1);
    check(bits(mid) - 1);
  }
  EXPECT_GT(checked, 70000000u);
}

TEST(CudaQuantDecode, ChunksCoverEachBlockOnce) {
  check_coverage<qd::F32Scalar>();
  check_coverage<qd::F16Scalar>();
  check_coverage<qd::BF16Scalar>();
  check_coverage<qd::F32Vec>();
  check_coverage<qd::F16Vec>();
  check_coverage<qd::BF16Vec>();
  check_coverage<qd::Q8_0>();
  check_coverage<qd::Q4_0>();
  check_coverage<qd::Q4_K>();
  check_coverage<qd::Q6_K>();
}

TEST(CudaQuantDecode, EveryTypeMatchesDequantizeOnRandomBlocks) {
  for (bool finite : {true, false}) {
    SCOPED_TRACE(finite ? "finite non-zero scales" : "fully random bytes");
    check_type<qd::F32Scalar>(GgmlType::F32, finite);
    check_type<qd::F16Scalar>(GgmlType::F16, finite);
    check_type<qd::BF16Scalar>(GgmlType::BF16, finite);
    check_type<qd::F32Vec>(GgmlType::F32, finite);
    check_type<qd::F16Vec>(GgmlType::F16, finite);
    check_type<qd::BF16Vec>(GgmlType::BF16, finite);
    check_type<qd::Q8_0>(GgmlType::Q8_0, finite);
    check_type<qd::Q4_0>(GgmlType::Q4_0, finite);
    check_type<qd::Q4_K>(GgmlType::Q4_K, finite);
    check_type<qd::Q6_K>(GgmlType::Q6_K, finite);
  }
}

TEST(CudaQuantDecode, BlockSizesMatchTheEngine) {
  auto check = [](GgmlType t, int values, int bytes) {
    const hearth::TypeTraits* tr = hearth::type_traits(t);
    ASSERT_NE(tr, nullptr);
    EXPECT_EQ(tr->block_size, values) << hearth::type_name(t);
    EXPECT_EQ(int(tr->block_bytes), bytes) << hearth::type_name(t);
  };
  check(GgmlType::Q8_0, qd::Q8_0::VALUES, qd::Q8_0::BYTES);
  check(GgmlType::Q4_0, qd::Q4_0::VALUES, qd::Q4_0::BYTES);
  check(GgmlType::Q4_K, qd::Q4_K::VALUES, qd::Q4_K::BYTES);
  check(GgmlType::Q6_K, qd::Q6_K::VALUES, qd::Q6_K::BYTES);
  check(GgmlType::F32, qd::F32Scalar::VALUES, qd::F32Scalar::BYTES);
  check(GgmlType::F16, qd::F16Scalar::VALUES, qd::F16Scalar::BYTES);
  check(GgmlType::BF16, qd::BF16Scalar::VALUES, qd::BF16Scalar::BYTES);
}

// The device builds MAGIC | byte i with __byte_perm(w, MAGIC, 0x7650 | i) (quant-decode.cuh); check that
// selector against __byte_perm as the CUDA documentation defines it (result byte n = byte s_n of the
// 8-byte value y:x, s_n = (s >> 4n) & 7), and the exactness of the magic-number conversion.
TEST(CudaQuantDecode, BytePermSelectorAndMagicConversion) {
  auto byte_perm = [](uint32_t x, uint32_t y, uint32_t s) {
    const uint64_t in = (uint64_t(y) << 32) | x;
    uint32_t r = 0;
    for (int n = 0; n < 4; ++n) r |= uint32_t((in >> (8 * ((s >> (4 * n)) & 7))) & 0xff) << (8 * n);
    return r;
  };
  std::mt19937 rng(77);
  for (int k = 0; k < 10000; ++k) {
    const uint32_t w = uint32_t(rng());
    for (int i = 0; i < 4; ++i) {
      ASSERT_EQ(byte_perm(w, qd::MAGIC, 0x7650u | unsigned(i)), qd::magic_byte(w, i));
      const uint32_t b = (w >> (8 * i)) & 0xff;
      ASSERT_EQ(qd::byte_value(w, i, qd::MAGIC_F + 128.0f), float(int(b) - 128));
      ASSERT_EQ(qd::byte_value(w, i, qd::MAGIC_F), float(b));
    }
  }
}
