/* Fuzz target for the GGUF reader: parse, then touch every metadata value and every tensor (the whole
 * byte range of each, and read_f32 on the small ones), so an offset the parser failed to check shows up
 * as an out-of-bounds read under ASan, not only an invalid value.
 *
 * Non-obvious choice: the target also re-checks the reader's own promises (each tensor lies inside the
 * input, sizes match type_nbytes) and aborts if one is broken, turning a silent logic bug into a crash
 * the fuzzer reports.
 */
#include <cstdlib>
#include <cstring>

#include "fuzz-driver.h"
#include "hearth/gguf.h"

using namespace hearth;

static volatile uint64_t g_sink;

static void touch(const GgufValue& v) {
  uint64_t h = uint64_t(v.type);
  if (auto i = v.as_int()) h += uint64_t(*i);
  if (auto f = v.as_float()) h += uint64_t(*f != 0);
  if (auto b = v.as_bool()) h += *b;
  if (auto* s = v.as_string()) h += s->size() + (s->empty() ? 0 : uint8_t(s->back()));
  if (auto* a = v.as_array())
    for (const auto& e : *a) touch(e);
  g_sink = g_sink + h;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = GgufFile::parse(data, size, "fuzz.gguf");
  if (!f) {
    if (f.error().message.empty()) std::abort();  // every failure must say something
    return 0;
  }
  for (const auto& kv : f->metadata()) {
    touch(kv.value);
    if (f->find(kv.key) != &kv.value) std::abort();  // keys are unique
  }
  (void)f->get_string("general.architecture");
  (void)f->get_string_array("tokenizer.ggml.tokens");
  (void)f->get_float_array("tokenizer.ggml.scores");
  (void)f->get_int_array("tokenizer.ggml.token_type");
  for (const auto& t : f->tensors()) {
    const uint8_t* p = f->tensor_data(t);
    if (p < data || t.nbytes > size || p + t.nbytes > data + size) std::abort();
    auto nb = type_nbytes(t.type, uint64_t(t.n_elements()));
    if (!nb || *nb != t.nbytes) std::abort();
    if (t.nbytes > 0) g_sink = g_sink + p[0] + p[t.nbytes - 1];
    if (t.n_elements() <= (1 << 16)) {
      auto v = f->read_f32(t);
      if (v && v->size() != size_t(t.n_elements())) std::abort();
      if (v && !v->empty()) g_sink = g_sink + uint64_t((*v)[0] != 0);
    }
  }
  return 0;
}

std::vector<std::vector<uint8_t>> hearth_fuzz_seeds() {
  std::vector<std::vector<uint8_t>> seeds;
  {  // Every value type and every tensor type, small.
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    w.set_u32("llama.block_count", 1);
    w.set_i32("tokenizer.ggml.bos_token_id", 1);
    w.set_u64("x.u64", 1ull << 40);
    w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.set_bool("tokenizer.ggml.add_bos_token", true);
    w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "hello", ""});
    w.set_f32_array("tokenizer.ggml.scores", {0.0f, 0.0f, 0.0f, -1.0f, -2.0f});
    w.set_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1});
    GgufValue nested;
    nested.type = GgufValueType::ARRAY;
    nested.array_type = GgufValueType::ARRAY;
    GgufValue inner;
    inner.type = GgufValueType::ARRAY;
    inner.array_type = GgufValueType::INT16;
    GgufValue e;
    e.type = GgufValueType::INT16;
    e.data = int64_t(-7);
    inner.data = std::vector<GgufValue>{e, e};
    nested.data = std::vector<GgufValue>{inner, inner};
    w.set("x.nested", nested);
    std::vector<float> v(512);
    for (size_t i = 0; i < v.size(); ++i) v[i] = float(int(i % 17) - 8) * 0.125f;
    for (uint32_t id = 0; id < 64; ++id) {
      if (!is_known_type(id)) continue;
      const GgmlType t = GgmlType(id);
      const int64_t bs = type_traits(t)->block_size;
      if (can_quantize(t)) {
        (void)w.add_tensor_f32(std::string("q.") + type_name(t), {bs > 1 ? 256 : 8, 2}, v.data(), t);
      } else {
        std::vector<uint8_t> raw(size_t(*type_nbytes(t, uint64_t(bs))), 0x5a);
        (void)w.add_tensor_raw(std::string("raw.") + type_name(t), {bs}, t, raw.data(), raw.size());
      }
    }
    seeds.push_back(w.to_bytes());
    // The same as GGUF v2 (identical layout).
    auto v2 = seeds.back();
    v2[4] = 2;
    seeds.push_back(std::move(v2));
  }
  {  // A larger alignment and a 4-D tensor.
    GgufWriter w(256);
    w.set_string("general.architecture", "qwen2");
    std::vector<float> v(2 * 3 * 4 * 32, 0.5f);
    (void)w.add_tensor_f32("blk.0.w", {32, 4, 3, 2}, v.data(), GgmlType::Q8_0);
    (void)w.add_tensor_f32("blk.0.b", {32}, v.data(), GgmlType::F32);
    seeds.push_back(w.to_bytes());
  }
  return seeds;
}

std::string hearth_fuzz_seed_suffix() { return ".gguf"; }
