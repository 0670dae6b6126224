/* Before a run starts: how much memory it will need and about how long it will take on this machine
 * (the fine-tune wizard's settings page shows both, and warns before a run would not fit in RAM).
 *
 * Non-obvious choice: time is FLOPs ÷ a MEASURED matrix-product rate, not a guess per CPU model:
 * measure_gemm_flops() times the trainer's own gemm() (OpenBLAS, the trainer's thread count) on
 * 512×512 matrices for about `seconds`. FLOPs per trained token are 6·N for full fine-tuning
 * (forward 2N, backward 4N) and 4·N + 6·N_lora for LoRA (the frozen weights need input gradients but
 * no weight gradients), plus attention's 12·n_layer·n_embd·T. Real steps also spend time in
 * element-wise ops, so the estimate is a lower bound (typically within 2x on small models).
 *
 * Memory (bytes): base weights (the file, mapped; LoRA keeps them in their stored type) + trainable
 * parameters, gradients (F32 each) and AdamW's two moments (2 × F32) + activations kept for backward at
 * batch × seq (per layer and token about 8·n_embd + 3·n_ff + n_head·seq floats; with recompute only each
 * layer's input plus one layer) + a chunk of logits.
 *
 * Threads: pure functions; measure_gemm_flops() runs parallel gemms (call it off the GUI thread).
 */
#pragma once

#include <cstdint>

#include "hearth/model.h"
#include "hearth/trainer/config.h"

namespace hearth::train {

struct MemoryEstimate {
  int64_t trainable_params = 0;  // values
  uint64_t base_weights = 0;     // bytes of the base model (its file), mapped
  uint64_t parameters = 0;       // trainable F32 parameters (full: the F32 master copy)
  uint64_t gradients = 0;
  uint64_t optimizer = 0;        // AdamW first and second moments
  uint64_t activations = 0;      // at batch_size × max_length
  uint64_t overhead = 0;         // GPU only: CUDA context + cuBLAS workspace allowance (0 for the CPU)
  uint64_t total = 0;            // sum of the above
};

// Trainable values for `method` (full: every weight; lora: rank · (in + out) per target per layer).
int64_t count_trainable(const ModelParams& p, int64_t n_params, Method method, const LoraSettings& lora);

// `n_params` and `base_file_bytes` from the model's ModelDesc (n_params, file_size).
MemoryEstimate estimate_memory(const ModelParams& p, int64_t n_params, uint64_t base_file_bytes,
                               const TrainConfig& config);

// The same run on a GPU (docs/gpu.md, "GPU memory estimate"): the device trainer's own allocation plan
// (trainer/src/device-trainer.cpp) written as a formula, checked against what it really allocates.
// training.precision bf16 (default): full fine-tuning keeps F32 master weights (parameters), F32
// gradients, AdamW's two F32 moments and a BF16 copy of every matrix a product reads (base_weights);
// LoRA keeps the base as stored (the file), a BF16 copy of the classifier and one dequantized matrix
// (base_weights), and the F32 adapters with their BF16 copies. f32: no BF16 copies; a LoRA base is
// dequantized whole to F32. activations: every layer's F32 activations for batch_size × max_length
// (the attention probabilities included, one layer's only with training.recompute: the GPU then
// recomputes them in backward, and chooses that itself when all layers' do not fit), the backward's
// working buffers, the logits chunk and the attention scratch. overhead: a fixed 600 MiB for the CUDA
// context and cuBLAS workspace.
MemoryEstimate estimate_gpu_training_memory(const ModelParams& p, int64_t n_params, uint64_t base_file_bytes,
                                            const TrainConfig& config);

// FLOPs of training on `tokens` tokens of rows `seq_len` long.
double training_flops(const ModelParams& p, int64_t n_params, int64_t trainable, Method method, double tokens,
                      int64_t seq_len);

// Measured single-precision matrix-product rate in FLOP/s (> 0), timing for about `seconds`.
double measure_gemm_flops(double seconds = 0.2);

// MemAvailable from /proc/meminfo in bytes; 0 when unknown.
uint64_t available_memory_bytes();

}  // namespace hearth::train
