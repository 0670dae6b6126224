/* The network the trainer differentiates: llama, qwen2 and qwen3 blocks with a forward pass that keeps
 * its activations and a backward pass that accumulates gradients into the trainable Params.
 *
 * Three set-ups (Method):
 * - lora: the base weights stay frozen in their stored type inside the engine Model (quantized GGUF
 *   included; each matrix is dequantized to F32 when a layer needs it and dropped after); the trainable
 *   Params are the LoRA factors A {rank, in} and B {out, rank} of the target modules. y = W x + b +
 *   (alpha / rank) · B A dropout(x). A starts as PEFT's (Kaiming-uniform, a = sqrt(5)), B at zero.
 * - full: every weight copied to F32 master Params (read_weights), all trainable.
 * - pretrain: fresh weights from make_random_weights(params, seed), all trainable.
 *
 * Loss: mean cross-entropy over the positions whose target is >= 0, computed by a fused classifier that
 * never holds more than a chunk of rows of logits (llm.c's approach). Positions restart at 0 in every
 * row of a batch.
 *
 * Ownership and threads: a TrainModel made with create() points into `base`, which must outlive it.
 * One thread uses a TrainModel at a time; it uses OpenMP/OpenBLAS threads internally (n_threads).
 * Determinism: with the same thread count, the same inputs give bit-identical losses and gradients.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hearth/error.h"
#include "hearth/model-writer.h"
#include "hearth/model.h"
#include "hearth/trainer/param.h"

namespace hearth::train {

enum class Method { lora, full, pretrain };
const char* method_name(Method m);                    // "lora", "full", "pretrain"
Expected<Method> method_from_name(const std::string& s);

struct LoraSettings {
  int64_t rank = 8;
  float alpha = 16.0f;
  float dropout = 0.0f;  // on the LoRA branch's input, training only
  // Any of q, k, v, o, gate, up, down.
  std::vector<std::string> targets = {"q", "k", "v", "o", "gate", "up", "down"};
  float scale() const { return rank > 0 ? alpha / float(rank) : 0.0f; }
};

struct ModelOptions {
  Method method = Method::lora;
  LoraSettings lora;
  bool recompute = false;  // keep only each layer's input; recompute the rest in backward (less memory)
  int n_threads = 0;       // 0: all hardware threads
  uint64_t seed = 42;      // LoRA A initialisation / pretraining weights
};

struct LossResult {
  double loss = 0;       // mean over counted positions (0 when none)
  int64_t n_tokens = 0;  // positions with a target >= 0
};

class TrainModel {
 public:
  // lora / full from an open model. Errors: invalid_argument (method pretrain, bad LoRA settings:
  // rank < 1, unknown target, dropout outside [0, 1)); the engine's errors reading weights.
  static Expected<std::unique_ptr<TrainModel>> create(const Model& base, const ModelOptions& options);
  // pretrain: a new network of shape `params`. Errors: invalid_argument for an impossible shape.
  static Expected<std::unique_ptr<TrainModel>> create_from_scratch(const ModelParams& params,
                                                                   const ModelOptions& options);
  ~TrainModel();

  const ModelParams& params() const;
  const ModelOptions& options() const;
  // The trainable tensors, in a fixed order (checkpoints and the optimizer rely on it).
  std::vector<Param*> trainable();
  std::vector<const Param*> trainable() const;
  int64_t n_trainable() const;  // values
  void zero_grad();

  // tokens and targets: B rows of T ids, row-major. targets[i] < 0: no loss at i. Adds grad_scale ·
  // d(loss)/d(param) to every trainable Param::grad (so accumulating micro-batches with grad_scale =
  // 1/accum gives the mean). dropout_seed makes LoRA dropout masks reproducible.
  // Errors: invalid_argument (sizes, B·T == 0, T > context), out_of_range (a token id >= n_vocab).
  Expected<LossResult> forward_backward(std::span<const int32_t> tokens, std::span<const int32_t> targets,
                                        int64_t B, int64_t T, float grad_scale = 1.0f,
                                        uint64_t dropout_seed = 0);
  // Loss only (no dropout, no gradients, activations not kept).
  Expected<LossResult> evaluate(std::span<const int32_t> tokens, std::span<const int32_t> targets, int64_t B,
                                int64_t T);

  // The network's weights now (Hugging Face convention), LoRA merged into the base matrices:
  // W' = W + scale · B A. For export and for generating samples with the engine.
  Expected<ModelWeights> merged_weights() const;
  // Bytes the model holds now (weights copied to F32, grads, activations of the last batch).
  uint64_t memory_bytes() const;

  // Which trainable tensor is which, for a second implementation of the same network (the CUDA path,
  // trainer/src/device-trainer.h). Indices are into trainable(); -1: absent.
  struct Structure {
    static constexpr int N_TARGETS = 7;  // LoRA target modules, in this order: q, k, v, o, gate, up, down
    struct FullLayer {                   // full / pretrain
      int attn_norm = -1, wq = -1, bq = -1, wk = -1, bk = -1, wv = -1, bv = -1, wo = -1, bo = -1, q_norm = -1,
          k_norm = -1, ffn_norm = -1, gate = -1, up = -1, down = -1;
    };
    std::vector<FullLayer> full;  // empty for lora
    int embed = -1, norm = -1, lm_head = -1;
    // lora: per layer and target, the index of A (B is the next index); -1: not a target.
    std::vector<std::vector<int>> lora;
    const Model* base = nullptr;   // lora: the frozen base (its tensors as stored)
    bool permuted_qk = false;      // lora: the base's wq/wk rows are interleaved per head (GGUF llama)
    std::vector<float> inv_freq;   // RoPE angular frequencies (head_dim/2), scaling applied
    // The dropout seed of target t of layer l for a forward_backward call's dropout_seed.
    static uint64_t lora_dropout_seed(uint64_t step_seed, int64_t layer, int target);
  };
  const Structure& structure() const;

  struct Impl;

 private:
  explicit TrainModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

// The checks forward_backward() and evaluate() make of a batch, for other backends (the GPU trainer) to
// make the same: sizes (invalid_argument), the model's context, and every token and target id against
// the vocabulary (out_of_range, naming the position).
Expected<void> check_batch(const ModelParams& p, std::span<const int32_t> tokens, std::span<const int32_t> targets,
                           int64_t B, int64_t T);

}  // namespace hearth::train
