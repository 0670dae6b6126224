/* LoRA adapters (hearth/lora.h): reading and writing the PEFT folder and llama.cpp's GGUF adapter, and
 * the forward-pass hook that applies one without merging (lora-apply.h).
 *
 * Non-obvious choice: one table of the seven target matrices names each in all three vocabularies
 * (the trainer's short name, PEFT's module path, GGUF's tensor role) and says which q/k permutation its
 * B rows take, so reading, writing and applying can never disagree about which matrix is which.
 * A GGUF adapter stores B's q/k rows as llama.cpp's converter leaves them for a llama model (permuted,
 * interleaved); they are un-permuted on reading, so the adapter in memory is always in the Hugging
 * Face order and fits both file forms of the same base.
 */
#include "hearth/lora.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "../cpu/thread-pool.h"
#include "hearth/gguf.h"
#include "hearth/model-writer.h"
#include "hearth/safetensors.h"
#include "file-write.h"
#include "lora-apply.h"

namespace hearth {

namespace fs = std::filesystem;
using nlohmann::json;
using lora_detail::LoraTarget;

namespace {

enum class QkPermute { none, q, k };

struct TargetInfo {
  LoraTarget target;
  const char* short_name;  // trainer / config: "q", "gate", ...
  const char* peft;        // module path after "model.layers.N."
  const char* gguf;        // tensor role after "blk.N."
  std::optional<LoraMatrix> LoraLayer::*member;
  QkPermute permute;
};

const std::vector<TargetInfo>& targets() {
  static const std::vector<TargetInfo> table = {
      {LoraTarget::q, "q", "self_attn.q_proj", "attn_q", &LoraLayer::wq, QkPermute::q},
      {LoraTarget::k, "k", "self_attn.k_proj", "attn_k", &LoraLayer::wk, QkPermute::k},
      {LoraTarget::v, "v", "self_attn.v_proj", "attn_v", &LoraLayer::wv, QkPermute::none},
      {LoraTarget::o, "o", "self_attn.o_proj", "attn_output", &LoraLayer::wo, QkPermute::none},
      {LoraTarget::gate, "gate", "mlp.gate_proj", "ffn_gate", &LoraLayer::gate, QkPermute::none},
      {LoraTarget::up, "up", "mlp.up_proj", "ffn_up", &LoraLayer::up, QkPermute::none},
      {LoraTarget::down, "down", "mlp.down_proj", "ffn_down", &LoraLayer::down, QkPermute::none},
  };
  return table;
}

// (n_in, n_out) of a target matrix of the base.
std::pair<int64_t, int64_t> dims_of(LoraTarget t, const ModelParams& p) {
  const int64_t q = p.n_head * p.head_dim, kv = p.n_head_kv * p.head_dim;
  switch (t) {
    case LoraTarget::q: return {p.n_embd, q};
    case LoraTarget::k:
    case LoraTarget::v: return {p.n_embd, kv};
    case LoraTarget::o: return {q, p.n_embd};
    case LoraTarget::gate:
    case LoraTarget::up: return {p.n_embd, p.n_ff};
    case LoraTarget::down: return {p.n_ff, p.n_embd};
  }
  return {0, 0};
}

// Rows to permute between the half-split and interleaved q/k layouts: B has n_out rows of `rank`.
std::vector<float> permute_b(const LoraMatrix& m, QkPermute kind, const ModelParams& p, bool to_interleaved) {
  const int64_t heads = kind == QkPermute::q ? p.n_head : p.n_head_kv;
  return permute_qk_rows(m.b, heads, p.head_dim, m.rank, to_interleaved);
}

// Parses a decimal layer index in [0, n_layer); nullopt otherwise.
std::optional<int64_t> parse_layer(std::string_view s, int64_t n_layer) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v >= n_layer) return std::nullopt;
  return v;
}

// Consumes "<prefix><N>." from the front of `n` (what is left of tensor `name`) and returns N.
// Errors: format with `expected` (the name has another shape), invalid_argument (N is no layer of the
// base). Shared by the PEFT (model.layers.N.) and GGUF (blk.N.) readers.
Expected<int64_t> take_layer(std::string_view& n, std::string_view prefix, const std::string& where,
                             const std::string& name, int64_t n_layer, const char* expected) {
  const size_t dot = n.substr(0, prefix.size()) == prefix ? n.find('.', prefix.size()) : std::string_view::npos;
  if (dot == std::string_view::npos)
    return make_error(ErrorCode::format, where + ": cannot place tensor '" + name + "' (expected " + expected + ")");
  auto layer = parse_layer(n.substr(prefix.size(), dot - prefix.size()), n_layer);
  if (!layer)
    return make_error(ErrorCode::invalid_argument, where + ": tensor '" + name + "' names a layer the base model (" +
                                                       std::to_string(n_layer) + " layers) does not have");
  n.remove_prefix(dot + 1);
  return *layer;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

// Factors found in a file before they are checked and placed: (layer, target) -> A and B.
struct Pending {
  std::vector<float> a, b;
  std::vector<int64_t> a_shape, b_shape;  // file order of each format, recorded for messages
  std::string a_name, b_name;
  int64_t rank = 0, n_in = 0, n_out = 0;
  bool has_a = false, has_b = false;
};

// Places the pending factors into an adapter, checking pairs, ranks and shapes against `p`.
Expected<LoraAdapter> assemble(std::map<std::pair<int64_t, int>, Pending>& found, const ModelParams& p,
                               const std::string& where, std::optional<int64_t> want_rank) {
  if (found.empty())
    return make_error(ErrorCode::format, where + ": no LoRA factors (lora_A/lora_B tensors) in the file");
  LoraAdapter ad;
  ad.layers.resize(size_t(p.n_layer));
  std::optional<int64_t> rank = want_rank;
  for (auto& [key, f] : found) {
    const TargetInfo& ti = targets()[size_t(key.second)];
    const std::string what = "layer " + std::to_string(key.first) + " " + ti.peft;
    if (!f.has_a || !f.has_b)
      return make_error(ErrorCode::format, where + ": " + what + " has " + (f.has_a ? "lora_A" : "lora_B") +
                                               " but no " + (f.has_a ? "lora_B" : "lora_A"));
    auto [n_in, n_out] = dims_of(ti.target, p);
    if (f.n_in != n_in)
      return make_error(ErrorCode::invalid_argument,
                        where + ": tensor '" + f.a_name + "' has shape " + shape_str(f.a_shape) + ": its input size " +
                            std::to_string(f.n_in) + " does not match the base model's " + std::to_string(n_in),
                        "the adapter was made for another model");
    if (f.n_out != n_out)
      return make_error(ErrorCode::invalid_argument,
                        where + ": tensor '" + f.b_name + "' has shape " + shape_str(f.b_shape) + ": its output size " +
                            std::to_string(f.n_out) + " does not match the base model's " + std::to_string(n_out),
                        "the adapter was made for another model");
    if (f.rank <= 0)
      return make_error(ErrorCode::format, where + ": tensor '" + f.a_name + "' has rank 0");
    if (!rank) rank = f.rank;
    if (f.rank != *rank)
      return make_error(ErrorCode::unsupported, where + ": tensor '" + f.a_name + "' has rank " +
                                                    std::to_string(f.rank) + ", others (or the config) " +
                                                    std::to_string(*rank) + "; mixed ranks are not supported");
    LoraMatrix m;
    m.rank = f.rank, m.n_in = f.n_in, m.n_out = f.n_out;
    m.a = std::move(f.a), m.b = std::move(f.b);
    ad.layers[size_t(key.first)].*ti.member = std::move(m);
  }
  ad.rank = *rank;
  return ad;
}

Expected<std::vector<float>> safetensors_f32(const SafetensorsTensor& t, const std::string& where) {
  std::vector<float> v(size_t(t.n_elements()));
  if (t.type == GgmlType::F32) {
    if (t.nbytes() != v.size() * sizeof(float))
      return make_error(ErrorCode::format, where + ": tensor '" + t.name + "' has a wrong byte size");
    std::memcpy(v.data(), t.data, t.nbytes());
    return v;
  }
  auto r = dequantize(t.type, t.data, v.data(), int64_t(v.size()));
  if (!r) return make_error(r.error().code, where + ": tensor '" + t.name + "': " + r.error().message);
  return v;
}

Expected<json> read_json_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return make_error(ErrorCode::io, p.string() + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    return make_error(ErrorCode::format, p.string() + ": invalid JSON: " + e.what());
  }
}

Expected<LoraAdapter> load_peft(const fs::path& st_path, const fs::path& config_path, const ModelDesc& base) {
  const ModelParams& p = base.params;
  std::error_code ec;
  if (!fs::exists(config_path, ec))
    return make_error(ErrorCode::format, config_path.string() + ": missing (a PEFT adapter needs adapter_config.json "
                                                                "beside adapter_model.safetensors)");
  HEARTH_TRY(json cfg, read_json_file(config_path));
  const std::string cwhere = config_path.string();
  if (!cfg.is_object()) return make_error(ErrorCode::format, cwhere + ": expected a JSON object");
  auto get_num = [&](const char* key) -> Expected<std::optional<double>> {
    if (!cfg.contains(key) || cfg[key].is_null()) return std::optional<double>{};
    if (!cfg[key].is_number()) return make_error(ErrorCode::format, cwhere + ": '" + key + "' must be a number");
    return std::optional<double>(cfg[key].get<double>());
  };
  if (cfg.contains("peft_type") && cfg["peft_type"].is_string() && cfg["peft_type"].get<std::string>() != "LORA")
    return make_error(ErrorCode::unsupported,
                      cwhere + ": peft_type is '" + cfg["peft_type"].get<std::string>() + "'; only LORA adapters are supported");
  HEARTH_TRY(auto r_cfg, get_num("r"));
  HEARTH_TRY(auto alpha_cfg, get_num("lora_alpha"));
  if (!r_cfg) return make_error(ErrorCode::format, cwhere + ": missing key 'r' (the LoRA rank)");
  if (*r_cfg < 1 || *r_cfg > 65536 || *r_cfg != std::floor(*r_cfg))
    return make_error(ErrorCode::format, cwhere + ": 'r' must be a positive integer");
  if (cfg.value("fan_in_fan_out", false) == true)
    return make_error(ErrorCode::unsupported, cwhere + ": fan_in_fan_out adapters (GPT-2 Conv1D layout) are not supported");
  if (cfg.value("use_dora", false) == true)
    return make_error(ErrorCode::unsupported, cwhere + ": DoRA adapters are not supported");
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    if (cfg.contains(k) && cfg[k].is_object() && !cfg[k].empty())
      return make_error(ErrorCode::unsupported, cwhere + ": '" + k + "' (per-module ranks or alphas) is not supported");
  if (cfg.contains("bias") && cfg["bias"].is_string() && cfg["bias"].get<std::string>() != "none")
    return make_error(ErrorCode::unsupported, cwhere + ": trained biases (bias = '" + cfg["bias"].get<std::string>() +
                                                  "') are not supported");

  HEARTH_TRY(SafetensorsFile st, SafetensorsFile::open(st_path));
  const std::string where = st_path.string();
  std::map<std::pair<int64_t, int>, Pending> found;
  for (const SafetensorsTensor& t : st.tensors()) {
    std::string_view n = t.name;
    auto strip_prefix = [&](std::string_view pre) {
      if (n.substr(0, pre.size()) == pre) n.remove_prefix(pre.size());
    };
    strip_prefix("base_model.model.");
    static constexpr const char* EXPECTED =
        "model.layers.N.<q|k|v|o>_proj or mlp.<gate|up|down>_proj .lora_A/.lora_B.weight";
    auto cannot_place = [&] {
      return make_error(ErrorCode::format, where + ": cannot place tensor '" + t.name + "' (expected " + EXPECTED + ")");
    };
    HEARTH_TRY(const int64_t layer, take_layer(n, "model.layers.", where, t.name, p.n_layer, EXPECTED));
    int found_target = -1;
    bool is_a = false;
    for (size_t i = 0; i < targets().size(); ++i) {
      const std::string mod = targets()[i].peft;
      for (int ab = 0; ab < 2; ++ab)
        for (const char* suffix : {".weight", ".default.weight"}) {
          std::string full = mod + (ab == 0 ? ".lora_A" : ".lora_B") + suffix;
          if (n == full) found_target = int(i), is_a = ab == 0;
        }
    }
    if (found_target < 0) return cannot_place();
    if (t.shape.size() != 2)
      return make_error(ErrorCode::format, where + ": tensor '" + t.name + "' has shape " + shape_str(t.shape) +
                                               ", expected a matrix");
    Pending& f = found[{layer, found_target}];
    HEARTH_TRY(std::vector<float> v, safetensors_f32(t, where));
    if (is_a) {
      f.has_a = true, f.a = std::move(v), f.a_shape = t.shape, f.a_name = t.name;
      f.rank = t.shape[0], f.n_in = t.shape[1];
      if (f.has_b && f.b_shape[1] != f.rank) f.rank = -1;
    } else {
      f.has_b = true, f.b = std::move(v), f.b_shape = t.shape, f.b_name = t.name;
      f.n_out = t.shape[0];
      if (f.has_a && t.shape[1] != f.rank) f.rank = -1;
      if (!f.has_a) f.rank = t.shape[1];
    }
    if (f.rank < 0)
      return make_error(ErrorCode::format, where + ": tensor '" + t.name + "': lora_A and lora_B ranks differ");
  }
  HEARTH_TRY(LoraAdapter ad, assemble(found, p, where, int64_t(*r_cfg)));
  ad.alpha = alpha_cfg ? float(*alpha_cfg) : float(ad.rank);
  if (cfg.value("use_rslora", false) == true) ad.alpha *= std::sqrt(float(ad.rank));  // scale alpha/sqrt(r)
  if (cfg.contains("base_model_name_or_path") && cfg["base_model_name_or_path"].is_string())
    ad.base_model = cfg["base_model_name_or_path"].get<std::string>();
  return ad;
}

Expected<LoraAdapter> load_gguf(const fs::path& path, const ModelDesc& base) {
  const ModelParams& p = base.params;
  const std::string where = path.string();
  HEARTH_TRY(GgufFile g, GgufFile::open(path));
  auto type = g.get_string("general.type");
  if (!type || *type != "adapter")
    return make_error(ErrorCode::format, where + ": not a LoRA adapter (general.type is " +
                                             (type ? "'" + *type + "'" : std::string("missing")) + ", expected 'adapter')",
                      "pass the base model with -m and the adapter with --lora");
  auto atype = g.get_string("adapter.type");
  if (!atype || *atype != "lora")
    return make_error(ErrorCode::unsupported, where + ": adapter.type is " +
                                                  (atype ? "'" + *atype + "'" : std::string("missing")) +
                                                  ", only 'lora' adapters are supported");
  auto arch = g.get_string("general.architecture");
  if (!arch) return make_error(ErrorCode::format, where + ": missing general.architecture");
  if (*arch != architecture_name(p.arch))
    return make_error(ErrorCode::invalid_argument, where + ": the adapter is for architecture '" + *arch +
                                                       "', the base model is '" + architecture_name(p.arch) + "'");
  std::map<std::pair<int64_t, int>, Pending> found;
  for (const GgufTensorInfo& t : g.tensors()) {
    std::string_view n = t.name;
    static constexpr const char* EXPECTED =
        "blk.N.<attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down>.weight.lora_a/.lora_b";
    auto cannot_place = [&] {
      return make_error(ErrorCode::format, where + ": cannot place tensor '" + t.name + "' (expected " + EXPECTED + ")");
    };
    HEARTH_TRY(const int64_t layer, take_layer(n, "blk.", where, t.name, p.n_layer, EXPECTED));
    int found_target = -1;
    bool is_a = false;
    for (size_t i = 0; i < targets().size(); ++i)
      for (int ab = 0; ab < 2; ++ab)
        if (n == std::string(targets()[i].gguf) + (ab == 0 ? ".weight.lora_a" : ".weight.lora_b"))
          found_target = int(i), is_a = ab == 0;
    if (found_target < 0) return cannot_place();
    if (t.shape.size() != 2)
      return make_error(ErrorCode::format, where + ": tensor '" + t.name + "' has " + std::to_string(t.shape.size()) +
                                               " dimensions, expected 2");
    HEARTH_TRY(std::vector<float> v, g.read_f32(t));
    Pending& f = found[{layer, found_target}];
    // GGUF order: lora_a ne = {n_in, rank}, lora_b ne = {rank, n_out}; the values are row-major (rank, n_in)
    // and (n_out, rank), as in memory.
    if (is_a) {
      f.has_a = true, f.a = std::move(v), f.a_shape = t.shape, f.a_name = t.name;
      f.n_in = t.shape[0];
      if (f.has_b && f.rank != t.shape[1]) f.rank = -1;
      else f.rank = t.shape[1];
    } else {
      f.has_b = true, f.b = std::move(v), f.b_shape = t.shape, f.b_name = t.name;
      f.n_out = t.shape[1];
      if (f.has_a && f.rank != t.shape[0]) f.rank = -1;
      else if (!f.has_a) f.rank = t.shape[0];
    }
    if (f.rank < 0)
      return make_error(ErrorCode::format, where + ": tensor '" + t.name + "': lora_a and lora_b ranks differ");
  }
  HEARTH_TRY(LoraAdapter ad, assemble(found, p, where, std::nullopt));
  // llama.cpp: a missing or zero alpha means scale 1.
  auto alpha = g.get_float("adapter.lora.alpha");
  ad.alpha = alpha && *alpha != 0.0 ? float(*alpha) : float(ad.rank);
  if (auto name = g.get_string("general.name")) ad.base_model = *name;
  if (p.arch == Architecture::llama)
    for (auto& layer : ad.layers)
      for (const TargetInfo& ti : targets())
        if (ti.permute != QkPermute::none && layer.*ti.member)
          (layer.*ti.member)->b = permute_b(*(layer.*ti.member), ti.permute, p, false);
  return ad;
}

bool is_gguf_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

Expected<void> write_text(const fs::path& p, const std::string& text) {
  return detail::write_file_atomic(p, text.data(), text.size());
}

}  // namespace

namespace lora_detail {

Expected<void> check_adapter_fits(const LoraAdapter& ad, const ModelParams& p, const std::string& where) {
  if (int64_t(ad.layers.size()) != p.n_layer)
    return make_error(ErrorCode::invalid_argument, where + ": the adapter has " + std::to_string(ad.layers.size()) +
                                                       " layers, the base model " + std::to_string(p.n_layer));
  if (ad.rank < 1) return make_error(ErrorCode::invalid_argument, where + ": the adapter's rank must be >= 1");
  if (!std::isfinite(ad.alpha)) return make_error(ErrorCode::invalid_argument, where + ": the adapter's alpha is not finite");
  for (size_t il = 0; il < ad.layers.size(); ++il)
    for (const TargetInfo& ti : targets()) {
      const auto& m = ad.layers[il].*ti.member;
      if (!m) continue;
      auto [n_in, n_out] = dims_of(ti.target, p);
      const std::string what = where + ": layer " + std::to_string(il) + " " + ti.peft;
      if (m->n_in != n_in || m->n_out != n_out)
        return make_error(ErrorCode::invalid_argument, what + " is " + std::to_string(m->n_in) + " -> " +
                                                           std::to_string(m->n_out) + ", the base model's is " +
                                                           std::to_string(n_in) + " -> " + std::to_string(n_out));
      if (m->rank != ad.rank)
        return make_error(ErrorCode::invalid_argument, what + " has rank " + std::to_string(m->rank) +
                                                           ", the adapter " + std::to_string(ad.rank));
      if (m->a.size() != size_t(m->rank * n_in) || m->b.size() != size_t(n_out * m->rank))
        return make_error(ErrorCode::invalid_argument, what + ": factor sizes do not match rank x n_in and n_out x rank");
    }
  return {};
}

LoraRuntime::LoraRuntime(std::shared_ptr<const LoraAdapter> adapter, const ModelDesc& desc)
    : m_adapter(std::move(adapter)), m_scale(m_adapter->scale()) {
  const size_t nl = m_adapter->layers.size();
  m_bq.resize(nl), m_bk.resize(nl);
  if (desc.rope_layout != RopeLayout::interleaved) return;
  for (size_t il = 0; il < nl; ++il) {
    const LoraLayer& L = m_adapter->layers[il];
    if (L.wq) m_bq[il] = permute_b(*L.wq, QkPermute::q, desc.params, true);
    if (L.wk) m_bk[il] = permute_b(*L.wk, QkPermute::k, desc.params, true);
  }
}

void LoraRuntime::add(cpu::ThreadPool& pool, size_t layer, LoraTarget target, const float* x, int64_t n,
                      float* y) const {
  if (layer >= m_adapter->layers.size()) return;
  const LoraLayer& L = m_adapter->layers[layer];
  const TargetInfo& ti = targets()[size_t(target)];
  const auto& m = L.*ti.member;
  if (!m) return;
  const float* b = m->b.data();
  if (target == LoraTarget::q && !m_bq[layer].empty()) b = m_bq[layer].data();
  if (target == LoraTarget::k && !m_bk[layer].empty()) b = m_bk[layer].data();
  const int64_t r = m->rank, n_in = m->n_in, n_out = m->n_out;
  const float* a = m->a.data();
  const float scale = m_scale;
  pool.parallel_for(n, [&](int64_t t0, int64_t t1) {
    std::vector<float> ax(static_cast<size_t>(r), 0.0f);
    for (int64_t t = t0; t < t1; ++t) {
      const float* xt = x + t * n_in;
      for (int64_t i = 0; i < r; ++i) {
        const float* ai = a + i * n_in;
        float s = 0.0f;
        for (int64_t j = 0; j < n_in; ++j) s += ai[j] * xt[j];
        ax[size_t(i)] = scale * s;
      }
      float* yt = y + t * n_out;
      for (int64_t o = 0; o < n_out; ++o) {
        const float* bo = b + o * r;
        float s = 0.0f;
        for (int64_t i = 0; i < r; ++i) s += bo[i] * ax[size_t(i)];
        yt[o] += s;
      }
    }
  });
}

}  // namespace lora_detail

Expected<LoraAdapter> load_lora_adapter(const fs::path& path, const ModelDesc& base) {
  std::error_code ec;
  if (path.empty()) return make_error(ErrorCode::invalid_argument, "no adapter path given");
  if (!fs::exists(path, ec)) return make_error(ErrorCode::not_found, path.string() + ": no such file or folder");
  try {
    Expected<LoraAdapter> ad = make_error(ErrorCode::internal, "unreachable");
    std::string where = path.string();
    if (fs::is_directory(path, ec)) {
      const fs::path st = path / "adapter_model.safetensors";
      if (!fs::exists(st, ec)) {
        if (fs::exists(path / "adapter_model.bin", ec))
          return make_error(ErrorCode::unsupported, (path / "adapter_model.bin").string() +
                                                        ": PyTorch pickle adapters are not read (no code is run from files)",
                            "save the adapter with safe_serialization=True (adapter_model.safetensors)");
        return make_error(ErrorCode::not_found, st.string() + ": missing (a PEFT adapter folder holds "
                                                              "adapter_model.safetensors and adapter_config.json)");
      }
      ad = load_peft(st, path / "adapter_config.json", base);
      where = st.string();
    } else if (is_gguf_file(path)) {
      ad = load_gguf(path, base);
    } else {
      ad = load_peft(path, path.parent_path() / "adapter_config.json", base);
    }
    if (!ad) return ad;
    HEARTH_TRY_VOID(lora_detail::check_adapter_fits(*ad, base.params, where));
    return ad;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, path.string() + ": reading the adapter: " + e.what());
  }
}

Expected<void> save_peft_adapter(const LoraAdapter& adapter, const ModelDesc& base, const fs::path& folder) {
  HEARTH_TRY_VOID(lora_detail::check_adapter_fits(adapter, base.params, "adapter"));
  try {
    std::error_code ec;
    fs::create_directories(folder, ec);
    if (ec) return make_error(ErrorCode::io, folder.string() + ": cannot create folder: " + ec.message());
    SafetensorsWriter st;
    st.set_metadata("format", "pt");
    std::set<std::string> modules;
    for (size_t il = 0; il < adapter.layers.size(); ++il)
      for (const TargetInfo& ti : targets()) {
        const auto& m = adapter.layers[il].*ti.member;
        if (!m) continue;
        const std::string stem = "base_model.model.model.layers." + std::to_string(il) + "." + ti.peft;
        modules.insert(std::string(ti.peft).substr(std::string(ti.peft).find('.') + 1));
        HEARTH_TRY_VOID(st.add_tensor_f32(stem + ".lora_A.weight", GgmlType::F32, {m->rank, m->n_in}, m->a.data()));
        HEARTH_TRY_VOID(st.add_tensor_f32(stem + ".lora_B.weight", GgmlType::F32, {m->n_out, m->rank}, m->b.data()));
      }
    if (st.size() == 0) return make_error(ErrorCode::invalid_argument, "the adapter has no factors to write");
    json cfg = json::object();
    cfg["alpha_pattern"] = json::object();
    cfg["auto_mapping"] = nullptr;
    cfg["base_model_name_or_path"] = adapter.base_model.empty() ? base.name : adapter.base_model;
    cfg["bias"] = "none";
    cfg["fan_in_fan_out"] = false;
    cfg["inference_mode"] = true;
    cfg["init_lora_weights"] = true;
    cfg["layers_pattern"] = nullptr;
    cfg["layers_to_transform"] = nullptr;
    cfg["lora_alpha"] = adapter.alpha;
    cfg["lora_dropout"] = 0.0;
    cfg["modules_to_save"] = nullptr;
    cfg["peft_type"] = "LORA";
    cfg["r"] = adapter.rank;
    cfg["rank_pattern"] = json::object();
    cfg["revision"] = nullptr;
    cfg["target_modules"] = std::vector<std::string>(modules.begin(), modules.end());
    cfg["task_type"] = "CAUSAL_LM";
    cfg["use_dora"] = false;
    cfg["use_rslora"] = false;
    const fs::path st_path = folder / "adapter_model.safetensors", cfg_path = folder / "adapter_config.json";
    HEARTH_TRY_VOID(st.write(st_path));
    auto w = write_text(cfg_path, cfg.dump(2) + "\n");
    if (!w) {
      fs::remove(st_path, ec);
      return w;
    }
    return {};
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, folder.string() + ": writing the adapter: " + e.what());
  }
}

Expected<void> save_gguf_lora(const LoraAdapter& adapter, const ModelDesc& base, const fs::path& path) {
  HEARTH_TRY_VOID(lora_detail::check_adapter_fits(adapter, base.params, "adapter"));
  try {
    const ModelParams& p = base.params;
    GgufWriter g;
    g.set_string("general.architecture", architecture_name(p.arch));
    g.set_string("general.type", "adapter");
    g.set_string("general.name", adapter.base_model.empty() ? base.name : adapter.base_model);
    g.set_string("adapter.type", "lora");
    g.set_f32("adapter.lora.alpha", adapter.alpha);
    const bool permute = p.arch == Architecture::llama;
    size_t n = 0;
    for (size_t il = 0; il < adapter.layers.size(); ++il)
      for (const TargetInfo& ti : targets()) {
        const auto& m = adapter.layers[il].*ti.member;
        if (!m) continue;
        const std::string stem = "blk." + std::to_string(il) + "." + ti.gguf + ".weight";
        HEARTH_TRY_VOID(g.add_tensor_f32(stem + ".lora_a", {m->n_in, m->rank}, m->a.data(), GgmlType::F32));
        if (permute && ti.permute != QkPermute::none) {
          auto b = permute_b(*m, ti.permute, p, true);
          HEARTH_TRY_VOID(g.add_tensor_f32(stem + ".lora_b", {m->rank, m->n_out}, b.data(), GgmlType::F32));
        } else {
          HEARTH_TRY_VOID(g.add_tensor_f32(stem + ".lora_b", {m->rank, m->n_out}, m->b.data(), GgmlType::F32));
        }
        ++n;
      }
    if (n == 0) return make_error(ErrorCode::invalid_argument, "the adapter has no factors to write");
    return g.write(path);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, path.string() + ": writing the adapter: " + e.what());
  }
}

}  // namespace hearth
