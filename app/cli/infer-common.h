/* Shared by the inference subcommands of hearth-cli (generate, chat, perplexity, bench): opening a
 * model with its tokenizer and a session, and rendering a conversation with the model's chat template.
 *
 * Non-obvious choice: a rendered chat is tokenized with special-token text recognised (the template
 * writes markers such as <|im_start|> as text), and BOS is added only when the model wants it and the
 * template did not already write it, so it is never doubled.
 */
#pragma once

#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"
#include "hearth/chat-template.h"
#include "hearth/inference.h"
#include "hearth/lora.h"
#include "hearth/model.h"
#include "hearth/tokenizer.h"

namespace hearth::cli {

struct LoadedModel {
  std::unique_ptr<Model> model;
  Tokenizer tokenizer;
  double load_s = 0;
};

inline LoadedModel load_model_or_throw(const std::string& path) {
  auto t0 = std::chrono::steady_clock::now();
  auto m = open_model(path);
  if (!m) throw CliError(m.error());
  auto t = load_tokenizer(path);
  if (!t) throw CliError(t.error());
  LoadedModel lm{std::make_unique<Model>(std::move(*m)), std::move(*t), 0};
  lm.load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return lm;
}

// The LoRA adapter at `path` (PEFT folder or GGUF adapter) checked against `m`; null for an empty path.
inline std::shared_ptr<const LoraAdapter> load_lora_or_throw(const std::string& path, const Model& m) {
  if (path.empty()) return nullptr;
  auto a = load_lora_adapter(path, m.desc());
  if (!a) throw CliError(a.error());
  return std::make_shared<const LoraAdapter>(std::move(*a));
}

// --device cpu|cuda|auto and --gpu N, shared by generate, chat, perplexity and bench.
struct DeviceOption {
  std::string device = "cpu";
  int gpu = 0;
  InferenceOptions::Device value() const {
    if (device == "cuda") return InferenceOptions::Device::cuda;
    if (device == "auto") return InferenceOptions::Device::automatic;
    return InferenceOptions::Device::cpu;
  }
};

inline void add_device_options(CLI::App* sub, DeviceOption& d) {
  sub->add_option("--device", d.device,
                  "Where the model runs: cpu, cuda (an NVIDIA GPU) or auto; without a usable GPU the CPU serves "
                  "and stderr says why")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  sub->add_option("--gpu", d.gpu, "Which GPU for --device cuda/auto (0: the first)")->check(CLI::NonNegativeNumber);
}

inline std::unique_ptr<InferenceSession> make_session_or_throw(const Model& m, int64_t n_ctx, int threads,
                                                               KvType kv = KvType::f16,
                                                               std::shared_ptr<const LoraAdapter> lora = nullptr,
                                                               const DeviceOption& device = {}) {
  InferenceOptions o;
  o.n_ctx = n_ctx;
  o.n_threads = threads;
  o.kv_type = kv;
  o.lora = std::move(lora);
  o.device = device.value();
  o.gpu_index = device.gpu;
  auto s = InferenceSession::create(m, o);
  if (!s) throw CliError(s.error());
  // Once per session: the GPU was asked for but the CPU serves (stderr only; stdout stays the result).
  if (!(*s)->backend_note().empty()) std::fprintf(stderr, "hearth-cli: running on the CPU: %s\n", (*s)->backend_note().c_str());
  return std::move(*s);
}

// The conversation rendered with the model's chat template (ending with the assistant's header) and
// tokenized.
inline std::vector<TokenId> chat_tokens_or_throw(const LoadedModel& lm, const nlohmann::ordered_json& messages) {
  const auto& ti = lm.model->desc().tokenizer;
  if (!ti.chat_template)
    throw CliError("the model '" + lm.model->desc().path.string() + "' has no chat template");
  auto tpl = ChatTemplate::parse(*ti.chat_template);
  if (!tpl) throw CliError(tpl.error());
  ChatTemplateOptions o;
  o.add_generation_prompt = true;
  auto text_of = [&](std::optional<TokenId> id) -> std::string {
    return id ? lm.tokenizer.token_text(*id) : std::string();
  };
  o.bos_token = text_of(lm.tokenizer.bos_id());
  o.eos_token = text_of(lm.tokenizer.eos_id());
  auto text = tpl->render(messages, o);
  if (!text) throw CliError(text.error());
  bool has_bos = !o.bos_token.empty() && text->rfind(o.bos_token, 0) == 0;
  auto ids = lm.tokenizer.encode(*text, false, true);
  if (!ids) throw CliError(ids.error());
  if (lm.tokenizer.add_bos() && !has_bos && lm.tokenizer.bos_id()) ids->insert(ids->begin(), *lm.tokenizer.bos_id());
  return std::move(*ids);
}

}  // namespace hearth::cli
