/* Internal: the LoRA hook of the forward pass (model-llama.cpp). After each targeted projection of a
 * chunk of tokens, y += scale · B (A x) is added row by row in F32, from factors prepared once when the
 * session is created.
 *
 * Non-obvious choice: adapters are kept in the Hugging Face row order (lora.h); when the base model
 * stores q/k rows interleaved (GGUF llama), the session keeps its own copy of those B factors with the
 * rows permuted into the stored order, so q and k come out in the order RoPE expects there.
 *
 * Thread-safety: a LoraRuntime is immutable after construction; add() only writes `y`.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hearth/error.h"
#include "hearth/lora.h"
#include "hearth/model.h"

namespace hearth::cpu {
class ThreadPool;
}

namespace hearth::lora_detail {

enum class LoraTarget { q, k, v, o, gate, up, down };

// Checks that every factor of `adapter` fits `p` (layer count, n_in, n_out, rank, vector sizes).
// invalid_argument naming the layer and matrix; `where` (a file name or "adapter") leads the message.
Expected<void> check_adapter_fits(const LoraAdapter& adapter, const ModelParams& p, const std::string& where);

class LoraRuntime {
 public:
  // `adapter` must fit `desc` (check_adapter_fits).
  LoraRuntime(std::shared_ptr<const LoraAdapter> adapter, const ModelDesc& desc);

  // For each of the `n` rows of x (n_in values each): y_row += scale · B (A x_row). No-op when the
  // layer has no factor for `target`.
  void add(cpu::ThreadPool& pool, size_t layer, LoraTarget target, const float* x, int64_t n, float* y) const;

 private:
  std::shared_ptr<const LoraAdapter> m_adapter;
  std::vector<std::vector<float>> m_bq, m_bk;  // per layer: B in the stored (interleaved) row order, or empty
  float m_scale = 0.0f;
};

}  // namespace hearth::lora_detail
