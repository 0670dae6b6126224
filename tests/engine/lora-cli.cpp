/* hearth-cli generate/chat --lora end to end (label integration): on a tiny llama with the real Llama 2
 * vocabulary and a chat template, greedy output of base + adapter (GGUF adapter and PEFT folder) equals
 * the greedy output of the merged model (W + scale · B A, written as its own F32 GGUF), and a bad
 * adapter fails with one line on stderr.
 */
#include <gtest/gtest.h>

#include "hearth/gguf.h"
#include "hearth/model-writer.h"
#include "lora-fixtures.h"
#include "must.h"
#include "test-util.h"

using namespace hearth;
using hearth::test::must;
namespace fs = std::filesystem;

namespace {

struct Files {
  fs::path base, merged, gguf_adapter, peft_adapter;
};

const Files& files() {
  static Files f = [] {
    Files r;
    auto dir = test::scratch("lora-cli");
    GgufFile src = must(GgufFile::open(test::testdata("models/llama-2-tiny-random.gguf")));
    TokenizerData td;
    td.model = "llama";
    td.tokens = src.get_string_array("tokenizer.ggml.tokens").value_or(std::vector<std::string>{});
    td.scores = src.get_float_array("tokenizer.ggml.scores").value_or(std::vector<float>{});
    for (int64_t t : src.get_int_array("tokenizer.ggml.token_type").value_or(std::vector<int64_t>{}))
      td.token_types.push_back(int32_t(t));
    EXPECT_EQ(td.tokens.size(), 32000u);
    td.bos_id = 1, td.eos_id = 2, td.add_bos = true;
    td.chat_template = test::read_text(test::testdata("chat-templates/microsoft-Phi-3.5-mini-instruct.jinja"));
    ModelWeights w = must(make_random_weights(tiny_params(Architecture::llama, 32, 2, 32000), 7));
    GgufWriteOptions o;
    o.tokenizer = td;
    r.base = dir / "base.gguf";
    must(write_gguf_model(w, r.base, o));
    Model base = must(open_model(r.base));
    LoraAdapter ad = test::random_adapter(w.params, 4, 8.0f, 17, 0.3f);
    r.merged = dir / "merged.gguf";
    must(write_gguf_model(test::merged(w, ad), r.merged, o));
    r.gguf_adapter = dir / "adapter.gguf";
    must(save_gguf_lora(ad, base.desc(), r.gguf_adapter));
    r.peft_adapter = dir / "peft";
    must(save_peft_adapter(ad, base.desc(), r.peft_adapter));
    return r;
  }();
  return f;
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

}  // namespace

TEST(LoraCli, GenerateWithAdapterEqualsMerged) {
  const Files& f = files();
  const std::string args = " -p 'Once upon a time' -n 24 --temp 0 -t 2";
  auto merged = test::run(test::cli() + " generate -m " + q(f.merged) + args);
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  ASSERT_FALSE(merged.out.empty());
  auto plain = test::run(test::cli() + " generate -m " + q(f.base) + args);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_NE(plain.out, merged.out) << "the adapter must change the output for the test to mean anything";
  for (const fs::path& adapter : {f.gguf_adapter, f.peft_adapter}) {
    auto got = test::run(test::cli() + " generate -m " + q(f.base) + " --lora " + q(adapter) + args);
    ASSERT_EQ(got.exit_code, 0) << got.err;
    EXPECT_EQ(got.out, merged.out) << adapter;
  }
}

TEST(LoraCli, ChatWithAdapterEqualsMerged) {
  const Files& f = files();
  auto dir = test::scratch("lora-cli-chat");
  test::write_text(dir / "in.txt", "Hello\nTell me more\n/exit\n");
  const std::string args = " -n 10 --temp 0 -t 1 < " + q(dir / "in.txt");
  auto merged = test::run(test::cli() + " chat -m " + q(f.merged) + args);
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  auto plain = test::run(test::cli() + " chat -m " + q(f.base) + args);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_NE(plain.out, merged.out) << "the adapter must change the replies for the test to mean anything";
  auto got = test::run(test::cli() + " chat -m " + q(f.base) + " --lora " + q(f.gguf_adapter) + args);
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_EQ(got.out, merged.out);
}

TEST(LoraCli, BadAdapterFailsWithOneLine) {
  const Files& f = files();
  for (std::string adapter : {(f.base.parent_path() / "missing.gguf").string(), f.merged.string()}) {
    auto r = test::run(test::cli() + " generate -m " + q(f.base) + " --lora '" + adapter + "' -p hi -n 2");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(fs::path(adapter).filename().string()), std::string::npos) << r.err;
  }
}
