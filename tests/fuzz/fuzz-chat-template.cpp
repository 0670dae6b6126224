/* Fuzz target for the chat-template interpreter: parse the input as a Jinja template and, when it
 * parses, render it on a small fixed conversation under tight output and step limits.
 *
 * Non-obvious choice: the seeds are the 65 real templates from the shared test data, so mutations
 * stay close to the syntax real models ship (nested blocks, macros, namespaces) rather than random
 * bytes that die in the lexer. A failure must carry a message; anything else aborts.
 */
#include <cstdlib>
#include <string_view>

#include "fuzz-driver.h"
#include "hearth/chat-template.h"

using namespace hearth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view src(reinterpret_cast<const char*>(data), size);
  auto t = ChatTemplate::parse(src);
  if (!t) {
    if (t.error().message.empty()) std::abort();
    return 0;
  }
  static const nlohmann::ordered_json messages = nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Grüß dich 👋"},
    {"role": "assistant", "content": "  Hi!\n"},
    {"role": "user", "content": "Again?"}])");
  ChatTemplateOptions opt;
  opt.add_generation_prompt = true;
  opt.bos_token = "<s>";
  opt.eos_token = "</s>";
  opt.max_output_bytes = 1 << 20;
  opt.max_steps = 200'000;
  std::tm now{};
  now.tm_year = 126;
  now.tm_mon = 10;
  now.tm_mday = 28;
  opt.now = now;
  auto r = t->render(messages, opt);
  if (!r && r.error().message.empty()) std::abort();
  if (r && r->size() > opt.max_output_bytes) std::abort();
  return 0;
}

std::vector<std::vector<uint8_t>> hearth_fuzz_seeds() {
  std::string_view s = "{% for m in messages %}{{ m.role }}: {{ m.content | trim }}\n{% endfor %}";
  return {std::vector<uint8_t>(s.begin(), s.end())};
}

std::string hearth_fuzz_seed_suffix() { return ".jinja"; }
