/* Hugging Face model folders: config.json, generation_config.json, tokenizer_config.json and the
 * tokenizer file, read into plain structs; the weights are SafetensorsSet (safetensors.h), and
 * model.h combines both into a ModelDesc.
 *
 * Non-obvious choice: fields the transformers library lets take several shapes are normalised here,
 * once: `eos_token_id` may be a number or a list; `chat_template` may be a string or a list of
 * {name, template} (the one named "default" is used); `bos_token`/`eos_token` may be a string or an
 * AddedToken object {content: ...}; `rope_scaling` spells its kind as "type" or "rope_type".
 *
 * Thread-safety: plain values.
 */
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "hearth/error.h"
#include "hearth/model.h"

namespace hearth {

// config.json. Missing required keys are format errors naming the key; optional ones keep defaults.
struct HfConfig {
  std::string architecture;  // architectures[0], e.g. "LlamaForCausalLM"
  std::string model_type;    // e.g. "llama"
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // defaults to num_attention_heads
  std::optional<int64_t> head_dim;  // explicit in qwen3 and newer llama/mistral configs
  int64_t intermediate_size = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;
};

struct HfGenerationConfig {
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;
  SamplingDefaults sampling;
};

struct HfTokenizerConfig {
  std::optional<std::string> chat_template;
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<bool> add_bos_token;
  std::optional<bool> add_eos_token;
};

struct HfFolder {
  std::filesystem::path path;
  HfConfig config;
  HfGenerationConfig generation;        // empty when the file is absent
  HfTokenizerConfig tokenizer_config;   // empty when the file is absent
  TokenizerInfo tokenizer;              // kind, file, size, ids and template, resolved from all files
};

// Reads the JSON files of `folder` (not the weights). Errors: not_found when config.json is missing;
// format for malformed JSON or wrong value types (naming the file and key); unsupported for a
// rope_scaling kind other than linear/llama3.
Expected<HfFolder> read_hf_folder(const std::filesystem::path& folder);

// Parsers for the individual files' text (tests and fuzzers); `where` names the source in errors.
Expected<HfConfig> parse_hf_config(const std::string& text, const std::string& where);
Expected<HfGenerationConfig> parse_hf_generation_config(const std::string& text, const std::string& where);
Expected<HfTokenizerConfig> parse_hf_tokenizer_config(const std::string& text, const std::string& where);

}  // namespace hearth
