/* Unit tests of TrainModel beyond the PyTorch comparison (train-reference.cpp): the same weights as a GGUF
 * llama file (interleaved q/k rows) and as a Hugging Face folder give the same loss and LoRA gradients;
 * recomputation gives bit-identical gradients with less memory; a quantized base (Q8_0, Q4_0) trains
 * with LoRA close to its F32 original; merged weights reproduce the LoRA network; determinism, gradient
 * scaling, pretraining from scratch, the errors for bad input, and LoRA / full fine-tuning of the shared
 * real tiny GGUF.
 *
 * Non-obvious choice: the models are tiny (n_embd 64, 2 layers, 96 tokens) and run on one or two
 * threads, so the whole file takes well under a second of compute.
 */
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "hearth/model-writer.h"
#include "hearth/trainer/optim.h"
#include "hearth/trainer/train-model.h"
#include "test-util.h"

using namespace hearth;
using namespace hearth::train;
namespace fs = std::filesystem;

namespace {

constexpr int64_t B = 2, T = 12, VOCAB = 96;

struct Batch {
  std::vector<int32_t> tokens, targets;
};

Batch make_batch(uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(0, VOCAB - 1);
  Batch b;
  for (int64_t i = 0; i < B * T; ++i) b.tokens.push_back(tok(rng));
  for (int64_t i = 0; i < B * T; ++i) b.targets.push_back(i % T < 2 ? -1 : tok(rng));
  return b;
}

template <class T>
T must(Expected<T> e) {
  EXPECT_TRUE(e) << e.error().to_string();
  if (!e) throw std::runtime_error(e.error().to_string());
  return std::move(*e);
}

ModelOptions lora_options(float dropout = 0.0f, bool recompute = false, int threads = 1) {
  ModelOptions o;
  o.method = Method::lora;
  o.lora.rank = 4;
  o.lora.alpha = 8.0f;
  o.lora.dropout = dropout;
  o.recompute = recompute;
  o.n_threads = threads;
  o.seed = 5;
  return o;
}

void randomize_b(TrainModel& m, uint32_t seed = 3) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  for (Param* p : m.trainable())
    if (p->name.ends_with("lora_B.weight"))
      for (float& v : p->value) v = nd(rng);
}

// max |a - b| / max |b| over all trainable tensors, as the reference test measures.
double grad_error(const TrainModel& a, const TrainModel& b) {
  auto pa = a.trainable(), pb = b.trainable();
  EXPECT_EQ(pa.size(), pb.size());
  double worst = 0;
  for (size_t i = 0; i < pa.size() && i < pb.size(); ++i) {
    EXPECT_EQ(pa[i]->name, pb[i]->name);
    double d = 0, m = 0;
    for (size_t j = 0; j < pa[i]->grad.size(); ++j) {
      d = std::max(d, double(std::abs(pa[i]->grad[j] - pb[i]->grad[j])));
      m = std::max(m, double(std::abs(pb[i]->grad[j])));
    }
    worst = std::max(worst, m > 0 ? d / m : d);
  }
  return worst;
}

bool grads_identical(const TrainModel& a, const TrainModel& b) {
  auto pa = a.trainable(), pb = b.trainable();
  if (pa.size() != pb.size()) return false;
  for (size_t i = 0; i < pa.size(); ++i)
    if (pa[i]->grad.size() != pb[i]->grad.size() ||
        std::memcmp(pa[i]->grad.data(), pb[i]->grad.data(), pa[i]->grad.size() * sizeof(float)) != 0)
      return false;
  return true;
}

struct Files {
  fs::path hf, gguf;
};

Files write_llama(const std::string& name, uint64_t seed) {
  fs::path dir = test::scratch(name);
  auto w = must(make_random_weights(tiny_params(Architecture::llama, 64, 2, VOCAB), seed));
  Files f{dir / "hf", dir / "f32.gguf"};
  EXPECT_TRUE(write_hf_folder(w, f.hf));
  EXPECT_TRUE(write_gguf_model(w, f.gguf));
  return f;
}

class GgufVsHf : public ::testing::TestWithParam<bool> {};

// The same llama weights as a GGUF file (q/k rows interleaved) and as a Hugging Face folder; with the
// parameter, also q/k/v/o biases (the GGUF q/k biases permuted too) and llama3 RoPE scaling (GGUF's
// rope_freqs tensor).
TEST_P(GgufVsHf, SameLossAndGrads) {
  const bool variant = GetParam();
  fs::path dir = test::scratch(variant ? "gguf-vs-hf-bias" : "gguf-vs-hf");
  ModelParams mp = tiny_params(Architecture::llama, 64, 2, VOCAB);
  if (variant) {
    mp.has_qkv_bias = mp.has_o_bias = true;
    mp.rope_scaling = {RopeScalingKind::llama3, 8.0f, 1.0f, 4.0f, 8};
  }
  auto wts = must(make_random_weights(mp, 31));
  Files f{dir / "hf", dir / "f32.gguf"};
  ASSERT_TRUE(write_hf_folder(wts, f.hf));
  ASSERT_TRUE(write_gguf_model(wts, f.gguf));
  Model hf = must(open_model(f.hf)), gg = must(open_model(f.gguf));
  ASSERT_EQ(gg.desc().rope_layout, RopeLayout::interleaved);
  EXPECT_EQ(gg.desc().rope_freq_factors.empty(), !variant);
  auto a = must(TrainModel::create(hf, lora_options()));
  auto b = must(TrainModel::create(gg, lora_options()));
  randomize_b(*a);
  randomize_b(*b);
  Batch bt = make_batch(1);
  auto la = must(a->forward_backward(bt.tokens, bt.targets, B, T));
  auto lb = must(b->forward_backward(bt.tokens, bt.targets, B, T));
  const double loss_err = std::abs(la.loss - lb.loss) / la.loss;
  const double gerr = grad_error(*b, *a);
  std::printf("GGUF llama base vs HF base: loss %.8f vs %.8f (rel %.3g), LoRA grads max rel error %.3g\n",
              lb.loss, la.loss, loss_err, gerr);
  EXPECT_LT(loss_err, 1e-6);
  EXPECT_LT(gerr, 1e-5);
  // Full fine-tuning reads both into the Hugging Face convention.
  ModelOptions full;
  full.method = Method::full;
  full.n_threads = 1;
  auto c = must(TrainModel::create(hf, full));
  auto d = must(TrainModel::create(gg, full));
  auto lc = must(c->forward_backward(bt.tokens, bt.targets, B, T));
  auto ld = must(d->forward_backward(bt.tokens, bt.targets, B, T));
  EXPECT_LT(std::abs(lc.loss - ld.loss) / lc.loss, 1e-6);
  EXPECT_LT(grad_error(*d, *c), 1e-5);
  EXPECT_NEAR(lc.loss, la.loss, 0.5);  // same base network; LoRA's B only moves it a little
}

INSTANTIATE_TEST_SUITE_P(TrainModel, GgufVsHf, ::testing::Bool());

TEST(TrainModel, RecomputeGivesIdenticalGradsWithLessMemory) {
  Files f = write_llama("recompute", 32);
  Model gg = must(open_model(f.gguf));
  Batch bt = make_batch(2);
  for (int threads : {1, 2}) {
    // LoRA with dropout on the GGUF base (permuted q/k rows), then full fine-tuning of a qwen3 model.
    auto a = must(TrainModel::create(gg, lora_options(0.1f, false, threads)));
    auto b = must(TrainModel::create(gg, lora_options(0.1f, true, threads)));
    randomize_b(*a);
    randomize_b(*b);
    auto la = must(a->forward_backward(bt.tokens, bt.targets, B, T, 1.0f, 77));
    auto lb = must(b->forward_backward(bt.tokens, bt.targets, B, T, 1.0f, 77));
    EXPECT_EQ(la.loss, lb.loss);
    EXPECT_TRUE(grads_identical(*a, *b)) << "LoRA, " << threads << " threads";
    EXPECT_LT(b->memory_bytes(), a->memory_bytes());

    ModelOptions o;
    o.method = Method::pretrain;
    o.n_threads = threads;
    ModelParams p = tiny_params(Architecture::qwen3, 64, 3, VOCAB);
    auto c = must(TrainModel::create_from_scratch(p, o));
    o.recompute = true;
    auto d = must(TrainModel::create_from_scratch(p, o));
    auto lc = must(c->forward_backward(bt.tokens, bt.targets, B, T));
    auto ld = must(d->forward_backward(bt.tokens, bt.targets, B, T));
    EXPECT_EQ(lc.loss, ld.loss);
    EXPECT_TRUE(grads_identical(*c, *d)) << "full, " << threads << " threads";
    std::printf("%d threads: memory without / with recompute: LoRA %.2f / %.2f MB, full %.2f / %.2f MB\n",
                threads, a->memory_bytes() / 1e6, b->memory_bytes() / 1e6, c->memory_bytes() / 1e6,
                d->memory_bytes() / 1e6);
    EXPECT_LT(d->memory_bytes(), c->memory_bytes());
  }
}

TEST(TrainModel, QuantizedBaseLoraTrainsCloseToF32) {
  // Bases in a stored type other than F32: quantized GGUF (llama: interleaved q/k rows; qwen2: tied
  // embeddings, so the dequantized output matrix also serves the embedding) and an F16 HF folder.
  struct Variant {
    std::string label;
    Architecture arch;
    GgmlType type;
    bool hf;
    double loss_tol;
  };
  fs::path dir = test::scratch("quantized");
  Batch bt = make_batch(3);
  for (const Variant& v : {Variant{"llama Q8_0", Architecture::llama, GgmlType::Q8_0, false, 5e-3},
                           Variant{"llama Q4_0", Architecture::llama, GgmlType::Q4_0, false, 2e-2},
                           Variant{"qwen2 Q8_0 (tied)", Architecture::qwen2, GgmlType::Q8_0, false, 5e-3},
                           Variant{"llama HF F16", Architecture::llama, GgmlType::F16, true, 1e-4}}) {
    auto w = must(make_random_weights(tiny_params(v.arch, 64, 2, VOCAB), 33));
    fs::path f32 = dir / (v.label + "-f32"), path = dir / (v.label + (v.hf ? "-hf" : ".gguf"));
    ASSERT_TRUE(write_hf_folder(w, f32));
    if (v.hf) {
      HfWriteOptions o;
      o.dtype = v.type;
      ASSERT_TRUE(write_hf_folder(w, path, o));
    } else {
      GgufWriteOptions o;
      o.type = v.type;
      ASSERT_TRUE(write_gguf_model(w, path, o));
    }
    Model ref_model = must(open_model(f32));
    auto ref = must(TrainModel::create(ref_model, lora_options()));
    randomize_b(*ref);
    auto lr = must(ref->forward_backward(bt.tokens, bt.targets, B, T));
    Model m = must(open_model(path));
    auto q = must(TrainModel::create(m, lora_options(0.0f, false, 2)));  // threads: rows dequantized in parallel
    randomize_b(*q);
    auto lq = must(q->forward_backward(bt.tokens, bt.targets, B, T));
    // Exactly the network of its dequantized weights: the same values as an F32 Hugging Face folder.
    fs::path deq = dir / (v.label + "-dequantized");
    ASSERT_TRUE(write_hf_folder(must(read_weights(m)), deq));
    Model dm = must(open_model(deq));
    auto d = must(TrainModel::create(dm, lora_options()));
    randomize_b(*d);
    auto ld = must(d->forward_backward(bt.tokens, bt.targets, B, T));
    const double de = std::abs(lq.loss - ld.loss) / ld.loss;
    const double dg = grad_error(*q, *d);
    // And close to the F32 original (quantization moves the network a little).
    const double e = std::abs(lq.loss - lr.loss) / lr.loss;
    std::printf("%s base: LoRA loss %.6f, its dequantized F32 copy %.6f (rel %.3g, grads max rel %.3g); "
                "F32 original %.6f (rel %.3g)\n",
                v.label.c_str(), lq.loss, ld.loss, de, dg, lr.loss, e);
    EXPECT_LT(de, 1e-6) << v.label;
    EXPECT_LT(dg, 1e-5) << v.label;
    EXPECT_LT(e, v.loss_tol) << v.label;
    // It learns: a few AdamW steps on the batch lower the loss.
    AdamW opt(q->trainable(), AdamWSettings{});
    double first = 0, last = 0;
    for (int s = 0; s < 5; ++s) {
      q->zero_grad();
      auto l = must(q->forward_backward(bt.tokens, bt.targets, B, T));
      (s == 0 ? first : last) = l.loss;
      opt.step(1e-2);
    }
    EXPECT_LT(last, first);
  }
  // The frozen base is not copied to F32: LoRA on Q4_0 holds less than full fine-tuning does.
  Model m = must(open_model(dir / "llama Q4_0.gguf"));
  auto q = must(TrainModel::create(m, lora_options()));
  ModelOptions full;
  full.method = Method::full;
  auto fm = must(TrainModel::create(m, full));
  must(q->forward_backward(bt.tokens, bt.targets, B, T));
  must(fm->forward_backward(bt.tokens, bt.targets, B, T));
  EXPECT_LT(q->memory_bytes(), fm->memory_bytes());
}

TEST(TrainModel, MergedWeightsReproduceTheLoraNetwork) {
  Files f = write_llama("merged", 34);
  Model gg = must(open_model(f.gguf));
  auto a = must(TrainModel::create(gg, lora_options()));
  randomize_b(*a, 8);
  Batch bt = make_batch(4);
  auto la = must(a->evaluate(bt.tokens, bt.targets, B, T));
  ModelWeights w = must(a->merged_weights());
  fs::path out = test::scratch("merged-out") / "hf";
  ASSERT_TRUE(write_hf_folder(w, out));
  Model merged = must(open_model(out));
  ModelOptions full;
  full.method = Method::full;
  full.n_threads = 1;
  auto b = must(TrainModel::create(merged, full));
  auto lb = must(b->evaluate(bt.tokens, bt.targets, B, T));
  EXPECT_LT(std::abs(la.loss - lb.loss) / la.loss, 1e-5) << la.loss << " vs " << lb.loss;
  // And the base alone differs (B is not zero), so the check above is not vacuous.
  auto c = must(TrainModel::create(gg, lora_options()));
  auto lc = must(c->evaluate(bt.tokens, bt.targets, B, T));
  EXPECT_GT(std::abs(lc.loss - la.loss), 1e-4);
  // Full fine-tuning's merged weights are its Params.
  auto wb = must(b->merged_weights());
  for (const Param* q : b->trainable())
    if (q->name == "model.layers.1.self_attn.q_proj.weight") {
      EXPECT_EQ(wb.layers[1].wq, q->value);
    }
}

TEST(TrainModel, DeterministicAndAccumulates) {
  Files f = write_llama("determinism", 35);
  Model hf = must(open_model(f.hf));
  Batch bt = make_batch(5);
  ModelOptions o;
  o.method = Method::full;
  o.n_threads = 2;
  auto a = must(TrainModel::create(hf, o));
  auto b = must(TrainModel::create(hf, o));
  auto la = must(a->forward_backward(bt.tokens, bt.targets, B, T));
  auto lb = must(b->forward_backward(bt.tokens, bt.targets, B, T));
  EXPECT_EQ(la.loss, lb.loss);
  EXPECT_TRUE(grads_identical(*a, *b));
  // Two half-scaled passes accumulate to one full pass.
  b->zero_grad();
  must(b->forward_backward(bt.tokens, bt.targets, B, T, 0.5f));
  must(b->forward_backward(bt.tokens, bt.targets, B, T, 0.5f));
  EXPECT_LT(grad_error(*b, *a), 1e-6);
  // evaluate() gives the forward_backward loss and touches no gradient.
  b->zero_grad();
  auto le = must(b->evaluate(bt.tokens, bt.targets, B, T));
  EXPECT_NEAR(le.loss, la.loss, 1e-6 * la.loss);
  EXPECT_EQ(le.n_tokens, la.n_tokens);
  for (const Param* p : b->trainable())
    for (float g : p->grad) ASSERT_EQ(g, 0.0f) << p->name;
  // Dropout masks follow the seed.
  auto c = must(TrainModel::create(hf, lora_options(0.3f)));
  randomize_b(*c);
  double l1 = must(c->forward_backward(bt.tokens, bt.targets, B, T, 1.0f, 1)).loss;
  double l1b = must(c->forward_backward(bt.tokens, bt.targets, B, T, 1.0f, 1)).loss;
  double l2 = must(c->forward_backward(bt.tokens, bt.targets, B, T, 1.0f, 2)).loss;
  EXPECT_EQ(l1, l1b);
  EXPECT_NE(l1, l2);
}

TEST(TrainModel, PretrainFromScratchLearnsAndNamesItsParams) {
  ModelParams p = tiny_params(Architecture::llama, 64, 2, VOCAB);
  ModelOptions o;
  o.method = Method::pretrain;
  o.n_threads = 1;
  auto m = must(TrainModel::create_from_scratch(p, o));
  int64_t n = 0;
  for (const Param* q : m->trainable()) n += q->numel();
  EXPECT_EQ(n, m->n_trainable());
  auto ps = m->trainable();
  EXPECT_EQ(ps.front()->name, "model.embed_tokens.weight");
  EXPECT_EQ(ps.back()->name, "lm_head.weight");
  for (const Param* q : ps) EXPECT_EQ(q->decay, q->shape.size() == 2) << q->name;
  Batch bt = make_batch(6);
  AdamW opt(m->trainable(), AdamWSettings{});
  double first = 0, last = 0;
  for (int s = 0; s < 8; ++s) {
    m->zero_grad();
    auto l = must(m->forward_backward(bt.tokens, bt.targets, B, T));
    (s == 0 ? first : last) = l.loss;
    opt.step(3e-3);
  }
  EXPECT_LT(last, first * 0.8);
  // No counted target: loss 0, no gradient.
  m->zero_grad();
  std::vector<int32_t> none(bt.targets.size(), -1);
  auto l = must(m->forward_backward(bt.tokens, none, B, T));
  EXPECT_EQ(l.n_tokens, 0);
  EXPECT_EQ(l.loss, 0.0);
  for (const Param* q : m->trainable())
    for (float g : q->grad) ASSERT_EQ(g, 0.0f) << q->name;
}

TEST(TrainModel, BadInputGivesErrors) {
  Files f = write_llama("errors", 36);
  Model hf = must(open_model(f.hf));
  auto bad_opts = [&](auto tweak) {
    ModelOptions o = lora_options();
    tweak(o);
    auto r = TrainModel::create(hf, o);
    EXPECT_FALSE(r);
    return r ? ErrorCode::internal : r.error().code;
  };
  EXPECT_EQ(bad_opts([](ModelOptions& o) { o.lora.rank = 0; }), ErrorCode::invalid_argument);
  EXPECT_EQ(bad_opts([](ModelOptions& o) { o.lora.dropout = 1.0f; }), ErrorCode::invalid_argument);
  EXPECT_EQ(bad_opts([](ModelOptions& o) { o.lora.targets = {"q", "qkv"}; }), ErrorCode::invalid_argument);
  EXPECT_EQ(bad_opts([](ModelOptions& o) { o.method = Method::pretrain; }), ErrorCode::invalid_argument);
  ModelParams bad = tiny_params(Architecture::llama);
  bad.n_head_kv = 3;
  EXPECT_FALSE(TrainModel::create_from_scratch(bad, ModelOptions{}));

  auto m = must(TrainModel::create(hf, lora_options()));
  Batch bt = make_batch(7);
  auto code = [](const Expected<LossResult>& r) { return r ? ErrorCode::internal : r.error().code; };
  EXPECT_EQ(code(m->forward_backward(bt.tokens, bt.targets, B, T + 1)), ErrorCode::invalid_argument);
  EXPECT_EQ(code(m->forward_backward({}, {}, 0, 0)), ErrorCode::invalid_argument);
  auto toks = bt.tokens;
  toks[5] = int32_t(VOCAB);
  EXPECT_EQ(code(m->forward_backward(toks, bt.targets, B, T)), ErrorCode::out_of_range);
  toks[5] = -2;
  EXPECT_EQ(code(m->evaluate(toks, bt.targets, B, T)), ErrorCode::out_of_range);
  auto tg = bt.targets;
  tg[7] = int32_t(VOCAB) + 4;
  EXPECT_EQ(code(m->forward_backward(bt.tokens, tg, B, T)), ErrorCode::out_of_range);
  const int64_t ctx = m->params().n_ctx_train;
  std::vector<int32_t> longer(size_t(ctx + 1), 1);
  EXPECT_EQ(code(m->forward_backward(longer, longer, 1, ctx + 1)), ErrorCode::invalid_argument);
  // Still usable after the errors.
  EXPECT_TRUE(m->forward_backward(bt.tokens, bt.targets, B, T));
}

}  // namespace

namespace {

// The shared tiny real GGUF (llama, F16 and F32 tensors, the 32,000-piece Llama 2 vocabulary): LoRA on
// its stored types and full fine-tuning both learn a batch, and the two start from the same network.
TEST(TrainModel, RealTinyGgufTrains) {
  auto m = open_model(test::testdata("models/llama-2-tiny-random.gguf"));
  ASSERT_TRUE(m) << m.error().to_string();
  const int64_t V = m->desc().params.n_vocab;
  std::mt19937 rng(4);
  std::vector<int32_t> tokens(size_t(2 * 16)), targets(tokens.size());
  for (auto& t : tokens) t = int32_t(rng() % uint32_t(V));
  for (size_t i = 0; i < tokens.size(); ++i) targets[i] = (i % 16 == 15) ? -1 : tokens[i + 1];
  double start[2] = {0, 0};
  int k = 0;
  for (Method method : {Method::lora, Method::full}) {
    ModelOptions o = lora_options();
    o.method = method;
    auto tm = must(TrainModel::create(*m, o));
    AdamW opt(tm->trainable(), AdamWSettings{});
    double first = 0, last = 0;
    for (int s = 0; s < 4; ++s) {
      tm->zero_grad();
      auto l = must(tm->forward_backward(tokens, targets, 2, 16));
      ASSERT_TRUE(std::isfinite(l.loss));
      (s == 0 ? first : last) = l.loss;
      opt.step(method == Method::lora ? 1e-2 : 1e-3);
    }
    std::printf("%s on llama-2-tiny-random.gguf: loss %.5f -> %.5f\n", method_name(method), first, last);
    EXPECT_LT(last, first);
    start[k++] = first;
  }
  EXPECT_NEAR(start[0], start[1], 1e-4 * start[0]);  // LoRA's B starts at zero: the base network
}

}  // namespace
