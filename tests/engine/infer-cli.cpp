/* hearth-cli generate / perplexity / bench end to end (label integration) on the shared
 * llama-2-tiny-random.gguf: seeded generation gives the same text twice; greedy output equals the greedy
 * continuation of the PyTorch reference (tests/reference/torch_llama.py); perplexity equals the one
 * computed here from the reference's logits; bench --json reports positive speeds; bad input fails
 * with one line on stderr.
 */
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "hearth/gguf.h"
#include "hearth/model-writer.h"
#include "hearth/tokenizer.h"
#include "test-models.h"
#include "test-util.h"

using namespace hearth;

namespace {
std::string model() { return test::testdata("models/llama-2-tiny-random.gguf").string(); }
std::string ref_script() { return test::source_dir("tests/reference/torch_llama.py").string(); }
}  // namespace

TEST(InferCli, SeededGenerationIsDeterministic) {
  std::string cmd = test::cli() + " generate -m '" + model() + "' -p 'The quick brown fox' -n 24 --seed 5 -t 1";
  auto a = test::run(cmd), b = test::run(cmd);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_FALSE(a.out.empty());
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.err.find("tok/s"), std::string::npos) << a.err;
  EXPECT_EQ(a.out.find("The quick brown fox"), std::string::npos) << "the prompt must not be echoed";
}

TEST(InferCli, GreedyEqualsReference) {
  const std::string prompt = "The quick brown fox";
  auto tok = load_tokenizer(model());
  ASSERT_TRUE(tok);
  auto ids = tok->encode(prompt, true);
  ASSERT_TRUE(ids);
  std::string list;
  for (TokenId t : *ids) list += std::to_string(t) + " ";
  auto dir = test::scratch("infer-cli-greedy");
  auto r = test::run(std::string(HEARTH_PYTHON) + " '" + ref_script() + "' --tokens '" + list + "' --greedy 32 --out '" +
                     dir.string() + "' '" + model() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream g(dir / "0.greedy");
  std::vector<TokenId> want;
  int v;
  while (g >> v) want.push_back(v);
  ASSERT_EQ(want.size(), 32u);
  auto text = tok->decode(want);
  ASSERT_TRUE(text);
  for (std::string kv : {"", " --kv-f32"}) {
    auto c = test::run(test::cli() + " generate -m '" + model() + "' -p '" + prompt + "' -n 32 --temp 0 -t 2" + kv);
    ASSERT_EQ(c.exit_code, 0) << c.err;
    EXPECT_EQ(c.out, *text) << "KV option '" << kv << "'";
  }
}

TEST(InferCli, PerplexityMatchesReferenceLogits) {
  // One chunk of 32 tokens: BOS, then 31 tokens of text; the second half is scored.
  auto tok = load_tokenizer(model());
  ASSERT_TRUE(tok);
  std::string text = "It was the best of times, it was the worst of times, it was the age of wisdom, "
                     "it was the age of foolishness, it was the epoch of belief.";
  auto ids = tok->encode(text, true);
  ASSERT_TRUE(ids);
  ASSERT_GE(ids->size(), 32u);
  ASSERT_LT(ids->size(), 64u);
  auto dir = test::scratch("infer-cli-ppl");
  test::write_text(dir / "text.txt", text);
  std::string list;
  for (int i = 0; i < 32; ++i) list += std::to_string((*ids)[size_t(i)]) + " ";
  auto r = test::run(std::string(HEARTH_PYTHON) + " '" + ref_script() + "' --tokens '" + list + "' --greedy 0 --out '" +
                     dir.string() + "' '" + model() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const size_t V = 32000;
  std::vector<double> logits(32 * V);
  std::ifstream in(dir / "0.logits", std::ios::binary);
  in.read(reinterpret_cast<char*>(logits.data()), std::streamsize(logits.size() * 8));
  ASSERT_TRUE(in.good());
  double nll = 0;
  int n = 0;
  for (size_t j = 16; j < 31; ++j) {
    const double* row = logits.data() + j * V;
    double mx = *std::max_element(row, row + V), s = 0;
    for (size_t k = 0; k < V; ++k) s += std::exp(row[k] - mx);
    nll += std::log(s) + mx - row[(*ids)[j + 1]];
    ++n;
  }
  double want = std::exp(nll / n);
  auto c = test::run(test::cli() + " perplexity -m '" + model() + "' -f '" + (dir / "text.txt").string() + "' --ctx 32 -t 1");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto at = c.out.rfind("perplexity: ");
  ASSERT_NE(at, std::string::npos) << c.out;
  double got = std::stod(c.out.substr(at + 12));
  std::printf("perplexity: hearth %.6f, reference %.6f\n", got, want);
  EXPECT_NEAR(got, want, want * 1e-3);
  EXPECT_EQ(c.out.back(), '\n');

  auto e = test::run(test::cli() + " perplexity -m '" + model() + "' -f '" + (dir / "text.txt").string() + "' --ctx 512");
  EXPECT_NE(e.exit_code, 0);
  EXPECT_NE(e.err.find("fewer than one chunk"), std::string::npos) << e.err;
}

TEST(InferCli, BenchJson) {
  auto c = test::run(test::cli() + " bench -m '" + model() + "' -p 32 -n 8 -t 1 -r 1 --json");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto j = nlohmann::json::parse(c.out);
  EXPECT_EQ(j["type"], "F16");
  EXPECT_GT(j["size_bytes"].get<uint64_t>(), 0u);
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][0]["test"], "pp32");
  EXPECT_GT(j["results"][0]["tokens_per_s"].get<double>(), 0.0);
  EXPECT_EQ(j["results"][1]["test"], "tg8");
}

TEST(InferCli, BadInput) {
  auto a = test::run(test::cli() + " generate -m /nonexistent.gguf -p hi -n 2");
  EXPECT_NE(a.exit_code, 0);
  EXPECT_TRUE(a.out.empty());
  auto b = test::run(test::cli() + " generate -m '" + model() + "' -p hi -n 2 --chat");
  EXPECT_NE(b.exit_code, 0);
  EXPECT_NE(b.err.find("chat template"), std::string::npos) << b.err;
  auto c = test::run(test::cli() + " generate -m '" + model() + "' -p hi -n 2 --top-p 2");
  EXPECT_NE(c.exit_code, 0);
  EXPECT_NE(c.err.find("top-p"), std::string::npos) << c.err;
}

// A tiny random llama with the real Llama 2 vocabulary (copied from the shared file) and Phi-3.5's chat
// template, for the commands that need a template.
namespace {
std::string chat_model() {
  static const std::string path = test::tiny_chat_model("infer-cli-chat", 11);
  return path;
}
}  // namespace

TEST(InferCli, GenerateWithChatTemplate) {
  auto a = test::run(test::cli() + " generate -m '" + chat_model() + "' -p 'Hello there' -n 8 --seed 2 -t 1 --chat");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = test::run(test::cli() + " generate -m '" + chat_model() + "' -p 'Hello there' -n 8 --seed 2 -t 1");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  // The template changes the prompt, so the prompt token counts on stderr differ.
  EXPECT_NE(a.err.substr(a.err.find("prompt:")), b.err.substr(b.err.find("prompt:")));
}

TEST(InferCli, ChatTurnsResetAndExit) {
  auto dir = test::scratch("infer-cli-chat-input");
  test::write_text(dir / "in.txt", "Hello\nHow are you?\n/reset\nAgain\n/exit\nnever read\n");
  auto r = test::run(test::cli() + " chat -m '" + chat_model() + "' -n 6 -t 1 --seed 3 < '" + (dir / "in.txt").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(conversation reset)"), std::string::npos) << r.out;
  size_t prompts = 0;
  for (size_t at = r.out.find("> "); at != std::string::npos; at = r.out.find("> ", at + 2)) ++prompts;
  EXPECT_GE(prompts, 5u) << r.out;
}

// Ctrl-C during a reply stops that reply, not the program: the chat says "(stopped)", asks for the next
// line, and still exits cleanly on /exit. The model's context (32768) and -n -1 make the reply run for
// many seconds, so the signal lands while tokens are being generated.
TEST(InferCli, ChatCtrlCStopsTheReplyNotTheProgram) {
  const std::string model = test::tiny_chat_model("infer-cli-chat-long", 12, 32768);
  auto dir = test::scratch("infer-cli-chat-sigint");
  const std::string d = dir.string();
  // The fifo exists before the chat opens it and before the script holds it open for writing (fd 3).
  const std::string script = "set -u\ncd '" + d + "'\nrm -f in out err\nmkfifo in\n" + test::cli() + " chat -m '" +
                             model + "' -n -1 -t 1 --ctx 32768 --seed 5 < in > out 2> err &\npid=$!\nexec 3> in\n"
                             "printf 'Tell me a long story\\n' >&3\n"
                             "for i in $(seq 1 100); do [ -s out ] && [ $(wc -c < out) -gt 200 ] && break; sleep 0.1; done\n"
                             "kill -INT $pid\nsleep 0.5\nprintf '/exit\\n' >&3\nexec 3>&-\nwait $pid\necho \"rc=$?\"\n";
  test::write_text(dir / "run.sh", script);
  auto r = test::run("bash '" + d + "/run.sh'");
  const std::string out = test::read_text(dir / "out"), err = test::read_text(dir / "err");
  EXPECT_NE(r.out.find("rc=0"), std::string::npos) << r.out << r.err << err;
  EXPECT_NE(err.find("(stopped)"), std::string::npos) << err;
  // A prompt before the reply and one after it: the program went on to read /exit.
  size_t prompts = 0;
  for (size_t at = out.find("> "); at != std::string::npos; at = out.find("> ", at + 2)) ++prompts;
  EXPECT_GE(prompts, 2u) << out.substr(0, 400);
}
