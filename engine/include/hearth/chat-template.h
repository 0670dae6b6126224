/* Chat templates: renders a model's Jinja chat template exactly as Hugging Face transformers does.
 *
 * transformers renders with jinja2's ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
 * extensions=[loopcontrols, generation]), a `tojson` filter that is json.dumps(ensure_ascii=False, ...),
 * and the globals `raise_exception(message)` and `strftime_now(format)`. Hearth carries its own
 * interpreter for the part of Jinja that real chat templates use and renders byte for byte the same text
 * (checked against jinja2 on every template in the shared test data). Not supported: template
 * inheritance/includes (chat templates have no files), recursive for-loops, `*args` in calls.
 *
 * Messages are JSON (nlohmann::ordered_json keeps the caller's key order, which `tojson` and `items()`
 * reveal, as Python dicts do; a plain nlohmann::json is accepted too, with its keys sorted).
 *
 * Ownership and threads: a ChatTemplate is immutable after parse(); copies share the parsed tree, and
 * render() may run on many threads at once.
 */
#pragma once

#include <cstddef>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "hearth/error.h"

namespace hearth {

namespace jinja {
struct Program;
}

struct ChatTemplateOptions {
  bool add_generation_prompt = false;  // end with the header that opens the assistant's turn
  std::string bos_token;               // `bos_token` as the template sees it (text, e.g. "<s>")
  std::string eos_token;               // `eos_token`
  // The local date and time `strftime_now` formats; unset: the current local time.
  std::optional<std::tm> now;
  // More context variables (e.g. "tools", "documents", "enable_thinking"), a JSON object. They replace
  // the defaults; as in transformers, `tools` and `documents` are otherwise defined and None.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  // Guards: the render fails (template_error) past this much output or this many loop steps.
  size_t max_output_bytes = 64u << 20;
  uint64_t max_steps = 20'000'000;
};

class ChatTemplate {
 public:
  // Parses a template. Errors: template_error "chat template syntax error at line N: ..." for text
  // jinja2 would also reject (an unknown tag, an unclosed block, a bad expression).
  static Expected<ChatTemplate> parse(std::string_view source);

  // Renders `messages` (a JSON array of {"role", "content", ...} objects). Errors: template_error whose
  // message is exactly what the template raised (raise_exception's text, e.g. "Conversation roles must
  // alternate user/assistant/user/assistant/...") or what jinja2 would have raised (an undefined value
  // used, a type error), with the template line in the hint; invalid_argument when `messages` is not
  // an array or `extra` not an object.
  Expected<std::string> render(const nlohmann::ordered_json& messages,
                               const ChatTemplateOptions& options = {}) const;
  Expected<std::string> render(const nlohmann::json& messages, const ChatTemplateOptions& options = {}) const;

 private:
  explicit ChatTemplate(std::shared_ptr<const jinja::Program> program);
  std::shared_ptr<const jinja::Program> m_program;
};

// Parses "YYYY-MM-DD" into midnight of that day (for ChatTemplateOptions::now).
Expected<std::tm> parse_template_date(std::string_view date);

}  // namespace hearth
