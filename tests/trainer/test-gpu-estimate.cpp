/* GPU training memory (estimate_gpu_training_memory, estimate.h): every field against the numbers written
 * out here by hand for a TinyLlama-shaped 1.1B model and the tiny real model, full fine-tuning in BF16
 * mixed precision and LoRA over the stored base.
 *
 * Non-obvious choice: the activation values are recomputed here from the formula in estimate.h's
 * comment (per layer and token 8·n_embd + 3·n_ff + n_head·seq), not taken from estimate_memory(), so a
 * change to the shared helper that breaks either estimate shows up; the CPU estimate is checked to be
 * unchanged by the refactor with the same numbers.
 */
#include <gtest/gtest.h>

#include "hearth/model.h"
#include "hearth/trainer/estimate.h"
#include "test-models.h"
#include "test-util.h"

using namespace hearth;
using namespace hearth::train;

namespace {

constexpr uint64_t ALLOWANCE = 600ull << 20;


// TinyLlama 1.1B: embedding + output + final norm + 22 layers (2 norms, q, k, v, o, gate, up, down).
constexpr int64_t TINYLLAMA_PARAMS =
    2 * 32000 * 2048 + 2048 + 22 * (2 * 2048 + 2 * 2048 * 2048 + 2 * 2048 * 256 + 3 * 2048 * 5632);

}  // namespace

TEST(GpuTrainEstimate, TinyLlamaFullBf16) {
  ASSERT_EQ(TINYLLAMA_PARAMS, 1'100'048'384);  // the published count
  TrainConfig c;
  c.method = Method::full;
  c.training.batch_size = 4;
  c.data.max_length = 512;
  c.training.recompute = false;
  const MemoryEstimate m = estimate_gpu_training_memory(test::tinyllama_shape(), TINYLLAMA_PARAMS, 2'200'000'000, c);
  const uint64_t n = TINYLLAMA_PARAMS;
  EXPECT_EQ(m.trainable_params, TINYLLAMA_PARAMS);
  EXPECT_EQ(m.base_weights, 2 * n);  // BF16 working weights, not the file
  EXPECT_EQ(m.parameters, 4 * n);    // F32 master
  EXPECT_EQ(m.gradients, 4 * n);
  EXPECT_EQ(m.optimizer, 8 * n);
  // 4·512 tokens × 22 layers × (8·2048 + 3·5632 + 32·512) values in BF16, 1024 × 32000 logits in F32.
  const uint64_t kept = 4ull * 512 * 22 * (8 * 2048 + 3 * 5632 + 32 * 512);
  EXPECT_EQ(m.activations, 2 * kept + 4ull * 1024 * 32000);
  EXPECT_EQ(m.overhead, ALLOWANCE);
  EXPECT_EQ(m.total, 18 * n + 2 * kept + 4ull * 1024 * 32000 + ALLOWANCE);

  // With recompute only each layer's input plus one whole layer are kept.
  c.training.recompute = true;
  const MemoryEstimate r = estimate_gpu_training_memory(test::tinyllama_shape(), TINYLLAMA_PARAMS, 0, c);
  EXPECT_EQ(r.activations, 2 * (4ull * 512 * (22 * 2048 + 8 * 2048 + 3 * 5632 + 32 * 512)) + 4ull * 1024 * 32000);
}

TEST(GpuTrainEstimate, TinyLlamaLoraKeepsTheStoredBase) {
  TrainConfig c;
  c.method = Method::lora;
  c.lora.rank = 16;
  c.lora.targets = {"q", "k", "v", "o"};
  c.training.batch_size = 1;
  c.data.max_length = 2048;
  const uint64_t file = 668'788'416;  // a Q4_K_M file's size: taken as given
  const MemoryEstimate m = estimate_gpu_training_memory(test::tinyllama_shape(), TINYLLAMA_PARAMS, file, c);
  // rank · (in + out) per target per layer: q (2048+2048), k, v (2048+256), o (2048+2048).
  const uint64_t lora = 22ull * 16 * ((2048 + 2048) * 2 + (2048 + 256) * 2);
  EXPECT_EQ(uint64_t(m.trainable_params), lora);
  EXPECT_EQ(m.base_weights, file);
  EXPECT_EQ(m.parameters, 4 * lora);
  EXPECT_EQ(m.gradients, 4 * lora);
  EXPECT_EQ(m.optimizer, 8 * lora);
  const uint64_t kept = 2048ull * 22 * (8 * 2048 + 3 * 5632 + 32 * 2048);
  EXPECT_EQ(m.activations, 2 * kept + 4ull * 1024 * 32000);
  EXPECT_EQ(m.overhead, ALLOWANCE);
  EXPECT_EQ(m.total, file + 16 * lora + 2 * kept + 4ull * 1024 * 32000 + ALLOWANCE);
}

// The tiny real model: the GPU estimate and the CPU estimate (unchanged, no overhead) by hand.
TEST(GpuTrainEstimate, TinyRealModelAgainstCpuEstimate) {
  auto model = open_model(test::testdata() / "models" / "llama-2-tiny-random.gguf");
  ASSERT_TRUE(model) << model.error().to_string();
  const ModelDesc& d = model->desc();
  const ModelParams& p = d.params;
  TrainConfig c;
  c.method = Method::full;
  c.training.batch_size = 2;
  c.data.max_length = 64;
  const uint64_t n = uint64_t(d.n_params);
  const uint64_t kept = 2ull * 64 * uint64_t(p.n_layer) *
                        (8 * uint64_t(p.n_embd) + 3 * uint64_t(p.n_ff) + uint64_t(p.n_head) * 64);
  const uint64_t logits = std::min<uint64_t>(128, 1024) * uint64_t(p.n_vocab);

  const MemoryEstimate cpu = estimate_memory(p, d.n_params, d.file_size, c);
  EXPECT_EQ(cpu.base_weights, d.file_size);
  EXPECT_EQ(cpu.activations, 4 * (kept + logits));
  EXPECT_EQ(cpu.overhead, 0u);
  EXPECT_EQ(cpu.total, d.file_size + 16 * n + 4 * (kept + logits));

  const MemoryEstimate gpu = estimate_gpu_training_memory(p, d.n_params, d.file_size, c);
  EXPECT_EQ(gpu.base_weights, 2 * n);
  EXPECT_EQ(gpu.activations, 2 * kept + 4 * logits);
  EXPECT_EQ(gpu.total, 18 * n + 2 * kept + 4 * logits + ALLOWANCE);
}
