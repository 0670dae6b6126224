/* Model writers: a network's weights in F32 written as a GGUF file (any supported tensor type, with
 * quantization) or as a Hugging Face folder (config, safetensors, tokenizer files); reading any model
 * back into the same F32 form; and tiny random models for tests.
 *
 * Non-obvious choice: ModelWeights is always in the Hugging Face convention (half-split RoPE, q/k rows
 * as transformers stores them), whatever file it came from or goes to. The GGUF writer permutes the
 * rows of wq/wk (and bq/bk) for llama, as llama.cpp's converter does, and read_weights() un-permutes a
 * GGUF llama file's rows, so a model written in both formats describes the same network and reads back
 * to the same ModelWeights (exactly for F32; within quantization error otherwise).
 *
 * Shapes follow model.h (GGUF order, shape[0] the row length); the vectors hold the values row by row,
 * which is also the Hugging Face [out, in] row-major layout.
 *
 * Thread-safety: plain functions over values.
 */
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "hearth/error.h"
#include "hearth/model.h"
#include "hearth/tensor-types.h"

namespace hearth {

class GgufFile;

// F32 values of one layer; an empty vector is an absent optional weight. Shapes as in LayerTensors.
struct LayerWeights {
  std::vector<float> attn_norm, wq, wk, wv, wo, bq, bk, bv, bo, q_norm, k_norm;
  std::vector<float> ffn_norm, ffn_gate, ffn_up, ffn_down;
};

struct ModelWeights {
  ModelParams params;
  std::vector<float> tok_embd;     // (n_embd, n_vocab)
  std::vector<float> output_norm;  // (n_embd)
  std::vector<float> output;       // (n_embd, n_vocab); empty when params.tied_embeddings
  std::vector<LayerWeights> layers;
};

// Checks every vector's size against the hyper-parameters (an invalid_argument error naming the weight).
Expected<void> check_weights(const ModelWeights& w);

// Random weights for `p` (deterministic for a seed): matrices ~ N(0, 1/sqrt(row length)), norm weights
// near 1, biases small. All flags of `p` are honoured (biases, q/k norm, tied embeddings).
Expected<ModelWeights> make_random_weights(const ModelParams& p, uint64_t seed);

// Small ModelParams for tests of `arch` (qwen2: q/k/v biases; qwen3: q/k norm and explicit head_dim).
ModelParams tiny_params(Architecture arch, int64_t n_embd = 64, int64_t n_layer = 2, int64_t n_vocab = 96);

// Reorders the rows of a q or k projection (or bias) between the half-split layout (Hugging Face) and
// the interleaved layout GGUF llama files use. `values` holds n_heads * head_dim rows of `row_len`
// values (row_len = 1 for a bias). to_interleaved=false undoes it.
std::vector<float> permute_qk_rows(const std::vector<float>& values, int64_t n_heads, int64_t head_dim,
                                   int64_t row_len, bool to_interleaved);

// Tokenizer metadata for a GGUF file when no source GGUF is given.
struct TokenizerData {
  std::string model = "llama";  // tokenizer.ggml.model: llama (SentencePiece), gpt2 (BPE), ...
  std::string pre;              // tokenizer.ggml.pre (BPE only), empty: not written
  std::vector<std::string> tokens;
  std::vector<float> scores;         // optional
  std::vector<int32_t> token_types;  // optional
  std::vector<std::string> merges;   // BPE only
  std::optional<int64_t> bos_id, eos_id, unk_id, pad_id;
  std::optional<bool> add_bos, add_eos;
  std::optional<std::string> chat_template;
};

struct GgufWriteOptions {
  GgmlType type = GgmlType::F32;  // type of the 2-D matrices; 1-D weights (norms, biases) stay F32
  // "Q4_K_M-style" mix: Q4_K matrices, with attn_v, ffn_down and the output matrix in Q6_K.
  // Overrides `type`.
  bool q4_k_m_mix = false;
  std::string name = "hearth";  // general.name
  // Tokenizer: every `tokenizer.*` key of `tokenizer_source` is copied when given; otherwise `tokenizer`
  // (when it has tokens). A model file without tokenizer keys is still valid for tests of weights.
  const GgufFile* tokenizer_source = nullptr;
  TokenizerData tokenizer;
};

// The tensor type the writer uses for a weight of `row_len` values per row under `opt`: block types
// whose block does not divide the row fall back to Q8_0, then F16 (as llama.cpp's quantizer does).
GgmlType gguf_type_for(const GgufWriteOptions& opt, const std::string& role, int64_t row_len, bool is_matrix);

Expected<void> write_gguf_model(const ModelWeights& w, const std::filesystem::path& path,
                                const GgufWriteOptions& opt = {});

struct HfWriteOptions {
  GgmlType dtype = GgmlType::F32;   // F32, F16 or BF16
  uint64_t max_shard_bytes = 0;     // > 0: shard model.safetensors with an index
  std::filesystem::path tokenizer_file;  // copied in as tokenizer.model or tokenizer.json (by its name)
  std::optional<std::string> chat_template;  // written into tokenizer_config.json
  std::optional<int64_t> bos_id;
  std::vector<int64_t> eos_ids;
  std::optional<std::string> bos_token, eos_token;
  std::optional<bool> add_bos;
  SamplingDefaults sampling;        // generation_config.json
};

Expected<void> write_hf_folder(const ModelWeights& w, const std::filesystem::path& folder,
                               const HfWriteOptions& opt = {});

// Every weight of an open model as F32 in the Hugging Face convention (GGUF llama q/k rows
// un-permuted). Works for both formats.
Expected<ModelWeights> read_weights(const Model& m);

}  // namespace hearth
