/* GGUF reader and writer: writer -> reader round trips for every value type and tensor type, the real
 * test-data files (vocabularies and the tiny Llama 2 model), parse speed of large vocabularies, and one
 * test per hostile input asserting the error names the file, the place and what was expected.
 *
 * Non-obvious choice: hostile files are built byte by byte with a tiny builder here (not with GgufWriter),
 * so they can say things the writer would refuse to write.
 */
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include "hearth/gguf.h"
#include "test-util.h"

using namespace hearth;

namespace {

// ---- byte builder for hand-made files ----
struct B {
  std::vector<uint8_t> d;
  B& raw(std::string_view s) {
    d.insert(d.end(), s.begin(), s.end());
    return *this;
  }
  template <class T>
  B& put(T v) {
    size_t at = d.size();
    d.resize(at + sizeof(T));
    std::memcpy(d.data() + at, &v, sizeof(T));
    return *this;
  }
  B& u8(uint8_t v) { return put(v); }
  B& u32(uint32_t v) { return put(v); }
  B& u64(uint64_t v) { return put(v); }
  B& str(std::string_view s) { return u64(s.size()).raw(s); }
  B& pad_to(size_t a) {
    d.resize((d.size() + a - 1) / a * a, 0);
    return *this;
  }
};

B header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
  B b;
  b.raw("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  return b;
}

Expected<GgufFile> parse(const B& b, const std::string& name = "hostile.gguf") {
  return GgufFile::parse(b.d.data(), b.d.size(), name);
}

// Asserts failure with a message that starts with the file name and contains every fragment.
void expect_error(const Expected<GgufFile>& r, std::initializer_list<std::string> fragments,
                  const std::string& name = "hostile.gguf") {
  ASSERT_FALSE(r.has_value()) << "expected an error containing '" << *fragments.begin() << "'";
  const std::string& m = r.error().message;
  EXPECT_EQ(m.rfind(name + ":", 0), 0u) << "message does not start with the file name: " << m;
  for (const auto& f : fragments) EXPECT_NE(m.find(f), std::string::npos) << "'" << f << "' not in: " << m;
}

GgufValue make(GgufValueType t, std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<GgufValue>> v,
               GgufValueType at = GgufValueType::UINT8) {
  GgufValue x;
  x.type = t;
  x.array_type = at;
  x.data = std::move(v);
  return x;
}

bool same_value(const GgufValue& a, const GgufValue& b) {
  if (a.type != b.type) return false;
  if (a.type == GgufValueType::ARRAY) {
    if (a.array_type != b.array_type) return false;
    auto *x = a.as_array(), *y = b.as_array();
    if (!x || !y || x->size() != y->size()) return false;
    for (size_t i = 0; i < x->size(); ++i)
      if (!same_value((*x)[i], (*y)[i])) return false;
    return true;
  }
  if (a.type == GgufValueType::FLOAT32 || a.type == GgufValueType::FLOAT64) {
    double p = *a.as_float(), q = *b.as_float();
    return (std::isnan(p) && std::isnan(q)) || p == q;
  }
  if (a.data.index() != b.data.index()) return false;
  if (auto* s = a.as_string()) return *s == *b.as_string();
  if (auto* x = std::get_if<bool>(&a.data)) return *x == std::get<bool>(b.data);
  if (auto* x = std::get_if<uint64_t>(&a.data)) return *x == std::get<uint64_t>(b.data);
  if (auto* x = std::get_if<int64_t>(&a.data)) return *x == std::get<int64_t>(b.data);
  return false;
}

// One value of every type, including nested and empty arrays and extreme integers.
std::vector<GgufKV> every_value_type() {
  using T = GgufValueType;
  std::vector<GgufKV> kv;
  kv.push_back({"t.u8", make(T::UINT8, uint64_t(255))});
  kv.push_back({"t.i8", make(T::INT8, int64_t(-128))});
  kv.push_back({"t.u16", make(T::UINT16, uint64_t(65535))});
  kv.push_back({"t.i16", make(T::INT16, int64_t(-32768))});
  kv.push_back({"t.u32", make(T::UINT32, uint64_t(4294967295u))});
  kv.push_back({"t.i32", make(T::INT32, int64_t(INT32_MIN))});
  kv.push_back({"t.f32", make(T::FLOAT32, double(1.0f / 3.0f))});
  kv.push_back({"t.bool", make(T::BOOL, true)});
  kv.push_back({"t.bool_false", make(T::BOOL, false)});
  kv.push_back({"t.string", make(T::STRING, std::string("héllo \0 world", 14))});
  kv.push_back({"t.empty_string", make(T::STRING, std::string())});
  kv.push_back({"t.u64", make(T::UINT64, uint64_t(UINT64_MAX))});
  kv.push_back({"t.i64", make(T::INT64, int64_t(INT64_MIN))});
  kv.push_back({"t.f64", make(T::FLOAT64, 2.718281828459045)});
  std::vector<GgufValue> ints = {make(T::INT32, int64_t(1)), make(T::INT32, int64_t(-2)), make(T::INT32, int64_t(3))};
  kv.push_back({"t.arr_i32", make(T::ARRAY, ints, T::INT32)});
  kv.push_back({"t.arr_empty", make(T::ARRAY, std::vector<GgufValue>{}, T::FLOAT32)});
  std::vector<GgufValue> strs = {make(T::STRING, std::string("a")), make(T::STRING, std::string()),
                                 make(T::STRING, std::string(300, 'x'))};
  kv.push_back({"t.arr_str", make(T::ARRAY, strs, T::STRING)});
  std::vector<GgufValue> bools = {make(T::BOOL, true), make(T::BOOL, false)};
  kv.push_back({"t.arr_bool", make(T::ARRAY, bools, T::BOOL)});
  std::vector<GgufValue> inner1 = {make(T::UINT8, uint64_t(1)), make(T::UINT8, uint64_t(2))};
  std::vector<GgufValue> inner2 = {};
  std::vector<GgufValue> nested = {make(T::ARRAY, inner1, T::UINT8), make(T::ARRAY, inner2, T::UINT8)};
  kv.push_back({"t.arr_nested", make(T::ARRAY, nested, T::ARRAY)});
  std::vector<GgufValue> f64s = {make(T::FLOAT64, -0.0), make(T::FLOAT64, 1e300)};
  kv.push_back({"t.arr_f64", make(T::ARRAY, f64s, T::FLOAT64)});
  return kv;
}

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = uint8_t(rng());
  return v;
}

// A small valid file with one tensor, used as the base for corruption tests.
GgufWriter small_writer() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  std::vector<float> v(64);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i) * 0.25f - 3.0f;
  EXPECT_TRUE(w.add_tensor_f32("blk.0.attn_q.weight", {32, 2}, v.data(), GgmlType::F32));
  return w;
}

}  // namespace

// ---- round trips ----------------------------------------------------------------------------------

TEST(GgufRoundTrip, EveryValueTypeReadsBackIdenticallyInOrder) {
  GgufWriter w;
  auto kvs = every_value_type();
  for (const auto& kv : kvs) w.set(kv.key, kv.value);
  auto bytes = w.serialize();
  ASSERT_TRUE(bytes) << bytes.error().message;
  auto f = GgufFile::parse(bytes->data(), bytes->size(), "rt.gguf");
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->version(), 3u);
  ASSERT_EQ(f->metadata().size(), kvs.size());
  for (size_t i = 0; i < kvs.size(); ++i) {
    EXPECT_EQ(f->metadata()[i].key, kvs[i].key);
    EXPECT_TRUE(same_value(f->metadata()[i].value, kvs[i].value)) << kvs[i].key;
  }
  // Re-serializing what was read gives the same bytes.
  GgufWriter w2;
  for (const auto& kv : f->metadata()) w2.set(kv.key, kv.value);
  EXPECT_EQ(w2.to_bytes(), *bytes);
  // Typed accessors.
  EXPECT_EQ(f->get_int("t.u8"), 255);
  EXPECT_EQ(f->get_int("t.i64"), INT64_MIN);
  EXPECT_EQ(f->get_int("t.u64"), std::nullopt);  // does not fit int64
  EXPECT_EQ(f->get_int("t.string"), std::nullopt);
  EXPECT_FLOAT_EQ(float(*f->get_float("t.f32")), 1.0f / 3.0f);
  EXPECT_EQ(f->get_bool("t.bool"), true);
  EXPECT_EQ(f->get_string("t.empty_string"), std::string());
  EXPECT_EQ(f->get_string("t.string")->size(), 14u);
  EXPECT_EQ(f->get_int_array("t.arr_i32"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(f->get_string_array("t.arr_str")->at(2), std::string(300, 'x'));
  EXPECT_EQ(f->get_float_array("t.arr_empty"), std::vector<float>{});
  EXPECT_EQ(f->get_string_array("t.arr_i32"), std::nullopt);
  EXPECT_EQ(f->find("missing"), nullptr);
}

TEST(GgufRoundTrip, SetReplacesAndConvenienceSettersUseLlamaCppTypes) {
  GgufWriter w;
  w.set_u32("llama.block_count", 2);
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 4);  // replaces in place, keeps position
  w.set_i32("tokenizer.ggml.bos_token_id", 1);
  w.set_u64("x.u64", 1ull << 40);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>"});
  w.set_f32_array("tokenizer.ggml.scores", {0.0f, -1.5f, 2.0f});
  w.set_i32_array("tokenizer.ggml.token_type", {2, 3, 3});
  auto b = w.to_bytes();
  auto f = GgufFile::parse(b.data(), b.size());
  ASSERT_TRUE(f) << f.error().message;
  ASSERT_EQ(f->metadata().size(), 9u);
  EXPECT_EQ(f->metadata()[0].key, "llama.block_count");
  EXPECT_EQ(f->metadata()[0].value.type, GgufValueType::UINT32);
  EXPECT_EQ(f->get_int("llama.block_count"), 4);
  EXPECT_EQ(f->find("tokenizer.ggml.bos_token_id")->type, GgufValueType::INT32);
  EXPECT_EQ(f->get_int("x.u64"), int64_t(1) << 40);
  EXPECT_FLOAT_EQ(float(*f->get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(f->find("tokenizer.ggml.tokens")->array_type, GgufValueType::STRING);
  EXPECT_EQ(f->get_float_array("tokenizer.ggml.scores"), (std::vector<float>{0.0f, -1.5f, 2.0f}));
  EXPECT_EQ(f->find("tokenizer.ggml.token_type")->array_type, GgufValueType::INT32);
}

TEST(GgufRoundTrip, EveryTensorTypeKeepsItsBytesAndShape) {
  GgufWriter w(64);
  std::vector<GgufTensorInfo> expect;
  std::vector<std::vector<uint8_t>> payloads;
  int k = 0;
  for (uint32_t id = 0; id < 64; ++id) {
    if (!is_known_type(id)) continue;
    const TypeTraits* tr = type_traits(GgmlType(id));
    const int64_t row = tr->block_size * 2;
    std::vector<int64_t> shape = {row, 3, (k % 2) ? 2 : 1};
    if (k % 3 == 0) shape = {row};
    int64_t n = 1;
    for (auto d : shape) n *= d;
    const size_t nbytes = size_t(*type_nbytes(GgmlType(id), uint64_t(n)));
    auto bytes = random_bytes(nbytes, id);
    std::string name = std::string("raw.") + tr->name;
    ASSERT_TRUE(w.add_tensor_raw(name, shape, GgmlType(id), bytes.data(), bytes.size()));
    GgufTensorInfo info;
    info.name = name;
    info.shape = shape;
    info.type = GgmlType(id);
    info.nbytes = nbytes;
    expect.push_back(info);
    payloads.push_back(bytes);
    ++k;
  }
  auto path = test::scratch("gguf-rt") / "all-types.gguf";
  auto wr = w.write(path);
  ASSERT_TRUE(wr) << wr.error().message;
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp-" + std::to_string(::getpid())));
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->get_int("general.alignment"), 64);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  ASSERT_EQ(f->tensors().size(), expect.size());
  for (size_t i = 0; i < expect.size(); ++i) {
    const auto& t = f->tensors()[i];
    EXPECT_EQ(t.name, expect[i].name);
    EXPECT_EQ(t.shape, expect[i].shape);
    EXPECT_EQ(t.type, expect[i].type);
    EXPECT_EQ(t.nbytes, expect[i].nbytes);
    EXPECT_EQ(t.offset % 64, 0u);
    EXPECT_EQ(std::memcmp(f->tensor_data(t), payloads[i].data(), payloads[i].size()), 0) << t.name;
    EXPECT_EQ(f->find_tensor(t.name), &t);
  }
  // The file on disk is exactly what to_bytes() gives.
  EXPECT_EQ(test::read_text(path).size(), w.to_bytes().size());
  EXPECT_EQ(f->file_size(), w.to_bytes().size());
}

TEST(GgufRoundTrip, QuantizedTensorsReadBackAsTheirDequantizedValues) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,
                     GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    std::vector<float> v(512);
    for (auto& x : v) x = nd(rng) * 0.05f;
    GgufWriter w;
    ASSERT_TRUE(w.add_tensor_f32("w", {256, 2}, v.data(), t));
    auto b = w.to_bytes();
    auto f = GgufFile::parse(b.data(), b.size());
    ASSERT_TRUE(f) << f.error().message;
    auto vals = f->read_f32(f->tensors()[0]);
    ASSERT_TRUE(vals) << vals.error().message;
    std::vector<uint8_t> q(size_t(*type_nbytes(t, 512)));
    ASSERT_TRUE(quantize(t, v.data(), q.data(), 512));
    std::vector<float> expect(512);
    ASSERT_TRUE(dequantize(t, q.data(), expect.data(), 512));
    EXPECT_EQ(*vals, expect) << type_name(t);
  }
}

TEST(GgufWriter, RefusesInvalidInput) {
  GgufWriter w;
  std::vector<float> v(64, 1.0f);
  auto r = w.add_tensor_f32("a", {33}, v.data(), GgmlType::Q4_0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not a multiple of the Q4_0 block size 32"), std::string::npos) << r.error().message;
  ASSERT_TRUE(w.add_tensor_f32("a", {32}, v.data(), GgmlType::Q4_0));
  r = w.add_tensor_f32("a", {32}, v.data(), GgmlType::Q8_0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("duplicate tensor name 'a'"), std::string::npos);
  r = w.add_tensor_f32("b", {}, v.data(), GgmlType::F32);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("expected 1 to 4"), std::string::npos);
  r = w.add_tensor_f32("b", {1, 1, 1, 1, 1}, v.data(), GgmlType::F32);
  ASSERT_FALSE(r);
  r = w.add_tensor_f32("b", {32, 0}, v.data(), GgmlType::F32);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("positive size"), std::string::npos);
  r = w.add_tensor_f32("b", {32}, v.data(), GgmlType::IQ2_XXS);
  ASSERT_FALSE(r);
  r = w.add_tensor_raw("b", {32}, GgmlType::Q8_0, v.data(), 33);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("need 34"), std::string::npos) << r.error().message;
  v[3] = NAN;
  r = w.add_tensor_f32("c", {64}, v.data(), GgmlType::Q8_0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("value 3 is not finite"), std::string::npos) << r.error().message;

  GgufWriter bad;
  bad.set("x", make(GgufValueType::UINT8, uint64_t(300)));
  auto s = bad.serialize();
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("metadata 'x'"), std::string::npos) << s.error().message;
  EXPECT_TRUE(bad.to_bytes().empty());
  GgufWriter mixed;
  mixed.set("m", make(GgufValueType::ARRAY, std::vector<GgufValue>{make(GgufValueType::STRING, std::string("a"))},
                      GgufValueType::INT32));
  ASSERT_FALSE(mixed.serialize());
  GgufWriter odd_align(48);
  ASSERT_FALSE(odd_align.serialize());
  // A failed write leaves nothing at the target path.
  auto dir = test::scratch("gguf-writer-fail");
  auto wr = bad.write(dir / "x.gguf");
  ASSERT_FALSE(wr);
  EXPECT_TRUE(std::filesystem::is_empty(dir));
  auto wr2 = small_writer().write(dir / "no-such-dir" / "x.gguf");
  ASSERT_FALSE(wr2);
  EXPECT_EQ(wr2.error().code, ErrorCode::io);
}

// ---- real files -----------------------------------------------------------------------------------

TEST(GgufTestData, TinyLlamaModelHasItsRealFacts) {
  auto path = test::testdata("models/llama-2-tiny-random.gguf");
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(f->get_int("llama.context_length"), 4096);
  EXPECT_EQ(f->get_int("llama.embedding_length"), 8);
  EXPECT_EQ(f->get_int("llama.block_count"), 1);
  EXPECT_EQ(f->get_int("llama.feed_forward_length"), 32);
  EXPECT_EQ(f->get_int("llama.attention.head_count"), 2);
  EXPECT_NEAR(*f->get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-9);
  EXPECT_EQ(f->get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(f->get_int("tokenizer.ggml.eos_token_id"), 2);
  auto tokens = f->get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens);
  ASSERT_EQ(tokens->size(), 32000u);
  EXPECT_EQ((*tokens)[0], "<unk>");
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ((*tokens)[2], "</s>");
  EXPECT_EQ(f->get_float_array("tokenizer.ggml.scores")->size(), 32000u);
  EXPECT_EQ(f->get_int_array("tokenizer.ggml.token_type")->size(), 32000u);
  EXPECT_EQ(f->get_int_array("tokenizer.ggml.token_type")->at(0), 2);  // UNKNOWN

  ASSERT_EQ(f->tensors().size(), 12u);
  int n_f16 = 0, n_f32 = 0;
  for (const auto& t : f->tensors()) {
    n_f16 += t.type == GgmlType::F16;
    n_f32 += t.type == GgmlType::F32;
    auto v = f->read_f32(t);
    ASSERT_TRUE(v) << v.error().message;
    ASSERT_EQ(int64_t(v->size()), t.n_elements());
    for (float x : *v) ASSERT_TRUE(std::isfinite(x)) << t.name;
  }
  EXPECT_EQ(n_f16, 9);
  EXPECT_EQ(n_f32, 3);
  const GgufTensorInfo* emb = f->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->shape, (std::vector<int64_t>{8, 32000}));
  EXPECT_EQ(emb->type, GgmlType::F16);
  EXPECT_EQ(f->data_offset(), 724416u);
  const GgufTensorInfo* norm = f->find_tensor("output_norm.weight");
  ASSERT_NE(norm, nullptr);
  EXPECT_EQ(norm->type, GgmlType::F32);
  EXPECT_EQ(norm->shape, std::vector<int64_t>{8});
  // F32 data is read in place: read_f32 gives exactly the bytes of the mapping.
  auto nv = f->read_f32(*norm);
  ASSERT_TRUE(nv);
  EXPECT_EQ(std::memcmp(nv->data(), f->tensor_data(*norm), 32), 0);
}

struct VocabFact {
  const char* file;
  const char* arch;
  const char* model;
  size_t n_tokens;
  size_t n_merges;
};

TEST(GgufTestData, EveryVocabularyFileOpensQuicklyWithItsFacts) {
  const VocabFact facts[] = {
      {"ggml-vocab-baichuan.gguf", "baichuan", "llama", 64000, 0},
      {"ggml-vocab-bert-bge.gguf", "bert", "bert", 30522, 0},
      {"ggml-vocab-deepseek-coder.gguf", "llama", "gpt2", 32256, 31757},
      {"ggml-vocab-deepseek-llm.gguf", "llama", "gpt2", 102400, 99757},
      {"ggml-vocab-falcon.gguf", "falcon", "gpt2", 65024, 64784},
      {"ggml-vocab-gpt-2.gguf", "gpt2", "gpt2", 50257, 50000},
      {"ggml-vocab-gpt-neox.gguf", "gptneox", "gpt2", 50432, 50009},
      {"ggml-vocab-llama-spm.gguf", "llama", "llama", 32000, 0},
      {"ggml-vocab-mpt.gguf", "mpt", "gpt2", 50432, 50009},
      {"ggml-vocab-phi-3.gguf", "phi3", "llama", 32064, 0},
      {"ggml-vocab-refact.gguf", "refact", "gpt2", 49216, 48891},
      {"ggml-vocab-starcoder.gguf", "starcoder2", "gpt2", 49152, 48872},
  };
  size_t seen = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::testdata("vocab")))
    if (e.path().extension() == ".gguf") ++seen;
  EXPECT_EQ(seen, std::size(facts)) << "a vocabulary file was added or removed: update this table";
  double worst_ms = 0;
  for (const auto& fact : facts) {
    SCOPED_TRACE(fact.file);
    auto t0 = std::chrono::steady_clock::now();
    auto f = GgufFile::open(test::testdata(std::string("vocab/") + fact.file));
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    worst_ms = std::max(worst_ms, ms);
    ASSERT_TRUE(f) << f.error().message;
    EXPECT_EQ(f->version(), 3u);
    EXPECT_EQ(f->get_string("general.architecture"), fact.arch);
    EXPECT_EQ(f->get_string("tokenizer.ggml.model"), fact.model);
    EXPECT_EQ(f->find("tokenizer.ggml.tokens")->as_array()->size(), fact.n_tokens);
    const GgufValue* merges = f->find("tokenizer.ggml.merges");
    EXPECT_EQ(merges ? merges->as_array()->size() : 0u, fact.n_merges);
    EXPECT_TRUE(f->tensors().empty());
    std::printf("  %-34s %7zu tokens %6zu merges  parsed in %6.2f ms\n", fact.file, fact.n_tokens, fact.n_merges, ms);
  }
  // Generous bound (sanitizer builds are ~10x slower); a Release build takes a few ms per file.
  EXPECT_LT(worst_ms, 3000.0);
}

// ---- hostile input --------------------------------------------------------------------------------

TEST(GgufHostile, TooSmallWrongMagicAndUnsupportedVersions) {
  expect_error(parse(B{}), {"0 bytes", "magic"});
  expect_error(parse(B().raw("GGU")), {"offset 0", "too few"});
  expect_error(parse(B().raw("GGML").u32(3).u64(0).u64(0)), {"offset 0", "not a GGUF file", "'GGML'"});
  auto v1 = parse(header(0, 0, 1));
  expect_error(v1, {"offset 4", "GGUF version 1 is not supported"});
  EXPECT_EQ(v1.error().code, ErrorCode::unsupported);
  EXPECT_FALSE(v1.error().hint.empty());
  expect_error(parse(header(0, 0, 4)), {"version 4 is not supported"});
  expect_error(parse(header(0, 0, 0x03000000)), {"big-endian"});
  expect_error(parse(B().raw("GGUF").u32(3).u32(0)), {"offset 8", "tensor count", "file ends"});
}

TEST(GgufHostile, CountsThatCannotFitAreRefusedBeforeAllocating) {
  expect_error(parse(header(0, 1ull << 60)), {"metadata count 1152921504606846976 cannot fit"});
  expect_error(parse(header(UINT64_MAX, 0)), {"tensor count 18446744073709551615 cannot fit"});
  // 100M UINT32 elements claimed by a ~60-byte file.
  B b = header(0, 1);
  b.str("big").u32(uint32_t(GgufValueType::ARRAY)).u32(uint32_t(GgufValueType::UINT32)).u64(100000000).u32(7);
  expect_error(parse(b), {"array of 100000000 UINT32 elements needs at least 400000000 bytes", "metadata 'big'"});
  // A count whose byte size overflows 64 bits.
  B c = header(0, 1);
  c.str("big").u32(uint32_t(GgufValueType::ARRAY)).u32(uint32_t(GgufValueType::UINT64)).u64(1ull << 62);
  expect_error(parse(c), {"more than 2^64"});
  // 100M strings (each needs at least its 8-byte length).
  B d = header(0, 1);
  d.str("strs").u32(uint32_t(GgufValueType::ARRAY)).u32(uint32_t(GgufValueType::STRING)).u64(100000000);
  expect_error(parse(d), {"array of 100000000 STRING elements"});
  // Arrays of arrays: each needs at least 12 bytes.
  B e = header(0, 1);
  e.str("nest").u32(uint32_t(GgufValueType::ARRAY)).u32(uint32_t(GgufValueType::ARRAY)).u64(1000000);
  expect_error(parse(e), {"array of 1000000 ARRAY elements"});
}

TEST(GgufHostile, StringsLongerThanTheFile) {
  B key = header(0, 1);
  key.u64(1000).raw("abc").raw(std::string(20, '\0'));  // enough bytes to pass the count check
  expect_error(parse(key), {"offset 24", "metadata key has length 1000 but only 23 bytes", "metadata entry 0"});
  B val = header(0, 1);
  val.str("general.name").u32(uint32_t(GgufValueType::STRING)).u64(UINT64_MAX).raw("x");
  expect_error(parse(val), {"string value has length 18446744073709551615", "metadata 'general.name'"});
  B arr = header(0, 1);
  arr.str("tokens").u32(uint32_t(GgufValueType::ARRAY)).u32(uint32_t(GgufValueType::STRING)).u64(2);
  arr.str("ok").u64(999).raw("abcdefgh");
  expect_error(parse(arr), {"string 1 of the array has length 999", "metadata 'tokens'"});
  B tname = header(1, 0);
  tname.u64(500).raw("blk").raw(std::string(40, '\0'));
  expect_error(parse(tname), {"offset 24", "tensor name has length 500 but only 43 bytes", "tensor info 0"});
}

TEST(GgufHostile, UnknownValueTypesAndDeepNesting) {
  B b = header(0, 1);
  b.str("k").u32(13).u32(0);
  expect_error(parse(b), {"offset", "unknown value type 13 for metadata 'k'"});
  B a = header(0, 1);
  a.str("k").u32(uint32_t(GgufValueType::ARRAY)).u32(99).u64(0);
  expect_error(parse(a), {"unknown array element type 99"});
  B n = header(0, 1);
  n.str("deep");
  n.u32(uint32_t(GgufValueType::ARRAY));
  for (int i = 0; i < 20; ++i) n.u32(uint32_t(GgufValueType::ARRAY)).u64(1);
  n.u32(uint32_t(GgufValueType::UINT8)).u64(0);
  n.d.resize(n.d.size() + 4096, 0);
  expect_error(parse(n), {"nested more than 8 deep"});
}

TEST(GgufHostile, DuplicateKeysAndBadAlignment) {
  B b = header(0, 2);
  b.str("a").u32(uint32_t(GgufValueType::UINT8)).u8(1);
  b.str("a").u32(uint32_t(GgufValueType::UINT8)).u8(2);
  expect_error(parse(b), {"duplicate metadata key 'a'", "offset 38"});
  for (uint32_t bad : {0u, 3u, 48u}) {
    B c = header(0, 1);
    c.str("general.alignment").u32(uint32_t(GgufValueType::UINT32)).u32(bad);
    expect_error(parse(c), {"offset 24", "general.alignment must be a non-zero power of two, found " +
                                             std::to_string(bad)});
  }
  B s = header(0, 1);
  s.str("general.alignment").u32(uint32_t(GgufValueType::STRING)).str("32");
  expect_error(parse(s), {"general.alignment must be a non-zero power of two, found a STRING value"});
  B ok = header(0, 1);
  ok.str("general.alignment").u32(uint32_t(GgufValueType::UINT32)).u32(64);
  auto f = parse(ok);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->alignment(), 64u);
}

namespace {
// One tensor info after an empty metadata section; data appended after the aligned data offset.
B one_tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset, size_t data_bytes,
             uint32_t n_dims_override = 0) {
  B b = header(1, 0);
  b.str(name).u32(n_dims_override ? n_dims_override : uint32_t(dims.size()));
  for (auto d : dims) b.u64(d);
  b.u32(type).u64(offset);
  b.pad_to(32);
  b.d.resize(b.d.size() + data_bytes, 0x11);
  return b;
}
}  // namespace

TEST(GgufHostile, BadTensorInfos) {
  ASSERT_TRUE(parse(one_tensor("ok", {32, 2}, 0, 0, 256)));
  expect_error(parse(one_tensor("t", {}, 0, 0, 64)), {"tensor 't' has 0 dimensions, expected 1 to 4"});
  expect_error(parse(one_tensor("t", {1, 1, 1, 1, 1}, 0, 0, 64)), {"tensor 't' has 5 dimensions"});
  expect_error(parse(one_tensor("t", {32, 0}, 0, 0, 64)), {"dimension 1 is 0, expected a positive size"});
  expect_error(parse(one_tensor("t", {1ull << 63}, 0, 0, 64)), {"dimension 0 is", "expected a positive size"});
  expect_error(parse(one_tensor("t", {1ull << 32, 1ull << 32}, 0, 0, 64)),
               {"tensor 't' has dimensions whose product overflows"});
  // Element count fits int64 but the byte size (x4 for F32) does not.
  expect_error(parse(one_tensor("t", {1ull << 31, 1ull << 31}, 0, 0, 64)), {"tensor 't'", "overflow"});
  auto unk = parse(one_tensor("t", {32}, 99, 0, 64));
  expect_error(unk, {"tensor 't' has unknown type id 99"});
  expect_error(parse(one_tensor("t", {32}, 4, 0, 64)), {"unknown type id 4"});  // a removed ggml type
  expect_error(parse(one_tensor("t", {33, 2}, uint32_t(GgmlType::Q4_0), 0, 64)),
               {"rows of 33 elements, not a multiple of the Q4_0 block size 32"});
  expect_error(parse(one_tensor("t", {128}, uint32_t(GgmlType::Q4_K), 0, 256)),
               {"not a multiple of the Q4_K block size 256"});
  expect_error(parse(one_tensor("t", {32}, 0, 16, 256)), {"data offset 16 is not a multiple of the alignment 32"});
}

TEST(GgufHostile, TensorDataPastTheEndOfTheFile) {
  // 64 F32 = 256 bytes, but only 100 follow the data offset.
  B b = one_tensor("blk.0.attn_q.weight", {64}, 0, 0, 100);
  auto r = parse(b, "model.gguf");
  expect_error(r, {"tensor 'blk.0.attn_q.weight' data [offset 96..352] lies past the end of the file (size 196)"},
               "model.gguf");
  expect_error(parse(one_tensor("t", {32}, 0, UINT64_MAX - 31, 256)), {"past 2^64", "lies past the end"});
  // A writer file cut short anywhere fails cleanly, with the file name.
  auto full = small_writer().to_bytes();
  for (size_t cut = 0; cut < full.size(); ++cut) {
    auto f = GgufFile::parse(full.data(), cut, "cut.gguf");
    ASSERT_FALSE(f) << "cut at " << cut;
    EXPECT_EQ(f.error().message.rfind("cut.gguf: ", 0), 0u) << f.error().message;
  }
  ASSERT_TRUE(GgufFile::parse(full.data(), full.size()));
}

TEST(GgufHostile, DuplicateTensorNames) {
  B b = header(2, 0);
  for (int i = 0; i < 2; ++i) b.str("same").u32(1).u64(32).u32(0).u64(uint64_t(i) * 128);
  b.pad_to(32);
  b.d.resize(b.d.size() + 256, 0);
  expect_error(parse(b), {"duplicate tensor name 'same'"});
}

TEST(GgufHostile, FilesThatCannotBeOpened) {
  auto r = GgufFile::open("/nonexistent/dir/model.gguf");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::io);
  EXPECT_NE(r.error().message.find("/nonexistent/dir/model.gguf: cannot open"), std::string::npos);
  auto dir = test::scratch("gguf-open");
  auto d = GgufFile::open(dir);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("not a regular file"), std::string::npos);
  test::write_text(dir / "empty.gguf", "");
  auto e = GgufFile::open(dir / "empty.gguf");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("empty.gguf: offset 0"), std::string::npos) << e.error().message;
}

TEST(GgufHostile, UnsupportedTypesOpenButDoNotDequantize) {
  const TypeTraits* tr = type_traits(GgmlType::IQ4_XS);
  ASSERT_NE(tr, nullptr);
  auto b = one_tensor("w", {256}, uint32_t(GgmlType::IQ4_XS), 0, tr->block_bytes);
  auto f = parse(b);
  ASSERT_TRUE(f) << f.error().message;
  auto v = f->read_f32(f->tensors()[0]);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, ErrorCode::unsupported);
  EXPECT_NE(v.error().message.find("tensor 'w': tensor type IQ4_XS is not supported"), std::string::npos)
      << v.error().message;
  // A caller's forged info that points outside the file is refused, not read.
  GgufTensorInfo forged = f->tensors()[0];
  forged.type = GgmlType::F32;
  forged.nbytes = 1ull << 40;
  forged.shape = {1ll << 38};
  EXPECT_FALSE(f->read_f32(forged));
}
