/* Model writers (GGUF and Hugging Face folder), read-back into F32, and random test models
 * (see hearth/model-writer.h).
 *
 * Non-obvious choice: the GGUF writer emits exactly llama.cpp's key names and conventions (q/k rows
 * permuted for llama, rope.dimension_count = head size, 1-D weights in F32, general.file_type as
 * llama.cpp's llama_ftype) so llama.cpp and other tools read what Hearth writes; the few facts llama.cpp
 * has no key for (llama3 RoPE scaling parameters) go under `hearth.*` keys beside its rope_freqs tensor.
 */
#include "hearth/model-writer.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "hearth/gguf.h"
#include "hearth/safetensors.h"
#include "model-roles.h"

namespace hearth {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace roles;

Expected<void> check_weights(const ModelWeights& w) {
  const ModelParams& p = w.params;
  if (p.n_layer <= 0 || p.n_embd <= 0 || p.n_head <= 0 || p.n_head_kv <= 0 || p.head_dim <= 0 || p.n_ff <= 0 ||
      p.n_vocab <= 0)
    return make_error(ErrorCode::invalid_argument, "model weights: every size in the parameters must be positive");
  if (int64_t(w.layers.size()) != p.n_layer)
    return make_error(ErrorCode::invalid_argument, "model weights: " + std::to_string(w.layers.size()) +
                                                       " layers given, n_layer is " + std::to_string(p.n_layer));
  auto check = [&](const std::vector<float>& v, const std::string& name, Need need, Dims dims) -> Expected<void> {
    const size_t want = needed(need, p) ? size_t(product(shape_of(dims, p))) : 0;
    if (v.size() != want)
      return make_error(ErrorCode::invalid_argument, "model weights: '" + name + "' has " + std::to_string(v.size()) +
                                                         " values, expected " + std::to_string(want) +
                                                         (want ? std::string(" (") + formula(dims) + ")" : " (absent)"));
    return {};
  };
  for (auto& g : global_roles()) HEARTH_TRY_VOID(check(w.*g.weights, g.role, g.need, g.dims));
  for (int64_t il = 0; il < p.n_layer; ++il)
    for (auto& r : layer_roles())
      HEARTH_TRY_VOID(check(w.layers[size_t(il)].*r.weights, "layer " + std::to_string(il) + " " + r.role, r.need, r.dims));
  return {};
}

ModelParams tiny_params(Architecture arch, int64_t n_embd, int64_t n_layer, int64_t n_vocab) {
  ModelParams p;
  p.arch = arch;
  p.n_layer = n_layer;
  p.n_embd = n_embd;
  p.n_head = 4;
  p.n_head_kv = 2;
  p.head_dim = n_embd / 4;
  p.n_ff = 2 * n_embd;
  p.n_vocab = n_vocab;
  p.n_ctx_train = 256;
  switch (arch) {
    case Architecture::llama:
      p.rope_theta = 10000.0f;
      p.rms_eps = 1e-5f;
      break;
    case Architecture::qwen2:
      p.rope_theta = 1000000.0f;
      p.rms_eps = 1e-6f;
      p.tied_embeddings = true;
      p.has_qkv_bias = true;
      break;
    case Architecture::qwen3:
      p.rope_theta = 1000000.0f;
      p.rms_eps = 1e-6f;
      p.tied_embeddings = true;
      p.has_qk_norm = true;
      p.head_dim = n_embd / 2;  // explicit and != n_embd / n_head, as in real Qwen3 models
      break;
  }
  return p;
}

Expected<ModelWeights> make_random_weights(const ModelParams& p, uint64_t seed) {
  ModelWeights w;
  w.params = p;
  w.layers.resize(size_t(std::max<int64_t>(p.n_layer, 0)));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto fill = [&](std::vector<float>& v, Need need, Dims dims) {
    if (!needed(need, p)) return;
    auto shape = shape_of(dims, p);
    v.resize(size_t(product(shape)));
    const bool matrix = shape.size() == 2;
    const bool norm = dims == Dims::embd || dims == Dims::head_dim;
    const float sd = matrix ? 1.0f / std::sqrt(float(shape[0])) : 0.1f;
    for (float& x : v) x = (norm && need != Need::o_bias ? 1.0f : 0.0f) + sd * normal(rng);
  };
  if (p.n_layer <= 0 || p.n_layer > 4096) return make_error(ErrorCode::invalid_argument, "bad n_layer");
  for (auto& g : global_roles()) fill(w.*g.weights, g.need, g.dims);
  for (auto& l : w.layers)
    for (auto& r : layer_roles()) fill(l.*r.weights, r.need, r.dims);
  HEARTH_TRY_VOID(check_weights(w));
  return w;
}

std::vector<float> permute_qk_rows(const std::vector<float>& v, int64_t n_heads, int64_t head_dim, int64_t row_len,
                                   bool to_interleaved) {
  std::vector<float> out(v.size());
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t split = h * head_dim + j * half + i;  // half-split row
        const int64_t inter = h * head_dim + 2 * i + j;     // interleaved row
        const int64_t src = to_interleaved ? split : inter;
        const int64_t dst = to_interleaved ? inter : split;
        std::copy(v.begin() + src * row_len, v.begin() + (src + 1) * row_len, out.begin() + dst * row_len);
      }
  return out;
}

static bool is_k_quant(GgmlType t) {
  return t == GgmlType::Q2_K || t == GgmlType::Q3_K || t == GgmlType::Q4_K || t == GgmlType::Q5_K ||
         t == GgmlType::Q6_K || t == GgmlType::Q8_K;
}

GgmlType gguf_type_for(const GgufWriteOptions& opt, const std::string& role, int64_t row_len, bool is_matrix) {
  if (!is_matrix) return GgmlType::F32;
  GgmlType t = opt.type;
  if (opt.q4_k_m_mix) t = (role == "wv" || role == "ffn_down" || role == "output") ? GgmlType::Q6_K : GgmlType::Q4_K;
  const TypeTraits* tt = type_traits(t);
  if (!tt || row_len % tt->block_size == 0) return t;
  if (is_k_quant(t) && row_len % 32 == 0) return GgmlType::Q8_0;
  return GgmlType::F16;
}

static uint32_t llama_ftype(const GgufWriteOptions& opt) {
  if (opt.q4_k_m_mix) return 15;  // LLAMA_FTYPE_MOSTLY_Q4_K_M
  switch (opt.type) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1;
    case GgmlType::Q4_0: return 2;
    case GgmlType::Q4_1: return 3;
    case GgmlType::Q8_0: return 7;
    case GgmlType::Q5_0: return 8;
    case GgmlType::Q5_1: return 9;
    case GgmlType::Q4_K: return 14;  // Q4_K_S
    case GgmlType::Q5_K: return 16;  // Q5_K_S
    case GgmlType::Q6_K: return 18;
    case GgmlType::BF16: return 32;
    default: return 0;
  }
}

Expected<void> write_gguf_model(const ModelWeights& w, const fs::path& path, const GgufWriteOptions& opt) {
  HEARTH_TRY_VOID(check_weights(w));
  const ModelParams& p = w.params;
  const TypeTraits* base = type_traits(opt.type);
  if (!base || !base->supported)
    return make_error(ErrorCode::unsupported, std::string("cannot write tensors of type ") + type_name(opt.type));
  GgufWriter g;
  const std::string arch = architecture_name(p.arch);
  const std::string a = arch + ".";
  g.set_string("general.architecture", arch);
  g.set_string("general.name", opt.name);
  g.set_u32("general.file_type", llama_ftype(opt));
  if (opt.q4_k_m_mix || (opt.type != GgmlType::F32 && opt.type != GgmlType::F16 && opt.type != GgmlType::BF16))
    g.set_u32("general.quantization_version", 2);
  g.set_u32(a + "context_length", uint32_t(p.n_ctx_train));
  g.set_u32(a + "embedding_length", uint32_t(p.n_embd));
  g.set_u32(a + "block_count", uint32_t(p.n_layer));
  g.set_u32(a + "feed_forward_length", uint32_t(p.n_ff));
  g.set_u32(a + "rope.dimension_count", uint32_t(p.head_dim));
  g.set_u32(a + "attention.head_count", uint32_t(p.n_head));
  g.set_u32(a + "attention.head_count_kv", uint32_t(p.n_head_kv));
  if (p.head_dim * p.n_head != p.n_embd || p.arch == Architecture::qwen3) {
    g.set_u32(a + "attention.key_length", uint32_t(p.head_dim));
    g.set_u32(a + "attention.value_length", uint32_t(p.head_dim));
  }
  g.set_f32(a + "rope.freq_base", p.rope_theta);
  g.set_f32(a + "attention.layer_norm_rms_epsilon", p.rms_eps);
  g.set_u32(a + "vocab_size", uint32_t(p.n_vocab));
  if (p.rope_scaling.kind == RopeScalingKind::linear) {
    g.set_string(a + "rope.scaling.type", "linear");
    g.set_f32(a + "rope.scaling.factor", p.rope_scaling.factor);
    if (p.rope_scaling.original_ctx > 0)
      g.set_u32(a + "rope.scaling.original_context_length", uint32_t(p.rope_scaling.original_ctx));
  } else if (p.rope_scaling.kind == RopeScalingKind::llama3) {
    g.set_f32("hearth.rope.scaling.factor", p.rope_scaling.factor);
    g.set_f32("hearth.rope.scaling.low_freq_factor", p.rope_scaling.low_freq_factor);
    g.set_f32("hearth.rope.scaling.high_freq_factor", p.rope_scaling.high_freq_factor);
    g.set_u32("hearth.rope.scaling.original_context_length", uint32_t(p.rope_scaling.original_ctx));
  }

  if (opt.tokenizer_source) {
    for (auto& kv : opt.tokenizer_source->metadata())
      if (kv.key.rfind("tokenizer.", 0) == 0) g.set(kv.key, kv.value);
  } else if (!opt.tokenizer.tokens.empty()) {
    const TokenizerData& t = opt.tokenizer;
    g.set_string("tokenizer.ggml.model", t.model);
    if (!t.pre.empty()) g.set_string("tokenizer.ggml.pre", t.pre);
    g.set_string_array("tokenizer.ggml.tokens", t.tokens);
    if (!t.scores.empty()) g.set_f32_array("tokenizer.ggml.scores", t.scores);
    if (!t.token_types.empty()) g.set_i32_array("tokenizer.ggml.token_type", t.token_types);
    if (!t.merges.empty()) g.set_string_array("tokenizer.ggml.merges", t.merges);
    if (t.bos_id) g.set_u32("tokenizer.ggml.bos_token_id", uint32_t(*t.bos_id));
    if (t.eos_id) g.set_u32("tokenizer.ggml.eos_token_id", uint32_t(*t.eos_id));
    if (t.unk_id) g.set_u32("tokenizer.ggml.unknown_token_id", uint32_t(*t.unk_id));
    if (t.pad_id) g.set_u32("tokenizer.ggml.padding_token_id", uint32_t(*t.pad_id));
    if (t.add_bos) g.set_bool("tokenizer.ggml.add_bos_token", *t.add_bos);
    if (t.add_eos) g.set_bool("tokenizer.ggml.add_eos_token", *t.add_eos);
    if (t.chat_template) g.set_string("tokenizer.chat_template", *t.chat_template);
  }

  auto add = [&](const std::string& name, const std::string& role, const std::vector<int64_t>& shape,
                 const std::vector<float>& values) -> Expected<void> {
    const GgmlType type = gguf_type_for(opt, role, shape[0], shape.size() == 2);
    auto r = g.add_tensor_f32(name, shape, values.data(), type);
    if (!r) return make_error(r.error().code, path.string() + ": tensor '" + name + "': " + r.error().message);
    return {};
  };
  for (auto& gr : global_roles())
    if (needed(gr.need, p)) HEARTH_TRY_VOID(add(gr.gguf, gr.role, shape_of(gr.dims, p), w.*gr.weights));
  if (p.rope_scaling.kind == RopeScalingKind::llama3) {
    auto f = rope_freq_factors(p);
    HEARTH_TRY_VOID(g.add_tensor_f32("rope_freqs.weight", {int64_t(f.size())}, f.data(), GgmlType::F32));
  }
  const bool permute = p.arch == Architecture::llama;
  for (int64_t il = 0; il < p.n_layer; ++il)
    for (auto& r : layer_roles()) {
      if (!needed(r.need, p)) continue;
      const auto shape = shape_of(r.dims, p);
      const std::vector<float>& v = w.layers[size_t(il)].*r.weights;
      if (permute && r.permute != Permute::none) {
        const int64_t heads = r.permute == Permute::q ? p.n_head : p.n_head_kv;
        const int64_t row_len = shape.size() == 2 ? shape[0] : 1;
        HEARTH_TRY_VOID(add(gguf_layer_name(il, r), r.role, shape, permute_qk_rows(v, heads, p.head_dim, row_len, true)));
      } else {
        HEARTH_TRY_VOID(add(gguf_layer_name(il, r), r.role, shape, v));
      }
    }
  return g.write(path);
}

// A float as JSON with its shortest decimal spelling (1e-05, not 9.99999974738e-06).
static json float_json(float f) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, f);
  return std::strtod(std::string(buf, res.ptr).c_str(), nullptr);
}

static Expected<void> write_json(const fs::path& p, const json& j) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  if (!out) return make_error(ErrorCode::io, p.string() + ": cannot create");
  out << j.dump(2) << "\n";
  out.close();
  if (!out) return make_error(ErrorCode::io, p.string() + ": write failed");
  return {};
}

Expected<void> write_hf_folder(const ModelWeights& w, const fs::path& folder, const HfWriteOptions& opt) {
  HEARTH_TRY_VOID(check_weights(w));
  const ModelParams& p = w.params;
  if (!safetensors_dtype_name(opt.dtype))
    return make_error(ErrorCode::unsupported, std::string("safetensors cannot hold ") + type_name(opt.dtype) +
                                                  " weights; use F32, F16 or BF16");
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) return make_error(ErrorCode::io, folder.string() + ": cannot create: " + ec.message());

  SafetensorsWriter st;
  st.set_metadata("format", "pt");
  auto add = [&](const std::string& name, std::vector<int64_t> shape, const std::vector<float>& v) {
    std::reverse(shape.begin(), shape.end());  // GGUF order -> [out, in]
    return st.add_tensor_f32(name, opt.dtype, shape, v.data());
  };
  for (auto& g : global_roles())
    if (needed(g.need, p)) HEARTH_TRY_VOID(add(g.hf, shape_of(g.dims, p), w.*g.weights));
  for (int64_t il = 0; il < p.n_layer; ++il)
    for (auto& r : layer_roles())
      if (needed(r.need, p)) HEARTH_TRY_VOID(add(hf_layer_name(il, r), shape_of(r.dims, p), w.layers[size_t(il)].*r.weights));
  HEARTH_TRY_VOID(st.write_folder(folder, opt.max_shard_bytes));

  static const char* classes[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"};
  json c;
  c["architectures"] = {classes[int(p.arch)]};
  c["model_type"] = architecture_name(p.arch);
  c["hidden_size"] = p.n_embd;
  c["intermediate_size"] = p.n_ff;
  c["num_hidden_layers"] = p.n_layer;
  c["num_attention_heads"] = p.n_head;
  c["num_key_value_heads"] = p.n_head_kv;
  c["head_dim"] = p.head_dim;
  c["vocab_size"] = p.n_vocab;
  c["max_position_embeddings"] = p.n_ctx_train;
  c["rope_theta"] = float_json(p.rope_theta);
  c["rms_norm_eps"] = float_json(p.rms_eps);
  c["tie_word_embeddings"] = p.tied_embeddings;
  if (p.arch != Architecture::qwen2) c["attention_bias"] = p.has_qkv_bias;
  c["hidden_act"] = "silu";
  c["torch_dtype"] = opt.dtype == GgmlType::F32 ? "float32" : opt.dtype == GgmlType::F16 ? "float16" : "bfloat16";
  switch (p.rope_scaling.kind) {
    case RopeScalingKind::none: c["rope_scaling"] = nullptr; break;
    case RopeScalingKind::linear:
      c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", float_json(p.rope_scaling.factor)}};
      break;
    case RopeScalingKind::llama3:
      c["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", float_json(p.rope_scaling.factor)},
                           {"low_freq_factor", float_json(p.rope_scaling.low_freq_factor)},
                           {"high_freq_factor", float_json(p.rope_scaling.high_freq_factor)},
                           {"original_max_position_embeddings", p.rope_scaling.original_ctx}};
      break;
  }
  if (opt.bos_id) c["bos_token_id"] = *opt.bos_id;
  if (opt.eos_ids.size() == 1) c["eos_token_id"] = opt.eos_ids[0];
  else if (!opt.eos_ids.empty()) c["eos_token_id"] = opt.eos_ids;
  HEARTH_TRY_VOID(write_json(folder / "config.json", c));

  json gc = {{"_from_model_config", false}};
  if (opt.bos_id) gc["bos_token_id"] = *opt.bos_id;
  if (opt.eos_ids.size() == 1) gc["eos_token_id"] = opt.eos_ids[0];
  else if (!opt.eos_ids.empty()) gc["eos_token_id"] = opt.eos_ids;
  if (opt.sampling.temperature) gc["temperature"] = float_json(*opt.sampling.temperature);
  if (opt.sampling.top_p) gc["top_p"] = float_json(*opt.sampling.top_p);
  if (opt.sampling.top_k) gc["top_k"] = *opt.sampling.top_k;
  if (opt.sampling.repetition_penalty) gc["repetition_penalty"] = float_json(*opt.sampling.repetition_penalty);
  if (opt.sampling.do_sample) gc["do_sample"] = *opt.sampling.do_sample;
  HEARTH_TRY_VOID(write_json(folder / "generation_config.json", gc));

  json tc = json::object();
  if (opt.chat_template) tc["chat_template"] = *opt.chat_template;
  if (opt.bos_token) tc["bos_token"] = *opt.bos_token;
  if (opt.eos_token) tc["eos_token"] = *opt.eos_token;
  if (opt.add_bos) tc["add_bos_token"] = *opt.add_bos;
  HEARTH_TRY_VOID(write_json(folder / "tokenizer_config.json", tc));

  if (!opt.tokenizer_file.empty()) {
    const std::string fname = opt.tokenizer_file.filename().string();
    const std::string ext = opt.tokenizer_file.extension().string();
    std::string target = fname == "tokenizer.model" || fname == "tokenizer.json" ? fname
                         : ext == ".model"                                      ? "tokenizer.model"
                         : ext == ".json"                                       ? "tokenizer.json"
                                                                                : "";
    if (target.empty())
      return make_error(ErrorCode::invalid_argument, opt.tokenizer_file.string() +
                                                         ": expected a tokenizer.model or tokenizer.json file");
    fs::copy_file(opt.tokenizer_file, folder / target, fs::copy_options::overwrite_existing, ec);
    if (ec)
      return make_error(ErrorCode::io, opt.tokenizer_file.string() + ": cannot copy into " + folder.string() + ": " +
                                           ec.message());
  }
  return {};
}

Expected<ModelWeights> read_weights(const Model& m) {
  const ModelDesc& d = m.desc();
  const ModelParams& p = d.params;
  ModelWeights w;
  w.params = p;
  for (auto& g : global_roles())
    if ((d.*g.ref).present()) {
      HEARTH_TRY(w.*g.weights, tensor_to_f32(d.*g.ref));
    }
  const bool unpermute = d.rope_layout == RopeLayout::interleaved;
  w.layers.resize(d.layers.size());
  for (size_t il = 0; il < d.layers.size(); ++il)
    for (auto& r : layer_roles()) {
      const TensorRef& t = d.layers[il].*r.ref;
      if (!t.present()) continue;
      HEARTH_TRY(std::vector<float> v, tensor_to_f32(t));
      if (unpermute && r.permute != Permute::none) {
        const int64_t heads = r.permute == Permute::q ? p.n_head : p.n_head_kv;
        v = permute_qk_rows(v, heads, p.head_dim, t.shape.size() == 2 ? t.shape[0] : 1, false);
      }
      w.layers[il].*r.weights = std::move(v);
    }
  return w;
}

}  // namespace hearth
