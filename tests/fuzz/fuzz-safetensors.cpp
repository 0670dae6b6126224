/* Fuzz target for the safetensors parser (and the Hugging Face JSON parsers, which read the same kind of
 * untrusted header text).
 *
 * Non-obvious choice: after a successful parse every tensor's bytes are read in full, so a range the
 * parser wrongly accepted shows up as an out-of-bounds read under ASan (libFuzzer build) or a crash
 * (mutation driver), not as silent success.
 *
 * libFuzzer build: cmake --preset fuzz && ./fuzz-safetensors -max_total_time=60 corpus/
 */
#include <cstring>
#include <string>

#include "fuzz-driver.h"
#include "hearth/hf-folder.h"
#include "hearth/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = hearth::SafetensorsFile::parse(data, size, "fuzz.safetensors");
  if (f) {
    volatile uint64_t sum = 0;
    for (const auto& t : f->tensors()) {
      if (t.data < data || t.data + t.nbytes() > data + size) __builtin_trap();
      for (uint64_t i = 0; i < t.nbytes(); ++i) sum = sum + t.data[i];
    }
  }
  // The header JSON region doubles as input for the config parsers.
  if (size > 8) {
    std::string text(reinterpret_cast<const char*>(data) + 8, size - 8);
    (void)hearth::parse_hf_config(text, "config.json");
    (void)hearth::parse_hf_tokenizer_config(text, "tokenizer_config.json");
    (void)hearth::parse_hf_generation_config(text, "generation_config.json");
  }
  return 0;
}

std::vector<std::vector<uint8_t>> hearth_fuzz_seeds() {
  std::vector<std::vector<uint8_t>> seeds;
  float v[24];
  for (int i = 0; i < 24; ++i) v[i] = float(i) * 0.25f - 2.0f;
  {
    hearth::SafetensorsWriter w;
    w.set_metadata("format", "pt");
    (void)w.add_tensor_f32("model.embed_tokens.weight", hearth::GgmlType::F32, {4, 6}, v);
    (void)w.add_tensor_f32("model.norm.weight", hearth::GgmlType::F16, {6}, v);
    (void)w.add_tensor_f32("lm_head.weight", hearth::GgmlType::BF16, {2, 3, 4}, v);
    seeds.push_back(w.to_bytes());
  }
  {
    hearth::SafetensorsWriter w;
    (void)w.add_tensor_f32("a", hearth::GgmlType::F32, {24}, v);
    (void)w.add_tensor("empty", hearth::GgmlType::F16, {0}, nullptr, 0);
    seeds.push_back(w.to_bytes());
  }
  {
    // A config.json behind an 8-byte prefix, for the JSON parsers.
    std::string cfg = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,
      "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 96,
      "max_position_embeddings": 256, "eos_token_id": [1, 2], "rope_scaling": {"rope_type": "llama3",
      "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
      "chat_template": [{"name": "default", "template": "x"}], "bos_token": {"content": "<s>"}})";
    std::vector<uint8_t> s(8, 0);
    s[0] = uint8_t(cfg.size());
    s[1] = uint8_t(cfg.size() >> 8);
    s.insert(s.end(), cfg.begin(), cfg.end());
    seeds.push_back(std::move(s));
  }
  return seeds;
}

std::string hearth_fuzz_seed_suffix() { return ".safetensors"; }
