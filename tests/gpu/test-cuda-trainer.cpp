/* The trainer's CUDA path (trainer/src/device-trainer.h) against the CPU TrainModel it mirrors: on tiny
 * random llama / qwen2 (biases) / qwen3 (q/k norm) networks trained in full, and LoRA (all seven
 * targets; dropout 0.1 in F32, none in BF16) over a Q8_0 GGUF llama base (interleaved q/k rows,
 * dequantized on the device in BF16 mode), one forward_backward's loss and every gradient, in F32 and
 * BF16; evaluate's loss; three
 * optimizer steps (clip + AdamW on the device against clip_grad_norm + AdamW::step); the
 * download/upload round trip; the errors for a bad token id and an oversized batch.
 *
 * Built twice: gpu-test-cuda-trainer (label gpu; skips where no usable CUDA device is found) and
 * trainer-test-cuda-trainer-emulated (label unit; the device code compiled as C++ against the CPU
 * emulation of CUDA and cuBLAS, HEARTH_CUDA_EMULATION), which runs the same checks on smaller shapes.
 *
 * Non-obvious choice: the classifier is forced to chunks of a few rows (HEARTH_TRAIN_GPU_CHUNK), with
 * whole chunks of ignored targets, so the multi-chunk loss and gradient scaling are what is checked,
 * not the single chunk a tiny vocabulary would otherwise give.
 */
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "cuda-test-util.h"
#include "device-trainer.h"
#include "hearth/model-writer.h"
#include "hearth/trainer/config.h"
#include "hearth/trainer/estimate.h"
#include "hearth/trainer/optim.h"
#include "hearth/trainer/train-model.h"
#include "test-util.h"

using namespace hearth;
using namespace hearth::train;
namespace fs = std::filesystem;

namespace {

#ifdef HEARTH_CUDA_EMULATION
constexpr bool EMULATED = true;  // every emulated GPU thread is an OS thread: fewer, smaller cases
constexpr int64_t EMBD = 32, LAYERS = 2, VOCAB = 48, B = 2, T = 8;
#else
constexpr bool EMULATED = false;
constexpr int64_t EMBD = 64, LAYERS = 2, VOCAB = 96, B = 2, T = 12;
#endif
constexpr const char* CHUNK_ROWS = "3";  // with 3 masked positions per row: a chunk with no target

struct Batch {
  std::vector<int32_t> tokens, targets;
};

Batch make_batch(uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(0, VOCAB - 1);
  Batch b;
  for (int64_t i = 0; i < B * T; ++i) b.tokens.push_back(tok(rng));
  for (int64_t i = 0; i < B * T; ++i) b.targets.push_back(i % T < 3 ? -1 : tok(rng));
  return b;
}

template <class V>
V must(Expected<V> e) {
  EXPECT_TRUE(e) << e.error().to_string();
  if (!e) throw std::runtime_error(e.error().to_string());
  return std::move(*e);
}
void must_ok(Expected<void> e) {
  EXPECT_TRUE(e) << e.error().to_string();
  if (!e) throw std::runtime_error(e.error().to_string());
}

// Why this machine cannot run the checks (empty: it can).
std::string skip_reason() {
  if (!test::have_gpu()) return "no CUDA device";
  return cuda_training_unavailable(0);
}

enum class Kind { llama_full, qwen2_full, qwen3_full, llama_lora_q8, qwen3_bias_full };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::llama_full: return "llama full";
    case Kind::qwen2_full: return "qwen2 full (q/k/v/o biases)";
    case Kind::qwen3_full: return "qwen3 full (q/k norm)";
    case Kind::qwen3_bias_full: return "qwen3 full with q/k/v/o biases";
    default: return "llama LoRA on a Q8_0 GGUF base";
  }
}

// A model and, for LoRA, the base it points into (kept alive together).
struct Net {
  std::unique_ptr<Model> base;
  std::unique_ptr<TrainModel> m;
};

Net make_net(Kind k, int64_t layers = LAYERS, float lora_dropout = 0.1f) {
  Net n;
  if (k == Kind::llama_lora_q8) {
    const fs::path path = [&] {
      fs::path dir = test::scratch("cuda-trainer-lora");
      auto w = must(make_random_weights(tiny_params(Architecture::llama, EMBD, layers, VOCAB), 33));
      GgufWriteOptions o;
      o.type = GgmlType::Q8_0;
      fs::path f = dir / ("llama-q8_0-" + std::to_string(layers) + ".gguf");
      EXPECT_TRUE(write_gguf_model(w, f, o));
      return f;
    }();
    n.base = std::make_unique<Model>(must(open_model(path)));
    EXPECT_EQ(n.base->desc().rope_layout, RopeLayout::interleaved);
    ModelOptions o;
    o.method = Method::lora;
    o.lora.rank = 4;
    o.lora.alpha = 8.0f;
    o.lora.dropout = lora_dropout;
    o.n_threads = 1;
    o.seed = 5;
    n.m = must(TrainModel::create(*n.base, o));
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 0.05f);
    for (Param* p : n.m->trainable())  // B starts at zero: give it values so A's gradients are not zero
      if (p->name.ends_with("lora_B.weight"))
        for (float& v : p->value) v = nd(rng);
    return n;
  }
  ModelParams p = tiny_params(k == Kind::llama_full   ? Architecture::llama
                              : k == Kind::qwen2_full ? Architecture::qwen2
                                                      : Architecture::qwen3,
                              EMBD, layers, VOCAB);
  if (k == Kind::qwen2_full || k == Kind::qwen3_bias_full) p.has_o_bias = true;
  if (k == Kind::qwen3_bias_full) p.has_qkv_bias = true;
  ModelOptions o;
  o.method = Method::pretrain;
  o.n_threads = 1;
  o.seed = 11;
  n.m = must(TrainModel::create_from_scratch(p, o));
  return n;
}

std::vector<std::vector<float>> grads_of(const TrainModel& m) {
  std::vector<std::vector<float>> g;
  for (const Param* p : m.trainable()) g.push_back(p->grad);
  return g;
}

// max over tensors of max |got - ref| / max |ref| (the name of the worst in *worst); with l2, of
// |got - ref|_2 / |ref|_2 instead (BF16: rounding spreads errors over a tensor, the norm judges it).
double grad_error(const std::vector<std::vector<float>>& ref, const TrainModel& m, std::string* worst,
                  bool l2 = false) {
  auto ps = m.trainable();
  EXPECT_EQ(ps.size(), ref.size());
  double e = 0;
  for (size_t i = 0; i < ps.size() && i < ref.size(); ++i) {
    double d = 0, mx = 0;
    EXPECT_EQ(ps[i]->grad.size(), ref[i].size());
    for (size_t j = 0; j < ref[i].size() && j < ps[i]->grad.size(); ++j) {
      const double dj = std::abs(double(ps[i]->grad[j]) - double(ref[i][j])), rj = std::abs(double(ref[i][j]));
      if (l2) {
        d += dj * dj, mx += rj * rj;
      } else {
        d = std::max(d, dj), mx = std::max(mx, rj);
      }
    }
    if (l2) d = std::sqrt(d), mx = std::sqrt(mx);
    const double r = mx > 0 ? d / mx : d;
    if (r > e) e = r, *worst = ps[i]->name;
  }
  return e;
}

struct Case {
  Kind kind;
  TrainPrecision prec;
};

class CudaTrainer : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (std::string why = skip_reason(); !why.empty()) GTEST_SKIP() << why;
    setenv("HEARTH_TRAIN_GPU_CHUNK", CHUNK_ROWS, 1);
  }
};

// One step's loss and every gradient, and evaluate's loss, against the CPU.
TEST_P(CudaTrainer, LossAndGradientsMatchTheCpu) {
  const Case c = GetParam();
  const bool f32 = c.prec == TrainPrecision::f32;
  // LoRA: dropout 0.1 in F32, none in BF16 (the other branch of the LoRA input gradient).
  Net n = make_net(c.kind, LAYERS, f32 ? 0.1f : 0.0f);
  auto dt = must(DeviceTrainer::create(*n.m, DeviceTrainOptions{0, c.prec}, B, T));
  EXPECT_GT(dt->device_bytes(), 0u);
  EXPECT_NE(dt->description().find(f32 ? "F32" : "BF16"), std::string::npos) << dt->description();
  const Batch bt = make_batch(1);
  const float scale = 0.5f;
  const uint64_t seed = 7;

  n.m->zero_grad();
  const LossResult lc = must(n.m->forward_backward(bt.tokens, bt.targets, B, T, scale, seed));
  const auto ref = grads_of(*n.m);
  n.m->zero_grad();
  must_ok(dt->zero_grad());
  const LossResult lg = must(dt->forward_backward(bt.tokens, bt.targets, B, T, scale, seed));
  must_ok(dt->download_grads(*n.m));
  std::string worst, worst2;
  const double loss_rel = std::abs(lg.loss - lc.loss) / lc.loss;
  const double gerr = grad_error(ref, *n.m, &worst);
  const double gerr2 = grad_error(ref, *n.m, &worst2, true);
  std::printf("%s, %s: loss %.7f vs CPU %.7f (rel %.2g), grads max rel %.2g (%s), L2 rel %.2g (%s)\n",
              kind_name(c.kind), precision_name(c.prec), lg.loss, lc.loss, loss_rel, gerr, worst.c_str(), gerr2,
              worst2.c_str());
  EXPECT_EQ(lg.n_tokens, lc.n_tokens);
  EXPECT_LT(loss_rel, f32 ? 1e-5 : 2e-2);
  if (f32)
    EXPECT_LT(gerr, 1e-4) << "worst tensor " << worst;
  else  // BF16 rounding of every product's inputs, compounded through the layers: ~2e-2 seen
    EXPECT_LT(gerr2, 5e-2) << "worst tensor " << worst2;
  if (EMULATED && c.kind != Kind::qwen3_bias_full) return;

  // evaluate(): the same loss without gradients or dropout.
  const LossResult ec = must(n.m->evaluate(bt.tokens, bt.targets, B, T));
  const LossResult eg = must(dt->evaluate(bt.tokens, bt.targets, B, T));
  const double eval_rel = std::abs(eg.loss - ec.loss) / ec.loss;
  std::printf("  evaluate: rel %.2g\n", eval_rel);
  EXPECT_EQ(eg.n_tokens, ec.n_tokens);
  EXPECT_LT(eval_rel, f32 ? 1e-5 : 2e-2);
  if (EMULATED) return;
  // A second call accumulates into the same gradients, as the CPU's does.
  ASSERT_TRUE(dt->forward_backward(bt.tokens, bt.targets, B, T, scale, seed));
  must_ok(dt->download_grads(*n.m));
  auto twice = ref;
  for (auto& g : twice)
    for (float& x : g) x *= 2;
  if (f32)
    EXPECT_LT(grad_error(twice, *n.m, &worst), 1e-4) << worst;
  else
    EXPECT_LT(grad_error(twice, *n.m, &worst, true), 5e-2) << worst;
}

std::string case_name(const ::testing::TestParamInfo<Case>& i) {
  static const char* const KIND[] = {"LlamaFull", "Qwen2Full", "Qwen3Full", "LlamaLoraQ8", "Qwen3BiasFull"};
  return std::string(KIND[int(i.param.kind)]) + (i.param.prec == TrainPrecision::f32 ? "F32" : "BF16");
}

#ifdef HEARTH_CUDA_EMULATION
// Emulated: one full network with everything optional (biases, q/k norm, tied embeddings; the untied
// llama is in the steps below) and the LoRA base in both precisions.
INSTANTIATE_TEST_SUITE_P(Models, CudaTrainer,
                         ::testing::Values(Case{Kind::qwen3_bias_full, TrainPrecision::f32},
                                           Case{Kind::llama_lora_q8, TrainPrecision::f32},
                                           Case{Kind::llama_lora_q8, TrainPrecision::bf16}),
                         case_name);
#else
INSTANTIATE_TEST_SUITE_P(
    Models, CudaTrainer,
    ::testing::Values(Case{Kind::llama_full, TrainPrecision::f32}, Case{Kind::qwen2_full, TrainPrecision::f32},
                      Case{Kind::qwen3_full, TrainPrecision::f32}, Case{Kind::llama_lora_q8, TrainPrecision::f32},
                      Case{Kind::qwen3_bias_full, TrainPrecision::f32}, Case{Kind::llama_full, TrainPrecision::bf16},
                      Case{Kind::qwen3_full, TrainPrecision::bf16}, Case{Kind::llama_lora_q8, TrainPrecision::bf16}),
    case_name);
#endif

class CudaTrainerSteps : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    if (std::string why = skip_reason(); !why.empty()) GTEST_SKIP() << why;
    setenv("HEARTH_TRAIN_GPU_CHUNK", CHUNK_ROWS, 1);
  }
};

// Three optimizer steps (clipping that bites, weight decay) on the device and on the CPU.
TEST_P(CudaTrainerSteps, ThreeAdamWStepsMatchTheCpu) {
  // Emulated: one layer (the network is checked above; this is about clipping and AdamW).
  const int64_t layers = EMULATED ? 1 : LAYERS;
  Net cpu = make_net(GetParam(), layers), gpu = make_net(GetParam(), layers);
  auto dt = must(DeviceTrainer::create(*gpu.m, DeviceTrainOptions{0, TrainPrecision::f32}, B, T));
  AdamWSettings s;
  s.weight_decay = 0.1;
  AdamW opt(cpu.m->trainable(), s);
  const double lr = 1e-3;
  for (int step = 0; step < 3; ++step) {
    const Batch bt = make_batch(10 + uint32_t(step));
    cpu.m->zero_grad();
    must(cpu.m->forward_backward(bt.tokens, bt.targets, B, T, 1.0f, uint64_t(step)));
    const double nc = clip_grad_norm(cpu.m->trainable(), 0.5);
    opt.step(lr);
    must_ok(dt->zero_grad());
    must(dt->forward_backward(bt.tokens, bt.targets, B, T, 1.0f, uint64_t(step)));
    const double ng = must(dt->clip_grad_norm(0.5));
    must_ok(dt->adamw_step(lr, s, step + 1));
    EXPECT_NEAR(ng, nc, 1e-5 * nc) << "step " << step;
    EXPECT_GT(nc, 0.5) << "the clipping should bite";
  }
  std::vector<std::vector<float>> m, v;
  must_ok(dt->download(*gpu.m, &m, &v));
  auto pc = cpu.m->trainable(), pg = gpu.m->trainable();
  double werr = 0, merr = 0;
  std::string worst;
  for (size_t i = 0; i < pc.size(); ++i) {
    for (size_t j = 0; j < pc[i]->value.size(); ++j) {
      const double d = std::abs(double(pc[i]->value[j]) - double(pg[i]->value[j]));
      if (d > werr) werr = d, worst = pc[i]->name;
      merr = std::max(merr, double(std::abs(opt.m()[i][j] - m[i][j])));
    }
  }
  std::printf("%s: 3 AdamW steps, weights max |diff| %.3g (%s), first moments %.3g\n", kind_name(GetParam()), werr,
              worst.c_str(), merr);
  EXPECT_LT(werr, 1e-5) << worst;
  EXPECT_LT(merr, 1e-5);
  const Batch bt = make_batch(20);
  const double lc = must(cpu.m->evaluate(bt.tokens, bt.targets, B, T)).loss;
  const double lg = must(dt->evaluate(bt.tokens, bt.targets, B, T)).loss;
  EXPECT_LT(std::abs(lg - lc) / lc, 1e-5) << "the loss after the steps";
}

#ifdef HEARTH_CUDA_EMULATION
#define STEP_KINDS ::testing::Values(Kind::llama_full)
#else
#define STEP_KINDS ::testing::Values(Kind::llama_full, Kind::llama_lora_q8)
#endif
INSTANTIATE_TEST_SUITE_P(Models, CudaTrainerSteps, STEP_KINDS,
                         [](const ::testing::TestParamInfo<Kind>& i) {
                           return std::string(i.param == Kind::llama_full ? "LlamaFull" : "LlamaLoraQ8");
                         });

class CudaTrainerApi : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = skip_reason(); !why.empty()) GTEST_SKIP() << why;
  }
};

// Values and moments go up and come back unchanged; the BF16 copies follow an upload and an AdamW step.
TEST_F(CudaTrainerApi, DownloadUploadRoundTrip) {
  for (TrainPrecision prec : {TrainPrecision::f32, TrainPrecision::bf16}) {
    if (EMULATED && prec == TrainPrecision::f32) continue;  // the BF16 run checks everything the F32 one does
    const int64_t layers = EMULATED ? 1 : LAYERS;
    Net n = make_net(Kind::qwen3_full, layers);
    auto dt = must(DeviceTrainer::create(*n.m, DeviceTrainOptions{0, prec}, B, T));
    std::mt19937 rng(9);
    std::normal_distribution<float> nd(0.0f, 0.1f);
    std::vector<std::vector<float>> m, v;
    for (Param* p : n.m->trainable()) {
      for (float& x : p->value) x += nd(rng);
      m.emplace_back(p->value.size());
      v.emplace_back(p->value.size());
      for (float& x : m.back()) x = nd(rng);
      for (float& x : v.back()) x = std::abs(nd(rng));
    }
    must_ok(dt->upload(*n.m, m, v));
    // The uploaded weights are the ones trained with: the loss is the CPU's for the new values.
    const Batch bt = make_batch(4);
    const double lc = must(n.m->evaluate(bt.tokens, bt.targets, B, T)).loss;
    const double lg = must(dt->evaluate(bt.tokens, bt.targets, B, T)).loss;
    EXPECT_LT(std::abs(lg - lc) / lc, prec == TrainPrecision::f32 ? 1e-5 : 2e-2) << precision_name(prec);
    Net back = make_net(Kind::qwen3_full, layers);
    std::vector<std::vector<float>> m2, v2;
    must_ok(dt->download(*back.m, &m2, &v2));
    auto a = n.m->trainable(), b = back.m->trainable();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i]->value, b[i]->value) << a[i]->name;
      EXPECT_EQ(m[i], m2[i]) << a[i]->name;
      EXPECT_EQ(v[i], v2[i]) << a[i]->name;
    }
    // One AdamW step from the uploaded moments: the device then trains with the new weights (in BF16, the
    // copies AdamW refreshes), so its loss follows the CPU's after the same step.
    AdamWSettings s;
    AdamW opt(n.m->trainable(), s);
    opt.m() = m;
    opt.v() = v;
    const double lr = 0.05;
    n.m->zero_grad();
    must(n.m->forward_backward(bt.tokens, bt.targets, B, T));
    opt.step(lr);
    must_ok(dt->zero_grad());
    must(dt->forward_backward(bt.tokens, bt.targets, B, T));
    must_ok(dt->adamw_step(lr, s, 1));
    const double lc2 = must(n.m->evaluate(bt.tokens, bt.targets, B, T)).loss;
    const double lg2 = must(dt->evaluate(bt.tokens, bt.targets, B, T)).loss;
    std::printf("%s: loss before the step %.6f (GPU %.6f), after %.6f (GPU %.6f)\n", precision_name(prec), lc, lg, lc2,
                lg2);
    EXPECT_LT(std::abs(lg2 - lc2), 0.25 * std::abs(lc2 - lc)) << precision_name(prec);
    // Moments of the wrong size are refused.
    m[0].pop_back();
    auto bad = dt->upload(*n.m, m, v);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, ErrorCode::invalid_argument);
  }
}

TEST_F(CudaTrainerApi, BadInputIsAnError) {
  Net n = make_net(Kind::llama_full);
  auto dt = must(DeviceTrainer::create(*n.m, DeviceTrainOptions{0, TrainPrecision::f32}, B, T));
  Batch bt = make_batch(2);
  bt.tokens[5] = int32_t(VOCAB);
  auto r = dt->forward_backward(bt.tokens, bt.targets, B, T);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::out_of_range);
  EXPECT_NE(r.error().message.find("token id " + std::to_string(VOCAB)), std::string::npos) << r.error().message;
  bt = make_batch(2);
  bt.targets[6] = int32_t(VOCAB + 3);
  r = dt->evaluate(bt.tokens, bt.targets, B, T);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::out_of_range);
  // Larger than the trainer was made for.
  Batch big;
  big.tokens.assign(size_t(B * (T + 1)), 1);
  big.targets.assign(size_t(B * (T + 1)), 2);
  r = dt->forward_backward(big.tokens, big.targets, B, T + 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  // And still usable afterwards.
  bt = make_batch(2);
  EXPECT_TRUE(dt->evaluate(bt.tokens, bt.targets, B, T));
  // More than any GPU has: refused before anything is allocated, naming what is needed and what is free.
  auto huge = DeviceTrainer::create(*n.m, DeviceTrainOptions{0, TrainPrecision::f32}, 4096, 4096);
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code, ErrorCode::unsupported);
  EXPECT_NE(huge.error().message.find("out of GPU memory"), std::string::npos) << huge.error().message;
  EXPECT_NE(huge.error().message.find("free"), std::string::npos) << huge.error().message;
  std::printf("%s\n", huge.error().message.c_str());
  // Bad sizes at creation, a GPU that does not exist.
  EXPECT_FALSE(DeviceTrainer::create(*n.m, DeviceTrainOptions{}, 0, T));
  EXPECT_NE(cuda_training_unavailable(99).find("99"), std::string::npos);
  auto none = DeviceTrainer::create(*n.m, DeviceTrainOptions{99, TrainPrecision::f32}, B, T);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::unsupported);
}

}  // namespace

// The GPU memory estimate the wizard and `hearth-cli estimate` show (estimate_gpu_training_memory) against
// what the device trainer really allocates (device_bytes(), its one planned block), for full training
// and LoRA in both precisions: within 1 %, plus the trainer's rounding of each buffer to 256 bytes (which
// the estimate leaves out). The estimate's fixed allowance for the CUDA context and cuBLAS is not part of
// device_bytes().
TEST_F(CudaTrainerApi, MemoryEstimateMatchesWhatTheTrainerAllocates) {
  struct EstCase {
    Kind kind;
    TrainPrecision prec;
    int64_t embd, layers, vocab, b, t;
    bool recompute;  // training.recompute: one layer's attention probabilities
  };
  // The full-training cases are large enough (T 128) for the attention probabilities and scratch to
  // matter; the LoRA ones use the small Q8_0 base of the other tests.
  const std::vector<EstCase> cases = {
      {Kind::llama_full, TrainPrecision::f32, EMULATED ? 128 : 256, 2, 512, 2, 128, false},
      {Kind::llama_full, TrainPrecision::f32, EMULATED ? 128 : 256, 2, 512, 2, 128, true},
      {Kind::qwen3_full, TrainPrecision::bf16, EMULATED ? 128 : 256, 2, 512, 2, 128, false},
      {Kind::llama_lora_q8, TrainPrecision::f32, EMBD, LAYERS, VOCAB, B, T, false},
      {Kind::llama_lora_q8, TrainPrecision::bf16, EMBD, LAYERS, VOCAB, B, T, false},
  };
  for (const EstCase& c : cases) {
    SCOPED_TRACE(std::string(kind_name(c.kind)) + ", " + precision_name(c.prec) + (c.recompute ? ", recompute" : ""));
    Net n;
    ModelParams mp;
    int64_t n_params = 0;
    uint64_t file_bytes = 0;
    TrainConfig cfg;
    cfg.training.batch_size = c.b;
    cfg.data.max_length = c.t;
    cfg.training.precision = precision_name(c.prec);
    cfg.training.recompute = c.recompute;
    if (c.kind == Kind::llama_lora_q8) {
      n = make_net(c.kind, c.layers);
      const ModelDesc& d = n.base->desc();
      mp = d.params, n_params = d.n_params, file_bytes = d.file_size;
      cfg.method = Method::lora;
      cfg.lora = n.m->options().lora;
    } else {
      mp = tiny_params(c.kind == Kind::llama_full ? Architecture::llama : Architecture::qwen3, c.embd, c.layers,
                       c.vocab);
      ModelOptions o;
      o.method = Method::pretrain;
      o.n_threads = 1;
      n.m = must(TrainModel::create_from_scratch(mp, o));
      n_params = n.m->n_trainable();
      cfg.method = Method::full;
    }
    auto dt = must(DeviceTrainer::create(*n.m, DeviceTrainOptions{0, c.prec, c.recompute}, c.b, c.t));
    const MemoryEstimate e = estimate_gpu_training_memory(mp, n_params, file_bytes, cfg);
    const double est = double(e.total - e.overhead), got = double(dt->device_bytes());
    const double rounding = 256.0 * double(5 * n.m->trainable().size() + 40 * (mp.n_layer + 1) + 40);
    std::printf("%s, %s%s: estimate %.0f bytes, trainer %.0f bytes (%+.2f %%)\n", kind_name(c.kind),
                precision_name(c.prec), c.recompute ? ", recompute" : "", est, got, 100.0 * (est - got) / got);
    EXPECT_LE(std::abs(est - got), 0.01 * got + rounding);
  }
}

// Recomputing the attention probabilities in backward (training.recompute, or chosen when keeping every
// layer's does not fit) gives the same bits as keeping them, in less memory.
TEST_F(CudaTrainerApi, RecomputedAttentionGivesTheSameGradients) {
  for (TrainPrecision prec : {TrainPrecision::f32, TrainPrecision::bf16}) {
    SCOPED_TRACE(precision_name(prec));
    const Kind kind = prec == TrainPrecision::f32 ? Kind::llama_full : Kind::llama_lora_q8;
    Net kept = make_net(kind, 2, 0.0f), again = make_net(kind, 2, 0.0f);  // layer 0 is recomputed
    auto a = must(DeviceTrainer::create(*kept.m, DeviceTrainOptions{0, prec, false}, B, T));
    auto b = must(DeviceTrainer::create(*again.m, DeviceTrainOptions{0, prec, true}, B, T));
    EXPECT_LT(b->device_bytes(), a->device_bytes());
    EXPECT_NE(b->description().find("attention recomputed"), std::string::npos) << b->description();
    const Batch bt = make_batch(7);
    const LossResult la = must(a->forward_backward(bt.tokens, bt.targets, B, T));
    const LossResult lb = must(b->forward_backward(bt.tokens, bt.targets, B, T));
    EXPECT_EQ(la.loss, lb.loss);
    must_ok(a->download_grads(*kept.m));
    must_ok(b->download_grads(*again.m));
    auto ga = kept.m->trainable(), gb = again.m->trainable();
    ASSERT_EQ(ga.size(), gb.size());
    for (size_t i = 0; i < ga.size(); ++i) EXPECT_EQ(ga[i]->grad, gb[i]->grad) << ga[i]->name;

#ifdef HEARTH_CUDA_EMULATION
    // When keeping every layer's probabilities does not fit, create() recomputes them by itself and says so.
    const std::string free_b = std::to_string(a->device_bytes() - 1);
    setenv("HEARTH_EMU_GPU_FREE", free_b.c_str(), 1);
    Net third = make_net(kind, 2, 0.0f);
    auto c = DeviceTrainer::create(*third.m, DeviceTrainOptions{0, prec, false}, B, T);
    unsetenv("HEARTH_EMU_GPU_FREE");
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_EQ((*c)->device_bytes(), b->device_bytes());
    EXPECT_NE((*c)->description().find("to fit"), std::string::npos) << (*c)->description();
#endif
  }
}
