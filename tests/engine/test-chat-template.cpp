/* Unit tests of the chat-template API and interpreter that need no Python: errors and their messages,
 * the guards against runaway templates, options, thread safety, and the core jinja2 semantics whose
 * expected text is fixed by jinja2's documented behaviour (the reference test checks far more cases
 * against jinja2 itself).
 */
#include <gtest/gtest.h>

#include <ctime>
#include <thread>

#include "hearth/chat-template.h"
#include "test-util.h"

namespace {

using hearth::ChatTemplate;
using hearth::ChatTemplateOptions;
using hearth::ErrorCode;
using nlohmann::ordered_json;

std::string render(const std::string& src, const ordered_json& messages = ordered_json::array(),
                   ChatTemplateOptions opt = {}) {
  auto t = ChatTemplate::parse(src);
  if (!t) return "PARSE ERROR: " + t.error().message;
  auto r = t->render(messages, opt);
  if (!r) return "RENDER ERROR: " + r.error().message;
  return *r;
}

hearth::Error render_error(const std::string& src, ChatTemplateOptions opt = {}) {
  auto t = ChatTemplate::parse(src);
  if (!t) return t.error();
  auto r = t->render(ordered_json::array(), opt);
  EXPECT_FALSE(r) << "rendered: " << (r ? *r : "");
  return r ? hearth::Error{} : r.error();
}

TEST(ChatTemplate, WhitespaceControlAsJinja2) {
  EXPECT_EQ(render("{% if true %}\nyes\n{% endif %}\nafter"), "yes\nafter");  // trim_blocks
  EXPECT_EQ(render("a\n    {% if true %}\n    b\n    {% endif %}\nc"), "a\n    b\nc");  // lstrip_blocks
  EXPECT_EQ(render("a\n    {{ 'x' }}\n"), "a\n    x");  // no lstrip for {{ }}; last newline dropped
  EXPECT_EQ(render("a  {% if true %}b{% endif %}  c"), "a  b  c");  // lstrip only at line start
  EXPECT_EQ(render("a   \n  {%- if true %}b{% endif %}"), "ab");
  EXPECT_EQ(render("a  {{- 'b' -}}  \n c"), "abc");
  EXPECT_EQ(render("a\n    {%+ if true %}b{% endif %}"), "a\n    b");
  EXPECT_EQ(render("{% if true +%}\nb{% endif %}"), "\nb");
  EXPECT_EQ(render("a\r\n{% if true %}\r\nb\r\n{% endif %}\r\n"), "a\nb\n");
}

TEST(ChatTemplate, LoopsScopesAndNamespaces) {
  EXPECT_EQ(render("{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.first }}{{ loop.last }}"
                   "{{ loop.length }}{% if not loop.last %},{% endif %}{% endfor %}"),
            "1TrueFalse3,2FalseFalse3,3FalseTrue3");
  EXPECT_EQ(render("{% set x = 0 %}{% for i in [1, 2] %}{{ x }}{% set x = i %}{% endfor %}{{ x }}"), "000");
  EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}"
                   "{% endfor %}{{ ns.n }}"),
            "6");
  EXPECT_EQ(render("{% for x in range(9) if x is even %}{% if x > 4 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
            "024");
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}{{ v }}{% endfor %}"), "a1b2");
}

TEST(ChatTemplate, PythonValuesPrintAsPython) {
  EXPECT_EQ(render("{{ [1, 'a', none, true, 1.0] }}|{{ {'k': \"it's\"} }}|{{ (1,) }}"),
            "[1, 'a', None, True, 1.0]|{'k': \"it's\"}|(1,)");
  EXPECT_EQ(render("{{ 1e20 }} {{ 1e-5 }} {{ 0.1 + 0.2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 / 2 }}"),
            "1e+20 1e-05 0.30000000000000004 3 -4 3.5");
  EXPECT_EQ(render("{{ 'héllo😀'[1:3] }} {{ 'héllo😀'|length }} {{ [1, 2, 3][::-1] }}"), "él 6 [3, 2, 1]");
}

TEST(ChatTemplate, TojsonIsJsonDumpsWithoutAsciiEscaping) {
  ordered_json messages = ordered_json::array({{{"role", "user"}, {"content", "é \"q\"\n"}}});
  EXPECT_EQ(render("{{ messages[0]|tojson }}", messages), "{\"role\": \"user\", \"content\": \"é \\\"q\\\"\\n\"}");
  EXPECT_EQ(render("{{ {'a': [1, {}]}|tojson(indent=2) }}"), "{\n  \"a\": [\n    1,\n    {}\n  ]\n}");
  EXPECT_EQ(render("{{ 'é'|tojson(ensure_ascii=true) }}"), "\"\\u00e9\"");
}

TEST(ChatTemplate, UndefinedBehavesLikeJinja2Default) {
  EXPECT_EQ(render("[{{ nothing }}][{{ messages.x }}]{{ nothing is defined }}{{ nothing|default('d') }}"), "[][]Falsed");
  EXPECT_EQ(render_error("{{ nothing.attr }}").message, "'nothing' is undefined");
  EXPECT_EQ(render_error("{% set d = {} %}{{ d.a.b }}").message, "'dict object' has no attribute 'a'");
  EXPECT_EQ(render_error("{{ [1].append(2) }}").message, "access to attribute 'append' of 'list' object is unsafe.");
}

TEST(ChatTemplate, RaiseExceptionGivesTheTemplatesMessage) {
  auto e = render_error("line 1\n{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}");
  EXPECT_EQ(e.code, ErrorCode::template_error);
  EXPECT_EQ(e.message, "Conversation roles must alternate user/assistant/user/assistant/...");
  EXPECT_NE(e.hint.find("line 2"), std::string::npos) << e.hint;
}

TEST(ChatTemplate, SyntaxErrorsNameTheLine) {
  auto t = ChatTemplate::parse("ok\nok\n{% if x %}\n{{ 1 + }}\n{% endif %}");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::template_error);
  EXPECT_NE(t.error().message.find("line 4"), std::string::npos) << t.error().message;
  auto u = ChatTemplate::parse("{% for m in messages %}\n{% frobnicate %}{% endfor %}");
  ASSERT_FALSE(u);
  EXPECT_NE(u.error().message.find("line 2"), std::string::npos) << u.error().message;
  EXPECT_NE(u.error().message.find("frobnicate"), std::string::npos) << u.error().message;
  for (const char* bad : {"{{ 'unterminated", "{% if %}", "{{ (1, }}", "{# no end", "{% endfor %}", "{{ a b }}",
                          "{% set %}", "{{ ]", "{% for in x %}{% endfor %}", "{% macro m( %}{% endmacro %}"}) {
    EXPECT_FALSE(ChatTemplate::parse(bad)) << bad;
  }
}

TEST(ChatTemplate, RunawayTemplatesStopWithClearErrors) {
  ChatTemplateOptions opt;
  opt.max_steps = 100000;
  auto loops = render_error("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", opt);
  EXPECT_EQ(loops.code, ErrorCode::template_error);
  EXPECT_NE(loops.message.find("endless loop"), std::string::npos) << loops.message;

  ChatTemplateOptions small;
  small.max_output_bytes = 10000;
  auto big = render_error("{% for i in range(10000) %}{{ 'xxxxxxxxxx' }}{% endfor %}", small);
  EXPECT_NE(big.message.find("larger than the limit"), std::string::npos) << big.message;

  auto deep = render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_NE(deep.message.find("nested deeper"), std::string::npos) << deep.message;
  // Deep expressions inside deep macro recursion: bounded as a whole, not just per level.
  std::string expr = "f(n + 1)";
  for (int k = 0; k < 60; ++k) expr = "(" + expr + " ~ '')";
  auto deep2 = render_error("{% macro f(n) %}{{ " + expr + " }}{% endmacro %}{{ f(0) }}");
  EXPECT_NE(deep2.message.find("evaluation nested deeper"), std::string::npos) << deep2.message;

  auto huge = render_error("{{ range(10000000)|length }}");
  EXPECT_NE(huge.message.find("Range too big"), std::string::npos) << huge.message;

  auto doubling = render_error(
      "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", small);
  EXPECT_NE(doubling.message.find("larger than the limit"), std::string::npos) << doubling.message;
}

TEST(ChatTemplate, DeepNestingIsASyntaxErrorNotACrash) {
  const std::pair<std::string, std::string> nests[] = {{"(", ")"}, {"[", "]"}, {"-", ""}, {"not ", ""}};
  for (const auto& [open, close] : nests) {
    std::string src = "{{ ";
    for (int k = 0; k < 100000; ++k) src += open;
    src += "1";
    for (int k = 0; k < 100000; ++k) src += close;
    auto t = ChatTemplate::parse(src + " }}");
    ASSERT_FALSE(t) << open;
    EXPECT_NE(t.error().message.find("nested too deeply"), std::string::npos) << t.error().message;
  }
  std::string blocks;
  for (int k = 0; k < 100000; ++k) blocks += "{% if true %}";
  auto t = ChatTemplate::parse(blocks);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("nested too deeply"), std::string::npos) << t.error().message;
  // Nesting that real templates use stays fine.
  std::string ok;
  for (int k = 0; k < 50; ++k) ok += "{% if true %}(";
  for (int k = 0; k < 50; ++k) ok += "){% endif %}";
  EXPECT_EQ(render(ok), std::string(50, '(') + std::string(50, ')'));
}

TEST(ChatTemplate, ContextMatchesTransformers) {
  ChatTemplateOptions opt;
  opt.add_generation_prompt = true;
  opt.bos_token = "<s>";
  opt.eos_token = "</s>";
  EXPECT_EQ(render("{{ bos_token }}{{ add_generation_prompt }}{{ eos_token }}{{ tools is defined }}{{ tools is none }}",
                   ordered_json::array(), opt),
            "<s>True</s>TrueTrue");
  opt.extra = {{"tools", ordered_json::array({{{"name", "f"}}})}, {"enable_thinking", false}};
  EXPECT_EQ(render("{{ tools[0].name }}{{ enable_thinking }}", ordered_json::array(), opt), "fFalse");
}

TEST(ChatTemplate, NowDefaultsToTodayAndCanBeFixed) {
  std::time_t t = std::time(nullptr);
  std::tm local{};
  localtime_r(&t, &local);
  char year[8];
  std::strftime(year, sizeof year, "%Y", &local);
  EXPECT_EQ(render("{{ strftime_now('%Y') }}"), year);
  ChatTemplateOptions opt;
  auto d = hearth::parse_template_date("2024-02-29");
  ASSERT_TRUE(d);
  opt.now = *d;
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y, %A') }}", ordered_json::array(), opt), "29 Feb 2024, Thursday");
  for (const char* bad : {"2023-02-29", "2024-13-01", "24-01-01", "2024/01/01", "2024-01-32", ""})
    EXPECT_FALSE(hearth::parse_template_date(bad)) << bad;
}

TEST(ChatTemplate, BadMessagesAreInvalidArgument) {
  auto t = ChatTemplate::parse("{{ messages }}");
  ASSERT_TRUE(t);
  auto r = t->render(ordered_json::object());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  ChatTemplateOptions opt;
  opt.extra = ordered_json::array();
  auto r2 = t->render(ordered_json::array(), opt);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, ErrorCode::invalid_argument);
  // A plain nlohmann::json works too (its keys come sorted).
  auto r3 = t->render(nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}}));
  ASSERT_TRUE(r3);
  EXPECT_EQ(*r3, "[{'content': 'hi', 'role': 'user'}]");
}

TEST(ChatTemplate, RendersFromManyThreadsAtOnce) {
  auto t = ChatTemplate::parse(
      "{% for m in messages %}<|{{ m.role }}|>{{ m.content|trim }}{% if not loop.last %}\n{% endif %}{% endfor %}");
  ASSERT_TRUE(t);
  ordered_json messages = ordered_json::array();
  for (int k = 0; k < 50; ++k) messages.push_back({{"role", k % 2 ? "assistant" : "user"}, {"content", " m" + std::to_string(k)}});
  std::string want = *t->render(messages);
  std::vector<std::thread> threads;
  std::vector<int> ok(8, 0);
  for (int k = 0; k < 8; ++k)
    threads.emplace_back([&, k] {
      for (int n = 0; n < 50; ++n) ok[k] += t->render(messages).value() == want;
    });
  for (auto& th : threads) th.join();
  for (int k = 0; k < 8; ++k) EXPECT_EQ(ok[k], 50);
}

// Every shared template damaged in many ways (cut short, a byte dropped, a byte replaced by a delimiter
// character): parsing and rendering must always return, and every failure must be a template_error
// with a message.
TEST(ChatTemplate, DamagedRealTemplatesFailCleanly) {
  namespace fs = std::filesystem;
  ordered_json messages = ordered_json::array({{{"role", "system"}, {"content", "sys"}},
                                               {{"role", "user"}, {"content", "hi"}},
                                               {{"role", "assistant"}, {"content", "hello"}},
                                               {{"role", "user"}, {"content", "bye"}}});
  ChatTemplateOptions opt;
  opt.add_generation_prompt = true;
  opt.max_steps = 200000;
  size_t variants = 0, bad = 0;
  for (const auto& entry : fs::directory_iterator(hearth::test::testdata("chat-templates"))) {
    const std::string src = hearth::test::read_text(entry.path());
    const size_t stride = std::max<size_t>(1, src.size() / 25);
    for (size_t at = 0; at < src.size(); at += stride) {
      std::vector<std::string> damaged = {src.substr(0, at), src.substr(0, at) + src.substr(at + 1)};
      for (char c : {'{', '}', '%', '"', '(', '|'}) {
        std::string v = src;
        v[at] = c;
        damaged.push_back(std::move(v));
      }
      for (const auto& v : damaged) {
        ++variants;
        auto t = ChatTemplate::parse(v);
        if (!t) {
          bad += t.error().code != ErrorCode::template_error || t.error().message.empty();
          continue;
        }
        auto r = t->render(messages, opt);
        if (!r) bad += r.error().code != ErrorCode::template_error || r.error().message.empty();
      }
    }
  }
  EXPECT_GT(variants, 5000u);
  EXPECT_EQ(bad, 0u);
}

}  // namespace
