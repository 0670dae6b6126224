/* A LoRA adapter for inference: low-rank updates of a base model's projection matrices, applied on the
 * fly (y = W x + scale · B (A x)) without merging, and read from or written to the two formats people
 * use: the PEFT folder (adapter_model.safetensors + adapter_config.json) and llama.cpp's GGUF adapter
 * (general.type = adapter, adapter.type = lora, adapter.lora.alpha, tensors blk.N.<role>.weight.lora_a/b).
 *
 * Non-obvious choice: in memory the factors are in the Hugging Face convention (q/k rows half-split,
 * like model-writer.h's ModelWeights). Writing a GGUF adapter for a llama model permutes B's q/k rows
 * as llama.cpp's converter does; reading one un-permutes them; the inference session permutes B's rows
 * again when its base model stores interleaved q/k rows. So one adapter works on the GGUF and the
 * safetensors form of the same base.
 *
 * Ownership: plain values; InferenceOptions::lora shares one adapter between sessions (read-only).
 */
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "hearth/error.h"
#include "hearth/model.h"

namespace hearth {

struct LoraMatrix {
  int64_t rank = 0, n_in = 0, n_out = 0;
  std::vector<float> a;  // (rank, n_in) row-major
  std::vector<float> b;  // (n_out, rank) row-major
};

struct LoraLayer {  // absent: no update of that matrix
  std::optional<LoraMatrix> wq, wk, wv, wo, gate, up, down;
};

struct LoraAdapter {
  float alpha = 16.0f;
  int64_t rank = 8;
  std::vector<LoraLayer> layers;  // one per base layer
  std::string base_model;         // the base's name (informational)
  float scale() const { return rank > 0 ? alpha / float(rank) : 0.0f; }
};

// Reads a PEFT folder (or its adapter_model.safetensors beside adapter_config.json) or a GGUF adapter,
// and checks every factor's shape against `base`. Errors: not_found / io; format (missing config,
// malformed file, a tensor name it cannot place); invalid_argument (shapes or architecture that do not
// match the base, naming the tensor).
Expected<LoraAdapter> load_lora_adapter(const std::filesystem::path& path, const ModelDesc& base);

// Writes `folder`/adapter_model.safetensors (F32) and adapter_config.json as PEFT does
// (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight, r, lora_alpha, target_modules, ...).
Expected<void> save_peft_adapter(const LoraAdapter& adapter, const ModelDesc& base,
                                 const std::filesystem::path& folder);
// Writes a GGUF LoRA adapter that llama.cpp's --lora loads (F32 factors).
Expected<void> save_gguf_lora(const LoraAdapter& adapter, const ModelDesc& base,
                              const std::filesystem::path& path);

}  // namespace hearth
