/* The table of weight roles shared by the model reader (model-desc.cpp) and writers (model-writer.cpp):
 * for each role its GGUF and Hugging Face names, when it is present, and its shape.
 *
 * Non-obvious choice: one table drives reading, validating, writing and converting, so a role added
 * here is named, shape-checked and written identically in both formats.
 */
#pragma once

#include <string>
#include <vector>

#include "hearth/model-writer.h"
#include "hearth/model.h"

namespace hearth::roles {

enum class Need { always, qkv_bias, o_bias, qk_norm, untied };

inline bool needed(Need n, const ModelParams& p) {
  switch (n) {
    case Need::always: return true;
    case Need::qkv_bias: return p.has_qkv_bias;
    case Need::o_bias: return p.has_o_bias;
    case Need::qk_norm: return p.has_qk_norm;
    case Need::untied: return !p.tied_embeddings;
  }
  return false;
}

// Shapes in GGUF order, and a formula for error messages.
enum class Dims { embd, q_out, kv_out, head_dim, embd_q, embd_kv, q_embd, embd_ff, ff_embd, embd_vocab };

inline std::vector<int64_t> shape_of(Dims d, const ModelParams& p) {
  const int64_t q = p.n_head * p.head_dim, kv = p.n_head_kv * p.head_dim;
  switch (d) {
    case Dims::embd: return {p.n_embd};
    case Dims::q_out: return {q};
    case Dims::kv_out: return {kv};
    case Dims::head_dim: return {p.head_dim};
    case Dims::embd_q: return {p.n_embd, q};
    case Dims::embd_kv: return {p.n_embd, kv};
    case Dims::q_embd: return {q, p.n_embd};
    case Dims::embd_ff: return {p.n_embd, p.n_ff};
    case Dims::ff_embd: return {p.n_ff, p.n_embd};
    case Dims::embd_vocab: return {p.n_embd, p.n_vocab};
  }
  return {};
}

inline const char* formula(Dims d) {
  switch (d) {
    case Dims::embd: return "n_embd";
    case Dims::q_out: return "n_head*head_dim";
    case Dims::kv_out: return "n_head_kv*head_dim";
    case Dims::head_dim: return "head_dim";
    case Dims::embd_q: return "n_embd x n_head*head_dim";
    case Dims::embd_kv: return "n_embd x n_head_kv*head_dim";
    case Dims::q_embd: return "n_head*head_dim x n_embd";
    case Dims::embd_ff: return "n_embd x n_ff";
    case Dims::ff_embd: return "n_ff x n_embd";
    case Dims::embd_vocab: return "n_embd x n_vocab";
  }
  return "";
}

// Which q/k permutation applies to a role (llama GGUF files only).
enum class Permute { none, q, k };

struct LayerRole {
  const char* role;  // short name: "wq", "ffn_down", ...
  TensorRef LayerTensors::*ref;
  std::vector<float> LayerWeights::*weights;
  const char* gguf;  // after "blk.N."
  const char* hf;    // after "model.layers.N."
  Need need;
  Dims dims;
  Permute permute;
};

inline const std::vector<LayerRole>& layer_roles() {
  static const std::vector<LayerRole> table = {
      {"attn_norm", &LayerTensors::attn_norm, &LayerWeights::attn_norm, "attn_norm.weight", "input_layernorm.weight", Need::always, Dims::embd, Permute::none},
      {"wq", &LayerTensors::wq, &LayerWeights::wq, "attn_q.weight", "self_attn.q_proj.weight", Need::always, Dims::embd_q, Permute::q},
      {"wk", &LayerTensors::wk, &LayerWeights::wk, "attn_k.weight", "self_attn.k_proj.weight", Need::always, Dims::embd_kv, Permute::k},
      {"wv", &LayerTensors::wv, &LayerWeights::wv, "attn_v.weight", "self_attn.v_proj.weight", Need::always, Dims::embd_kv, Permute::none},
      {"wo", &LayerTensors::wo, &LayerWeights::wo, "attn_output.weight", "self_attn.o_proj.weight", Need::always, Dims::q_embd, Permute::none},
      {"bq", &LayerTensors::bq, &LayerWeights::bq, "attn_q.bias", "self_attn.q_proj.bias", Need::qkv_bias, Dims::q_out, Permute::q},
      {"bk", &LayerTensors::bk, &LayerWeights::bk, "attn_k.bias", "self_attn.k_proj.bias", Need::qkv_bias, Dims::kv_out, Permute::k},
      {"bv", &LayerTensors::bv, &LayerWeights::bv, "attn_v.bias", "self_attn.v_proj.bias", Need::qkv_bias, Dims::kv_out, Permute::none},
      {"bo", &LayerTensors::bo, &LayerWeights::bo, "attn_output.bias", "self_attn.o_proj.bias", Need::o_bias, Dims::embd, Permute::none},
      {"q_norm", &LayerTensors::q_norm, &LayerWeights::q_norm, "attn_q_norm.weight", "self_attn.q_norm.weight", Need::qk_norm, Dims::head_dim, Permute::none},
      {"k_norm", &LayerTensors::k_norm, &LayerWeights::k_norm, "attn_k_norm.weight", "self_attn.k_norm.weight", Need::qk_norm, Dims::head_dim, Permute::none},
      {"ffn_norm", &LayerTensors::ffn_norm, &LayerWeights::ffn_norm, "ffn_norm.weight", "post_attention_layernorm.weight", Need::always, Dims::embd, Permute::none},
      {"ffn_gate", &LayerTensors::ffn_gate, &LayerWeights::ffn_gate, "ffn_gate.weight", "mlp.gate_proj.weight", Need::always, Dims::embd_ff, Permute::none},
      {"ffn_up", &LayerTensors::ffn_up, &LayerWeights::ffn_up, "ffn_up.weight", "mlp.up_proj.weight", Need::always, Dims::embd_ff, Permute::none},
      {"ffn_down", &LayerTensors::ffn_down, &LayerWeights::ffn_down, "ffn_down.weight", "mlp.down_proj.weight", Need::always, Dims::ff_embd, Permute::none},
  };
  return table;
}

struct GlobalRole {
  const char* role;
  TensorRef ModelDesc::*ref;
  std::vector<float> ModelWeights::*weights;
  const char* gguf;
  const char* hf;
  Need need;
  Dims dims;
};

inline const std::vector<GlobalRole>& global_roles() {
  static const std::vector<GlobalRole> table = {
      {"tok_embd", &ModelDesc::tok_embd, &ModelWeights::tok_embd, "token_embd.weight", "model.embed_tokens.weight", Need::always, Dims::embd_vocab},
      {"output_norm", &ModelDesc::output_norm, &ModelWeights::output_norm, "output_norm.weight", "model.norm.weight", Need::always, Dims::embd},
      {"output", &ModelDesc::output, &ModelWeights::output, "output.weight", "lm_head.weight", Need::untied, Dims::embd_vocab},
  };
  return table;
}

inline std::string gguf_layer_name(int64_t il, const LayerRole& r) {
  return "blk." + std::to_string(il) + "." + r.gguf;
}
inline std::string hf_layer_name(int64_t il, const LayerRole& r) {
  return "model.layers." + std::to_string(il) + "." + r.hf;
}

inline int64_t product(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

inline std::string shape_text(const std::vector<int64_t>& s) {
  std::string t = "{";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "}";
}

}  // namespace hearth::roles
