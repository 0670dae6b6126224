/* Chat templates, the public face (hearth/chat-template.h): parse once, render many times.
 *
 * Non-obvious choice: the render context is built the way transformers' apply_chat_template builds it:
 * `messages`, `add_generation_prompt`, `bos_token`, `eos_token`, and `tools`/`documents` passed as None
 * (defined!), so templates that test `tools is defined` or `tools is not none` take the same branch as
 * in Python. Caller extras come last and win.
 */
#include "hearth/chat-template.h"

#include <chrono>

#include "jinja-ast.h"
#include "jinja-interpreter.h"

namespace hearth {

ChatTemplate::ChatTemplate(std::shared_ptr<const jinja::Program> program) : m_program(std::move(program)) {}

Expected<ChatTemplate> ChatTemplate::parse(std::string_view source) {
  try {
    return ChatTemplate(jinja::parse_program(source));
  } catch (const jinja::SyntaxError& e) {
    return make_error(ErrorCode::template_error,
                      "chat template syntax error at line " + std::to_string(e.line) + ": " + e.msg);
  } catch (const jinja::RenderError& e) {
    return make_error(ErrorCode::template_error, "chat template error: " + e.msg);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, std::string("chat template parser failed: ") + e.what());
  }
}

Expected<std::string> ChatTemplate::render(const nlohmann::json& messages, const ChatTemplateOptions& options) const {
  return render(nlohmann::ordered_json::parse(messages.dump()), options);
}

Expected<std::string> ChatTemplate::render(const nlohmann::ordered_json& messages,
                                           const ChatTemplateOptions& options) const {
  if (!messages.is_array())
    return make_error(ErrorCode::invalid_argument,
                      std::string("chat messages must be a JSON array, got ") + messages.type_name());
  if (!options.extra.is_object())
    return make_error(ErrorCode::invalid_argument, "extra template variables must be a JSON object");
  std::tm now{};
  if (options.now) {
    now = *options.now;
  } else {
    std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    localtime_r(&t, &now);
  }
  jinja::Limits limits;
  limits.max_output_bytes = options.max_output_bytes;
  limits.max_steps = options.max_steps;
  try {
    jinja::Frame root;
    jinja::install_globals(root);
    root.set("messages", jinja::Value::from_json(messages));
    root.set("tools", jinja::Value::none());
    root.set("documents", jinja::Value::none());
    root.set("add_generation_prompt", jinja::Value::boolean(options.add_generation_prompt));
    root.set("bos_token", jinja::Value::string(options.bos_token));
    root.set("eos_token", jinja::Value::string(options.eos_token));
    for (auto it = options.extra.begin(); it != options.extra.end(); ++it)
      root.set(it.key(), jinja::Value::from_json(it.value()));
    jinja::Interpreter interp(limits, now);
    return interp.render(*m_program, root);
  } catch (const jinja::RenderError& e) {
    return make_error(ErrorCode::template_error, e.msg,
                      e.line > 0 ? "raised at line " + std::to_string(e.line) + " of the chat template" : "");
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::template_error, "chat template rendering ran out of memory");
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, std::string("chat template rendering failed: ") + e.what());
  }
}

Expected<std::tm> parse_template_date(std::string_view date) {
  int y = 0, m = 0, d = 0;
  auto bad = [&] {
    return make_error(ErrorCode::invalid_argument, "invalid date '" + std::string(date) + "': expected YYYY-MM-DD");
  };
  if (date.size() != 10 || date[4] != '-' || date[7] != '-') return bad();
  for (size_t k : {0, 1, 2, 3, 5, 6, 8, 9})
    if (date[k] < '0' || date[k] > '9') return bad();
  y = std::stoi(std::string(date.substr(0, 4)));
  m = std::stoi(std::string(date.substr(5, 2)));
  d = std::stoi(std::string(date.substr(8, 2)));
  static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1 || d > days[m - 1]) return bad();
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (m == 2 && d == 29 && !leap) return bad();
  std::tm t{};
  t.tm_year = y - 1900;
  t.tm_mon = m - 1;
  t.tm_mday = d;
  // Day of the week and of the year, for %a/%A/%j (Zeller-free: count days since 1970-01-01).
  auto days_from_civil = [](int yy, unsigned mm, unsigned dd) {
    yy -= mm <= 2;
    const int era = (yy >= 0 ? yy : yy - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(yy - era * 400);
    const unsigned doy = (153 * (mm + (mm > 2 ? -3 : 9)) + 2) / 5 + dd - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<int>(doe) - 719468;
  };
  int z = days_from_civil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
  t.tm_wday = ((z % 7) + 11) % 7;  // 1970-01-01 was a Thursday
  t.tm_yday = z - days_from_civil(y, 1, 1);
  t.tm_isdst = -1;
  return t;
}

}  // namespace hearth
