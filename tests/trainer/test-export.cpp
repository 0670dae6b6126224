/* Unit tests of the trainer's export (hearth/trainer/export.h) on tiny models with the real Llama 2
 * vocabulary and a chat template: the adapter of a LoRA TrainModel is its factors; each exported
 * format opens with the engine; the adapter files (PEFT and GGUF) applied on the fly give the logits of
 * the exported merged model; every merged export tokenizes like its base and keeps its chat template and
 * special tokens, from a GGUF base, a Hugging Face base and a pretraining run; bad requests write
 * nothing, and a failed export leaves no partial output.
 */
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "hearth/gguf.h"
#include "hearth/inference.h"
#include "hearth/lora.h"
#include "hearth/model-writer.h"
#include "hearth/tokenizer.h"
#include "hearth/trainer/export.h"
#include "hearth/trainer/train-model.h"
#include "must.h"
#include "compare.h"
#include "test-util.h"

using namespace hearth;
using namespace hearth::train;
using hearth::test::must;
namespace fs = std::filesystem;

using hearth::test::rel_diff;

namespace {

const char* PROBE = "Hello there, how are you? Fine: 42 apples and 7 pears.\n  Bye!";
const std::vector<TokenId> TOKS = {1, 15043, 727, 29892, 920, 526, 366, 29973, 1724, 29871};

TokenizerData real_vocab() {
  GgufFile src = must(GgufFile::open(test::testdata("models/llama-2-tiny-random.gguf")));
  TokenizerData td;
  td.model = "llama";
  td.tokens = src.get_string_array("tokenizer.ggml.tokens").value_or(std::vector<std::string>{});
  td.scores = src.get_float_array("tokenizer.ggml.scores").value_or(std::vector<float>{});
  for (int64_t t : src.get_int_array("tokenizer.ggml.token_type").value_or(std::vector<int64_t>{}))
    td.token_types.push_back(int32_t(t));
  td.bos_id = 1, td.eos_id = 2, td.add_bos = true;
  td.chat_template = test::read_text(test::testdata("chat-templates/microsoft-Phi-3.5-mini-instruct.jinja"));
  return td;
}

ModelParams params() { return tiny_params(Architecture::llama, 32, 2, 32000); }

fs::path gguf_base(const fs::path& dir) {
  ModelWeights w = must(make_random_weights(params(), 4));
  GgufWriteOptions o;
  o.tokenizer = real_vocab();
  o.name = "tiny base";
  must(write_gguf_model(w, dir / "base.gguf", o));
  return dir / "base.gguf";
}

// The same network as a Hugging Face folder whose tokenizer.model is the GGUF vocabulary written out.
fs::path hf_base(const fs::path& dir) {
  const fs::path g = gguf_base(dir);
  Tokenizer t = must(load_tokenizer(g));
  must(t.save_hf_folder(dir / "tok"));
  Model m = must(open_model(g));
  HfWriteOptions o;
  o.tokenizer_file = dir / "tok" / "tokenizer.model";
  o.chat_template = m.desc().tokenizer.chat_template;
  o.bos_id = 1, o.eos_ids = {2}, o.bos_token = "<s>", o.eos_token = "</s>", o.add_bos = true;
  must(write_hf_folder(must(read_weights(m)), dir / "base-hf", o));
  return dir / "base-hf";
}

ModelOptions lora_options() {
  ModelOptions o;
  o.method = Method::lora;
  o.lora.rank = 4;
  o.lora.alpha = 8.0f;
  o.n_threads = 2;
  return o;
}

// A trained-looking adapter: B is zero at initialisation, so give every factor random values.
void randomize_factors(TrainModel& m, float sd = 0.2f) {
  std::mt19937_64 rng(99);
  std::normal_distribution<float> normal(0.0f, sd);
  for (Param* p : m.trainable())
    for (float& v : p->value) v = normal(rng);
}

std::vector<float> logits_of(const Model& m, std::shared_ptr<const LoraAdapter> lora = nullptr) {
  InferenceOptions o;
  o.n_threads = 2;
  o.kv_type = KvType::f32;
  o.quantized_activations = false;
  o.lora = std::move(lora);
  auto s = must(InferenceSession::create(m, o));
  std::vector<TokenId> toks;
  for (TokenId t : TOKS) toks.push_back(t % TokenId(m.desc().params.n_vocab));
  std::vector<float> all;
  must(s->eval(toks, &all, true));
  return all;
}

// The exported model chats like `base`: same token ids for a probe text, template, BOS/EOS.
void expect_same_chat_setup(const fs::path& exported, const Model& base) {
  SCOPED_TRACE(exported.string());
  Model m = must(open_model(exported));
  Tokenizer want = must(load_tokenizer(base.desc().path));
  Tokenizer got = must(load_tokenizer(exported));
  EXPECT_EQ(must(got.encode(PROBE, true, true)), must(want.encode(PROBE, true, true)));
  EXPECT_EQ(got.bos_id(), want.bos_id());
  EXPECT_EQ(got.eos_id(), want.eos_id());
  EXPECT_EQ(got.add_bos(), want.add_bos());
  ASSERT_TRUE(m.desc().tokenizer.chat_template.has_value());
  EXPECT_EQ(m.desc().tokenizer.chat_template, base.desc().tokenizer.chat_template);
}

const std::vector<std::string> ALL = {"peft", "gguf-lora", "safetensors", "gguf-f16", "gguf-q8_0", "gguf-q4_k"};

}  // namespace

TEST(Export, AdapterOfLoraModelIsItsFactors) {
  auto dir = test::scratch("export-factors");
  Model base = must(open_model(gguf_base(dir)));
  auto tm = must(TrainModel::create(base, lora_options()));
  randomize_factors(*tm);
  LoraAdapter ad = must(lora_adapter_of(*tm, "tiny base"));
  EXPECT_EQ(ad.rank, 4);
  EXPECT_FLOAT_EQ(ad.alpha, 8.0f);
  EXPECT_EQ(ad.base_model, "tiny base");
  ASSERT_EQ(ad.layers.size(), 2u);
  size_t n = 0;
  for (const Param* p : tm->trainable()) {
    const std::string& name = p->name;
    if (name == "model.layers.1.mlp.down_proj.lora_A.weight") {
      EXPECT_EQ(p->value, ad.layers[1].down->a);
      ++n;
    }
    if (name == "model.layers.1.mlp.down_proj.lora_B.weight") {
      EXPECT_EQ(p->value, ad.layers[1].down->b);
      ++n;
    }
    if (name == "model.layers.0.self_attn.k_proj.lora_B.weight") {
      EXPECT_EQ(p->value, ad.layers[0].wk->b);
      ++n;
    }
  }
  EXPECT_EQ(n, 3u);
  for (auto& l : ad.layers) EXPECT_TRUE(l.wq && l.wk && l.wv && l.wo && l.gate && l.up && l.down);
  // The engine applies it exactly as the trainer merges it.
  auto merged_path = dir / "merged.gguf";
  must(write_gguf_model(must(tm->merged_weights()), merged_path));
  Model merged = must(open_model(merged_path));
  EXPECT_LT(rel_diff(logits_of(base, std::make_shared<const LoraAdapter>(ad)), logits_of(merged)), 1e-4);

  ModelOptions full = lora_options();
  full.method = Method::full;
  auto tf = must(TrainModel::create(base, full));
  auto r = lora_adapter_of(*tf, "x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
}

TEST(Export, EveryFormatFromGgufBase) {
  auto dir = test::scratch("export-gguf");
  Model base = must(open_model(gguf_base(dir)));
  auto tm = must(TrainModel::create(base, lora_options()));
  randomize_factors(*tm);
  const fs::path out = dir / "out";
  auto files = must(export_model(*tm, &base, nullptr, {}, ALL, out, "run"));
  ASSERT_EQ(files.size(), ALL.size());
  std::map<std::string, fs::path> at;
  for (auto& f : files) at[f.format] = f.path;
  EXPECT_EQ(at["peft"], out / "run-adapter");
  EXPECT_EQ(at["gguf-lora"], out / "run-lora.gguf");
  EXPECT_EQ(at["safetensors"], out / "run-merged");
  EXPECT_EQ(at["gguf-f16"], out / "run-f16.gguf");
  EXPECT_EQ(at["gguf-q8_0"], out / "run-q8_0.gguf");
  EXPECT_EQ(at["gguf-q4_k"], out / "run-q4_k.gguf");
  EXPECT_TRUE(fs::exists(out / "run-adapter" / "adapter_config.json"));
  EXPECT_TRUE(fs::exists(out / "run-adapter" / "adapter_model.safetensors"));

  // Both adapter files, applied to the base on the fly, give the exported merged model's logits.
  Model merged = must(open_model(at["safetensors"]));
  const auto want = logits_of(merged);
  for (const char* f : {"peft", "gguf-lora"}) {
    auto ad = std::make_shared<const LoraAdapter>(must(load_lora_adapter(at[f], base.desc())));
    EXPECT_LT(rel_diff(logits_of(base, ad), want), 1e-4) << f;
  }
  EXPECT_GT(rel_diff(logits_of(base), want), 1e-2) << "the adapter must matter for the test to mean anything";
  // The F16 file is the same network within F16 rounding; Q8_0 within its quantization (errors of
  // about 0.4% per weight, amplified through two layers of a random network).
  EXPECT_LT(rel_diff(logits_of(must(open_model(at["gguf-f16"]))), want), 1e-2);
  EXPECT_LT(rel_diff(logits_of(must(open_model(at["gguf-q8_0"]))), want), 0.15);
  GgufFile f16 = must(GgufFile::open(at["gguf-f16"])), q8 = must(GgufFile::open(at["gguf-q8_0"]));
  EXPECT_EQ(f16.find_tensor("blk.0.attn_q.weight")->type, GgmlType::F16);
  EXPECT_EQ(q8.find_tensor("blk.0.attn_q.weight")->type, GgmlType::Q8_0);
  EXPECT_EQ(f16.get_string("general.name"), "run");

  for (const char* f : {"safetensors", "gguf-f16", "gguf-q8_0", "gguf-q4_k"}) expect_same_chat_setup(at[f], base);
}

TEST(Export, Q4KWhereRowsAllowIt) {
  auto dir = test::scratch("export-q4k");
  ModelWeights w = must(make_random_weights(tiny_params(Architecture::qwen2, 256, 1, 96), 8));
  must(write_gguf_model(w, dir / "base.gguf"));
  Model base = must(open_model(dir / "base.gguf"));
  auto tm = must(TrainModel::create(base, lora_options()));
  randomize_factors(*tm, 0.1f);
  auto files = must(export_model(*tm, &base, nullptr, {}, {"gguf-q4_k", "gguf-f16"}, dir / "out", "q"));
  GgufFile g = must(GgufFile::open(dir / "out" / "q-q4_k.gguf"));
  EXPECT_EQ(g.find_tensor("blk.0.attn_q.weight")->type, GgmlType::Q4_K);
  auto f16 = logits_of(must(open_model(dir / "out" / "q-f16.gguf")));
  // 4-bit weights of a random network move logits by tens of percent, so the check is that the
  // quantized file carries the fine-tune: it is nearer the merged network than the base is.
  auto q4 = logits_of(must(open_model(dir / "out" / "q-q4_k.gguf")));
  auto plain = logits_of(base);
  auto rms_rel = [](const std::vector<float>& a, const std::vector<float>& b) {
    double e2 = 0, n2 = 0;
    for (size_t i = 0; i < a.size(); ++i) e2 += double(a[i] - b[i]) * (a[i] - b[i]), n2 += double(b[i]) * b[i];
    return std::sqrt(e2 / n2);
  };
  std::printf("rms relative error against the merged F16 file: q4_k %.3g, base %.3g\n", rms_rel(q4, f16),
              rms_rel(plain, f16));
  EXPECT_LT(rms_rel(q4, f16), 0.5 * rms_rel(plain, f16));
}

TEST(Export, MergedFromHfBaseKeepsTokenizer) {
  auto dir = test::scratch("export-hf");
  Model base = must(open_model(hf_base(dir)));
  ASSERT_EQ(base.desc().format, ModelFormat::hf_folder);
  auto tm = must(TrainModel::create(base, lora_options()));
  randomize_factors(*tm);
  auto files = must(export_model(*tm, &base, nullptr, {}, {"safetensors", "gguf-f16", "peft"}, dir / "out", "hf"));
  ASSERT_EQ(files.size(), 3u);
  expect_same_chat_setup(dir / "out" / "hf-merged", base);
  expect_same_chat_setup(dir / "out" / "hf-f16.gguf", base);
  auto ad = std::make_shared<const LoraAdapter>(must(load_lora_adapter(dir / "out" / "hf-adapter", base.desc())));
  EXPECT_LT(rel_diff(logits_of(base, ad), logits_of(must(open_model(dir / "out" / "hf-merged")))), 1e-4);
}

// A Hugging Face base with a byte-level BPE tokenizer.json (GPT-2's vocabulary): the GGUF export names
// the pre-tokenizer that splits text as the tokenizer.json does, checked on the shared tokenizer cases.
TEST(Export, BpeTokenizerJsonIntoGguf) {
  auto dir = test::scratch("export-bpe");
  Tokenizer gpt2 = must(load_tokenizer(test::testdata("vocab/ggml-vocab-gpt-2.gguf")));
  must(gpt2.save_hf_folder(dir / "tok"));
  ModelWeights w = must(make_random_weights(tiny_params(Architecture::qwen2, 32, 1, gpt2.vocab_size()), 5));
  HfWriteOptions ho;
  ho.tokenizer_file = dir / "tok" / "tokenizer.json";
  ho.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}";
  ASSERT_TRUE(gpt2.bos_id() && gpt2.eos_id());
  ho.bos_id = *gpt2.bos_id(), ho.eos_ids = {*gpt2.eos_id()};
  ho.bos_token = gpt2.token_text(*gpt2.bos_id()), ho.eos_token = gpt2.token_text(*gpt2.eos_id());
  must(write_hf_folder(w, dir / "base", ho));
  Model base = must(open_model(dir / "base"));
  ModelOptions o = lora_options();
  o.lora.targets = {"q", "v"};
  auto tm = must(TrainModel::create(base, o));
  randomize_factors(*tm);
  must(export_model(*tm, &base, nullptr, {}, {"gguf-f16"}, dir / "out", "bpe"));
  GgufFile g = must(GgufFile::open(dir / "out" / "bpe-f16.gguf"));
  EXPECT_EQ(g.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(g.get_string("tokenizer.ggml.pre"), "gpt-2");
  expect_same_chat_setup(dir / "out" / "bpe-f16.gguf", base);
  Tokenizer want = must(load_tokenizer(dir / "base")), got = must(load_tokenizer(dir / "out" / "bpe-f16.gguf"));
  const std::string cases = test::read_text(test::testdata("vocab/ggml-vocab-gpt-2.gguf.inp"));
  ASSERT_FALSE(cases.empty());
  EXPECT_EQ(must(got.encode(cases)), must(want.encode(cases)));
}

TEST(Export, PretrainedModelCarriesTrainedTokenizer) {
  auto dir = test::scratch("export-pretrain");
  TokenizerData td = real_vocab();
  // The SentencePiece model file of that vocabulary, as the pretraining run would have it.
  must(must(load_tokenizer(gguf_base(dir))).save_hf_folder(dir / "spm"));
  ModelOptions o;
  o.method = Method::pretrain;
  o.n_threads = 2;
  auto tm = must(TrainModel::create_from_scratch(params(), o));
  auto files = must(export_model(*tm, nullptr, &td, dir / "spm" / "tokenizer.model", {"safetensors", "gguf-q8_0"},
                                 dir / "out", "scratch"));
  ASSERT_EQ(files.size(), 2u);
  Model ref = must(open_model(dir / "base.gguf"));  // same tokenizer and template
  expect_same_chat_setup(dir / "out" / "scratch-merged", ref);
  expect_same_chat_setup(dir / "out" / "scratch-q8_0.gguf", ref);
  EXPECT_LT(rel_diff(logits_of(must(open_model(dir / "out" / "scratch-q8_0.gguf"))),
                     logits_of(must(open_model(dir / "out" / "scratch-merged")))),
            0.15);
}

TEST(Export, BadRequestsWriteNothing) {
  auto dir = test::scratch("export-bad");
  Model base = must(open_model(gguf_base(dir)));
  ModelOptions full = lora_options();
  full.method = Method::full;
  auto tf = must(TrainModel::create(base, full));
  for (auto formats : {std::vector<std::string>{"gguf-f16", "peft"}, std::vector<std::string>{"gguf-f16", "gguf-q5"}}) {
    auto r = export_model(*tf, &base, nullptr, {}, formats, dir / "out", "full");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
    EXPECT_NE(r.error().message.find(formats[1]), std::string::npos) << r.error().message;
    EXPECT_FALSE(fs::exists(dir / "out" / "full-f16.gguf"));
  }
  // A full run exports merged formats.
  must(export_model(*tf, &base, nullptr, {}, {"gguf-f16"}, dir / "out", "full"));
  expect_same_chat_setup(dir / "out" / "full-f16.gguf", base);

  // A failure half-way (the tokenizer file of a pretraining run is missing) removes the partial folder.
  ModelOptions o;
  o.method = Method::pretrain;
  o.n_threads = 2;
  auto tm = must(TrainModel::create_from_scratch(params(), o));
  TokenizerData td = real_vocab();
  auto r = export_model(*tm, nullptr, &td, dir / "no-such" / "tokenizer.model", {"safetensors"}, dir / "out", "p");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::io);
  EXPECT_NE(r.error().message.find("tokenizer.model"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(dir / "out" / "p-merged"));
}
