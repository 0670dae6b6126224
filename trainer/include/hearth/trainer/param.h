/* A trainable tensor of the trainer: F32 values, their gradient, and the AdamW moments live beside it
 * in the optimizer (optim.h), keyed by the same order.
 *
 * Non-obvious choice: names and shapes follow the Hugging Face / PyTorch convention, not GGUF's:
 * `model.layers.3.self_attn.q_proj.weight` with shape {out, in} (row-major, `in` fastest), and LoRA
 * factors `model.layers.3.self_attn.q_proj.lora_A.weight` {rank, in} / `...lora_B.weight` {out, rank}.
 * q/k rows are in the half-split RoPE layout (as model-writer.h's ModelWeights). Checkpoints, the
 * PEFT export and the PyTorch reference then all speak one language; only the GGUF writers convert.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hearth::train {

struct Param {
  std::string name;            // Hugging Face name (see above)
  std::vector<int64_t> shape;  // PyTorch order: {out, in} for a matrix, {n} for a vector
  std::vector<float> value;    // numel() values, row-major
  std::vector<float> grad;     // numel() values; accumulated by forward_backward(), cleared by zero_grad()
  bool decay = true;           // AdamW weight decay applies (matrices and LoRA factors; not norms, biases)
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

}  // namespace hearth::train
