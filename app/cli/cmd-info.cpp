/* `hearth-cli info MODEL [--json]`: what a model file or Hugging Face folder holds: architecture,
 * parameter count, hyper-parameters, tensor types, file size, tokenizer and chat template.
 *
 * Non-obvious choice: the JSON form prints every number exactly (parameter count, bytes, epsilon as
 * stored) so scripts and tests compare values; the text form rounds for people.
 */
#include <charconv>
#include <cstdlib>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "command.h"
#include "hearth/model.h"

namespace hearth::cli {
namespace {

std::string human_bytes(uint64_t n) {
  char buf[64];
  if (n >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", double(n) / double(1ull << 30));
  else if (n >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", double(n) / double(1ull << 20));
  else if (n >= (1ull << 10)) std::snprintf(buf, sizeof buf, "%.1f KiB", double(n) / 1024.0);
  else std::snprintf(buf, sizeof buf, "%llu B", (unsigned long long)n);
  return buf;
}

// A float as JSON with its shortest decimal spelling (1e-05 rather than 9.999999747378752e-06).
nlohmann::json fnum(float f) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, f);
  return std::strtod(std::string(buf, res.ptr).c_str(), nullptr);
}

std::string num(double v) {
  std::ostringstream ss;
  ss << v;
  return ss.str();
}

std::string id_text(const std::optional<int64_t>& id, const std::string& text) {
  if (!id) return "none";
  std::string s = std::to_string(*id);
  if (!text.empty()) s += " " + nlohmann::json(text).dump();
  return s;
}

void print_info(const std::string& path, bool as_json) {
  Model m = unwrap(open_model(path));
  const ModelDesc& d = m.desc();
  const ModelParams& p = d.params;
  std::map<std::string, int> types;
  for (const TensorRef* t : d.all_tensors()) types[type_name(t->type)]++;
  const TokenizerInfo& tk = d.tokenizer;

  if (as_json) {
    nlohmann::json j;
    j["path"] = path;
    j["format"] = d.format == ModelFormat::gguf ? "gguf" : "hf-folder";
    j["name"] = d.name;
    j["architecture"] = architecture_name(p.arch);
    j["n_params"] = d.n_params;
    j["n_params_human"] = format_param_count(d.n_params);
    j["file_size"] = d.file_size;
    j["hyperparameters"] = {
        {"n_layer", p.n_layer},     {"n_embd", p.n_embd},       {"n_head", p.n_head},
        {"n_head_kv", p.n_head_kv}, {"head_dim", p.head_dim},   {"n_ff", p.n_ff},
        {"n_vocab", p.n_vocab},     {"n_ctx_train", p.n_ctx_train}, {"rope_theta", fnum(p.rope_theta)},
        {"rms_eps", fnum(p.rms_eps)},     {"tied_embeddings", p.tied_embeddings},
        {"has_qkv_bias", p.has_qkv_bias}, {"has_o_bias", p.has_o_bias}, {"has_qk_norm", p.has_qk_norm},
        {"rope_scaling", {{"type", rope_scaling_name(p.rope_scaling.kind)},
                          {"factor", fnum(p.rope_scaling.factor)},
                          {"low_freq_factor", fnum(p.rope_scaling.low_freq_factor)},
                          {"high_freq_factor", fnum(p.rope_scaling.high_freq_factor)},
                          {"original_context_length", p.rope_scaling.original_ctx}}},
    };
    j["rope_layout"] = rope_layout_name(d.rope_layout);
    j["n_tensors"] = d.all_tensors().size();
    j["tensor_types"] = types;
    j["extra_tensors"] = d.extra_tensors;
    nlohmann::json t = {{"kind", tokenizer_kind_name(tk.kind)},
                        {"model", tk.model},
                        {"n_tokens", tk.n_tokens},
                        {"add_bos", tk.add_bos},
                        {"eos_ids", tk.eos_ids}};
    if (!tk.pre.empty()) t["pre"] = tk.pre;
    t["bos_id"] = tk.bos_id ? nlohmann::json(*tk.bos_id) : nlohmann::json(nullptr);
    t["eos_id"] = tk.eos_id ? nlohmann::json(*tk.eos_id) : nlohmann::json(nullptr);
    t["bos_token"] = tk.bos_token;
    t["eos_token"] = tk.eos_token;
    j["tokenizer"] = t;
    j["chat_template"] = tk.chat_template.has_value();
    std::cout << j.dump(2) << "\n";
    return;
  }

  auto line = [](const char* k, const std::string& v) { std::cout << k << v << "\n"; };
  line("model:           ", path);
  line("format:          ", d.format == ModelFormat::gguf ? "GGUF" : "Hugging Face folder (safetensors)");
  line("name:            ", d.name);
  line("architecture:    ", architecture_name(p.arch));
  line("parameters:      ", format_param_count(d.n_params) + " (" + std::to_string(d.n_params) + ")");
  line("file size:       ", human_bytes(d.file_size) + " (" + std::to_string(d.file_size) + " bytes)");
  line("layers:          ", std::to_string(p.n_layer));
  line("embedding:       ", std::to_string(p.n_embd));
  line("heads:           ", std::to_string(p.n_head) + " (kv " + std::to_string(p.n_head_kv) + ", head size " +
                                std::to_string(p.head_dim) + ")");
  line("feed-forward:    ", std::to_string(p.n_ff));
  line("vocabulary:      ", std::to_string(p.n_vocab));
  line("context (train): ", std::to_string(p.n_ctx_train));
  std::string rope = "theta " + num(p.rope_theta) + ", scaling " + rope_scaling_name(p.rope_scaling.kind);
  if (p.rope_scaling.kind != RopeScalingKind::none && p.rope_scaling.factor > 0)
    rope += " x" + num(p.rope_scaling.factor);
  rope += std::string(", ") + rope_layout_name(d.rope_layout) + " pairs";
  line("rope:            ", rope);
  line("rms norm eps:    ", num(p.rms_eps));
  line("tied embeddings: ", p.tied_embeddings ? "yes" : "no");
  line("biases:          ", std::string("q/k/v ") + (p.has_qkv_bias ? "yes" : "no") + ", output " +
                                (p.has_o_bias ? "yes" : "no"));
  line("q/k norm:        ", p.has_qk_norm ? "yes" : "no");
  std::string ts;
  for (auto& [name, n] : types) ts += (ts.empty() ? "" : ", ") + name + " x" + std::to_string(n);
  line("tensor types:    ", ts);
  if (!d.extra_tensors.empty())
    line("other tensors:   ", std::to_string(d.extra_tensors.size()) + " (not used)");
  std::string tok = tokenizer_kind_name(tk.kind);
  if (!tk.model.empty()) tok += " (" + tk.model + (tk.pre.empty() ? "" : ", pre " + tk.pre) + ")";
  if (tk.n_tokens) tok += ", " + std::to_string(tk.n_tokens) + " tokens";
  line("tokenizer:       ", tok);
  line("bos:             ", id_text(tk.bos_id, tk.bos_token));
  std::string eos = id_text(tk.eos_id, tk.eos_token);
  for (size_t i = 1; i < tk.eos_ids.size(); ++i) eos += ", " + std::to_string(tk.eos_ids[i]);
  line("eos:             ", eos);
  line("add bos:         ", tk.add_bos ? "yes" : "no");
  line("chat template:   ", tk.chat_template ? "yes" : "no");
}

void register_info(CLI::App& app) {
  auto* sub = app.add_subcommand("info", "Describe a model: a .gguf file or a Hugging Face folder");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  sub->add_option("MODEL", *path, "a .gguf file or a Hugging Face model folder")->required();
  sub->add_flag("--json", *json, "Print JSON");
  sub->callback([path, json] { print_info(*path, *json); });
}

CommandRegistration reg(register_info);

}  // namespace
}  // namespace hearth::cli
