/* The training configuration: YAML in (file or text, then `--set` overrides), JSON and YAML out, and
 * the checks of every value.
 *
 * Non-obvious choice: one table of fields (dotted key, a pointer into TrainConfig, a range check)
 * drives everything: parsing, overrides, validation, to_json and to_yaml. A key cannot then be
 * parsed but forgotten in the stored JSON, or written to YAML under a name the parser does not know.
 * Numbers are written in their shortest round-trip form (std::to_chars), so YAML out, YAML in gives
 * the same doubles bit for bit.
 */
#include "hearth/trainer/config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>
#include <set>
#include <variant>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

namespace hearth::train {

namespace fs = std::filesystem;

namespace {

using Ref = std::variant<std::string*, fs::path*, int64_t*, int*, uint64_t*, double*, float*, bool*,
                         std::vector<std::string>*, Method*, DataFormat*, ScheduleKind*, Architecture*>;

struct Field {
  const char* key;                                // dotted: "training.lr"
  Ref (*ref)(TrainConfig&);                       // where the value lives
  std::string (*check)(const TrainConfig&);       // "" when fine, else what is expected
};

const char* const SECTIONS[] = {"lora", "pretrain", "data", "training", "eval", "checkpoint", "output"};
const char* const LORA_TARGETS[] = {"q", "k", "v", "o", "gate", "up", "down"};
const char* const OUTPUT_FORMATS[] = {"peft", "gguf-lora", "safetensors", "gguf-f16", "gguf-q8_0", "gguf-q4_k"};
const char* const LORA_ONLY_FORMATS[] = {"peft", "gguf-lora"};

template <class T>
std::string num_text(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(v)) return ".nan";
    if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  }
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

template <class T>
std::string at_least(T v, T lo) {
  return v >= lo ? "" : "must be >= " + num_text(lo) + " (got " + num_text(v) + ")";
}
std::string positive(double v) {
  return std::isfinite(v) && v > 0 ? "" : "must be a number > 0 (got " + num_text(v) + ")";
}
std::string non_negative(double v) {
  return std::isfinite(v) && v >= 0 ? "" : "must be a number >= 0 (got " + num_text(v) + ")";
}
std::string unit_open(double v) {  // [0, 1)
  return v >= 0 && v < 1 ? "" : "must be in [0, 1) (got " + num_text(v) + ")";
}
std::string unit_closed(double v) {  // [0, 1]
  return v >= 0 && v <= 1 ? "" : "must be in [0, 1] (got " + num_text(v) + ")";
}
template <size_t N>
std::string one_of_each(const std::vector<std::string>& list, const char* const (&allowed)[N], bool non_empty) {
  if (non_empty && list.empty()) return "must name at least one of " + [&] {
      std::string s;
      for (const char* a : allowed) s += (s.empty() ? "" : ", ") + std::string(a);
      return s;
    }();
  std::set<std::string> seen;
  for (const auto& x : list) {
    if (std::find_if(std::begin(allowed), std::end(allowed), [&](const char* a) { return x == a; }) ==
        std::end(allowed)) {
      std::string s;
      for (const char* a : allowed) s += (s.empty() ? "" : ", ") + std::string(a);
      return "has unknown entry '" + x + "' (use " + s + ")";
    }
    if (!seen.insert(x).second) return "names '" + x + "' twice";
  }
  return "";
}

template <size_t N>
std::string name_in(const std::string& v, const char* const (&allowed)[N]) {
  std::string list;
  for (const char* a : allowed) {
    if (v == a) return "";
    list += (list.empty() ? "" : ", ") + std::string(a);
  }
  return "must be one of " + list + " (got '" + v + "')";
}

#define HF(KEY, MEMBER) Field{KEY, [](TrainConfig& c) -> Ref { return &c.MEMBER; }, nullptr}
#define HFC(KEY, MEMBER, CHECK) \
  Field{KEY, [](TrainConfig& c) -> Ref { return &c.MEMBER; }, [](const TrainConfig& c) -> std::string { \
          const auto& v = c.MEMBER;                                                                    \
          return CHECK;                                                                                \
        }}

const std::vector<Field>& fields() {
  static const std::vector<Field> table = {
      HF("name", name),
      HF("model", model),
      HF("method", method),
      HFC("lora.rank", lora.rank, at_least<int64_t>(v, 1)),
      HFC("lora.alpha", lora.alpha, positive(v)),
      HFC("lora.dropout", lora.dropout, unit_open(v)),
      HFC("lora.targets", lora.targets, one_of_each(v, LORA_TARGETS, true)),
      HF("pretrain.arch", pretrain.arch),
      HFC("pretrain.n_layer", pretrain.n_layer, at_least<int64_t>(v, 1)),
      HFC("pretrain.n_embd", pretrain.n_embd, at_least<int64_t>(v, 2)),
      HFC("pretrain.n_head", pretrain.n_head, at_least<int64_t>(v, 1)),
      HFC("pretrain.n_head_kv", pretrain.n_head_kv, at_least<int64_t>(v, 1)),
      HFC("pretrain.n_ff", pretrain.n_ff, at_least<int64_t>(v, 1)),
      HFC("pretrain.n_ctx", pretrain.n_ctx, at_least<int64_t>(v, 2)),
      HFC("pretrain.vocab_size", pretrain.vocab_size, at_least<int64_t>(v, 16)),
      HFC("pretrain.tokenizer_type", pretrain.tokenizer_type,
          (v == "unigram" || v == "bpe") ? std::string() : "must be unigram or bpe (got '" + v + "')"),
      HF("data.train", data.train),
      HF("data.validation", data.validation),
      HFC("data.validation_split", data.validation_split, unit_open(v)),
      HF("data.format", data.format),
      HFC("data.max_length", data.max_length, at_least<int64_t>(v, 2)),
      HF("data.packing", data.packing),
      HF("data.train_on_all", data.train_on_all),
      HF("data.skip_bad_lines", data.skip_bad_lines),
      HFC("training.steps", training.steps, at_least<int64_t>(v, 0)),
      HFC("training.epochs", training.epochs, positive(v)),
      HFC("training.batch_size", training.batch_size, at_least<int64_t>(v, 1)),
      HFC("training.grad_accum", training.grad_accum, at_least<int64_t>(v, 1)),
      HFC("training.lr", training.lr, positive(v)),
      HF("training.schedule", training.schedule),
      HFC("training.warmup_steps", training.warmup_steps, at_least<int64_t>(v, 0)),
      HFC("training.min_lr_ratio", training.min_lr_ratio, unit_closed(v)),
      HFC("training.weight_decay", training.weight_decay, non_negative(v)),
      HFC("training.beta1", training.beta1, unit_open(v)),
      HFC("training.beta2", training.beta2, unit_open(v)),
      HFC("training.eps", training.eps, positive(v)),
      HFC("training.max_grad_norm", training.max_grad_norm, non_negative(v)),
      HF("training.seed", training.seed),
      HFC("training.threads", training.threads, at_least<int>(v, 0)),
      HFC("training.device", training.device, name_in(v, TRAIN_DEVICE_NAMES)),
      HFC("training.gpu", training.gpu, at_least<int>(v, 0)),
      HFC("training.precision", training.precision, name_in(v, TRAIN_PRECISION_NAMES)),
      HF("training.recompute", training.recompute),
      HFC("training.log_every", training.log_every, at_least<int64_t>(v, 1)),
      HFC("eval.every", eval.every, at_least<int64_t>(v, 0)),
      HFC("eval.max_batches", eval.max_batches, at_least<int64_t>(v, 0)),
      HF("eval.prompts", eval.prompts),
      HFC("eval.max_new_tokens", eval.max_new_tokens, at_least<int64_t>(v, 1)),
      HFC("checkpoint.every", checkpoint.every, at_least<int64_t>(v, 0)),
      HFC("checkpoint.keep", checkpoint.keep, at_least<int64_t>(v, 1)),
      HF("output.dir", output.dir),
      HF("output.name", output.name),
      HFC("output.formats", output.formats, one_of_each(v, OUTPUT_FORMATS, false)),
  };
  return table;
}

#undef HF
#undef HFC

const Field* find_field(const std::string& key) {
  for (const Field& f : fields())
    if (key == f.key) return &f;
  return nullptr;
}

bool is_section(const std::string& key) {
  return std::any_of(std::begin(SECTIONS), std::end(SECTIONS), [&](const char* s) { return key == s; });
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// "did you mean ...?" or the keys of the section the unknown key sits in.
std::string unknown_key_hint(const std::string& key) {
  const Field* best = nullptr;
  size_t best_d = 3;
  for (const Field& f : fields()) {
    size_t d = edit_distance(key, f.key);
    if (d < best_d) best_d = d, best = &f;
  }
  if (best) return std::string("did you mean '") + best->key + "'?";
  const auto dot = key.find('.');
  const std::string section = dot == std::string::npos ? "" : key.substr(0, dot + 1);
  std::string list;
  for (const Field& f : fields()) {
    std::string k = f.key;
    bool in = section.empty() ? k.find('.') == std::string::npos : k.rfind(section, 0) == 0;
    if (in) list += (list.empty() ? "" : ", ") + k;
  }
  if (section.empty())
    for (const char* s : SECTIONS) list += std::string(", ") + s;
  return "known keys: " + list;
}

// Where a message points: "file:line" (line when yaml-cpp knows it), or the override text.
struct Where {
  std::string origin;  // file name, "<yaml>" or "--set key=value"
  int line = -1;       // 0-based, -1 unknown
  std::string text() const { return line >= 0 ? origin + ":" + std::to_string(line + 1) : origin; }
};

Unexpected fail(ErrorCode code, const Where& w, const std::string& what, std::string hint = {}) {
  return make_error(code, w.text() + ": " + what, std::move(hint));
}

std::string describe(const YAML::Node& n) {
  if (n.IsNull()) return "nothing";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "'" + n.Scalar() + "'";
}

struct Context {
  std::string origin;
  fs::path base_dir;   // relative paths are resolved against it (empty: left as written)
  ErrorCode code = ErrorCode::format;
  std::set<std::string>* set_keys = nullptr;  // records the keys given explicitly
};

template <class T>
bool scalar_as(const YAML::Node& n, T& out) {
  if (!n.IsScalar()) return false;
  if constexpr (std::is_unsigned_v<T>)
    if (!n.Scalar().empty() && n.Scalar()[0] == '-') return false;
  try {
    out = n.as<T>();
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}

Expected<void> assign(TrainConfig& c, const Field& f, const YAML::Node& n, const Context& ctx, const Where& w) {
  const std::string key = f.key;
  auto type_error = [&](const char* expected) {
    return fail(ctx.code, w, key + ": expected " + expected + ", got " + describe(n));
  };
  Ref r = f.ref(c);
  Expected<void> ok;
  if (ctx.set_keys) ctx.set_keys->insert(key);
  if (auto* s = std::get_if<std::string*>(&r)) {
    if (n.IsNull()) **s = "";
    else if (!n.IsScalar()) return type_error("a string");
    else **s = n.Scalar();
  } else if (auto* p = std::get_if<fs::path*>(&r)) {
    if (n.IsNull()) **p = fs::path();
    else if (!n.IsScalar()) return type_error("a path");
    else {
      fs::path v = n.Scalar();
      if (!v.empty() && v.is_relative() && !ctx.base_dir.empty()) v = (ctx.base_dir / v).lexically_normal();
      **p = v;
    }
  } else if (auto* i = std::get_if<int64_t*>(&r)) {
    if (!scalar_as(n, **i)) return type_error("an integer");
  } else if (auto* i32 = std::get_if<int*>(&r)) {
    if (!scalar_as(n, **i32)) return type_error("an integer");
  } else if (auto* u = std::get_if<uint64_t*>(&r)) {
    if (!scalar_as(n, **u)) return type_error("a non-negative integer");
  } else if (auto* d = std::get_if<double*>(&r)) {
    if (!scalar_as(n, **d)) return type_error("a number");
  } else if (auto* fl = std::get_if<float*>(&r)) {
    if (!scalar_as(n, **fl)) return type_error("a number");
  } else if (auto* b = std::get_if<bool*>(&r)) {
    if (!scalar_as(n, **b)) return type_error("true or false");
  } else if (auto* l = std::get_if<std::vector<std::string>*>(&r)) {
    std::vector<std::string> out;
    if (n.IsNull()) {
    } else if (n.IsScalar()) {
      out.push_back(n.Scalar());
    } else if (n.IsSequence()) {
      for (const auto& e : n) {
        if (!e.IsScalar()) return type_error("a list of strings");
        out.push_back(e.Scalar());
      }
    } else {
      return type_error("a list of strings");
    }
    **l = std::move(out);
  } else {
    // Enumerations: a name.
    if (!n.IsScalar()) return type_error("a name");
    const std::string s = n.Scalar();
    auto bad = [&](const Error& e) { return fail(ctx.code, w, key + ": " + e.message, e.hint); };
    if (auto* m = std::get_if<Method*>(&r)) {
      auto v = method_from_name(s);
      if (!v) return bad(v.error());
      **m = *v;
    } else if (auto* df = std::get_if<DataFormat*>(&r)) {
      auto v = data_format_from_name(s);
      if (!v) return bad(v.error());
      **df = *v;
    } else if (auto* sk = std::get_if<ScheduleKind*>(&r)) {
      auto v = schedule_from_name(s);
      if (!v) return bad(v.error());
      **sk = *v;
    } else if (auto* a = std::get_if<Architecture*>(&r)) {
      auto v = architecture_from_name(s);
      if (!v) return fail(ctx.code, w, key + ": unknown architecture '" + s + "'", "use llama, qwen2 or qwen3");
      **a = *v;
    }
  }
  if (f.check) {
    std::string problem = f.check(c);
    if (!problem.empty()) return fail(ctx.code, w, key + " " + problem);
  }
  return ok;
}

Expected<void> apply_tree(TrainConfig& c, const YAML::Node& root, const Context& ctx) {
  if (!root || root.IsNull()) return {};
  if (!root.IsMap())
    return fail(ctx.code, Where{ctx.origin, root.Mark().line},
                "expected a mapping of keys and sections at the top, got " + describe(root));
  std::set<std::string> seen;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const Where w{ctx.origin, it->first.Mark().line};
    if (!it->first.IsScalar()) return fail(ctx.code, w, "expected a key name, got " + describe(it->first));
    const std::string key = it->first.Scalar();
    if (!seen.insert(key).second) return fail(ctx.code, w, "duplicate key '" + key + "'");
    const YAML::Node value = it->second;  // a copy: the iterator hands out a temporary pair
    if (is_section(key)) {
      if (value.IsNull()) continue;  // an empty section: defaults
      if (!value.IsMap())
        return fail(ctx.code, w, "'" + key + "' must be a section of keys, got " + describe(value),
                    "write it as `" + key + ":` followed by indented `key: value` lines");
      std::set<std::string> seen_inner;
      for (auto jt = value.begin(); jt != value.end(); ++jt) {
        const Where wi{ctx.origin, jt->first.Mark().line};
        if (!jt->first.IsScalar()) return fail(ctx.code, wi, "expected a key name in '" + key + "'");
        const std::string dotted = key + "." + jt->first.Scalar();
        if (!seen_inner.insert(dotted).second) return fail(ctx.code, wi, "duplicate key '" + dotted + "'");
        const Field* f = find_field(dotted);
        if (!f) return fail(ctx.code, wi, "unknown key '" + dotted + "'", unknown_key_hint(dotted));
        HEARTH_TRY_VOID(assign(c, *f, jt->second, ctx, wi));
      }
      continue;
    }
    const Field* f = find_field(key);
    if (!f) return fail(ctx.code, w, "unknown key '" + key + "'", unknown_key_hint(key));
    HEARTH_TRY_VOID(assign(c, *f, value, ctx, w));
  }
  return {};
}

Expected<void> apply_override(TrainConfig& c, const std::string& text, std::set<std::string>& set_keys) {
  Where w{"--set " + text, -1};
  const auto eq = text.find('=');
  if (eq == std::string::npos)
    return fail(ErrorCode::invalid_argument, w, "expected key=value", "for example --set training.lr=1e-4");
  auto trim = [](std::string s) {
    const char* ws = " \t";
    s.erase(0, s.find_first_not_of(ws));
    s.erase(s.find_last_not_of(ws) + 1);
    return s;
  };
  const std::string key = trim(text.substr(0, eq));
  const std::string value = text.substr(eq + 1);
  const Field* f = find_field(key);
  if (!f) {
    if (is_section(key))
      return fail(ErrorCode::invalid_argument, w, "'" + key + "' is a section; set one of its keys",
                  unknown_key_hint(key + "."));
    return fail(ErrorCode::invalid_argument, w, "unknown key '" + key + "'", unknown_key_hint(key));
  }
  YAML::Node node;
  try {
    node = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::invalid_argument, w, "value is not valid YAML: " + e.msg);
  }
  // Paths on the command line are relative to the current folder, as a shell user expects.
  std::error_code ec;
  Context ctx{w.origin, fs::current_path(ec), ErrorCode::invalid_argument, &set_keys};
  try {
    return assign(c, *f, node, ctx, w);
  } catch (const std::exception& e) {
    return fail(ErrorCode::invalid_argument, w, std::string("cannot read the value: ") + e.what());
  }
}

// A float as the double its shortest decimal form denotes (0.1f -> 0.1), for readable JSON.
double float_as_double(float f) {
  if (!std::isfinite(f)) return double(f);
  std::string s = num_text(f);
  return std::strtod(s.c_str(), nullptr);
}

// apply_tree, with anything yaml-cpp throws from node access turned into a `format` error.
Expected<void> apply_tree_guarded(TrainConfig& c, const YAML::Node& root, const Context& ctx) {
  try {
    return apply_tree(c, root, ctx);
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::format, Where{ctx.origin, e.mark.line}, "malformed YAML: " + e.msg);
  } catch (const std::exception& e) {
    return fail(ErrorCode::format, Where{ctx.origin, -1}, std::string("cannot read the configuration: ") + e.what());
  }
}

// Defaults that depend on another key: output.formats, when not given, holds only the formats the
// method can write (the LoRA adapter formats make no sense for full fine-tuning or pretraining).
void apply_dependent_defaults(TrainConfig& c, const std::set<std::string>& set_keys) {
  if (!set_keys.count("output.formats") && c.method != Method::lora) c.output.formats = {"safetensors", "gguf-f16"};
}

}  // namespace

Expected<TrainConfig> parse_config_text(const std::string& yaml, const fs::path& base_dir,
                                        const std::vector<std::string>& overrides) {
  TrainConfig c;
  std::set<std::string> set_keys;
  Context ctx{"<yaml>", base_dir, ErrorCode::format, &set_keys};
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    return fail(ErrorCode::format, Where{ctx.origin, e.mark.line}, "malformed YAML: " + e.msg);
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::format, Where{ctx.origin, e.mark.line}, "malformed YAML: " + e.msg);
  }
  HEARTH_TRY_VOID(apply_tree_guarded(c, root, ctx));
  for (const auto& o : overrides) HEARTH_TRY_VOID(apply_override(c, o, set_keys));
  apply_dependent_defaults(c, set_keys);
  return c;
}

Expected<TrainConfig> parse_config_file(const fs::path& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    return make_error(ErrorCode::not_found, path.string() + ": no such configuration file");
  if (fs::is_directory(path, ec))
    return make_error(ErrorCode::io, path.string() + ": is a folder, expected a YAML file");
  YAML::Node root;
  try {
    root = YAML::LoadFile(path.string());
  } catch (const YAML::BadFile&) {
    return make_error(ErrorCode::io, path.string() + ": cannot read the file");
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::format, Where{path.string(), e.mark.line}, "malformed YAML: " + e.msg);
  }
  TrainConfig c;
  fs::path base = path.parent_path();
  if (base.empty()) base = ".";
  std::set<std::string> set_keys;
  Context ctx{path.string(), base, ErrorCode::format, &set_keys};
  HEARTH_TRY_VOID(apply_tree_guarded(c, root, ctx));
  for (const auto& o : overrides) HEARTH_TRY_VOID(apply_override(c, o, set_keys));
  apply_dependent_defaults(c, set_keys);
  c.source = path;
  return c;
}

Expected<void> validate_config(const TrainConfig& c_in) {
  TrainConfig c = c_in;
  const std::string origin = c.source.empty() ? "config" : c.source.string();
  auto bad = [&](const std::string& what, std::string hint = {}) {
    return make_error(ErrorCode::invalid_argument, origin + ": " + what, std::move(hint));
  };
  for (const Field& f : fields()) {
    if (!f.check) continue;
    std::string problem = f.check(c);
    if (!problem.empty()) return bad(std::string(f.key) + " " + problem);
  }
  if (c.method != Method::pretrain && c.model.empty())
    return bad(std::string("model is required for method ") + method_name(c.method),
               "set model: to a GGUF file or a Hugging Face folder, or use method: pretrain");
  if (c.data.train.empty()) return bad("data.train is required", "set data.train: to a JSONL or .txt file");
  if (c.method != Method::lora)
    for (const auto& fmt : c.output.formats)
      for (const char* lo : LORA_ONLY_FORMATS)
        if (fmt == lo)
          return bad("output.formats: '" + fmt + "' is for LoRA adapters, but method is " + method_name(c.method),
                     "use safetensors, gguf-f16, gguf-q8_0 or gguf-q4_k");
  if (c.method == Method::pretrain) {
    const auto& p = c.pretrain;
    if (p.n_embd % p.n_head != 0)
      return bad("pretrain.n_embd (" + std::to_string(p.n_embd) + ") must be a multiple of pretrain.n_head (" +
                 std::to_string(p.n_head) + ")");
    if ((p.n_embd / p.n_head) % 2 != 0)
      return bad("pretrain.n_embd / pretrain.n_head (the head size, " + std::to_string(p.n_embd / p.n_head) +
                 ") must be even for rotary embeddings");
    if (p.n_head % p.n_head_kv != 0)
      return bad("pretrain.n_head (" + std::to_string(p.n_head) + ") must be a multiple of pretrain.n_head_kv (" +
                 std::to_string(p.n_head_kv) + ")");
  }
  if (c.training.steps == 0 && !(c.training.epochs > 0))
    return bad("training.steps is 0, so training.epochs must be > 0");
  return {};
}

std::string config_to_json(const TrainConfig& c_in) {
  TrainConfig c = c_in;
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const Field& f : fields()) {
    const std::string key = f.key;
    const auto dot = key.find('.');
    nlohmann::ordered_json& slot =
        dot == std::string::npos ? j[key] : j[key.substr(0, dot)][key.substr(dot + 1)];
    std::visit(
        [&](auto* p) {
          using T = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_same_v<T, fs::path>) slot = p->string();
          else if constexpr (std::is_same_v<T, float>) slot = float_as_double(*p);
          else if constexpr (std::is_same_v<T, Method>) slot = method_name(*p);
          else if constexpr (std::is_same_v<T, DataFormat>) slot = data_format_name(*p);
          else if constexpr (std::is_same_v<T, ScheduleKind>) slot = schedule_name(*p);
          else if constexpr (std::is_same_v<T, Architecture>) slot = architecture_name(*p);
          else slot = *p;
        },
        f.ref(c));
  }
  // Strings that are not UTF-8 (a name given as raw bytes) get U+FFFD instead of an exception.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string config_to_yaml(const TrainConfig& c_in) {
  TrainConfig c = c_in;
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::string open_section;
  for (const Field& f : fields()) {
    const std::string key = f.key;
    const auto dot = key.find('.');
    const std::string section = dot == std::string::npos ? "" : key.substr(0, dot);
    if (section != open_section) {
      if (!open_section.empty()) out << YAML::EndMap;
      if (!section.empty()) out << YAML::Key << section << YAML::Value << YAML::BeginMap;
      open_section = section;
    }
    out << YAML::Key << (dot == std::string::npos ? key : key.substr(dot + 1)) << YAML::Value;
    std::visit(
        [&](auto* p) {
          using T = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_same_v<T, std::string>) out << YAML::DoubleQuoted << *p;
          else if constexpr (std::is_same_v<T, fs::path>) out << YAML::DoubleQuoted << p->string();
          else if constexpr (std::is_same_v<T, bool>) out << (*p ? "true" : "false");
          else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            out << YAML::Flow << YAML::BeginSeq;
            for (const auto& s : *p) out << YAML::DoubleQuoted << s;
            out << YAML::EndSeq;
          } else if constexpr (std::is_same_v<T, Method>) out << method_name(*p);
          else if constexpr (std::is_same_v<T, DataFormat>) out << data_format_name(*p);
          else if constexpr (std::is_same_v<T, ScheduleKind>) out << schedule_name(*p);
          else if constexpr (std::is_same_v<T, Architecture>) out << architecture_name(*p);
          else out << num_text(*p);
        },
        f.ref(c));
  }
  if (!open_section.empty()) out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace hearth::train
