/* Reference test: every chat template in the shared test data, rendered by Hearth, must equal byte for
 * byte what Python's jinja2 renders when configured as transformers configures it.
 *
 * Non-obvious choice: the expected renders are produced at test time by tests/reference/render_templates.py
 * (run with HEARTH_PYTHON), not committed, so the reference stays independent of Hearth and follows the
 * test data. Templates the reference itself fails on must fail in Hearth too, with the same message.
 * Templates listed in tests/reference/chat-template-allowlist.txt (name, then the reason) are reported
 * but not asserted.
 */
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "hearth/chat-template.h"
#include "test-util.h"

namespace {

using nlohmann::ordered_json;
namespace fs = std::filesystem;

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

// A short, printable view of where two renders first differ.
std::string first_difference(const std::string& want, const std::string& got) {
  size_t k = 0;
  while (k < want.size() && k < got.size() && want[k] == got[k]) ++k;
  size_t from = k > 40 ? k - 40 : 0;
  auto clip = [&](const std::string& s) { return ordered_json(s.substr(from, 100)).dump(); };
  std::ostringstream os;
  os << "first difference at byte " << k << " (expected " << want.size() << " bytes, got " << got.size()
     << ")\n      expected: " << clip(want) << "\n      got:      " << clip(got);
  return os.str();
}

std::map<std::string, std::string> read_allowlist(const fs::path& p) {
  std::map<std::string, std::string> out;
  std::istringstream in(hearth::test::read_text(p));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.find_first_of(" \t");
    out[line.substr(0, sp)] = sp == std::string::npos ? "" : line.substr(sp + 1);
  }
  return out;
}

struct Reference {
  ordered_json expected;
  ordered_json conversations;
};

// Runs the reference renderer over every shared template and the conversations of `file`
// (tests/reference/<file>).
Reference reference(const std::string& file) {
  Reference r;
  fs::path out = hearth::test::scratch("chat-template-reference-" + file) / "expected.json";
  fs::path conv = hearth::test::source_dir("tests/reference/" + file);
  std::string cmd = shell_quote(HEARTH_PYTHON) + " " +
                    shell_quote(hearth::test::source_dir("tests/reference/render_templates.py").string()) +
                    " --templates " + shell_quote(hearth::test::testdata("chat-templates").string()) +
                    " --conversations " + shell_quote(conv.string()) + " --out " + shell_quote(out.string()) +
                    " --bos-token '<s>' --eos-token '</s>' --now 2024-07-26";
  auto res = hearth::test::run(cmd);
  if (res.exit_code != 0) {
    ADD_FAILURE() << "the reference renderer failed (exit " << res.exit_code << "): " << res.err
                  << (res.exit_code == 3 ? "\n(install python3-jinja2 for " HEARTH_PYTHON ")" : "");
    return r;
  }
  r.expected = ordered_json::parse(hearth::test::read_text(out));
  r.conversations = ordered_json::parse(hearth::test::read_text(conv));
  return r;
}

// Renders every template on every conversation of `file` with and without the generation prompt and
// compares with jinja2; prints the summary line and the differences, fails unless all match.
void compare_with_reference(const std::string& file) {
  const Reference ref = reference(file);
  ASSERT_TRUE(ref.expected.contains("templates")) << "no reference renders";
  const auto& templates = ref.expected["templates"];
  ASSERT_GE(templates.size(), 60u) << "expected the 65 shared chat templates";
  auto allow = read_allowlist(hearth::test::source_dir("tests/reference/chat-template-allowlist.txt"));

  hearth::ChatTemplateOptions base;
  base.bos_token = ref.expected["bos_token"].get<std::string>();
  base.eos_token = ref.expected["eos_token"].get<std::string>();
  auto date = hearth::parse_template_date(ref.expected["now"].get<std::string>());
  ASSERT_TRUE(date) << date.error().to_string();
  base.now = *date;

  size_t identical = 0, renders = 0;
  std::vector<std::string> failed;
  std::ostringstream report;
  auto t0 = std::chrono::steady_clock::now();
  for (auto it = templates.begin(); it != templates.end(); ++it) {
    const std::string name = it.key();
    std::string source = hearth::test::read_text(hearth::test::testdata("chat-templates/" + name + ".jinja"));
    auto tmpl = hearth::ChatTemplate::parse(source);
    std::vector<std::string> problems;
    for (auto c = it.value().begin(); c != it.value().end(); ++c) {
      // A conversation is a list of messages or {"messages": [...], "context": {more variables}}.
      const auto& conv = ref.conversations[c.key()];
      const auto& messages = conv.is_object() ? conv["messages"] : conv;
      for (const char* gen : {"0", "1"}) {
        const auto& want = c.value()[gen];
        std::string where = c.key() + (gen[0] == '1' ? " +gen" : "");
        ++renders;
        if (!tmpl) {
          if (!want.contains("error")) problems.push_back(where + ": parse failed: " + tmpl.error().to_string());
          continue;
        }
        hearth::ChatTemplateOptions opt = base;
        opt.add_generation_prompt = gen[0] == '1';
        if (conv.is_object() && conv.contains("context")) opt.extra = conv["context"];
        auto got = tmpl->render(messages, opt);
        if (want.contains("error")) {
          std::string msg = want["error"].get<std::string>();
          if (got) problems.push_back(where + ": expected the error '" + msg + "', rendered instead");
          else if (got.error().message != msg)
            problems.push_back(where + ": expected the error '" + msg + "', got '" + got.error().message + "'");
          continue;
        }
        if (!got) {
          problems.push_back(where + ": failed: " + got.error().to_string());
          continue;
        }
        const std::string expected = want["output"].get<std::string>();
        if (*got != expected) problems.push_back(where + ": " + first_difference(expected, *got));
      }
    }
    if (problems.empty()) {
      ++identical;
      continue;
    }
    report << "  " << name << (allow.count(name) ? " (allowed: " + allow[name] + ")" : "") << "\n";
    for (size_t k = 0; k < problems.size() && k < 3; ++k) report << "    " << problems[k] << "\n";
    if (problems.size() > 3) report << "    ... and " << problems.size() - 3 << " more\n";
    if (!allow.count(name)) failed.push_back(name);
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: templates: %zu/%zu identical on all conversations (%zu renders in %.1f ms)\n", file.c_str(),
              identical, templates.size(), renders, ms);
  if (!report.str().empty()) std::printf("differences:\n%s", report.str().c_str());
  EXPECT_TRUE(failed.empty()) << failed.size() << " template(s) render differently from jinja2 (see above)";
}

// Plain conversations (system, user, assistant; non-ASCII; surrounding whitespace).
TEST(ChatTemplateReference, EveryTemplateRendersLikeJinja2) { compare_with_reference("conversations.json"); }

// Beyond plain chat: tool definitions and calls, reasoning, content parts, odd role orders.
TEST(ChatTemplateReference, ToolsReasoningAndOddShapesRenderLikeJinja2) {
  compare_with_reference("conversations-tools.json");
}

// Corner cases of the language (tests/reference/jinja-cases.json): each small template is rendered by
// jinja2 at test time and by Hearth. Outputs must be identical; where jinja2 raises, Hearth must fail
// too, with the same message except for syntax errors (Hearth's name the line in its own words).
TEST(ChatTemplateReference, LanguageCornerCasesMatchJinja2) {
  fs::path out = hearth::test::scratch("jinja-cases") / "expected.json";
  fs::path cases_path = hearth::test::source_dir("tests/reference/jinja-cases.json");
  auto res = hearth::test::run(shell_quote(HEARTH_PYTHON) + " " +
                               shell_quote(hearth::test::source_dir("tests/reference/render_templates.py").string()) +
                               " --cases " + shell_quote(cases_path.string()) + " --out " + shell_quote(out.string()) +
                               " --now 2024-07-26");
  ASSERT_EQ(res.exit_code, 0) << "the reference renderer failed: " << res.err;
  auto expected = ordered_json::parse(hearth::test::read_text(out));
  auto cases = ordered_json::parse(hearth::test::read_text(cases_path))["cases"];
  auto date = hearth::parse_template_date(expected["now"].get<std::string>());
  ASSERT_TRUE(date);
  size_t same = 0;
  for (const auto& c : cases) {
    const std::string name = c["name"].get<std::string>();
    const auto& want = expected["cases"][name];
    SCOPED_TRACE(name + ": " + c["template"].get<std::string>());
    hearth::ChatTemplateOptions opt;
    opt.now = *date;
    ordered_json messages = ordered_json::array();
    for (auto it = c["context"].begin(); it != c["context"].end(); ++it) {
      if (it.key() == "messages") messages = it.value();
      else opt.extra[it.key()] = it.value();
    }
    auto tmpl = hearth::ChatTemplate::parse(c["template"].get<std::string>());
    hearth::Expected<std::string> got =
        tmpl ? tmpl->render(messages, opt) : hearth::Expected<std::string>(hearth::Unexpected{tmpl.error()});
    if (want.contains("output")) {
      if (!got) {
        ADD_FAILURE() << "failed: " << got.error().to_string() << "\n  expected: " << want["output"].dump();
        continue;
      }
      EXPECT_EQ(*got, want["output"].get<std::string>());
      same += *got == want["output"].get<std::string>();
      continue;
    }
    const std::string type = want["error_type"].get<std::string>();
    if (got) {
      ADD_FAILURE() << "rendered " << ordered_json(*got).dump() << " where jinja2 raised " << type << ": "
                    << want["error"].get<std::string>();
      continue;
    }
    EXPECT_EQ(got.error().code, hearth::ErrorCode::template_error);
    bool syntax = type == "TemplateSyntaxError" || type == "TemplateAssertionError";
    if (!syntax) {
      EXPECT_EQ(got.error().message, want["error"].get<std::string>());
    }
    if (syntax || got.error().message == want["error"].get<std::string>()) ++same;
  }
  std::printf("language cases: %zu/%zu identical to jinja2\n", same, cases.size());
}

}  // namespace
