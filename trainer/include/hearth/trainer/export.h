/* What a finished run leaves behind: a LoRA adapter (PEFT folder and GGUF adapter), or a merged model
 * (safetensors folder, GGUF in F16, Q8_0 or Q4_K), each carrying the base's tokenizer and chat template
 * so the new version chats exactly like its base.
 */
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "hearth/error.h"
#include "hearth/lora.h"
#include "hearth/model.h"
#include "hearth/trainer/train-model.h"

namespace hearth::train {

// The LoRA factors of a lora TrainModel as an engine adapter (invalid_argument for other methods).
Expected<LoraAdapter> lora_adapter_of(const TrainModel& model, const std::string& base_name);

struct ExportedFile {
  std::string format;  // "peft", "gguf-lora", "safetensors", "gguf-f16", "gguf-q8_0", "gguf-q4_k"
  std::filesystem::path path;
};

// Writes each requested format under `dir` (adapter formats only for LoRA runs).
// `base` gives the tokenizer and template to carry (may be null for pretraining: then `tokenizer`
// metadata and `spm_model` (the trained tokenizer.model) are used).
// Errors: io (disk full: the partial file is removed), invalid_argument (unknown format, adapter of a
// full run).
Expected<std::vector<ExportedFile>> export_model(const TrainModel& model, const Model* base,
                                                 const TokenizerData* tokenizer,
                                                 const std::filesystem::path& spm_model,
                                                 const std::vector<std::string>& formats,
                                                 const std::filesystem::path& dir, const std::string& name);

}  // namespace hearth::train
