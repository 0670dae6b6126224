/* `hearth-cli template`: renders a chat template on a conversation, exactly as transformers would.
 *
 *   hearth-cli template (--template FILE.jinja | -m MODEL) --messages FILE.json
 *                       [--add-generation-prompt] [--bos-token S] [--eos-token S] [--now YYYY-MM-DD]
 *
 * MODEL is a .gguf file (tokenizer.chat_template; BOS/EOS text from tokenizer.ggml.tokens at the
 * bos/eos ids) or a Hugging Face folder (chat_template.jinja, else tokenizer_config.json's
 * chat_template; bos_token/eos_token from tokenizer_config.json). --bos-token/--eos-token override.
 * The messages file holds a JSON array of messages, or an object {"messages": [...], ...} whose other
 * keys become template variables (tools, documents, enable_thinking, ...).
 *
 * Non-obvious choice: the rendered text goes to stdout byte for byte with nothing added (no newline),
 * so the output can be compared with, or piped into, other tools that see the same prompt.
 */
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "hearth/chat-template.h"
#include "hearth/gguf.h"
#include "hearth/hf-folder.h"

namespace hearth::cli {
namespace {

namespace fs = std::filesystem;

struct ModelTemplate {
  std::string source;
  std::string bos_token, eos_token;
};

std::string token_text(const GgufFile& f, std::string_view id_key) {
  auto id = f.get_int(id_key);
  const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
  if (!id || !tokens) return "";
  const auto* arr = tokens->as_array();
  if (!arr || *id < 0 || static_cast<size_t>(*id) >= arr->size()) return "";
  const std::string* s = (*arr)[static_cast<size_t>(*id)].as_string();
  return s ? *s : "";
}

ModelTemplate template_from_model(const std::string& model) {
  fs::path p(model);
  std::error_code ec;
  ModelTemplate t;
  if (fs::is_directory(p, ec)) {
    fs::path cfg = p / "tokenizer_config.json";
    fs::path jinja = p / "chat_template.jinja";
    std::optional<HfTokenizerConfig> tc;
    if (fs::exists(cfg, ec)) tc = unwrap(parse_hf_tokenizer_config(read_file_or_throw(cfg.string()), cfg.string()));
    // As transformers: a chat_template.jinja file takes precedence over tokenizer_config.json.
    if (fs::exists(jinja, ec)) t.source = read_file_or_throw(jinja.string());
    else if (tc && tc->chat_template) t.source = *tc->chat_template;
    else
      throw CliError("'" + model + "' has no chat template (neither chat_template.jinja nor a chat_template in " +
                     "tokenizer_config.json)");
    if (tc) {
      t.bos_token = tc->bos_token.value_or("");
      t.eos_token = tc->eos_token.value_or("");
    }
    return t;
  }
  if (!fs::exists(p, ec)) throw CliError("model '" + model + "' not found");
  GgufFile f = unwrap(GgufFile::open(p));
  auto src = f.get_string("tokenizer.chat_template");
  if (!src) throw CliError("'" + model + "' has no chat template (no tokenizer.chat_template key)");
  t.source = *src;
  t.bos_token = token_text(f, "tokenizer.ggml.bos_token_id");
  t.eos_token = token_text(f, "tokenizer.ggml.eos_token_id");
  return t;
}

void register_template(CLI::App& app) {
  auto* sub = app.add_subcommand("template", "Render a chat template on a conversation (as transformers does)");
  struct Opts {
    std::string template_file, model, messages, bos, eos, now;
    bool add_generation_prompt = false;
  };
  auto o = std::make_shared<Opts>();
  auto* topt = sub->add_option("--template", o->template_file, "Jinja chat template file");
  auto* mopt = sub->add_option("-m,--model", o->model, "Use this model's own template (.gguf file or HF folder)");
  topt->excludes(mopt);
  sub->add_option("--messages", o->messages, "JSON file: an array of messages, or {\"messages\": [...], ...}")
      ->required();
  sub->add_flag("--add-generation-prompt", o->add_generation_prompt, "End with the assistant turn's header");
  auto* bopt = sub->add_option("--bos-token", o->bos, "Text of bos_token (default: the model's)");
  auto* eopt = sub->add_option("--eos-token", o->eos, "Text of eos_token (default: the model's)");
  sub->add_option("--now", o->now, "Date strftime_now sees, YYYY-MM-DD (default: today)");
  sub->callback([o, bopt, eopt] {
    if (o->template_file.empty() && o->model.empty()) throw CliError("give --template FILE.jinja or -m MODEL");
    ModelTemplate mt;
    if (!o->template_file.empty()) mt.source = read_file_or_throw(o->template_file);
    else mt = template_from_model(o->model);
    if (bopt->count()) mt.bos_token = o->bos;
    if (eopt->count()) mt.eos_token = o->eos;

    nlohmann::ordered_json doc;
    try {
      doc = nlohmann::ordered_json::parse(read_file_or_throw(o->messages));
    } catch (const nlohmann::json::parse_error& e) {
      throw CliError("'" + o->messages + "' is not valid JSON: " + e.what());
    }
    ChatTemplateOptions opt;
    opt.add_generation_prompt = o->add_generation_prompt;
    opt.bos_token = mt.bos_token;
    opt.eos_token = mt.eos_token;
    if (!o->now.empty()) opt.now = unwrap(parse_template_date(o->now));
    nlohmann::ordered_json messages;
    if (doc.is_array()) {
      messages = doc;
    } else if (doc.is_object() && doc.contains("messages") && doc["messages"].is_array()) {
      messages = doc["messages"];
      for (auto it = doc.begin(); it != doc.end(); ++it)
        if (it.key() != "messages") opt.extra[it.key()] = it.value();
    } else {
      throw CliError("'" + o->messages + "' should hold a JSON array of messages or {\"messages\": [...]}");
    }
    ChatTemplate tmpl = unwrap(ChatTemplate::parse(mt.source));
    auto text = tmpl.render(messages, opt);
    if (!text) throw CliError(text.error());
    std::cout << *text << std::flush;
  });
}

CommandRegistration reg(register_template);

}  // namespace
}  // namespace hearth::cli
