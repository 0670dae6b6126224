/* Tensor types: traits, half/bfloat16 conversion (checked exhaustively against first principles),
 * hand-decoded blocks, and quantize -> dequantize round trips with a stated error bound per type.
 *
 * Non-obvious choice: the error bounds are relative RMS (rms(error) / rms(value)) on Gaussian data whose
 * scale varies by block over four orders of magnitude, with a few outliers mixed in, because a quantizer
 * that is only right for unit-scale data or breaks on one large weight is the common failure.
 */
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>

#include "hearth/tensor-types.h"

using namespace hearth;

TEST(TensorTypes, TraitsMatchGgmlLayouts) {
  struct Row {
    GgmlType t;
    int64_t bs;
    size_t bytes;
  };
  // Block sizes and bytes per block as in ggml's type_traits.
  const Row rows[] = {{GgmlType::F32, 1, 4},      {GgmlType::F16, 1, 2},      {GgmlType::BF16, 1, 2},
                      {GgmlType::Q4_0, 32, 18},   {GgmlType::Q4_1, 32, 20},   {GgmlType::Q5_0, 32, 22},
                      {GgmlType::Q5_1, 32, 24},   {GgmlType::Q8_0, 32, 34},   {GgmlType::Q8_1, 32, 36},
                      {GgmlType::Q2_K, 256, 84},  {GgmlType::Q3_K, 256, 110}, {GgmlType::Q4_K, 256, 144},
                      {GgmlType::Q5_K, 256, 176}, {GgmlType::Q6_K, 256, 210}, {GgmlType::Q8_K, 256, 292},
                      {GgmlType::IQ4_XS, 256, 136}, {GgmlType::IQ4_NL, 32, 18}, {GgmlType::IQ2_XXS, 256, 66},
                      {GgmlType::IQ1_M, 256, 56}, {GgmlType::I8, 1, 1},       {GgmlType::I64, 1, 8}};
  for (const auto& r : rows) {
    const TypeTraits* t = type_traits(r.t);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->type, r.t);
    EXPECT_EQ(t->block_size, r.bs) << t->name;
    EXPECT_EQ(t->block_bytes, r.bytes) << t->name;
    EXPECT_EQ(type_from_name(t->name), r.t);
  }
  EXPECT_EQ(type_from_name("q4_k"), GgmlType::Q4_K);
  EXPECT_EQ(type_from_name("Q4_K_M"), std::nullopt);
  EXPECT_FALSE(is_known_type(4));  // removed from ggml (Q4_2)
  EXPECT_FALSE(is_known_type(1000));
  EXPECT_EQ(type_traits(GgmlType(1000)), nullptr);
  EXPECT_STREQ(type_name(GgmlType(1000)), "unknown");
  for (auto t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
                 GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q2_K,
                 GgmlType::Q3_K})
    EXPECT_TRUE(type_traits(t)->supported) << type_name(t);
  EXPECT_FALSE(type_traits(GgmlType::IQ2_XXS)->supported);
}

TEST(TensorTypes, SizesAreCheckedForBlocksAndOverflow) {
  EXPECT_EQ(*type_nbytes(GgmlType::Q4_K, 512), 288u);
  EXPECT_EQ(*row_nbytes(GgmlType::Q8_0, 4096), 4096u / 32 * 34);
  auto r = type_nbytes(GgmlType::Q4_0, 33);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not a whole number of blocks of 32"), std::string::npos);
  auto o = type_nbytes(GgmlType::F32, UINT64_MAX / 2);
  ASSERT_FALSE(o);
  EXPECT_NE(o.error().message.find("overflow"), std::string::npos);
  EXPECT_FALSE(row_nbytes(GgmlType::F32, -1));
  std::vector<float> dst(32);
  std::vector<uint8_t> src(64);
  EXPECT_FALSE(dequantize(GgmlType::Q8_0, src.data(), dst.data(), 31));
  auto u = dequantize(GgmlType::IQ2_XS, src.data(), dst.data(), 0);
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().code, ErrorCode::unsupported);
  auto q = quantize(GgmlType::Q8_K, dst.data(), src.data(), 256);
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error().code, ErrorCode::unsupported);
}

// Exhaustive: every half decodes to the value its bits define, and re-encodes to itself.
TEST(TensorTypes, HalfConversionIsExactForAllHalves) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const int sign = (h >> 15) ? -1 : 1;
    const int e = int((h >> 10) & 31), m = int(h & 1023);
    const float f = fp16_to_fp32(uint16_t(h));
    if (e == 31) {
      if (m == 0) EXPECT_EQ(f, sign * INFINITY);
      else EXPECT_TRUE(std::isnan(f)) << h;
      if (m != 0) EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f))));
      continue;
    }
    const double expect = e == 0 ? sign * std::ldexp(double(m), -24) : sign * std::ldexp(1024.0 + m, e - 25);
    ASSERT_EQ(double(f), expect) << h;
    ASSERT_EQ(fp32_to_fp16(f), h) << h;
  }
}

// Random floats round to the nearest half, ties to even, overflowing to infinity.
TEST(TensorTypes, HalfRoundingIsNearestEven) {
  std::mt19937 rng(1);
  for (int i = 0; i < 200000; ++i) {
    float f = std::bit_cast<float>(uint32_t(rng()));
    if (!std::isfinite(f)) continue;
    int exp2 = 0;
    // Magnitudes from below the smallest subnormal half to past 65504.
    f = std::ldexp(std::frexp(f, &exp2), int(rng() % 44) - 28);
    const uint16_t h = fp32_to_fp16(f);
    const double v = fp16_to_fp32(h);
    if (std::fabs(f) >= 65520.0) {
      EXPECT_TRUE(std::isinf(v)) << f;
      continue;
    }
    // Neighbours one step toward and away from zero.
    const double up = fp16_to_fp32(uint16_t(h + 1)), down = (h & 0x7fff) ? fp16_to_fp32(uint16_t(h - 1)) : -v;
    const double err = std::fabs(double(f) - v);
    ASSERT_LE(err, std::fabs(double(f) - up)) << f;
    ASSERT_LE(err, std::fabs(double(f) - down)) << f;
    if (err == std::fabs(double(f) - up) || err == std::fabs(double(f) - down)) {
      if (err != 0) {
        ASSERT_EQ(h & 1, 0) << "tie not to even: " << f;
      }
    }
  }
  // Exact ties: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
  EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(0x1p-25f), 0x0000);  // exactly half the smallest subnormal: tie to even (0)
  EXPECT_EQ(fp32_to_fp16(0x1.8p-25f), 0x0001);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
}

TEST(TensorTypes, Bfloat16RoundsToNearestEven) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie -> even
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(NAN))));
  EXPECT_EQ(fp32_to_bf16(INFINITY), 0x7f80);
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = bf16_to_fp32(uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_bf16(f), h);
  }
}

// Hand-decoded blocks: the expected values are worked out from the layout by hand.
TEST(TensorTypes, HandDecodedBlocks) {
  std::vector<float> y(256);
  {  // Q4_0: d = 0.5 (0x3800); byte j: low nibble element j, high nibble element j+16; value (q-8)*d
    uint8_t b[18] = {0x00, 0x38};
    b[2] = 0xF0;   // element 0: q=0 -> -4.0; element 16: q=15 -> 3.5
    b[3] = 0x98;   // element 1: q=8 -> 0; element 17: q=9 -> 0.5
    for (int i = 4; i < 18; ++i) b[i] = 0x88;
    ASSERT_TRUE(dequantize(GgmlType::Q4_0, b, y.data(), 32));
    EXPECT_EQ(y[0], -4.0f);
    EXPECT_EQ(y[16], 3.5f);
    EXPECT_EQ(y[1], 0.0f);
    EXPECT_EQ(y[17], 0.5f);
  }
  {  // Q5_1: d = 1, m = -2 (0xc000); qh bit 3 set -> element 3 gets +16; bit 20 -> element 20
    uint8_t b[24] = {0x00, 0x3c, 0x00, 0xc0};
    uint32_t qh = (1u << 3) | (1u << 20);
    std::memcpy(b + 4, &qh, 4);
    b[8 + 3] = 0x21;  // element 3: low nibble 1 (+16) = 17 -> 15; element 19: q=2 -> 0
    b[8 + 4] = 0x50;  // element 20: high nibble 5 (+16) = 21 -> 19
    ASSERT_TRUE(dequantize(GgmlType::Q5_1, b, y.data(), 32));
    EXPECT_EQ(y[3], 15.0f);
    EXPECT_EQ(y[19], 0.0f);
    EXPECT_EQ(y[20], 19.0f);
    EXPECT_EQ(y[0], -2.0f);
  }
  {  // Q4_K: d = 1, dmin = 0.5; sub-block 0 scale 3 min 2; sub-block 5 scale 33 (= 1 + 2*16) min 17
    uint8_t b[144] = {0x00, 0x3c, 0x00, 0x38};
    uint8_t* s = b + 4;
    s[0] = 3;                   // sc0 = 3
    s[4] = 2;                   // m0 = 2
    s[1] = uint8_t(2 << 6);     // top bits of sc5 = 2
    s[5] = uint8_t(1 << 6);     // top bits of m5 = 1
    s[9] = uint8_t(1 | (1 << 4));  // low nibbles: sc5 = 1, m5 = 1
    uint8_t* q = b + 16;
    q[0] = 0x07;        // element 0 (sub-block 0): q=7 -> 3*7 - 0.5*2 = 20
    q[64 + 5] = 0xA0;   // chunk 2 high nibble = sub-block 5, element 160+5: q=10 -> 33*10 - 0.5*17 = 321.5
    ASSERT_TRUE(dequantize(GgmlType::Q4_K, b, y.data(), 256));
    EXPECT_EQ(y[0], 20.0f);
    EXPECT_EQ(y[1], -1.0f);
    EXPECT_EQ(y[165], 321.5f);
    EXPECT_EQ(y[160], -8.5f);
  }
  {  // Q6_K: d = 0.25; scale[0] = 4, scale[13] = -2. Element 0: ql low nibble + qh bits 0-1.
    uint8_t b[210] = {};
    b[208] = 0x00;
    b[209] = 0x34;  // 0.25
    int8_t* sc = reinterpret_cast<int8_t*>(b + 192);
    sc[0] = 4;
    sc[13] = -2;
    b[0] = 0x05;          // element 0 low 4 bits 5
    b[128] = 0x02;        // element 0 high 2 bits 2 -> q = 37 - 32 = 5 -> 0.25*4*5 = 5
    // element 128+64+16+1 = 209 (half 1, group 2 -> high nibble of ql[64+17], qh[32+17] bits 4-5), scale 13
    b[64 + 17] = 0xF0;    // low 4 bits 15
    b[128 + 32 + 17] = 0x30;  // high bits 3 -> q = 63 - 32 = 31 -> 0.25 * -2 * 31 = -15.5
    ASSERT_TRUE(dequantize(GgmlType::Q6_K, b, y.data(), 256));
    EXPECT_EQ(y[0], 5.0f);
    EXPECT_EQ(y[209], -15.5f);
    EXPECT_EQ(y[1], 0.25f * 4 * -32);
  }
}

namespace {

// Gaussian values whose scale changes from block to block (1e-3 .. 10), plus sparse outliers.
std::vector<float> test_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(-3.0f, 1.0f);
  std::vector<float> v(n);
  for (size_t b = 0; b < n; b += 256) {
    const float scale = std::pow(10.0f, ud(rng));
    const float shift = (b / 256) % 3 == 0 ? scale * 0.7f : 0.0f;  // some blocks not centred on zero
    for (size_t i = b; i < std::min(n, b + 256); ++i) v[i] = nd(rng) * scale + shift;
    v[b + rng() % 256] *= 6.0f;  // one outlier per block
  }
  return v;
}

// rms(error)/rms(value), computed per 256-value block and averaged, so the small-scale blocks count
// as much as the large ones.
double relative_rms(GgmlType t, const std::vector<float>& v) {
  const int64_t n = int64_t(v.size());
  std::vector<uint8_t> q(size_t(*type_nbytes(t, uint64_t(n))));
  EXPECT_TRUE(quantize(t, v.data(), q.data(), n));
  std::vector<float> back(v.size());
  EXPECT_TRUE(dequantize(t, q.data(), back.data(), n));
  double total = 0;
  int blocks = 0;
  for (size_t b = 0; b < v.size(); b += 256, ++blocks) {
    double se = 0, sv = 0;
    for (size_t i = b; i < b + 256; ++i) {
      se += double(back[i] - v[i]) * double(back[i] - v[i]);
      sv += double(v[i]) * double(v[i]);
    }
    total += std::sqrt(se / sv);
  }
  return total / blocks;
}

}  // namespace

TEST(TensorTypes, QuantizeRoundTripErrorIsWithinBoundsPerType) {
  const auto v = test_values(256 * 64, 42);
  struct Bound {
    GgmlType t;
    double max_rel_rms;
  };
  const Bound bounds[] = {
      {GgmlType::F32, 0.0},    {GgmlType::F16, 1e-3},   {GgmlType::BF16, 5e-3},  {GgmlType::Q8_0, 0.01},
      {GgmlType::Q6_K, 0.03},  {GgmlType::Q5_0, 0.06},  {GgmlType::Q5_1, 0.06},  {GgmlType::Q5_K, 0.06},
      {GgmlType::Q4_0, 0.12},  {GgmlType::Q4_1, 0.12},  {GgmlType::Q4_K, 0.12},  {GgmlType::Q3_K, 0.20},
      {GgmlType::Q2_K, 0.35},
  };
  for (const auto& b : bounds) {
    const double e = relative_rms(b.t, v);
    std::printf("  %-5s relative RMS error %.5f (bound %.3f)\n", type_name(b.t), e, b.max_rel_rms);
    EXPECT_LE(e, b.max_rel_rms) << type_name(b.t);
  }
}

TEST(TensorTypes, QuantizeHandlesZeroConstantAndTinyBlocks) {
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q4_K,
                     GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q2_K, GgmlType::Q3_K}) {
    SCOPED_TRACE(type_name(t));
    std::vector<uint8_t> q(size_t(*type_nbytes(t, 256)));
    std::vector<float> back(256);
    std::vector<float> zeros(256, 0.0f);
    ASSERT_TRUE(quantize(t, zeros.data(), q.data(), 256));
    ASSERT_TRUE(dequantize(t, q.data(), back.data(), 256));
    for (float x : back) ASSERT_EQ(x, 0.0f);
    // A constant block comes back close to the constant (K-quants keep a min only for negative offsets).
    std::vector<float> c(256, -0.37f);
    ASSERT_TRUE(quantize(t, c.data(), q.data(), 256));
    ASSERT_TRUE(dequantize(t, q.data(), back.data(), 256));
    for (float x : back) ASSERT_NEAR(x, -0.37f, 0.37f * 0.02f);
    // Values far below the smallest normal half still give finite output (the scale flushes).
    std::vector<float> tiny(256);
    for (int i = 0; i < 256; ++i) tiny[size_t(i)] = float(i - 128) * 1e-12f;
    ASSERT_TRUE(quantize(t, tiny.data(), q.data(), 256));
    ASSERT_TRUE(dequantize(t, q.data(), back.data(), 256));
    for (float x : back) ASSERT_TRUE(std::isfinite(x));
    // Values too large for an fp16 scale clamp instead of becoming infinities.
    std::vector<float> huge(256);
    for (int i = 0; i < 256; ++i) huge[size_t(i)] = float(i - 128) * 1e7f;
    ASSERT_TRUE(quantize(t, huge.data(), q.data(), 256));
    ASSERT_TRUE(dequantize(t, q.data(), back.data(), 256));
    for (float x : back) ASSERT_TRUE(std::isfinite(x));
  }
}
