/* One description of a decoder-only model, filled from a GGUF file or a Hugging Face folder.
 *
 * What it holds: the architecture (llama, qwen2, qwen3), the hyper-parameters, the tokenizer facts, and
 * every weight by its role (per-layer struct + globals), each pointing at its bytes inside the mapping.
 *
 * Non-obvious choices (see docs/model-files.md):
 * - Shapes are in GGUF order for both formats: shape[0] is the row length (fastest-varying). A
 *   Hugging Face Linear weight [out, in] is described as {in, out}; its bytes are unchanged, because a
 *   row-major [out, in] matrix is exactly `out` rows of `in` values.
 * - RoPE layout. Hugging Face checkpoints (all three architectures) and GGUF qwen2/qwen3 rotate the
 *   pairs (i, i + head_dim/2) of each head ("half-split", NeoX style). GGUF llama files were converted
 *   with the rows of wq and wk permuted inside each head so that adjacent pairs (2i, 2i+1) are rotated
 *   ("interleaved"). `ModelDesc::rope_layout` records which one the stored q/k rows expect; the forward
 *   pass must rotate accordingly. model-writer.h converts between the two (permute_qk_rows).
 *
 * Ownership: a Model owns its file mappings; every TensorRef::data points into them and lives as long
 * as the Model (moving it keeps them valid). A Model is immutable after open_model(), so it may be read
 * from many threads at once.
 */
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hearth/error.h"
#include "hearth/tensor-types.h"

namespace hearth {

class GgufFile;
class SafetensorsSet;

enum class Architecture { llama, qwen2, qwen3 };
const char* architecture_name(Architecture a);  // "llama", "qwen2", "qwen3" (GGUF's names)
// Accepts GGUF names and Hugging Face class names / model types (LlamaForCausalLM, MistralForCausalLM,
// mistral, Qwen2ForCausalLM, qwen3, ...). Anything else: an `unsupported` error naming it.
Expected<Architecture> architecture_from_name(const std::string& name);

enum class RopeScalingKind { none, linear, llama3 };
const char* rope_scaling_name(RopeScalingKind k);

struct RopeScaling {
  RopeScalingKind kind = RopeScalingKind::none;
  float factor = 1.0f;           // linear and llama3
  float low_freq_factor = 1.0f;  // llama3 only
  float high_freq_factor = 4.0f; // llama3 only
  int64_t original_ctx = 0;      // llama3: original_max_position_embeddings; linear: optional
  bool operator==(const RopeScaling&) const = default;
};

// Which pair of each head's q/k dimensions RoPE rotates together, as the stored weights expect.
enum class RopeLayout {
  half_split,   // (i, i + head_dim/2): Hugging Face, GGUF qwen2/qwen3
  interleaved,  // (2i, 2i + 1): GGUF llama (rows of wq/wk permuted by the converter)
};
const char* rope_layout_name(RopeLayout l);

// The network's shape. Two files describe the same network exactly when their ModelParams are equal.
struct ModelParams {
  Architecture arch = Architecture::llama;
  int64_t n_layer = 0;
  int64_t n_embd = 0;     // hidden size
  int64_t n_head = 0;
  int64_t n_head_kv = 0;  // grouped-query attention when < n_head
  int64_t head_dim = 0;   // usually n_embd / n_head; qwen3 sets it explicitly
  int64_t n_ff = 0;       // feed-forward (intermediate) size
  int64_t n_vocab = 0;    // rows of the token embedding
  int64_t n_ctx_train = 0;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  float rms_eps = 1e-5f;
  bool tied_embeddings = false;  // no separate output matrix: logits use the token embedding
  bool has_qkv_bias = false;     // q, k, v projections have biases (qwen2; llama with attention_bias)
  bool has_o_bias = false;       // the output projection has a bias (llama with attention_bias)
  bool has_qk_norm = false;      // per-head RMS norm of q and k before RoPE (qwen3)
  bool operator==(const ModelParams&) const = default;
};

// Per-frequency divisors RoPE applies for llama3 scaling (head_dim/2 values); empty when none.
std::vector<float> rope_freq_factors(const ModelParams& p);

// One weight inside a mapping. Absent optional weights have data == nullptr.
struct TensorRef {
  std::string name;            // name in the file
  std::vector<int64_t> shape;  // GGUF order: shape[0] is the row length
  GgmlType type = GgmlType::F32;
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
  bool present() const { return data != nullptr; }
  int64_t n_elements() const;
};

struct LayerTensors {
  TensorRef attn_norm;  // (n_embd)
  TensorRef wq;         // (n_embd, n_head*head_dim)
  TensorRef wk;         // (n_embd, n_head_kv*head_dim)
  TensorRef wv;         // (n_embd, n_head_kv*head_dim)
  TensorRef wo;         // (n_head*head_dim, n_embd)
  TensorRef bq;         // (n_head*head_dim)      when has_qkv_bias
  TensorRef bk;         // (n_head_kv*head_dim)   when has_qkv_bias
  TensorRef bv;         // (n_head_kv*head_dim)   when has_qkv_bias
  TensorRef bo;         // (n_embd)               when has_o_bias
  TensorRef q_norm;     // (head_dim)             when has_qk_norm
  TensorRef k_norm;     // (head_dim)             when has_qk_norm
  TensorRef ffn_norm;   // (n_embd)
  TensorRef ffn_gate;   // (n_embd, n_ff)
  TensorRef ffn_up;     // (n_embd, n_ff)
  TensorRef ffn_down;   // (n_ff, n_embd)
};

enum class TokenizerKind { none, sentencepiece, bpe, wordpiece, unigram, other };
const char* tokenizer_kind_name(TokenizerKind k);

struct TokenizerInfo {
  TokenizerKind kind = TokenizerKind::none;
  std::string model;                   // GGUF tokenizer.ggml.model ("llama", "gpt2", ...) or tokenizer.json model.type
  std::string pre;                     // GGUF tokenizer.ggml.pre, when given
  std::filesystem::path file;          // Hugging Face: tokenizer.model or tokenizer.json; GGUF: the .gguf
  int64_t n_tokens = 0;                // vocabulary size of the tokenizer (0 when unknown)
  std::optional<int64_t> bos_id;
  std::optional<int64_t> eos_id;       // the first end-of-sequence id
  std::vector<int64_t> eos_ids;        // all of them (generation_config may list several)
  std::string bos_token, eos_token;    // their text, when the files say
  bool add_bos = false;                // prepend BOS when tokenizing a prompt
  std::optional<std::string> chat_template;
};

// Default sampling a model's files suggest (Hugging Face generation_config.json); all optional.
struct SamplingDefaults {
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int64_t> top_k;
  std::optional<float> repetition_penalty;
  std::optional<bool> do_sample;
};

enum class ModelFormat { gguf, hf_folder };

struct ModelDesc {
  ModelFormat format = ModelFormat::gguf;
  std::filesystem::path path;
  std::string name;                  // general.name, or the folder name
  ModelParams params;
  RopeLayout rope_layout = RopeLayout::half_split;
  std::vector<float> rope_freq_factors;  // llama3 scaling: head_dim/2 divisors (GGUF rope_freqs.weight)
  TensorRef tok_embd;                // (n_embd, n_vocab)
  TensorRef output_norm;             // (n_embd)
  TensorRef output;                  // (n_embd, n_vocab); absent when tied_embeddings
  std::vector<LayerTensors> layers;  // n_layer entries
  std::vector<std::string> extra_tensors;  // tensors in the file with no role (ignored)
  TokenizerInfo tokenizer;
  SamplingDefaults sampling;
  uint64_t file_size = 0;            // bytes of all files holding weights
  int64_t n_params = 0;              // weights counted once (tied embedding once)

  // The matrix that turns hidden states into logits: output, or tok_embd when tied.
  const TensorRef& output_weight() const { return params.tied_embeddings ? tok_embd : output; }
  // Every present weight (globals, then layer by layer), for counting and listing.
  std::vector<const TensorRef*> all_tensors() const;
};

// An open model: its description and the mappings it points into.
class Model {
 public:
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  const ModelDesc& desc() const { return m_desc; }
  // The GGUF file (tokenizer metadata lives there); nullptr for a Hugging Face folder.
  const GgufFile* gguf() const;
  // The safetensors weights; nullptr for a GGUF file.
  const SafetensorsSet* safetensors() const;
  // See GgufFile::release_pages (a no-op for safetensors weights, which are never repacked).
  void release_pages(const void* p, size_t n) const;

 private:
  friend Expected<Model> open_model(const std::filesystem::path& path);
  struct Impl;
  Model(std::unique_ptr<Impl> impl, ModelDesc desc);
  std::unique_ptr<Impl> m_impl;
  ModelDesc m_desc;
};

// Opens a `.gguf` file or a Hugging Face folder (config.json + safetensors). Errors: io / not_found for
// missing files; format for malformed files and tensors whose shape contradicts the hyper-parameters
// (the message names the tensor, its shape and the expected one); unsupported for another architecture
// or a tensor type Hearth cannot compute with.
Expected<Model> open_model(const std::filesystem::path& path);

// Builds the description from an open GGUF file (pointers into `file`). Used by open_model().
Expected<ModelDesc> describe_gguf(const GgufFile& file);

// Dequantizes a weight to F32 (GGUF order, as stored: no un-permuting).
Expected<std::vector<float>> tensor_to_f32(const TensorRef& t);

// Human-readable parameter count: "1.10 B", "124.4 M", "7.3 K", "530".
std::string format_param_count(int64_t n);

}  // namespace hearth
