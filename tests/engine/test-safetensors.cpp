/* safetensors reader and writer: round trips (single file and sharded folder) and hostile files.
 *
 * Non-obvious choice: hostile files are built byte by byte from a header string, not by corrupting a
 * written file, so each case states exactly the lie it tells and the error it must produce.
 */
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "hearth/safetensors.h"
#include "hearth/tensor-types.h"
#include "test-util.h"

using namespace hearth;
namespace fs = std::filesystem;

namespace {

std::vector<float> random_values(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// A file image: 8-byte length, header text, then `data_bytes` bytes of data.
std::vector<uint8_t> image(const std::string& header, size_t data_bytes, uint64_t claimed_len = UINT64_MAX) {
  uint64_t n = claimed_len == UINT64_MAX ? header.size() : claimed_len;
  std::vector<uint8_t> out;
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(n >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + data_bytes, 0x5a);
  return out;
}

Error parse_error(const std::vector<uint8_t>& bytes) {
  auto r = SafetensorsFile::parse(bytes.data(), bytes.size(), "hostile.safetensors");
  EXPECT_FALSE(r.has_value());
  if (r) return {};
  return r.error();
}

}  // namespace

TEST(Safetensors, RoundTripKeepsBytesShapesAndTypes) {
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  auto a = random_values(6 * 5, 1);
  auto b = random_values(7, 2);
  auto c = random_values(4 * 3 * 2, 3);
  ASSERT_TRUE(w.add_tensor_f32("a.weight", GgmlType::F32, {6, 5}, a.data()));
  ASSERT_TRUE(w.add_tensor_f32("b.bias", GgmlType::F16, {7}, b.data()));
  ASSERT_TRUE(w.add_tensor_f32("c", GgmlType::BF16, {4, 3, 2}, c.data()));
  ASSERT_TRUE(w.add_tensor("empty", GgmlType::F32, {0, 3}, nullptr, 0));
  auto path = hearth::test::scratch("st-roundtrip") / "x.safetensors";
  ASSERT_TRUE(w.write(path));

  auto f = SafetensorsFile::open(path);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->data_offset() % 8, 0u) << "header is padded to 8 bytes";
  ASSERT_EQ(f->tensors().size(), 4u);

  const SafetensorsTensor* ta = f->find("a.weight");
  ASSERT_TRUE(ta);
  EXPECT_EQ(ta->type, GgmlType::F32);
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{6, 5}));
  ASSERT_EQ(ta->nbytes(), a.size() * 4);
  EXPECT_EQ(std::memcmp(ta->data, a.data(), ta->nbytes()), 0);

  const SafetensorsTensor* tb = f->find("b.bias");
  ASSERT_TRUE(tb);
  EXPECT_EQ(tb->type, GgmlType::F16);
  ASSERT_EQ(tb->nbytes(), 14u);
  for (size_t i = 0; i < b.size(); ++i) {
    uint16_t h = uint16_t(tb->data[2 * i] | (tb->data[2 * i + 1] << 8));
    EXPECT_EQ(h, fp32_to_fp16(b[i]));
  }
  const SafetensorsTensor* tc = f->find("c");
  ASSERT_TRUE(tc);
  EXPECT_EQ(tc->type, GgmlType::BF16);
  EXPECT_EQ(tc->shape, (std::vector<int64_t>{4, 3, 2}));
  for (size_t i = 0; i < c.size(); ++i) {
    uint16_t h = uint16_t(tc->data[2 * i] | (tc->data[2 * i + 1] << 8));
    EXPECT_EQ(h, fp32_to_bf16(c[i]));
  }
  EXPECT_EQ(f->find("empty")->n_elements(), 0);
  EXPECT_EQ(f->find("missing"), nullptr);

  // The in-memory image parses the same.
  auto bytes = w.to_bytes();
  auto m = SafetensorsFile::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->tensors().size(), 4u);
  EXPECT_EQ(bytes.size(), f->file_size());
}

TEST(Safetensors, ShardedFolderRoundTrip) {
  SafetensorsWriter w;
  std::vector<std::vector<float>> values;
  for (int i = 0; i < 9; ++i) {
    values.push_back(random_values(100, 10 + i));
    ASSERT_TRUE(w.add_tensor_f32("t" + std::to_string(i), GgmlType::F32, {10, 10}, values.back().data()));
  }
  auto dir = hearth::test::scratch("st-sharded");
  ASSERT_TRUE(w.write_folder(dir, 1000));  // 400-byte tensors: two per shard
  EXPECT_TRUE(fs::exists(dir / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir / "model.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "model-00005-of-00005.safetensors"));

  auto set = SafetensorsSet::open_folder(dir);
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->files().size(), 5u);
  ASSERT_EQ(set->tensors().size(), 9u);
  for (int i = 0; i < 9; ++i) {
    const SafetensorsTensor* t = set->find("t" + std::to_string(i));
    ASSERT_TRUE(t);
    EXPECT_EQ(std::memcmp(t->data, values[size_t(i)].data(), 400), 0);
  }

  // Unsharded when it fits.
  auto dir2 = hearth::test::scratch("st-single");
  ASSERT_TRUE(w.write_folder(dir2, 0));
  auto single = SafetensorsSet::open_folder(dir2);
  ASSERT_TRUE(single) << single.error().message;
  EXPECT_EQ(single->files().size(), 1u);
  EXPECT_EQ(single->tensors().size(), 9u);
}

TEST(Safetensors, MissingShardIsAClearError) {
  SafetensorsWriter w;
  auto v = random_values(100, 1);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(w.add_tensor_f32("t" + std::to_string(i), GgmlType::F32, {100}, v.data()));
  auto dir = hearth::test::scratch("st-missing-shard");
  ASSERT_TRUE(w.write_folder(dir, 500));
  fs::remove(dir / "model-00002-of-00004.safetensors");
  auto set = SafetensorsSet::open_folder(dir);
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().code, ErrorCode::not_found);
  EXPECT_NE(set.error().message.find("model-00002-of-00004.safetensors"), std::string::npos) << set.error().message;
}

TEST(Safetensors, IndexNamingATensorAShardLacksIsAnError) {
  SafetensorsWriter w;
  auto v = random_values(10, 1);
  ASSERT_TRUE(w.add_tensor_f32("real", GgmlType::F32, {10}, v.data()));
  auto dir = hearth::test::scratch("st-index-lies");
  ASSERT_TRUE(w.write(dir / "shard.safetensors"));
  hearth::test::write_text(dir / "model.safetensors.index.json",
                           R"({"weight_map": {"real": "shard.safetensors", "ghost": "shard.safetensors"}})");
  auto set = SafetensorsSet::open_folder(dir);
  ASSERT_FALSE(set);
  EXPECT_NE(set.error().message.find("'ghost'"), std::string::npos) << set.error().message;

  hearth::test::write_text(dir / "model.safetensors.index.json", R"({"weight_map": {"real": "../etc/passwd"}})");
  set = SafetensorsSet::open_folder(dir);
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().code, ErrorCode::format);

  hearth::test::write_text(dir / "model.safetensors.index.json", R"({"weight_map": )");
  set = SafetensorsSet::open_folder(dir);
  ASSERT_FALSE(set);
  EXPECT_NE(set.error().message.find("not valid JSON"), std::string::npos) << set.error().message;
}

TEST(Safetensors, FolderWithoutWeightsIsNotFound) {
  auto dir = hearth::test::scratch("st-empty");
  auto set = SafetensorsSet::open_folder(dir);
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().code, ErrorCode::not_found);
}

TEST(SafetensorsHostile, TooShortForTheLength) {
  std::vector<uint8_t> b = {1, 2, 3};
  auto e = parse_error(b);
  EXPECT_EQ(e.code, ErrorCode::format);
  EXPECT_NE(e.message.find("too short"), std::string::npos) << e.message;
}

TEST(SafetensorsHostile, HugeHeaderLength) {
  auto e = parse_error(image("{}", 0, uint64_t(1) << 40));
  EXPECT_EQ(e.code, ErrorCode::format);
  EXPECT_NE(e.message.find("exceeds"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("hostile.safetensors"), std::string::npos) << e.message;
}

TEST(SafetensorsHostile, HeaderLengthPastEndOfFile) {
  auto e = parse_error(image("{}", 0, 1000));
  EXPECT_NE(e.message.find("past the end of the file"), std::string::npos) << e.message;
}

TEST(SafetensorsHostile, BadJson) {
  auto e = parse_error(image(R"({"a": {"dtype": "F32", )", 16));
  EXPECT_EQ(e.code, ErrorCode::format);
  EXPECT_NE(e.message.find("not valid JSON"), std::string::npos) << e.message;
  e = parse_error(image("[1, 2]", 0));
  EXPECT_NE(e.message.find("not an object"), std::string::npos) << e.message;
}

TEST(SafetensorsHostile, OffsetsPastTheDataSection) {
  auto e = parse_error(image(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 8));
  EXPECT_NE(e.message.find("'w'"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("past the data section"), std::string::npos) << e.message;
}

TEST(SafetensorsHostile, BeginAfterEnd) {
  auto e = parse_error(image(R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", 16));
  EXPECT_NE(e.message.find("begin after they end"), std::string::npos) << e.message;
}

TEST(SafetensorsHostile, NegativeOrFractionalOffsetsAndShapes) {
  auto e = parse_error(image(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 16));
  EXPECT_NE(e.message.find("non-negative"), std::string::npos) << e.message;
  e = parse_error(image(R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 16));
  EXPECT_NE(e.message.find("shape entry"), std::string::npos) << e.message;
  e = parse_error(image(R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 16));
  EXPECT_NE(e.message.find("shape entry"), std::string::npos) << e.message;
}

TEST(SafetensorsHostile, SizeDisagreesWithShape) {
  auto e = parse_error(image(R"({"w": {"dtype": "F16", "shape": [3, 2], "data_offsets": [0, 8]}})", 16));
  EXPECT_NE(e.message.find("'w'"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("needs 12"), std::string::npos) << e.message;
}

TEST(SafetensorsHostile, ShapeProductOverflows) {
  auto e = parse_error(image(
      R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 0]}})", 16));
  EXPECT_NE(e.message.find("overflows"), std::string::npos) << e.message;
  e = parse_error(image(R"({"w": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 0]}})", 16));
  EXPECT_NE(e.message.find("overflows"), std::string::npos) << e.message;
}

TEST(SafetensorsHostile, OverlappingTensors) {
  auto e = parse_error(image(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                 "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})",
                             16));
  EXPECT_NE(e.message.find("overlap"), std::string::npos) << e.message;
  // An overlap hidden behind an empty tensor between the two.
  e = parse_error(image(R"({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
                           "e": {"dtype": "F32", "shape": [0], "data_offsets": [8, 8]},
                           "c": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]}})",
                        32));
  EXPECT_NE(e.message.find("overlap"), std::string::npos) << e.message;
}

TEST(SafetensorsHostile, UnsupportedDtypeNamesTheTensor) {
  auto e = parse_error(image(R"({"ids": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}})", 16));
  EXPECT_EQ(e.code, ErrorCode::unsupported);
  EXPECT_NE(e.message.find("'ids'"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("I64"), std::string::npos) << e.message;
}

TEST(SafetensorsHostile, MalformedEntries) {
  auto e = parse_error(image(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4));
  EXPECT_NE(e.message.find("dtype"), std::string::npos) << e.message;
  e = parse_error(image(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4));
  EXPECT_NE(e.message.find("data_offsets"), std::string::npos) << e.message;
  e = parse_error(image(R"({"__metadata__": {"k": 1}})", 0));
  EXPECT_NE(e.message.find("__metadata__"), std::string::npos) << e.message;
}

TEST(SafetensorsHostile, WriterRejectsBadInput) {
  SafetensorsWriter w;
  float x[4] = {};
  EXPECT_FALSE(w.add_tensor("a", GgmlType::F32, {3}, x, 16));
  EXPECT_FALSE(w.add_tensor("a", GgmlType::Q8_0, {32}, x, 34));
  EXPECT_TRUE(w.add_tensor("a", GgmlType::F32, {4}, x, 16));
  EXPECT_FALSE(w.add_tensor("a", GgmlType::F32, {4}, x, 16)) << "duplicate name";
}
