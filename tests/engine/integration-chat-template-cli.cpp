/* Integration test of `hearth-cli template`: the CLI's output equals jinja2's render byte for byte, with a
 * template file, with a Hugging Face folder's template and with a GGUF file's template (BOS/EOS text taken
 * from the model), and a template that raises gives one line on stderr and a non-zero exit.
 *
 * Non-obvious choice: the expected text comes from tests/reference/render_templates.py run at test time
 * on the same template and conversation, so nothing here is a hard-coded render.
 */
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "hearth/gguf.h"
#include "test-util.h"

namespace {

using nlohmann::ordered_json;
namespace fs = std::filesystem;
using hearth::test::run;

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

class TemplateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = hearth::test::scratch("template-cli-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    conversations = ordered_json::parse(
        hearth::test::read_text(hearth::test::source_dir("tests/reference/conversations.json")));
  }

  // jinja2's render of `stem` on `conversation`, as {"output": ...} or {"error": ...}.
  ordered_json reference(const std::string& stem, const std::string& conversation, bool gen,
                         const std::string& bos = "<s>", const std::string& eos = "</s>") {
    fs::path out = dir / ("ref-" + stem + ".json");
    auto r = run(std::string(HEARTH_PYTHON) + " " +
                 q(hearth::test::source_dir("tests/reference/render_templates.py")) + " --templates " +
                 q(hearth::test::testdata("chat-templates")) + " --conversations " +
                 q(hearth::test::source_dir("tests/reference/conversations.json")) + " --out " + q(out) +
                 " --only " + stem + " --bos-token '" + bos + "' --eos-token '" + eos + "' --now 2024-07-26");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (r.exit_code != 0) return ordered_json::object();
    auto j = ordered_json::parse(hearth::test::read_text(out));
    return j["templates"][stem][conversation][gen ? "1" : "0"];
  }

  fs::path messages_file(const std::string& conversation) {
    fs::path p = dir / (conversation + ".json");
    hearth::test::write_text(p, conversations[conversation].dump());
    return p;
  }

  fs::path dir;
  ordered_json conversations;
};

TEST_F(TemplateCli, TemplateFileRendersLikeJinja2) {
  // Llama 3.2 calls strftime_now: --now must reach it.
  const std::string stem = "meta-llama-Llama-3.2-3B-Instruct";
  auto want = reference(stem, "non_ascii", true);
  ASSERT_TRUE(want.contains("output")) << want.dump();
  auto r = run(hearth::test::cli() + " template --template " +
               q(hearth::test::testdata("chat-templates/" + stem + ".jinja")) + " --messages " +
               q(messages_file("non_ascii")) +
               " --add-generation-prompt --bos-token '<s>' --eos-token '</s>' --now 2024-07-26");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out, want["output"].get<std::string>());
}

TEST_F(TemplateCli, HuggingFaceFolderTemplateAndTokens) {
  // Devstral's template prints both bos_token and eos_token.
  const std::string stem = "unsloth-mistral-Devstral-Small-2507";
  auto want = reference(stem, "system_user_assistant_user", false, "<|bos|>", "<|im_end|>");
  ASSERT_TRUE(want.contains("output"));
  ASSERT_NE(want["output"].get<std::string>().find("<|bos|>"), std::string::npos);
  fs::path model = dir / "hf-model";
  fs::create_directories(model);
  ordered_json cfg;
  cfg["chat_template"] = hearth::test::read_text(hearth::test::testdata("chat-templates/" + stem + ".jinja"));
  cfg["bos_token"] = {{"content", "<|bos|>"}, {"lstrip", false}};
  cfg["eos_token"] = "<|im_end|>";
  hearth::test::write_text(model / "tokenizer_config.json", cfg.dump(1));
  auto r = run(hearth::test::cli() + " template -m " + q(model) + " --messages " +
               q(messages_file("system_user_assistant_user")));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, want["output"].get<std::string>());
}

TEST_F(TemplateCli, GgufTemplateAndTokens) {
  const std::string stem = "mistralai-Mistral-Nemo-Instruct-2407";
  auto want = reference(stem, "multi_turn_no_system", true, "<s>", "</s>");
  ASSERT_TRUE(want.contains("output"));
  hearth::GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "hello"});
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_string("tokenizer.chat_template",
               hearth::test::read_text(hearth::test::testdata("chat-templates/" + stem + ".jinja")));
  fs::path model = dir / "model.gguf";
  auto ok = w.write(model);
  ASSERT_TRUE(ok) << ok.error().to_string();
  auto r = run(hearth::test::cli() + " template -m " + q(model) + " --messages " +
               q(messages_file("multi_turn_no_system")) + " --add-generation-prompt");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, want["output"].get<std::string>());
}

TEST_F(TemplateCli, RaisingTemplateGivesOneErrorLine) {
  const std::string stem = "google-gemma-2-2b-it";
  auto want = reference(stem, "system_user", false);
  ASSERT_TRUE(want.contains("error")) << "the reference should raise";
  auto r = run(hearth::test::cli() + " template --template " +
               q(hearth::test::testdata("chat-templates/" + stem + ".jinja")) + " --messages " +
               q(messages_file("system_user")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find(want["error"].get<std::string>()), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(TemplateCli, BadInputsAreClearErrors) {
  fs::path msgs = messages_file("user_only");
  auto missing = run(hearth::test::cli() + " template --template " + q(dir / "nope.jinja") + " --messages " + q(msgs));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("nope.jinja"), std::string::npos) << missing.err;

  fs::path bad = dir / "bad.jinja";
  hearth::test::write_text(bad, "line one\n{% for m in messages %}{{ m.content }}\n");
  auto syntax = run(hearth::test::cli() + " template --template " + q(bad) + " --messages " + q(msgs));
  EXPECT_NE(syntax.exit_code, 0);
  EXPECT_NE(syntax.err.find("line"), std::string::npos) << syntax.err;
  EXPECT_NE(syntax.err.find("endfor"), std::string::npos) << syntax.err;

  fs::path notjson = dir / "messages.txt";
  hearth::test::write_text(notjson, "[{\"role\": ");
  auto badjson = run(hearth::test::cli() + " template --template " +
                     q(hearth::test::testdata("chat-templates/Qwen-Qwen2.5-7B-Instruct.jinja")) + " --messages " +
                     q(notjson));
  EXPECT_NE(badjson.exit_code, 0);
  EXPECT_NE(badjson.err.find("not valid JSON"), std::string::npos) << badjson.err;

  auto baddate = run(hearth::test::cli() + " template --template " +
                     q(hearth::test::testdata("chat-templates/Qwen-Qwen2.5-7B-Instruct.jinja")) + " --messages " +
                     q(msgs) + " --now 2024-13-01");
  EXPECT_NE(baddate.exit_code, 0);
  EXPECT_NE(baddate.err.find("YYYY-MM-DD"), std::string::npos) << baddate.err;
}

}  // namespace
