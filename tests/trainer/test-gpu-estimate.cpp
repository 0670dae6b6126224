/* GPU training memory (estimate_gpu_training_memory, estimate.h) for a TinyLlama-shaped 1.1B model and
 * the tiny real model: the weight-side fields by hand (full fine-tuning in BF16 mixed precision and in
 * F32, LoRA over the stored base), the activations against a lower bound written out here (what the
 * device trainer must keep for backward: every layer's F32 activations and attention probabilities),
 * and the CPU estimate unchanged.
 *
 * Non-obvious choice: the exact activation figure is not restated here; it is checked against what the
 * device trainer really allocates (DeviceTrainer::device_bytes(), within 1 %) by
 * CudaTrainerApi.MemoryEstimateMatchesWhatTheTrainerAllocates in tests/gpu/test-cuda-trainer.cpp, which
 * runs in CI on the CUDA emulation (trainer-test-cuda-trainer-emulated) and on a GPU.
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
// The matrices its products read in BF16: q, k, v, o, gate, up, down per layer and lm_head.
constexpr uint64_t TINYLLAMA_MATRICES = 22ull * (2 * 2048 * 2048 + 2 * 2048 * 256 + 3 * 2048 * 5632) + 32000ull * 2048;

// F32 values kept for backward per layer at B × T (TinyLlama: 32 heads, q 2048, k/v 256, ff 5632):
// q, k, v, the attention output, the residual, gate, up and the B·32·T² probabilities.
uint64_t kept_floor(uint64_t B, uint64_t T) {
  const uint64_t N = B * T;
  return 4 * 22 * (N * (2048 + 2 * 256 + 2048 + 2048 + 2 * 5632) + B * 32 * T * T);
}

}  // namespace

TEST(GpuTrainEstimate, TinyLlamaFullBf16) {
  ASSERT_EQ(TINYLLAMA_PARAMS, 1'100'048'384);  // the published count
  TrainConfig c;
  c.method = Method::full;
  c.training.batch_size = 4;
  c.data.max_length = 512;
  const MemoryEstimate m = estimate_gpu_training_memory(test::tinyllama_shape(), TINYLLAMA_PARAMS, 2'200'000'000, c);
  const uint64_t n = TINYLLAMA_PARAMS;
  EXPECT_EQ(m.trainable_params, TINYLLAMA_PARAMS);
  EXPECT_EQ(m.base_weights, 2 * TINYLLAMA_MATRICES);  // BF16 working copies of the matrices, not the file
  EXPECT_EQ(m.parameters, 4 * n);                     // F32 master
  EXPECT_EQ(m.gradients, 4 * n);
  EXPECT_EQ(m.optimizer, 8 * n);
  EXPECT_EQ(m.overhead, ALLOWANCE);
  EXPECT_GE(m.activations, kept_floor(4, 512));
  EXPECT_LE(m.activations, 2 * kept_floor(4, 512));
  EXPECT_EQ(m.total, m.base_weights + 16 * n + m.activations + ALLOWANCE);

  // Twice the rows: about twice the activations (the logits chunk is capped, the rest is per row).
  c.training.batch_size = 8;
  const MemoryEstimate b8 = estimate_gpu_training_memory(test::tinyllama_shape(), TINYLLAMA_PARAMS, 0, c);
  EXPECT_NEAR(double(b8.activations) / double(m.activations), 2.0, 0.1);
  // F32 products: no BF16 copies, and no BF16 staging of activations.
  c.training.batch_size = 4;
  c.training.precision = "f32";
  const MemoryEstimate f = estimate_gpu_training_memory(test::tinyllama_shape(), TINYLLAMA_PARAMS, 0, c);
  EXPECT_EQ(f.base_weights, 0u);
  EXPECT_EQ(f.parameters, 4 * n);
  EXPECT_LT(f.activations, m.activations);
  EXPECT_GE(f.activations, kept_floor(4, 512));
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
  // The base as stored, a BF16 copy of the classifier, one matrix (gate/up/down: 2048 × 5632) dequantized.
  EXPECT_EQ(m.base_weights, file + 2ull * 32000 * 2048 + 2ull * 2048 * 5632);
  EXPECT_EQ(m.parameters, 4 * lora + 2 * lora);  // F32 adapters and their BF16 copies
  EXPECT_EQ(m.gradients, 4 * lora);
  EXPECT_EQ(m.optimizer, 8 * lora);
  EXPECT_GE(m.activations, kept_floor(1, 2048));
  EXPECT_EQ(m.overhead, ALLOWANCE);
  EXPECT_EQ(m.total, m.base_weights + 18 * lora + m.activations + ALLOWANCE);
  // In F32 the base is dequantized whole: 4 bytes per parameter instead of the file.
  c.training.precision = "f32";
  const MemoryEstimate f = estimate_gpu_training_memory(test::tinyllama_shape(), TINYLLAMA_PARAMS, file, c);
  EXPECT_EQ(f.base_weights, 4ull * TINYLLAMA_PARAMS);
  EXPECT_EQ(f.parameters, 4 * lora);
}

// The tiny real model: the CPU estimate (unchanged, no overhead) by hand, and the GPU one's weight side.
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
  EXPECT_EQ(gpu.parameters + gpu.gradients + gpu.optimizer, 16 * n);
  EXPECT_GT(gpu.activations, 0u);
  EXPECT_EQ(gpu.total, gpu.base_weights + 16 * n + gpu.activations + ALLOWANCE);
}
