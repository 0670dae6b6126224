/* Reference test of the trainer's model (label `reference`): tiny random llama, qwen2 and qwen3 models
 * (F32 Hugging Face folders from the model writer) trained by Hearth and by tests/reference/torch_train.py
 * (plain PyTorch, float64 autograd) on the same batch.
 *
 * Compared, per case: the loss (relative error < 1e-5), every trainable tensor's gradient (max |hearth -
 * torch| / max |torch| < 1e-4, per tensor), and the losses of ten AdamW steps (relative error < 1e-4).
 * Cases: llama LoRA on all seven target modules (dropout 0, B set to non-zero values so A gets gradients
 * too), qwen2 LoRA (biases, tied embeddings), and full fine-tuning of llama (separate output matrix), qwen2
 * (q/k/v biases, tied) and qwen3 (q/k norm, explicit head_dim, tied), and a llama with attention biases
 * (q/k/v/o) and llama3 RoPE scaling, full and LoRA. All have grouped-query attention (4 heads, 2 kv heads).
 * Every batch has two rows and some targets set to -1 (not counted).
 *
 * Non-obvious choice: one test compares every case, after one run of the script for all of them in
 * SetUpTestSuite (importing torch takes seconds; ctest would run separate tests as separate processes).
 */
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "hearth/model-writer.h"
#include "hearth/trainer/optim.h"
#include "hearth/trainer/train-model.h"
#include "test-util.h"

using namespace hearth;
using namespace hearth::train;
namespace fs = std::filesystem;

namespace {

constexpr int64_t B = 2, T = 16, STEPS = 10;

struct Case {
  std::string name;
  Architecture arch;
  Method method;
  fs::path dir;
  double lr;
};

std::vector<Case> g_cases;
bool g_script_ok = false;
std::string g_script_err;

void make_batch(int64_t n_vocab, uint32_t seed, std::vector<int32_t>& tokens, std::vector<int32_t>& targets) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(0, int32_t(n_vocab - 1));
  tokens.resize(size_t(B * T));
  for (auto& t : tokens) t = tok(rng);
  targets.resize(tokens.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      size_t i = size_t(b * T + t);
      targets[i] = t + 1 < T ? tokens[i + 1] : tok(rng);
      if (t < 3 + b || (t % 5) == 2) targets[i] = -1;  // a masked prompt, and some holes
    }
}

LoraSettings lora_settings() {
  LoraSettings l;
  l.rank = 4;
  l.alpha = 8.0f;
  l.dropout = 0.0f;
  return l;
}

std::unique_ptr<TrainModel> make_model(const Case& c, const Model& m) {
  ModelOptions o;
  o.method = c.method;
  o.lora = lora_settings();
  o.n_threads = 1;
  o.seed = 11;
  auto tm = TrainModel::create(m, o);
  EXPECT_TRUE(tm) << tm.error().to_string();
  if (!tm) return nullptr;
  // Non-zero B, so the A factors get gradients and the LoRA path shows in the loss.
  std::mt19937 rng(99);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  for (Param* p : (*tm)->trainable())
    if (p->name.ends_with("lora_B.weight"))
      for (float& v : p->value) v = nd(rng);
  return std::move(*tm);
}

std::string json_ints(const std::vector<int32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

class TrainReference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fs::path root = test::scratch("train-reference");
    uint64_t seed = 21;
    auto add = [&](const std::string& name, Architecture arch, Method method, double lr, bool variant = false) {
      const uint64_t model_seed = seed++;
      fs::path dir = root / name;
      fs::create_directories(dir);
      ModelParams mp = tiny_params(arch, 64, 2, 96);
      if (variant) {  // llama with attention_bias (q/k/v/o biases) and llama3 RoPE scaling
        mp.has_qkv_bias = mp.has_o_bias = true;
        mp.rope_scaling = {RopeScalingKind::llama3, 8.0f, 1.0f, 4.0f, 8};
      }
      auto w = make_random_weights(mp, model_seed);
      ASSERT_TRUE(w) << w.error().to_string();
      ASSERT_TRUE(write_hf_folder(*w, dir / "model"));
      g_cases.push_back({name, arch, method, dir, lr});
      const Case& c = g_cases.back();
      auto m = open_model(dir / "model");
      ASSERT_TRUE(m) << m.error().to_string();
      auto tm = make_model(c, *m);
      ASSERT_TRUE(tm);
      std::vector<int32_t> tokens, targets;
      make_batch(96, uint32_t((model_seed + 1) * 7), tokens, targets);
      std::ostringstream js;
      js << "{\"model\": \"" << (dir / "model").string() << "\", \"method\": \"" << method_name(method)
         << "\", \"B\": " << B << ", \"T\": " << T << ", \"tokens\": " << json_ints(tokens)
         << ", \"targets\": " << json_ints(targets);
      LoraSettings ls = lora_settings();
      js << ", \"lora\": {\"rank\": " << ls.rank << ", \"alpha\": " << ls.alpha << ", \"targets\": [";
      for (size_t i = 0; i < ls.targets.size(); ++i) js << (i ? ", " : "") << "\"" << ls.targets[i] << "\"";
      js << "]}, \"params\": [";
      std::ofstream vals(dir / "params.f32", std::ios::binary);
      bool first = true;
      for (const Param* p : tm->trainable()) {
        js << (first ? "" : ", ") << "{\"name\": \"" << p->name << "\", \"shape\": [";
        for (size_t i = 0; i < p->shape.size(); ++i) js << (i ? ", " : "") << p->shape[i];
        js << "]}";
        first = false;
        vals.write(reinterpret_cast<const char*>(p->value.data()), std::streamsize(p->value.size() * 4));
      }
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "], \"adamw\": {\"lr\": %.17g, \"beta1\": 0.9, \"beta2\": 0.999, \"eps\": 1e-08, "
                    "\"weight_decay\": 0.1, \"steps\": %d}}",
                    lr, int(STEPS));
      js << buf;
      test::write_text(dir / "case.json", js.str());
    };
    add("llama-lora", Architecture::llama, Method::lora, 1e-2);
    add("qwen2-lora", Architecture::qwen2, Method::lora, 1e-2);
    add("llama-full", Architecture::llama, Method::full, 1e-3);
    add("qwen2-full", Architecture::qwen2, Method::full, 1e-3);
    add("qwen3-full", Architecture::qwen3, Method::full, 1e-3);
    add("llama-bias-rope3-full", Architecture::llama, Method::full, 1e-3, true);
    add("llama-bias-rope3-lora", Architecture::llama, Method::lora, 1e-2, true);
    if (g_cases.empty()) return;
    std::string cmd = std::string(HEARTH_PYTHON) + " '" +
                      test::source_dir("tests/reference/torch_train.py").string() + "'";
    for (const Case& c : g_cases) cmd += " '" + c.dir.string() + "'";
    auto r = test::run(cmd);
    g_script_ok = r.exit_code == 0;
    g_script_err = r.err;
  }

  static double json_number(const std::string& text, const std::string& key) {
    auto at = text.find("\"" + key + "\":");
    if (at == std::string::npos) return NAN;
    return std::strtod(text.c_str() + at + key.size() + 3, nullptr);
  }
  static std::vector<double> json_numbers(const std::string& text, const std::string& key) {
    std::vector<double> v;
    auto at = text.find("\"" + key + "\":");
    if (at == std::string::npos) return v;
    at = text.find('[', at);
    auto end = text.find(']', at);
    std::string inner = text.substr(at + 1, end - at - 1);
    std::stringstream ss(inner);
    std::string item;
    while (std::getline(ss, item, ',')) v.push_back(std::strtod(item.c_str(), nullptr));
    return v;
  }

  void check(const std::string& name) {
    ASSERT_TRUE(g_script_ok) << "reference script failed:\n" << g_script_err;
    const Case* cp = nullptr;
    for (const Case& c : g_cases)
      if (c.name == name) cp = &c;
    ASSERT_TRUE(cp) << name;
    const Case& c = *cp;
    std::string out = test::read_text(c.dir / "out.json");
    const double ref_loss = json_number(out, "loss");
    const std::vector<double> ref_losses = json_numbers(out, "losses");
    ASSERT_TRUE(std::isfinite(ref_loss)) << out;
    ASSERT_EQ(ref_losses.size(), size_t(STEPS)) << out;

    auto m = open_model(c.dir / "model");
    ASSERT_TRUE(m);
    auto tm = make_model(c, *m);
    ASSERT_TRUE(tm);
    std::vector<int32_t> tokens, targets;
    std::string cj = test::read_text(c.dir / "case.json");
    for (auto [key, vec] : {std::pair{"tokens", &tokens}, std::pair{"targets", &targets}})
      for (double d : json_numbers(cj, key)) vec->push_back(int32_t(d));
    ASSERT_EQ(tokens.size(), size_t(B * T));

    auto r = tm->forward_backward(tokens, targets, B, T);
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->n_tokens, int64_t(json_number(out, "n_tokens")));
    const double loss_err = std::abs(r->loss - ref_loss) / std::abs(ref_loss);
    std::printf("[%s] loss %.8f (torch %.8f), relative error %.3g (tolerance 1e-5)\n", name.c_str(), r->loss,
                ref_loss, loss_err);
    EXPECT_LT(loss_err, 1e-5);

    std::ifstream gin(c.dir / "grads.f64", std::ios::binary);
    double worst = 0;
    std::string worst_name;
    for (const Param* p : tm->trainable()) {
      std::vector<double> ref(p->grad.size());
      gin.read(reinterpret_cast<char*>(ref.data()), std::streamsize(ref.size() * 8));
      ASSERT_TRUE(gin.good()) << "short reference gradients at " << p->name;
      double max_diff = 0, max_ref = 0;
      for (size_t i = 0; i < ref.size(); ++i) {
        max_diff = std::max(max_diff, std::abs(double(p->grad[i]) - ref[i]));
        max_ref = std::max(max_ref, std::abs(ref[i]));
      }
      ASSERT_GT(max_ref, 0.0) << p->name << ": the reference gradient is zero";
      const double rel = max_diff / max_ref;
      EXPECT_LT(rel, 1e-4) << p->name;
      if (rel > worst) worst = rel, worst_name = p->name;
    }
    std::printf("[%s] %zu gradient tensors, max relative error %.3g (%s; tolerance 1e-4)\n", name.c_str(),
                tm->trainable().size(), worst, worst_name.c_str());

    tm->zero_grad();
    AdamWSettings s;
    s.weight_decay = 0.1;
    AdamW opt(tm->trainable(), s);
    double worst_step = 0;
    std::vector<double> mine;
    for (int64_t i = 0; i < STEPS; ++i) {
      tm->zero_grad();
      auto st = tm->forward_backward(tokens, targets, B, T);
      ASSERT_TRUE(st) << st.error().to_string();
      const double e = std::abs(st->loss - ref_losses[size_t(i)]) / std::abs(ref_losses[size_t(i)]);
      EXPECT_LT(e, 1e-4) << "step " << i;
      worst_step = std::max(worst_step, e);
      mine.push_back(st->loss);
      opt.step(c.lr);
    }
    std::printf("[%s] %d AdamW steps: loss %.6f -> %.6f (torch %.6f -> %.6f), max relative error %.3g "
                "(tolerance 1e-4)\n",
                name.c_str(), int(STEPS), mine.front(), mine.back(), ref_losses.front(),
                ref_losses.back(), worst_step);
    EXPECT_LT(ref_losses.back(), ref_losses.front()) << "the reference did not learn; the step test is weak";
  }
};

// One test for all cases: under ctest every test is its own process, and each would import torch again.
TEST_F(TrainReference, LossGradsAndAdamWStepsMatchPyTorch) {
  for (const char* name : {"llama-lora", "qwen2-lora", "llama-full", "qwen2-full", "qwen3-full",
                           "llama-bias-rope3-full", "llama-bias-rope3-lora"}) {
    SCOPED_TRACE(name);
    check(name);
  }
}

}  // namespace
