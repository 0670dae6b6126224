/* The model description and writers: models written as GGUF (F32, F16, Q8_0, Q4_K mix) and as Hugging
 * Face folders read back to the same description and the same weights; the real test GGUF opens with
 * its true hyper-parameters; unsupported architectures and contradicting shapes give clear errors.
 *
 * Non-obvious choice: weights are compared after read_weights(), which un-permutes GGUF llama q/k rows;
 * an exact F32 match there shows the writer's permutation and the reader's inverse agree, and the
 * reference test (model-permute-ref) checks the permutation itself against llama.cpp's formula in numpy.
 */
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "hearth/gguf.h"
#include "hearth/hf-folder.h"
#include "hearth/model-writer.h"
#include "hearth/model.h"
#include "hearth/safetensors.h"
#include "test-util.h"

using namespace hearth;
namespace fs = std::filesystem;

namespace {

struct Diff {
  double max_abs = 0;
  double rms_err = 0;
  double rms_ref = 0;
};

Diff diff(const std::vector<float>& a, const std::vector<float>& b) {
  Diff d;
  EXPECT_EQ(a.size(), b.size());
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    double e = double(a[i]) - double(b[i]);
    d.max_abs = std::max(d.max_abs, std::abs(e));
    d.rms_err += e * e;
    d.rms_ref += double(a[i]) * double(a[i]);
  }
  if (n) {
    d.rms_err = std::sqrt(d.rms_err / double(n));
    d.rms_ref = std::sqrt(d.rms_ref / double(n));
  }
  return d;
}

// Calls fn(name, expected, actual) for every weight of both.
template <class Fn>
void for_each_weight(const ModelWeights& a, const ModelWeights& b, Fn fn) {
  fn("tok_embd", a.tok_embd, b.tok_embd);
  fn("output_norm", a.output_norm, b.output_norm);
  fn("output", a.output, b.output);
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const LayerWeights &x = a.layers[i], &y = b.layers[i];
    const std::string l = "layer " + std::to_string(i) + " ";
#define HEARTH_W(m) fn(l + #m, x.m, y.m)
    HEARTH_W(attn_norm); HEARTH_W(wq); HEARTH_W(wk); HEARTH_W(wv); HEARTH_W(wo); HEARTH_W(bq); HEARTH_W(bk);
    HEARTH_W(bv); HEARTH_W(bo); HEARTH_W(q_norm); HEARTH_W(k_norm); HEARTH_W(ffn_norm); HEARTH_W(ffn_gate);
    HEARTH_W(ffn_up); HEARTH_W(ffn_down);
#undef HEARTH_W
  }
}

void expect_identical(const ModelWeights& a, const ModelWeights& b) {
  for_each_weight(a, b, [](const std::string& name, const std::vector<float>& x, const std::vector<float>& y) {
    ASSERT_EQ(x.size(), y.size()) << name;
    EXPECT_TRUE(x == y) << name << " differs (max abs " << diff(x, y).max_abs << ")";
  });
}

// Relative RMS error of every weight below `tol`.
void expect_close(const ModelWeights& a, const ModelWeights& b, double tol) {
  double worst = 0;
  for_each_weight(a, b, [&](const std::string& name, const std::vector<float>& x, const std::vector<float>& y) {
    ASSERT_EQ(x.size(), y.size()) << name;
    if (x.empty()) return;
    Diff d = diff(x, y);
    double rel = d.rms_err / std::max(d.rms_ref, 1e-12);
    worst = std::max(worst, rel);
    EXPECT_LT(rel, tol) << name << ": relative RMS error " << rel << ", max abs " << d.max_abs;
  });
  std::printf("  worst relative RMS error %.3g (tolerance %.3g)\n", worst, tol);
}

Model open_ok(const fs::path& p) {
  auto m = open_model(p);
  if (!m) {
    ADD_FAILURE() << m.error().message;
    std::abort();
  }
  return std::move(*m);
}

// A small byte-level BPE tokenizer.json: 3 special tokens and 64 byte pieces.
std::string tiny_tokenizer_json() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int i = 0; i < 64; ++i) vocab[std::string(1, char('0' + i))] = 3 + i;
  nlohmann::json j = {
      {"version", "1.0"},
      {"added_tokens",
       {{{"id", 0}, {"content", "<|begin|>"}, {"special", true}},
        {{"id", 1}, {"content", "<|end|>"}, {"special", true}},
        {{"id", 2}, {"content", "<|pad|>"}, {"special", true}}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {{{"SpecialToken", {{"id", "<|begin|>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}}};
  return j.dump();
}

}  // namespace

class ModelRoundTrip : public ::testing::TestWithParam<Architecture> {};

TEST_P(ModelRoundTrip, HfFolderReadsBackExactly) {
  ModelParams p = tiny_params(GetParam());
  auto w = make_random_weights(p, 42);
  ASSERT_TRUE(w) << w.error().message;
  auto dir = hearth::test::scratch(std::string("hf-") + architecture_name(p.arch));
  ASSERT_TRUE(write_hf_folder(*w, dir));
  Model m = open_ok(dir);
  EXPECT_EQ(m.desc().format, ModelFormat::hf_folder);
  EXPECT_TRUE(m.desc().params == p);
  EXPECT_EQ(m.desc().rope_layout, RopeLayout::half_split);
  EXPECT_TRUE(m.desc().extra_tensors.empty());
  // HF weights are stored [out, in]: q_proj of the file has n_head*head_dim rows of n_embd.
  const SafetensorsTensor* q = m.safetensors()->find("model.layers.0.self_attn.q_proj.weight");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->shape, (std::vector<int64_t>{p.n_head * p.head_dim, p.n_embd}));
  EXPECT_EQ(m.desc().layers[0].wq.shape, (std::vector<int64_t>{p.n_embd, p.n_head * p.head_dim}));
  auto back = read_weights(m);
  ASSERT_TRUE(back) << back.error().message;
  expect_identical(*w, *back);
}

TEST_P(ModelRoundTrip, GgufF32ReadsBackExactlyAndMatchesHf) {
  ModelParams p = tiny_params(GetParam());
  auto w = make_random_weights(p, 7);
  ASSERT_TRUE(w);
  auto dir = hearth::test::scratch(std::string("gguf-f32-") + architecture_name(p.arch));
  ASSERT_TRUE(write_gguf_model(*w, dir / "m.gguf"));
  ASSERT_TRUE(write_hf_folder(*w, dir / "hf"));
  Model g = open_ok(dir / "m.gguf");
  Model h = open_ok(dir / "hf");
  EXPECT_TRUE(g.desc().params == p);
  EXPECT_TRUE(g.desc().params == h.desc().params) << "both formats describe the same network";
  EXPECT_EQ(g.desc().n_params, h.desc().n_params);
  EXPECT_EQ(g.desc().rope_layout,
            p.arch == Architecture::llama ? RopeLayout::interleaved : RopeLayout::half_split);
  auto gw = read_weights(g);
  auto hw = read_weights(h);
  ASSERT_TRUE(gw && hw);
  expect_identical(*w, *gw);
  expect_identical(*hw, *gw);

  // Stored layout: for llama the GGUF q rows really are reordered (else the test above proves nothing).
  auto stored = tensor_to_f32(g.desc().layers[0].wq);
  ASSERT_TRUE(stored);
  EXPECT_EQ(*stored == w->layers[0].wq, p.arch != Architecture::llama);
}

INSTANTIATE_TEST_SUITE_P(Archs, ModelRoundTrip,
                         ::testing::Values(Architecture::llama, Architecture::qwen2, Architecture::qwen3),
                         [](const auto& info) { return std::string(architecture_name(info.param)); });

TEST(ModelWriter, ParameterCountMatchesShapes) {
  ModelParams p = tiny_params(Architecture::qwen2, 64, 2, 96);
  auto w = make_random_weights(p, 1);
  auto dir = hearth::test::scratch("param-count");
  ASSERT_TRUE(write_gguf_model(*w, dir / "m.gguf"));
  Model m = open_ok(dir / "m.gguf");
  // Independent count: embedding (tied, once) + final norm + per layer.
  const int64_t q = 4 * 16, kv = 2 * 16, e = 64, ff = 128;
  const int64_t per_layer = e + e * q + 2 * e * kv + q * e + q + 2 * kv + e + 3 * e * ff;
  EXPECT_EQ(m.desc().n_params, 96 * e + e + 2 * per_layer);
  EXPECT_TRUE(m.desc().params.tied_embeddings);
  EXPECT_FALSE(m.desc().output.present());
  EXPECT_EQ(m.desc().output_weight().name, "token_embd.weight");
}

struct QuantCase {
  const char* name;
  GgmlType type;
  bool mix;
  double tol;
};

class ModelQuant : public ::testing::TestWithParam<QuantCase> {};

TEST_P(ModelQuant, GgufReadsBackWithinQuantTolerance) {
  const QuantCase& c = GetParam();
  ModelParams p = tiny_params(Architecture::llama, 256, 1, 64);
  auto w = make_random_weights(p, 99);
  ASSERT_TRUE(w);
  auto dir = hearth::test::scratch(std::string("quant-") + c.name);
  GgufWriteOptions opt;
  opt.type = c.type;
  opt.q4_k_m_mix = c.mix;
  ASSERT_TRUE(write_gguf_model(*w, dir / "m.gguf", opt));
  Model m = open_ok(dir / "m.gguf");
  EXPECT_TRUE(m.desc().params == p);
  const LayerTensors& l = m.desc().layers[0];
  EXPECT_EQ(l.attn_norm.type, GgmlType::F32) << "1-D weights stay F32";
  EXPECT_EQ(m.desc().output_norm.type, GgmlType::F32);
  if (c.mix) {
    EXPECT_EQ(l.wq.type, GgmlType::Q4_K);
    EXPECT_EQ(l.ffn_gate.type, GgmlType::Q4_K);
    EXPECT_EQ(l.wv.type, GgmlType::Q6_K);
    EXPECT_EQ(l.ffn_down.type, GgmlType::Q6_K);
    EXPECT_EQ(m.desc().output.type, GgmlType::Q6_K);
    EXPECT_EQ(m.gguf()->get_int("general.file_type"), 15);
  } else {
    EXPECT_EQ(l.wq.type, c.type);
    EXPECT_EQ(l.ffn_down.type, c.type);
    EXPECT_EQ(m.desc().tok_embd.type, c.type);
  }
  auto back = read_weights(m);
  ASSERT_TRUE(back) << back.error().message;
  expect_close(*w, *back, c.tol);
}

INSTANTIATE_TEST_SUITE_P(Types, ModelQuant,
                         ::testing::Values(QuantCase{"F16", GgmlType::F16, false, 1e-3},
                                           QuantCase{"Q8_0", GgmlType::Q8_0, false, 1e-2},
                                           QuantCase{"Q4_0", GgmlType::Q4_0, false, 0.15},
                                           QuantCase{"Q6_K", GgmlType::Q6_K, false, 0.05},
                                           QuantCase{"Q4_K_M", GgmlType::Q4_K, true, 0.12}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ModelWriter, BlockTypeFallsBackWhenRowsDoNotFit) {
  GgufWriteOptions opt;
  opt.type = GgmlType::Q4_K;
  EXPECT_EQ(gguf_type_for(opt, "wq", 256, true), GgmlType::Q4_K);
  EXPECT_EQ(gguf_type_for(opt, "wq", 64, true), GgmlType::Q8_0);
  EXPECT_EQ(gguf_type_for(opt, "wq", 48, true), GgmlType::F16);
  EXPECT_EQ(gguf_type_for(opt, "attn_norm", 256, false), GgmlType::F32);
}

TEST(ModelWriter, ShardedHfFolderInF16AndBf16) {
  for (GgmlType dt : {GgmlType::F16, GgmlType::BF16}) {
    ModelParams p = tiny_params(Architecture::llama);
    auto w = make_random_weights(p, 3);
    auto dir = hearth::test::scratch(std::string("hf-sharded-") + type_name(dt));
    HfWriteOptions opt;
    opt.dtype = dt;
    opt.max_shard_bytes = 20000;
    ASSERT_TRUE(write_hf_folder(*w, dir, opt));
    ASSERT_TRUE(fs::exists(dir / "model.safetensors.index.json"));
    Model m = open_ok(dir);
    EXPECT_GT(m.safetensors()->files().size(), 2u);
    EXPECT_TRUE(m.desc().params == p);
    EXPECT_EQ(m.desc().layers[1].ffn_up.type, dt);
    auto back = read_weights(m);
    ASSERT_TRUE(back);
    expect_close(*w, *back, dt == GgmlType::F16 ? 1e-3 : 8e-3);
  }
}

TEST(ModelWriter, PermutationIsAnInvolutionPair) {
  std::vector<float> v(2 * 8 * 3);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i);
  auto p = permute_qk_rows(v, 2, 8, 3, true);
  EXPECT_NE(p, v);
  // Head 0, pair (i=1, j=1): interleaved row 3 holds half-split row 4 + 1 = 5.
  EXPECT_EQ(p[3 * 3], v[5 * 3]);
  EXPECT_EQ(permute_qk_rows(p, 2, 8, 3, false), v);
}

TEST(ModelWriter, RejectsWeightsOfTheWrongSize) {
  ModelParams p = tiny_params(Architecture::llama);
  auto w = make_random_weights(p, 1);
  w->layers[1].ffn_up.pop_back();
  auto r = write_gguf_model(*w, hearth::test::scratch("bad-w") / "m.gguf");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("layer 1 ffn_up"), std::string::npos) << r.error().message;
}

TEST(ModelTestFile, LlamaTinyRandomHasItsRealHyperParameters) {
  // Values read from the file's metadata with an independent Python GGUF reader.
  Model m = open_ok(hearth::test::testdata("models/llama-2-tiny-random.gguf"));
  const ModelDesc& d = m.desc();
  const ModelParams& p = d.params;
  EXPECT_EQ(p.arch, Architecture::llama);
  EXPECT_EQ(d.name, "LLaMA v2");
  EXPECT_EQ(p.n_layer, 1);
  EXPECT_EQ(p.n_embd, 8);
  EXPECT_EQ(p.n_head, 2);
  EXPECT_EQ(p.n_head_kv, 2);
  EXPECT_EQ(p.head_dim, 4);
  EXPECT_EQ(p.n_ff, 32);
  EXPECT_EQ(p.n_vocab, 32000);
  EXPECT_EQ(p.n_ctx_train, 4096);
  EXPECT_FLOAT_EQ(p.rms_eps, 1e-5f);
  EXPECT_FLOAT_EQ(p.rope_theta, 10000.0f);  // no rope.freq_base key: llama.cpp's default
  EXPECT_FALSE(p.tied_embeddings);
  EXPECT_FALSE(p.has_qkv_bias);
  EXPECT_FALSE(p.has_qk_norm);
  EXPECT_EQ(d.rope_layout, RopeLayout::interleaved);
  EXPECT_EQ(d.tok_embd.type, GgmlType::F16);
  EXPECT_EQ(d.layers[0].attn_norm.type, GgmlType::F32);
  EXPECT_EQ(d.output.type, GgmlType::F16);
  // 2 x 32000x8 (embedding, output) + 4 x 8x8 + 3 x 8x32 + 3 x 8 norms.
  EXPECT_EQ(d.n_params, 2 * 256000 + 4 * 64 + 3 * 256 + 3 * 8);
  EXPECT_EQ(d.file_size, fs::file_size(hearth::test::testdata("models/llama-2-tiny-random.gguf")));
  EXPECT_EQ(d.tokenizer.kind, TokenizerKind::sentencepiece);
  EXPECT_EQ(d.tokenizer.model, "llama");
  EXPECT_EQ(d.tokenizer.n_tokens, 32000);
  EXPECT_EQ(d.tokenizer.bos_id, 1);
  EXPECT_EQ(d.tokenizer.eos_id, 2);
  EXPECT_EQ(d.tokenizer.bos_token, "<s>");
  EXPECT_EQ(d.tokenizer.eos_token, "</s>");
  EXPECT_TRUE(d.tokenizer.add_bos);
  EXPECT_FALSE(d.tokenizer.chat_template.has_value());
  EXPECT_TRUE(d.extra_tensors.empty());
  // Its weights dequantize and its rows convert back to the Hugging Face layout.
  auto w = read_weights(m);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ(w->tok_embd.size(), 256000u);
}

TEST(ModelTestFile, TokenizerCopiedFromAVocabFile) {
  auto vocab = GgufFile::open(hearth::test::testdata("vocab/ggml-vocab-gpt-2.gguf"));
  ASSERT_TRUE(vocab) << vocab.error().message;
  auto n_tokens = vocab->get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(n_tokens);
  ModelParams p = tiny_params(Architecture::llama, 64, 1, int64_t(n_tokens->size()));
  auto w = make_random_weights(p, 5);
  GgufWriteOptions opt;
  opt.tokenizer_source = &*vocab;
  opt.type = GgmlType::Q8_0;
  auto path = hearth::test::scratch("tok-copy") / "m.gguf";
  ASSERT_TRUE(write_gguf_model(*w, path, opt));
  Model m = open_ok(path);
  EXPECT_EQ(m.desc().tokenizer.kind, TokenizerKind::bpe);
  EXPECT_EQ(m.desc().tokenizer.model, "gpt2");
  EXPECT_EQ(m.desc().tokenizer.n_tokens, int64_t(n_tokens->size()));
  EXPECT_EQ(m.desc().tokenizer.pre, vocab->get_string("tokenizer.ggml.pre").value_or(""));
  EXPECT_EQ(m.gguf()->get_string_array("tokenizer.ggml.merges"), vocab->get_string_array("tokenizer.ggml.merges"));
}

TEST(ModelTestFile, TokenizerFromGivenLists) {
  ModelParams p = tiny_params(Architecture::qwen3, 64, 1, 4);
  auto w = make_random_weights(p, 5);
  GgufWriteOptions opt;
  opt.tokenizer.model = "gpt2";
  opt.tokenizer.pre = "qwen2";
  opt.tokenizer.tokens = {"a", "b", "<|im_start|>", "<|im_end|>"};
  opt.tokenizer.merges = {"a b"};
  opt.tokenizer.eos_id = 3;
  opt.tokenizer.chat_template = "{{ messages }}";
  auto path = hearth::test::scratch("tok-lists") / "m.gguf";
  ASSERT_TRUE(write_gguf_model(*w, path, opt));
  Model m = open_ok(path);
  const TokenizerInfo& t = m.desc().tokenizer;
  EXPECT_EQ(t.kind, TokenizerKind::bpe);
  EXPECT_EQ(t.pre, "qwen2");
  EXPECT_EQ(t.n_tokens, 4);
  EXPECT_EQ(t.eos_id, 3);
  EXPECT_EQ(t.eos_token, "<|im_end|>");
  EXPECT_FALSE(t.bos_id.has_value());
  EXPECT_FALSE(t.add_bos);
  EXPECT_EQ(t.chat_template, "{{ messages }}");
}

TEST(ModelHf, TokenizerFilesAndGenerationConfig) {
  ModelParams p = tiny_params(Architecture::qwen2, 64, 1, 67);
  auto w = make_random_weights(p, 5);
  auto dir = hearth::test::scratch("hf-tok");
  hearth::test::write_text(dir / "src-tokenizer.json", tiny_tokenizer_json());
  HfWriteOptions opt;
  opt.tokenizer_file = dir / "src-tokenizer.json";
  opt.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}";
  opt.bos_token = "<|begin|>";
  opt.eos_token = "<|end|>";
  opt.eos_ids = {1, 2};
  opt.sampling.temperature = 0.7f;
  opt.sampling.top_k = 20;
  ASSERT_TRUE(write_hf_folder(*w, dir / "model", opt));
  EXPECT_TRUE(fs::exists(dir / "model" / "tokenizer.json"));
  Model m = open_ok(dir / "model");
  const TokenizerInfo& t = m.desc().tokenizer;
  EXPECT_EQ(t.kind, TokenizerKind::bpe);
  EXPECT_EQ(t.model, "BPE");
  EXPECT_EQ(t.n_tokens, 67);
  EXPECT_EQ(t.bos_id, 0) << "looked up from bos_token text in tokenizer.json";
  EXPECT_EQ(t.eos_ids, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(t.eos_id, 1);
  EXPECT_TRUE(t.add_bos) << "the post-processor template starts with a special token";
  EXPECT_EQ(t.chat_template, opt.chat_template);
  EXPECT_FLOAT_EQ(m.desc().sampling.temperature.value_or(0), 0.7f);
  EXPECT_EQ(m.desc().sampling.top_k, 20);
}

TEST(ModelHf, ConfigVariantsAreNormalised) {
  auto c = parse_hf_config(R"({"architectures": ["MistralForCausalLM"], "hidden_size": 64,
      "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "intermediate_size": 128,
      "vocab_size": 100, "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "eos_token_id": [7, 9],
      "rope_scaling": {"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 8192}})",
                           "config.json");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->architecture, "MistralForCausalLM");
  EXPECT_EQ(architecture_from_name(c->architecture).value(), Architecture::llama);
  EXPECT_EQ(c->num_key_value_heads, 1);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{7, 9}));
  EXPECT_EQ(c->rope_scaling.kind, RopeScalingKind::llama3);
  EXPECT_EQ(c->rope_scaling.original_ctx, 8192);

  auto t = parse_hf_tokenizer_config(
      R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}],
          "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", "add_bos_token": false})",
      "tokenizer_config.json");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->chat_template, "D");
  EXPECT_EQ(t->bos_token, "<s>");
  EXPECT_EQ(t->eos_token, "</s>");
  EXPECT_EQ(t->add_bos_token, false);

  auto g = parse_hf_generation_config(R"({"eos_token_id": 2, "temperature": 0.6, "top_p": 0.9})", "gen");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->eos_token_ids, (std::vector<int64_t>{2}));
  EXPECT_FLOAT_EQ(*g->sampling.top_p, 0.9f);

  auto bad = parse_hf_config(R"({"model_type": "llama", "hidden_size": "big"})", "config.json");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("hidden_size"), std::string::npos) << bad.error().message;
  bad = parse_hf_config(R"({"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1,
      "num_attention_heads": 2, "intermediate_size": 8, "vocab_size": 8, "max_position_embeddings": 8,
      "rope_scaling": {"rope_type": "yarn", "factor": 4}})",
                        "config.json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::unsupported);
  EXPECT_NE(bad.error().message.find("yarn"), std::string::npos);
}

TEST(ModelHf, Llama3RopeScalingSurvivesBothFormats) {
  ModelParams p = tiny_params(Architecture::llama);
  p.rope_theta = 500000.0f;
  p.n_ctx_train = 131072;
  p.rope_scaling = {RopeScalingKind::llama3, 8.0f, 1.0f, 4.0f, 8192};
  auto w = make_random_weights(p, 11);
  auto dir = hearth::test::scratch("llama3-rope");
  ASSERT_TRUE(write_hf_folder(*w, dir / "hf"));
  ASSERT_TRUE(write_gguf_model(*w, dir / "m.gguf"));
  Model h = open_ok(dir / "hf");
  Model g = open_ok(dir / "m.gguf");
  EXPECT_TRUE(h.desc().params == p);
  EXPECT_TRUE(g.desc().params == p);
  ASSERT_EQ(h.desc().rope_freq_factors.size(), size_t(p.head_dim / 2));
  EXPECT_EQ(h.desc().rope_freq_factors, g.desc().rope_freq_factors);
  // Lowest frequency divided by the full factor, highest untouched.
  EXPECT_FLOAT_EQ(h.desc().rope_freq_factors.front(), 1.0f);
  EXPECT_FLOAT_EQ(h.desc().rope_freq_factors.back(), 8.0f);
  EXPECT_TRUE(g.desc().extra_tensors.empty()) << "rope_freqs.weight is read into rope_freq_factors";
  EXPECT_TRUE(g.gguf()->find_tensor("rope_freqs.weight")) << "stored as llama.cpp's converter does";
}

TEST(ModelErrors, UnsupportedArchitectureIsNamed) {
  auto dir = hearth::test::scratch("unsupported-arch");
  GgufWriter gw;
  gw.set_string("general.architecture", "gpt2");
  gw.set_u32("gpt2.block_count", 1);
  ASSERT_TRUE(gw.write(dir / "m.gguf"));
  auto m = open_model(dir / "m.gguf");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, ErrorCode::unsupported);
  EXPECT_NE(m.error().message.find("'gpt2'"), std::string::npos) << m.error().message;

  ModelParams p = tiny_params(Architecture::llama);
  auto w = make_random_weights(p, 1);
  ASSERT_TRUE(write_hf_folder(*w, dir / "hf"));
  auto cfg = nlohmann::json::parse(hearth::test::read_text(dir / "hf" / "config.json"));
  cfg["architectures"] = {"GPTNeoXForCausalLM"};
  hearth::test::write_text(dir / "hf" / "config.json", cfg.dump());
  m = open_model(dir / "hf");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, ErrorCode::unsupported);
  EXPECT_NE(m.error().message.find("GPTNeoXForCausalLM"), std::string::npos) << m.error().message;
}

TEST(ModelErrors, ShapeContradictingConfigNamesTheTensor) {
  ModelParams p = tiny_params(Architecture::llama);
  auto w = make_random_weights(p, 1);
  auto dir = hearth::test::scratch("bad-shape");
  ASSERT_TRUE(write_hf_folder(*w, dir));
  auto cfg = nlohmann::json::parse(hearth::test::read_text(dir / "config.json"));
  cfg["intermediate_size"] = 100;
  hearth::test::write_text(dir / "config.json", cfg.dump());
  auto m = open_model(dir);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, ErrorCode::format);
  EXPECT_NE(m.error().message.find("model.layers.0.mlp.gate_proj.weight"), std::string::npos) << m.error().message;
  EXPECT_NE(m.error().message.find("n_embd x n_ff"), std::string::npos) << m.error().message;
}

TEST(ModelErrors, MissingTensorAndMissingFiles) {
  auto dir = hearth::test::scratch("missing");
  // A GGUF without the attention output of layer 0.
  GgufWriter gw;
  gw.set_string("general.architecture", "llama");
  for (auto [k, v] : {std::pair{"block_count", 1}, {"embedding_length", 8}, {"attention.head_count", 2},
                      {"feed_forward_length", 16}, {"context_length", 64}})
    gw.set_u32(std::string("llama.") + k, uint32_t(v));
  gw.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  gw.set_u32("llama.vocab_size", 4);
  std::vector<float> z(64, 0.5f);
  ASSERT_TRUE(gw.add_tensor_f32("token_embd.weight", {8, 4}, z.data(), GgmlType::F32));
  ASSERT_TRUE(gw.write(dir / "m.gguf"));
  auto m = open_model(dir / "m.gguf");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("is missing"), std::string::npos) << m.error().message;

  m = open_model(dir / "nothing-here.gguf");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, ErrorCode::not_found);

  fs::create_directories(dir / "empty");
  m = open_model(dir / "empty");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("config.json"), std::string::npos) << m.error().message;
}

TEST(ModelErrors, VocabOnlyFileAndLoneSafetensorsFileExplainThemselves) {
  auto m = open_model(hearth::test::testdata("vocab/ggml-vocab-llama-spm.gguf"));
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("no tensors"), std::string::npos) << m.error().message;

  ModelParams p = tiny_params(Architecture::llama);
  auto w = make_random_weights(p, 1);
  auto dir = hearth::test::scratch("lone-st");
  ASSERT_TRUE(write_hf_folder(*w, dir));
  m = open_model(dir / "model.safetensors");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().hint.find(dir.string()), std::string::npos) << m.error().to_string();
}

TEST(ModelErrors, ImpossibleHyperParametersAreRejected) {
  ModelParams p = tiny_params(Architecture::llama);
  auto w = make_random_weights(p, 1);
  auto dir = hearth::test::scratch("bad-hparams");
  ASSERT_TRUE(write_hf_folder(*w, dir));
  auto original = nlohmann::json::parse(hearth::test::read_text(dir / "config.json"));
  struct Case { const char* key; nlohmann::json value; const char* expect; };
  for (const Case& c : {Case{"num_key_value_heads", 3, "not a multiple of n_head_kv"},
                        Case{"num_hidden_layers", 0, "num_hidden_layers"},
                        Case{"head_dim", 7, "odd"},
                        Case{"vocab_size", -5, "vocab_size"},
                        Case{"rms_norm_eps", "tiny", "rms_norm_eps"}}) {
    auto cfg = original;
    cfg[c.key] = c.value;
    hearth::test::write_text(dir / "config.json", cfg.dump());
    auto m = open_model(dir);
    ASSERT_FALSE(m) << c.key;
    EXPECT_NE(m.error().message.find(c.expect), std::string::npos) << c.key << ": " << m.error().message;
  }
}

TEST(ModelErrors, GgufKeyOfTheWrongTypeIsNamed) {
  ModelParams p = tiny_params(Architecture::llama);
  auto w = make_random_weights(p, 1);
  auto dir = hearth::test::scratch("bad-key-type");
  ASSERT_TRUE(write_gguf_model(*w, dir / "m.gguf"));
  auto g = GgufFile::open(dir / "m.gguf");
  ASSERT_TRUE(g);
  GgufWriter copy;
  for (auto& kv : g->metadata()) copy.set(kv.key, kv.value);
  copy.set_string("llama.feed_forward_length", "lots");
  for (auto& t : g->tensors())
    ASSERT_TRUE(copy.add_tensor_raw(t.name, t.shape, t.type, g->tensor_data(t), t.nbytes));
  ASSERT_TRUE(copy.write(dir / "bad.gguf"));
  auto m = open_model(dir / "bad.gguf");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("'llama.feed_forward_length' should be an integer"), std::string::npos)
      << m.error().message;
}

TEST(ModelHf, LinearRopeScalingRoundTrips) {
  ModelParams p = tiny_params(Architecture::qwen2);
  p.rope_scaling.kind = RopeScalingKind::linear;
  p.rope_scaling.factor = 4.0f;
  auto w = make_random_weights(p, 4);
  auto dir = hearth::test::scratch("linear-rope");
  ASSERT_TRUE(write_hf_folder(*w, dir / "hf"));
  ASSERT_TRUE(write_gguf_model(*w, dir / "m.gguf"));
  Model h = open_ok(dir / "hf");
  Model g = open_ok(dir / "m.gguf");
  EXPECT_TRUE(h.desc().params == p);
  EXPECT_TRUE(g.desc().params == p);
  EXPECT_EQ(g.gguf()->get_string("qwen2.rope.scaling.type"), "linear");
  EXPECT_TRUE(h.desc().rope_freq_factors.empty());
}
