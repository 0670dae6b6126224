/* Filling the one model description (hearth/model.h) from a GGUF file or a Hugging Face folder.
 *
 * Non-obvious choice: optional weights (q/k/v and output biases, q/k norms, the separate output
 * matrix) are detected from the tensors present in layer 0 / the globals, then required in every
 * layer; the architecture adds what it must have (qwen2: q/k/v biases; qwen3: q/k norms). That covers
 * files whose metadata cannot say so (GGUF has no `attention_bias` key) with one rule for both formats.
 */
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <set>

#include "hearth/gguf.h"
#include "hearth/hf-folder.h"
#include "hearth/model.h"
#include "hearth/safetensors.h"
#include "model-roles.h"

namespace hearth {

namespace fs = std::filesystem;
using namespace roles;

const char* architecture_name(Architecture a) {
  switch (a) {
    case Architecture::llama: return "llama";
    case Architecture::qwen2: return "qwen2";
    case Architecture::qwen3: return "qwen3";
  }
  return "?";
}

Expected<Architecture> architecture_from_name(const std::string& name) {
  static const std::pair<const char*, Architecture> names[] = {
      {"llama", Architecture::llama},          {"LlamaForCausalLM", Architecture::llama},
      {"mistral", Architecture::llama},        {"MistralForCausalLM", Architecture::llama},
      {"qwen2", Architecture::qwen2},          {"Qwen2ForCausalLM", Architecture::qwen2},
      {"qwen3", Architecture::qwen3},          {"Qwen3ForCausalLM", Architecture::qwen3},
  };
  for (auto& [n, a] : names)
    if (name == n) return a;
  return make_error(ErrorCode::unsupported, "architecture '" + name + "' is not supported",
                    "Hearth supports llama (Llama 2/3, TinyLlama, Mistral, SmolLM), qwen2 and qwen3");
}

const char* rope_scaling_name(RopeScalingKind k) {
  switch (k) {
    case RopeScalingKind::none: return "none";
    case RopeScalingKind::linear: return "linear";
    case RopeScalingKind::llama3: return "llama3";
  }
  return "?";
}

const char* rope_layout_name(RopeLayout l) {
  return l == RopeLayout::half_split ? "half-split" : "interleaved";
}

const char* tokenizer_kind_name(TokenizerKind k) {
  switch (k) {
    case TokenizerKind::none: return "none";
    case TokenizerKind::sentencepiece: return "sentencepiece";
    case TokenizerKind::bpe: return "bpe";
    case TokenizerKind::wordpiece: return "wordpiece";
    case TokenizerKind::unigram: return "unigram";
    case TokenizerKind::other: return "other";
  }
  return "?";
}

int64_t TensorRef::n_elements() const { return product(shape); }

std::vector<float> rope_freq_factors(const ModelParams& p) {
  if (p.rope_scaling.kind != RopeScalingKind::llama3 || p.head_dim < 2) return {};
  const RopeScaling& s = p.rope_scaling;
  const double low_wavelen = double(s.original_ctx) / s.low_freq_factor;
  const double high_wavelen = double(s.original_ctx) / s.high_freq_factor;
  std::vector<float> out;
  for (int64_t i = 0; i < p.head_dim; i += 2) {
    const double freq = 1.0 / std::pow(double(p.rope_theta), double(i) / double(p.head_dim));
    const double wavelen = 2.0 * 3.14159265358979323846 / freq;
    double divisor;
    if (wavelen < high_wavelen) {
      divisor = 1.0;
    } else if (wavelen > low_wavelen) {
      divisor = s.factor;
    } else {
      const double smooth = (double(s.original_ctx) / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      divisor = 1.0 / ((1.0 - smooth) / s.factor + smooth);
    }
    out.push_back(float(divisor));
  }
  return out;
}

std::vector<const TensorRef*> ModelDesc::all_tensors() const {
  std::vector<const TensorRef*> v;
  for (auto& g : global_roles())
    if ((this->*g.ref).present()) v.push_back(&(this->*g.ref));
  for (auto& l : layers)
    for (auto& r : layer_roles())
      if ((l.*r.ref).present()) v.push_back(&(l.*r.ref));
  return v;
}

Expected<std::vector<float>> tensor_to_f32(const TensorRef& t) {
  if (!t.present()) return make_error(ErrorCode::not_found, "tensor '" + t.name + "' is absent");
  std::vector<float> out(size_t(t.n_elements()));
  HEARTH_TRY_VOID(dequantize(t.type, t.data, out.data(), t.n_elements()));
  return out;
}

std::string format_param_count(int64_t n) {
  char buf[32];
  if (n >= 1'000'000'000) std::snprintf(buf, sizeof buf, "%.2f B", double(n) / 1e9);
  else if (n >= 1'000'000) std::snprintf(buf, sizeof buf, "%.1f M", double(n) / 1e6);
  else if (n >= 1'000) std::snprintf(buf, sizeof buf, "%.1f K", double(n) / 1e3);
  else std::snprintf(buf, sizeof buf, "%lld", (long long)n);
  return buf;
}

namespace {

// Checks the hyper-parameters that every later shape computation relies on.
Expected<void> check_params(const ModelParams& p, const std::string& where) {
  auto bad = [&](const std::string& what) { return make_error(ErrorCode::format, where + ": " + what); };
  const int64_t LIMIT = int64_t(1) << 24;  // far above any real width; keeps products in range
  struct Item { const char* name; int64_t v; };
  for (Item it : {Item{"n_layer", p.n_layer}, Item{"n_embd", p.n_embd}, Item{"n_head", p.n_head},
                  Item{"n_head_kv", p.n_head_kv}, Item{"head_dim", p.head_dim}, Item{"n_ff", p.n_ff},
                  Item{"n_vocab", p.n_vocab}})
    if (it.v <= 0 || it.v > LIMIT)
      return bad(std::string(it.name) + " is " + std::to_string(it.v) + ", expected 1.." + std::to_string(LIMIT));
  if (p.n_head % p.n_head_kv != 0)
    return bad("n_head " + std::to_string(p.n_head) + " is not a multiple of n_head_kv " + std::to_string(p.n_head_kv));
  if (p.head_dim % 2 != 0) return bad("head_dim " + std::to_string(p.head_dim) + " is odd; RoPE needs pairs");
  if (p.n_ctx_train < 0) return bad("negative context length");
  if (!(p.rope_theta > 0)) return bad("rope_theta must be positive");
  if (!(p.rms_eps > 0)) return bad("rms norm epsilon must be positive");
  return {};
}

// A tensor as the file stores it, before it is given a role.
struct FileTensor {
  std::string name;
  std::vector<int64_t> shape;  // GGUF order
  GgmlType type;
  const uint8_t* data;
  uint64_t nbytes;
};

using Lookup = std::function<const FileTensor*(const std::string&)>;

// Assigns every role of `p` from `find` (names by `gguf` or not), checks presence, type and shape.
Expected<void> assign_roles(ModelDesc& d, const Lookup& find, bool gguf, const std::string& where,
                            std::set<std::string>& used) {
  const ModelParams& p = d.params;
  auto take = [&](TensorRef& ref, const std::string& name, const std::vector<int64_t>& want, const char* formula,
                  bool need) -> Expected<void> {
    const FileTensor* t = find(name);
    if (!t) {
      if (need)
        return make_error(ErrorCode::format, where + ": tensor '" + name + "' is missing (expected shape " +
                                                 shape_text(want) + " = " + formula + ")");
      return {};
    }
    if (!need) return {};  // present but not part of this network (e.g. lm_head of a tied model): extra
    if (t->shape != want)
      return make_error(ErrorCode::format, where + ": tensor '" + name + "' has shape " + shape_text(t->shape) +
                                               ", expected " + shape_text(want) + " (" + formula + ")");
    const TypeTraits* tt = type_traits(t->type);
    if (!tt || !tt->supported)
      return make_error(ErrorCode::unsupported, where + ": tensor '" + name + "' has type " +
                                                    (tt ? tt->name : std::to_string(uint32_t(t->type))) +
                                                    ", which Hearth cannot compute with");
    ref = TensorRef{t->name, t->shape, t->type, t->data, t->nbytes};
    used.insert(name);
    return {};
  };
  for (auto& g : global_roles())
    HEARTH_TRY_VOID(take(d.*g.ref, gguf ? g.gguf : g.hf, shape_of(g.dims, p), formula(g.dims), needed(g.need, p)));
  d.layers.resize(size_t(p.n_layer));
  for (int64_t il = 0; il < p.n_layer; ++il)
    for (auto& r : layer_roles())
      HEARTH_TRY_VOID(take(d.layers[size_t(il)].*r.ref, gguf ? gguf_layer_name(il, r) : hf_layer_name(il, r),
                           shape_of(r.dims, p), formula(r.dims), needed(r.need, p)));
  return {};
}

// Sets the optional-weight flags from the tensors of layer 0 and the globals, then applies what the
// architecture requires.
Expected<void> detect_flags(ModelParams& p, const Lookup& find, bool gguf, const std::string& where) {
  auto has = [&](const char* role) {
    for (auto& r : layer_roles())
      if (std::strcmp(r.role, role) == 0) return find(gguf ? gguf_layer_name(0, r) : hf_layer_name(0, r)) != nullptr;
    return false;
  };
  p.has_qkv_bias = has("bq") || has("bk") || has("bv");
  p.has_o_bias = has("bo");
  p.has_qk_norm = has("q_norm") || has("k_norm");
  if (p.arch == Architecture::qwen2) p.has_qkv_bias = true;
  if (p.arch == Architecture::qwen3) p.has_qk_norm = true;
  if (p.arch != Architecture::qwen3 && p.has_qk_norm)
    return make_error(ErrorCode::format, where + ": q/k norm weights found in a " +
                                             std::string(architecture_name(p.arch)) + " model, which has none");
  return {};
}

void finish(ModelDesc& d, const std::set<std::string>& used, const std::vector<std::string>& all_names) {
  for (auto& n : all_names)
    if (!used.count(n)) d.extra_tensors.push_back(n);
  int64_t n = 0;
  for (const TensorRef* t : d.all_tensors()) n += t->n_elements();
  d.n_params = n;
}

}  // namespace

// ---- GGUF --------------------------------------------------------------------------------------

Expected<ModelDesc> describe_gguf(const GgufFile& f) {
  const std::string where = f.path().string();
  ModelDesc d;
  d.format = ModelFormat::gguf;
  d.path = f.path();
  d.file_size = f.file_size();
  auto arch_name = f.get_string("general.architecture");
  if (!arch_name)
    return make_error(ErrorCode::format, where + ": missing key 'general.architecture'",
                      f.find("tokenizer.ggml.tokens") ? "this looks like a vocabulary-only file" : "");
  HEARTH_TRY(Architecture arch, architecture_from_name(*arch_name));
  if (f.tensors().empty())
    return make_error(ErrorCode::format, where + ": the file holds no tensors (a vocabulary-only GGUF?)",
                      "it can be used for tokenizing, not as a model");
  const std::string a = *arch_name + ".";
  d.name = f.get_string("general.name").value_or(f.path().stem().string());

  auto req = [&](const std::string& key) -> Expected<int64_t> {
    const GgufValue* v = f.find(key);
    if (!v) return make_error(ErrorCode::format, where + ": missing key '" + key + "'");
    auto i = v->as_int();
    if (!i) return make_error(ErrorCode::format, where + ": key '" + key + "' should be an integer");
    return *i;
  };
  auto opt_int = [&](const std::string& key) -> Expected<std::optional<int64_t>> {
    const GgufValue* v = f.find(key);
    if (!v) return std::optional<int64_t>();
    auto i = v->as_int();
    if (!i) return make_error(ErrorCode::format, where + ": key '" + key + "' should be an integer");
    return std::optional<int64_t>(*i);
  };
  auto opt_float = [&](const std::string& key) -> Expected<std::optional<double>> {
    const GgufValue* v = f.find(key);
    if (!v) return std::optional<double>();
    auto x = v->as_float();
    if (!x) return make_error(ErrorCode::format, where + ": key '" + key + "' should be a number");
    return std::optional<double>(*x);
  };

  ModelParams& p = d.params;
  p.arch = arch;
  HEARTH_TRY(p.n_layer, req(a + "block_count"));
  HEARTH_TRY(p.n_embd, req(a + "embedding_length"));
  HEARTH_TRY(p.n_head, req(a + "attention.head_count"));
  HEARTH_TRY(auto kv, opt_int(a + "attention.head_count_kv"));
  p.n_head_kv = kv.value_or(p.n_head);
  HEARTH_TRY(p.n_ff, req(a + "feed_forward_length"));
  HEARTH_TRY(p.n_ctx_train, req(a + "context_length"));
  HEARTH_TRY(auto key_len, opt_int(a + "attention.key_length"));
  HEARTH_TRY(auto val_len, opt_int(a + "attention.value_length"));
  if (key_len) {
    p.head_dim = *key_len;
  } else {
    if (p.n_head <= 0 || p.n_embd % p.n_head != 0)
      return make_error(ErrorCode::format, where + ": embedding_length " + std::to_string(p.n_embd) +
                                               " is not a multiple of head_count " + std::to_string(p.n_head));
    p.head_dim = p.n_embd / p.n_head;
  }
  if (val_len && *val_len != p.head_dim)
    return make_error(ErrorCode::unsupported, where + ": attention.value_length " + std::to_string(*val_len) +
                                                  " differs from key_length " + std::to_string(p.head_dim));
  HEARTH_TRY(auto n_rot, opt_int(a + "rope.dimension_count"));
  if (n_rot && *n_rot != p.head_dim)
    return make_error(ErrorCode::unsupported, where + ": rope.dimension_count " + std::to_string(*n_rot) +
                                                  " differs from the head size " + std::to_string(p.head_dim) +
                                                  " (partial rotary embeddings)");
  HEARTH_TRY(auto theta, opt_float(a + "rope.freq_base"));
  p.rope_theta = float(theta.value_or(10000.0));
  HEARTH_TRY(auto eps, opt_float(a + "attention.layer_norm_rms_epsilon"));
  if (!eps) return make_error(ErrorCode::format, where + ": missing key '" + a + "attention.layer_norm_rms_epsilon'");
  p.rms_eps = float(*eps);

  // RoPE scaling: linear through the standard keys; llama3 as llama.cpp's converter stores it, as a
  // rope_freqs.weight tensor of per-frequency divisors (its parameters in hearth.* keys when we wrote it).
  if (auto st = f.get_string(a + "rope.scaling.type")) {
    if (*st == "linear") {
      HEARTH_TRY(auto factor, opt_float(a + "rope.scaling.factor"));
      p.rope_scaling.kind = RopeScalingKind::linear;
      p.rope_scaling.factor = float(factor.value_or(1.0));
      HEARTH_TRY(auto orig, opt_int(a + "rope.scaling.original_context_length"));
      p.rope_scaling.original_ctx = orig.value_or(0);
    } else if (*st != "none") {
      return make_error(ErrorCode::unsupported, where + ": rope scaling type '" + *st + "' is not supported",
                        "linear and llama3 scaling are");
    }
  }

  // Vocabulary: the metadata's size, else the token count, else the embedding's rows.
  const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
  const int64_t n_tokens = tokens && tokens->as_array() ? int64_t(tokens->as_array()->size()) : 0;
  HEARTH_TRY(auto vocab, opt_int(a + "vocab_size"));
  if (vocab) p.n_vocab = *vocab;
  else if (n_tokens) p.n_vocab = n_tokens;
  else if (auto* te = f.find_tensor("token_embd.weight"); te && te->shape.size() == 2) p.n_vocab = te->shape[1];

  std::vector<FileTensor> files;
  std::vector<std::string> names;
  for (auto& t : f.tensors()) {
    files.push_back({t.name, t.shape, t.type, f.tensor_data(t), t.nbytes});
    names.push_back(t.name);
  }
  Lookup find = [&](const std::string& name) -> const FileTensor* {
    for (auto& t : files)
      if (t.name == name) return &t;
    return nullptr;
  };
  p.tied_embeddings = find("output.weight") == nullptr;
  HEARTH_TRY_VOID(detect_flags(p, find, true, where));
  HEARTH_TRY_VOID(check_params(p, where));

  std::set<std::string> used;
  if (const FileTensor* rf = find("rope_freqs.weight")) {
    if (rf->shape != std::vector<int64_t>{p.head_dim / 2})
      return make_error(ErrorCode::format, where + ": tensor 'rope_freqs.weight' has shape " + shape_text(rf->shape) +
                                               ", expected {" + std::to_string(p.head_dim / 2) + "} (head_dim/2)");
    TensorRef ref{rf->name, rf->shape, rf->type, rf->data, rf->nbytes};
    HEARTH_TRY(d.rope_freq_factors, tensor_to_f32(ref));
    used.insert(rf->name);
    p.rope_scaling.kind = RopeScalingKind::llama3;
    HEARTH_TRY(auto factor, opt_float("hearth.rope.scaling.factor"));
    HEARTH_TRY(auto low, opt_float("hearth.rope.scaling.low_freq_factor"));
    HEARTH_TRY(auto high, opt_float("hearth.rope.scaling.high_freq_factor"));
    HEARTH_TRY(auto orig, opt_int("hearth.rope.scaling.original_context_length"));
    p.rope_scaling.factor = float(factor.value_or(0.0));  // 0: not recorded; the tensor is what counts
    p.rope_scaling.low_freq_factor = float(low.value_or(0.0));
    p.rope_scaling.high_freq_factor = float(high.value_or(0.0));
    p.rope_scaling.original_ctx = orig.value_or(0);
  }

  HEARTH_TRY_VOID(assign_roles(d, find, true, where, used));
  // Llama files from llama.cpp's converter carry q/k rows permuted for adjacent-pair rotation.
  d.rope_layout = arch == Architecture::llama ? RopeLayout::interleaved : RopeLayout::half_split;

  // Tokenizer facts.
  TokenizerInfo& t = d.tokenizer;
  t.file = f.path();
  t.model = f.get_string("tokenizer.ggml.model").value_or("");
  t.pre = f.get_string("tokenizer.ggml.pre").value_or("");
  t.kind = t.model.empty() || t.model == "none" || t.model == "no_vocab" ? TokenizerKind::none
           : t.model == "llama"                                       ? TokenizerKind::sentencepiece
           : t.model == "gpt2"                                        ? TokenizerKind::bpe
           : t.model == "bert"                                        ? TokenizerKind::wordpiece
           : t.model == "t5"                                          ? TokenizerKind::unigram
                                                                      : TokenizerKind::other;
  t.n_tokens = n_tokens;
  auto token_text = [&](int64_t id) -> std::string {
    if (tokens && tokens->as_array() && id >= 0 && id < n_tokens)
      if (const std::string* s = (*tokens->as_array())[size_t(id)].as_string()) return *s;
    return {};
  };
  t.bos_id = f.get_int("tokenizer.ggml.bos_token_id");
  t.eos_id = f.get_int("tokenizer.ggml.eos_token_id");
  if (t.eos_id) t.eos_ids.push_back(*t.eos_id);
  if (auto eot = f.get_int("tokenizer.ggml.eot_token_id"); eot && (!t.eos_id || *eot != *t.eos_id))
    t.eos_ids.push_back(*eot);
  if (t.bos_id) t.bos_token = token_text(*t.bos_id);
  if (t.eos_id) t.eos_token = token_text(*t.eos_id);
  t.add_bos = f.get_bool("tokenizer.ggml.add_bos_token").value_or(t.kind == TokenizerKind::sentencepiece);
  t.chat_template = f.get_string("tokenizer.chat_template");
  // Recent llama.cpp files may carry the publisher's sampling defaults.
  if (auto v = f.get_float("general.sampling.temp")) d.sampling.temperature = float(*v);
  if (auto v = f.get_float("general.sampling.top_p")) d.sampling.top_p = float(*v);
  if (auto v = f.get_int("general.sampling.top_k")) d.sampling.top_k = *v;

  finish(d, used, names);
  return d;
}

// ---- Hugging Face folders ----------------------------------------------------------------------

static Expected<ModelDesc> describe_hf(const HfFolder& hf, const SafetensorsSet& st) {
  const std::string where = hf.path.string();
  const HfConfig& c = hf.config;
  ModelDesc d;
  d.format = ModelFormat::hf_folder;
  d.path = hf.path;
  d.name = fs::absolute(hf.path).lexically_normal().filename().string();
  if (d.name.empty()) d.name = fs::absolute(hf.path).lexically_normal().parent_path().filename().string();
  d.file_size = st.total_file_size();
  HEARTH_TRY(Architecture arch, architecture_from_name(!c.architecture.empty() ? c.architecture : c.model_type));
  ModelParams& p = d.params;
  p.arch = arch;
  p.n_layer = c.num_hidden_layers;
  p.n_embd = c.hidden_size;
  p.n_head = c.num_attention_heads;
  p.n_head_kv = c.num_key_value_heads;
  if (c.head_dim) {
    p.head_dim = *c.head_dim;
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      return make_error(ErrorCode::format, where + "/config.json: hidden_size " + std::to_string(c.hidden_size) +
                                               " is not a multiple of num_attention_heads " +
                                               std::to_string(c.num_attention_heads));
    p.head_dim = c.hidden_size / c.num_attention_heads;
  }
  p.n_ff = c.intermediate_size;
  p.n_vocab = c.vocab_size;
  p.n_ctx_train = c.max_position_embeddings;
  p.rope_theta = float(c.rope_theta);
  p.rope_scaling = c.rope_scaling;
  p.rms_eps = float(c.rms_norm_eps);
  p.tied_embeddings = c.tie_word_embeddings;

  std::vector<FileTensor> files;
  std::vector<std::string> names;
  for (const SafetensorsTensor* t : st.tensors()) {
    std::vector<int64_t> shape(t->shape.rbegin(), t->shape.rend());  // file order -> GGUF order
    files.push_back({t->name, std::move(shape), t->type, t->data, t->nbytes()});
    names.push_back(t->name);
  }
  Lookup find = [&](const std::string& name) -> const FileTensor* {
    auto it = std::lower_bound(files.begin(), files.end(), name,
                               [](const FileTensor& t, const std::string& n) { return t.name < n; });
    return it != files.end() && it->name == name ? &*it : nullptr;
  };
  HEARTH_TRY_VOID(detect_flags(p, find, false, where));
  if (arch == Architecture::llama && c.attention_bias) p.has_qkv_bias = p.has_o_bias = true;
  HEARTH_TRY_VOID(check_params(p, where));
  std::set<std::string> used;
  HEARTH_TRY_VOID(assign_roles(d, find, false, where, used));
  d.rope_layout = RopeLayout::half_split;
  d.rope_freq_factors = rope_freq_factors(p);
  d.tokenizer = hf.tokenizer;
  d.sampling = hf.generation.sampling;
  finish(d, used, names);
  return d;
}

// ---- Model -------------------------------------------------------------------------------------

struct Model::Impl {
  std::optional<GgufFile> gguf;
  std::optional<SafetensorsSet> safetensors;
};

Model::Model(std::unique_ptr<Impl> impl, ModelDesc desc) : m_impl(std::move(impl)), m_desc(std::move(desc)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

const GgufFile* Model::gguf() const { return m_impl->gguf ? &*m_impl->gguf : nullptr; }
const SafetensorsSet* Model::safetensors() const { return m_impl->safetensors ? &*m_impl->safetensors : nullptr; }
void Model::release_pages(const void* p, size_t n) const {
  if (m_impl->gguf) m_impl->gguf->release_pages(p, n);
}

Expected<Model> open_model(const fs::path& path) {
  std::error_code ec;
  if (path.empty()) return make_error(ErrorCode::invalid_argument, "no model path given");
  if (!fs::exists(path, ec))
    return make_error(ErrorCode::not_found, path.string() + ": no such file or folder");
  auto impl = std::make_unique<Model::Impl>();
  if (fs::is_directory(path, ec)) {
    HEARTH_TRY(HfFolder hf, read_hf_folder(path));
    HEARTH_TRY(SafetensorsSet st, SafetensorsSet::open_folder(path));
    impl->safetensors.emplace(std::move(st));
    HEARTH_TRY(ModelDesc d, describe_hf(hf, *impl->safetensors));
    return Model(std::move(impl), std::move(d));
  }
  const std::string fname = path.filename().string();
  if (path.extension() == ".safetensors" || fname == "config.json" || fname == "model.safetensors.index.json")
    return make_error(ErrorCode::invalid_argument, path.string() + ": part of a Hugging Face model folder",
                      "open the folder that holds it: " + fs::absolute(path).parent_path().string());
  HEARTH_TRY(GgufFile g, GgufFile::open(path));
  impl->gguf.emplace(std::move(g));
  HEARTH_TRY(ModelDesc d, describe_gguf(*impl->gguf));
  return Model(std::move(impl), std::move(d));
}

}  // namespace hearth
