/* Unit tests of LoRA at inference (hearth/lora.h, InferenceOptions::lora): a base model plus a random
 * adapter gives the logits of the merged model (W + scale · B A written as a plain F32 model), for llama
 * (GGUF with interleaved q/k rows, and a Hugging Face folder) and qwen2 (biases, tied embeddings); the
 * PEFT and GGUF adapter files round-trip exactly and follow PEFT's / llama.cpp's layout; bad adapters
 * give clear errors.
 */
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "hearth/gguf.h"
#include "hearth/inference.h"
#include "hearth/safetensors.h"
#include "lora-fixtures.h"
#include "must.h"
#include "compare.h"
#include "test-util.h"

using namespace hearth;
using hearth::test::must;
namespace fs = std::filesystem;

using hearth::test::rel_diff;

namespace {

const std::vector<TokenId> TOKS = {1, 17, 42, 5, 88, 13, 64, 2, 9, 33, 71, 50, 7, 3};

enum class Form { gguf, hf };

fs::path write_model(const ModelWeights& w, const fs::path& dir, Form form) {
  if (form == Form::gguf) {
    fs::path p = dir.string() + ".gguf";
    must(write_gguf_model(w, p));
    return p;
  }
  must(write_hf_folder(w, dir));
  return dir;
}

// Logits of every position of TOKS: the prompt in chunks of 5, then the last two tokens one by one
// (so both the batched and the single-token path of the hook are used).
std::vector<float> logits_of(const Model& m, std::shared_ptr<const LoraAdapter> lora) {
  InferenceOptions o;
  o.n_threads = 2;
  o.kv_type = KvType::f32;
  o.n_batch = 5;
  o.quantized_activations = false;
  o.lora = std::move(lora);
  auto s = must(InferenceSession::create(m, o));
  std::vector<float> all, one;
  const size_t head = TOKS.size() - 2;
  must(s->eval(std::span<const TokenId>(TOKS.data(), head), &all, true));
  for (size_t i = head; i < TOKS.size(); ++i) {
    must(s->eval(std::span<const TokenId>(&TOKS[i], 1), &one));
    all.insert(all.end(), one.begin(), one.end());
  }
  return all;
}

void expect_same_factors(const LoraAdapter& a, const LoraAdapter& b) {
  EXPECT_EQ(a.rank, b.rank);
  EXPECT_FLOAT_EQ(a.alpha, b.alpha);
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t il = 0; il < a.layers.size(); ++il) {
    auto cmp = [&](const std::optional<LoraMatrix>& x, const std::optional<LoraMatrix>& y, const char* what) {
      ASSERT_EQ(x.has_value(), y.has_value()) << "layer " << il << " " << what;
      if (!x) return;
      EXPECT_EQ(x->rank, y->rank);
      EXPECT_EQ(x->n_in, y->n_in);
      EXPECT_EQ(x->n_out, y->n_out);
      EXPECT_EQ(x->a, y->a) << "layer " << il << " " << what << " A";
      EXPECT_EQ(x->b, y->b) << "layer " << il << " " << what << " B";
    };
    const LoraLayer &x = a.layers[il], &y = b.layers[il];
    cmp(x.wq, y.wq, "q"), cmp(x.wk, y.wk, "k"), cmp(x.wv, y.wv, "v"), cmp(x.wo, y.wo, "o");
    cmp(x.gate, y.gate, "gate"), cmp(x.up, y.up, "up"), cmp(x.down, y.down, "down");
  }
}

}  // namespace

// The central property: base + adapter on the fly == the merged model, for each architecture and form.
TEST(Lora, AdapterEqualsMergedModel) {
  for (auto arch : {Architecture::llama, Architecture::qwen2, Architecture::qwen3}) {
    for (Form form : {Form::gguf, Form::hf}) {
      const std::string tag = std::string(architecture_name(arch)) + (form == Form::gguf ? "-gguf" : "-hf");
      SCOPED_TRACE(tag);
      auto dir = test::scratch("lora-merge-" + tag);
      ModelWeights w = must(make_random_weights(tiny_params(arch), 11));
      Model base = must(open_model(write_model(w, dir / "base", form)));
      if (arch == Architecture::llama && form == Form::gguf) {
        ASSERT_EQ(base.desc().rope_layout, RopeLayout::interleaved) << "the test must cover permuted q/k rows";
      }
      auto ad = std::make_shared<const LoraAdapter>(test::random_adapter(w.params, 4, 8.0f, 5));
      Model merged = must(open_model(write_model(test::merged(w, *ad), dir / "merged", form)));

      auto want = logits_of(merged, nullptr);
      auto got = logits_of(base, ad);
      auto plain = logits_of(base, nullptr);
      const double err = rel_diff(got, want);
      std::printf("%s: base+adapter vs merged: max rel error %.3g (adapter changes logits by %.3g)\n", tag.c_str(),
                  err, rel_diff(plain, want));
      EXPECT_LT(err, 1e-4);
      EXPECT_GT(rel_diff(plain, want), 1e-2) << "the adapter must change the logits for the test to mean anything";
    }
  }
}

// One adapter (in the Hugging Face order in memory) fits both file forms of the same base, and an
// adapter file written for one form loads for the other.
TEST(Lora, GgufAdapterFileFitsBothForms) {
  auto dir = test::scratch("lora-forms");
  ModelWeights w = must(make_random_weights(tiny_params(Architecture::llama), 12));
  Model g = must(open_model(write_model(w, dir / "base", Form::gguf)));
  Model h = must(open_model(write_model(w, dir / "base-hf", Form::hf)));
  LoraAdapter ad = test::random_adapter(w.params, 3, 6.0f, 9);
  must(save_gguf_lora(ad, g.desc(), dir / "a.gguf"));
  auto from_g = std::make_shared<const LoraAdapter>(must(load_lora_adapter(dir / "a.gguf", g.desc())));
  auto from_h = std::make_shared<const LoraAdapter>(must(load_lora_adapter(dir / "a.gguf", h.desc())));
  expect_same_factors(ad, *from_g);
  expect_same_factors(ad, *from_h);
  EXPECT_LT(rel_diff(logits_of(g, from_g), logits_of(h, from_h)), 1e-4);
}

TEST(Lora, PeftRoundTripAndLayout) {
  auto dir = test::scratch("lora-peft");
  ModelWeights w = must(make_random_weights(tiny_params(Architecture::qwen2), 13));
  Model base = must(open_model(write_model(w, dir / "base", Form::hf)));
  LoraAdapter ad = test::random_adapter(w.params, 4, 16.0f, 21);
  ad.layers[1].wk.reset();  // a module absent in one layer stays absent
  const fs::path folder = dir / "adapter";
  must(save_peft_adapter(ad, base.desc(), folder));

  expect_same_factors(ad, must(load_lora_adapter(folder, base.desc())));
  // The safetensors file alone (its config beside it) loads the same.
  expect_same_factors(ad, must(load_lora_adapter(folder / "adapter_model.safetensors", base.desc())));

  // PEFT's layout, checked against its spelling rather than our writer's table.
  auto cfg = nlohmann::json::parse(test::read_text(folder / "adapter_config.json"));
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");
  EXPECT_EQ(cfg["r"], 4);
  EXPECT_EQ(cfg["lora_alpha"], 16.0);
  EXPECT_EQ(cfg["bias"], "none");
  EXPECT_EQ(cfg["fan_in_fan_out"], false);
  EXPECT_EQ(cfg["base_model_name_or_path"], "tiny-test");
  EXPECT_TRUE(cfg.contains("lora_dropout"));
  std::vector<std::string> mods = cfg["target_modules"];
  std::sort(mods.begin(), mods.end());
  EXPECT_EQ(mods, (std::vector<std::string>{"down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"}));
  auto st = must(SafetensorsFile::open(folder / "adapter_model.safetensors"));
  EXPECT_EQ(st.tensors().size(), size_t(2 * 7 * 2 - 2));
  auto* qa = st.find("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  auto* qb = st.find("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
  auto* db = st.find("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
  ASSERT_TRUE(qa && qb && db);
  EXPECT_EQ(qa->shape, (std::vector<int64_t>{4, w.params.n_embd}));
  EXPECT_EQ(qb->shape, (std::vector<int64_t>{w.params.n_head * w.params.head_dim, 4}));
  EXPECT_EQ(db->shape, (std::vector<int64_t>{w.params.n_embd, 4}));
  EXPECT_EQ(st.find("base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight"), nullptr);
}

// The GGUF adapter as llama.cpp reads it: keys, names, ne = {n_in, rank} / {rank, n_out}, and for a
// llama base, B's q/k rows in the permuted order of the base GGUF's own q/k rows, so that
// W_file + scale · B_file A_file equals the merged model's stored matrix (what llama.cpp computes).
TEST(Lora, GgufAdapterLayoutMatchesLlamaCpp) {
  auto dir = test::scratch("lora-gguf-layout");
  ModelWeights w = must(make_random_weights(tiny_params(Architecture::llama), 14));
  const fs::path base_path = write_model(w, dir / "base", Form::gguf);
  Model base = must(open_model(base_path));
  LoraAdapter ad = test::random_adapter(w.params, 2, 4.0f, 3);
  must(save_gguf_lora(ad, base.desc(), dir / "a.gguf"));
  const fs::path merged_path = write_model(test::merged(w, ad), dir / "merged", Form::gguf);

  GgufFile f = must(GgufFile::open(dir / "a.gguf"));
  EXPECT_EQ(f.get_string("general.type"), "adapter");
  EXPECT_EQ(f.get_string("adapter.type"), "lora");
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_FLOAT_EQ(float(f.get_float("adapter.lora.alpha").value_or(0)), 4.0f);
  EXPECT_EQ(f.tensors().size(), size_t(2 * 7 * 2));
  GgufFile fb = must(GgufFile::open(base_path)), fm = must(GgufFile::open(merged_path));
  for (std::string role : {"attn_q", "attn_k", "attn_v", "ffn_down"}) {
    SCOPED_TRACE(role);
    auto* a = f.find_tensor("blk.1." + role + ".weight.lora_a");
    auto* b = f.find_tensor("blk.1." + role + ".weight.lora_b");
    auto* wb = fb.find_tensor("blk.1." + role + ".weight");
    auto* wm = fm.find_tensor("blk.1." + role + ".weight");
    ASSERT_TRUE(a && b && wb && wm);
    const int64_t n_in = wb->shape[0], n_out = wb->shape[1];
    EXPECT_EQ(a->shape, (std::vector<int64_t>{n_in, 2}));
    EXPECT_EQ(b->shape, (std::vector<int64_t>{2, n_out}));
    auto A = must(f.read_f32(*a)), B = must(f.read_f32(*b)), W = must(fb.read_f32(*wb)), M = must(fm.read_f32(*wm));
    double err = 0, mx = 0;
    for (int64_t o = 0; o < n_out; ++o)
      for (int64_t i = 0; i < n_in; ++i) {
        double s = 0;
        for (int64_t r = 0; r < 2; ++r) s += double(B[size_t(o * 2 + r)]) * A[size_t(r * n_in + i)];
        const double v = W[size_t(o * n_in + i)] + ad.scale() * s;
        err = std::max(err, std::abs(v - M[size_t(o * n_in + i)]));
        mx = std::max(mx, std::abs(double(M[size_t(o * n_in + i)])));
      }
    EXPECT_LT(err / mx, 1e-5);
  }
}

TEST(Lora, Errors) {
  auto dir = test::scratch("lora-errors");
  ModelWeights w = must(make_random_weights(tiny_params(Architecture::llama), 15));
  Model base = must(open_model(write_model(w, dir / "base", Form::gguf)));
  ModelWeights w2 = must(make_random_weights(tiny_params(Architecture::llama, 32), 15));
  Model other = must(open_model(write_model(w2, dir / "other", Form::gguf)));
  LoraAdapter ad = test::random_adapter(w.params, 4, 8.0f, 1);
  must(save_gguf_lora(ad, base.desc(), dir / "a.gguf"));
  must(save_peft_adapter(ad, base.desc(), dir / "peft"));

  // Shapes made for another base: an invalid_argument naming the tensor.
  auto r = load_lora_adapter(dir / "a.gguf", other.desc());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(r.error().message.find("blk.0."), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("a.gguf"), std::string::npos) << r.error().message;
  r = load_lora_adapter(dir / "peft", other.desc());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(r.error().message.find("lora_A.weight"), std::string::npos) << r.error().message;

  // Another architecture.
  ModelWeights wq = must(make_random_weights(tiny_params(Architecture::qwen2), 15));
  Model qwen = must(open_model(write_model(wq, dir / "qwen", Form::gguf)));
  r = load_lora_adapter(dir / "a.gguf", qwen.desc());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("architecture"), std::string::npos) << r.error().message;

  // A truncated GGUF adapter, and a truncated safetensors file.
  for (auto [src, dst] : {std::pair{dir / "a.gguf", dir / "cut.gguf"},
                          std::pair{dir / "peft" / "adapter_model.safetensors", dir / "cut" / "adapter_model.safetensors"}}) {
    fs::create_directories(dst.parent_path());
    std::string bytes = test::read_text(src);
    test::write_text(dst, bytes.substr(0, bytes.size() * 2 / 3));
    if (dst.parent_path().filename() == "cut") fs::copy_file(dir / "peft" / "adapter_config.json", dir / "cut" / "adapter_config.json");
    r = load_lora_adapter(dst.parent_path().filename() == "cut" ? dst.parent_path() : dst, base.desc());
    ASSERT_FALSE(r) << dst;
    EXPECT_NE(r.error().message.find(dst.filename().string()), std::string::npos) << r.error().message;
  }

  // Missing adapter_config.json.
  fs::remove(dir / "peft" / "adapter_config.json");
  r = load_lora_adapter(dir / "peft", base.desc());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::format);
  EXPECT_NE(r.error().message.find("adapter_config.json"), std::string::npos) << r.error().message;

  // A model file given as the adapter; a folder with no adapter; a path that does not exist.
  r = load_lora_adapter(dir / "base.gguf", base.desc());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not a LoRA adapter"), std::string::npos) << r.error().message;
  fs::create_directories(dir / "empty");
  EXPECT_FALSE(load_lora_adapter(dir / "empty", base.desc()));
  r = load_lora_adapter(dir / "nothing-here", base.desc());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::not_found);

  // A tensor that cannot be placed.
  GgufWriter g;
  g.set_string("general.architecture", "llama");
  g.set_string("general.type", "adapter");
  g.set_string("adapter.type", "lora");
  std::vector<float> v(size_t(64 * 4), 0.5f);
  must(g.add_tensor_f32("token_embd.weight.lora_a", {64, 4}, v.data(), GgmlType::F32));
  must(g.write(dir / "odd.gguf"));
  r = load_lora_adapter(dir / "odd.gguf", base.desc());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("token_embd.weight.lora_a"), std::string::npos) << r.error().message;

  // An in-memory adapter that does not fit: the session refuses it.
  InferenceOptions o;
  o.lora = std::make_shared<const LoraAdapter>(test::random_adapter(w2.params, 4, 8.0f, 1));
  auto s = InferenceSession::create(base, o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::invalid_argument);
}
