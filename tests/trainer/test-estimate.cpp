/* Memory and time estimates (estimate.h): the LoRA parameter count matches the parameters a real
 * TrainModel creates, memory grows with batch and shrinks with recompute, and the gemm probe gives a
 * plausible positive rate.
 *
 * Non-obvious choice: the trainable count is checked against TrainModel::n_trainable() of the tiny
 * real model (an independent count: the model allocates the factors), not against a formula here.
 */
#include <gtest/gtest.h>

#include "hearth/model.h"
#include "hearth/trainer/estimate.h"
#include "hearth/trainer/train-model.h"
#include "test-util.h"

using namespace hearth;
using namespace hearth::train;

namespace {
std::filesystem::path tiny() { return test::testdata() / "models" / "llama-2-tiny-random.gguf"; }
}  // namespace

TEST(Estimate, LoraCountMatchesTrainModel) {
  auto m = open_model(tiny());
  ASSERT_TRUE(m) << m.error().to_string();
  for (std::vector<std::string> targets : {std::vector<std::string>{"q", "v"},
                                           std::vector<std::string>{"q", "k", "v", "o", "gate", "up", "down"}}) {
    ModelOptions o;
    o.method = Method::lora;
    o.lora.rank = 4;
    o.lora.targets = targets;
    auto tm = TrainModel::create(*m, o);
    ASSERT_TRUE(tm) << tm.error().to_string();
    EXPECT_EQ(count_trainable(m->desc().params, m->desc().n_params, Method::lora, o.lora), (*tm)->n_trainable());
  }
  ModelOptions full;
  full.method = Method::full;
  auto tf = TrainModel::create(*m, full);
  ASSERT_TRUE(tf) << tf.error().to_string();
  EXPECT_EQ(count_trainable(m->desc().params, m->desc().n_params, Method::full, {}), (*tf)->n_trainable());
}

TEST(Estimate, MemoryScalesWithBatchAndRecompute) {
  auto m = open_model(tiny());
  ASSERT_TRUE(m);
  TrainConfig c;
  c.method = Method::full;
  c.training.batch_size = 2;
  c.data.max_length = 128;
  const auto& d = m->desc();
  MemoryEstimate a = estimate_memory(d.params, d.n_params, d.file_size, c);
  EXPECT_EQ(a.parameters, uint64_t(d.n_params) * 4);
  EXPECT_EQ(a.optimizer, 2 * a.gradients);
  EXPECT_EQ(a.total, a.base_weights + a.parameters + a.gradients + a.optimizer + a.activations);
  c.training.batch_size = 8;
  MemoryEstimate b = estimate_memory(d.params, d.n_params, d.file_size, c);
  EXPECT_GT(b.activations, 3 * a.activations);
  c.training.recompute = true;
  MemoryEstimate r = estimate_memory(d.params, d.n_params, d.file_size, c);
  EXPECT_LE(r.activations, b.activations);
  ModelParams deep = d.params;  // with many layers recompute saves most of the activations
  deep.n_layer = 24;
  c.training.recompute = false;
  const uint64_t kept = estimate_memory(deep, d.n_params, d.file_size, c).activations;
  c.training.recompute = true;
  EXPECT_LT(estimate_memory(deep, d.n_params, d.file_size, c).activations, kept);
  c.method = Method::lora;
  MemoryEstimate l = estimate_memory(d.params, d.n_params, d.file_size, c);
  EXPECT_LT(l.parameters, b.parameters);
}

TEST(Estimate, FlopsAndProbe) {
  ModelParams p;
  p.n_layer = 2;
  p.n_embd = 64;
  p.n_head = 4;
  const double full = training_flops(p, 1000000, 1000000, Method::full, 100, 1);
  const double lora = training_flops(p, 1000000, 1000, Method::lora, 100, 1);
  EXPECT_NEAR(full, 100 * (6e6 + 12.0 * 2 * 64), 1.0);
  EXPECT_LT(lora, full);
  const double rate = measure_gemm_flops(0.05);
  EXPECT_GT(rate, 1e8);   // any machine that trains does more than 0.1 GFLOP/s
  EXPECT_LT(rate, 1e15);
  EXPECT_GT(available_memory_bytes(), 0u);
}
