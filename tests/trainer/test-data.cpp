/* Tests of the training-data code: format detection and loading of each format with the real Llama 2
 * tokenizer and real chat templates, the assistant-only loss mask (the trained tokens' text must be
 * exactly the reply plus the template's end-of-turn), malformed lines, truncation, statistics, the
 * validation split, the batch iterator (determinism, seek, packing) and SentencePiece training.
 *
 * Non-obvious choice: expected trained texts are written by hand from the templates' documented output
 * (e.g. ChatML "<|im_start|>assistant\n" + reply + "<|im_end|>\n"), never derived from the code's own
 * rendering, and the dataset hash is checked against the system's sha256sum.
 */
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "../../trainer/src/data-internal.h"
#include "hearth/gguf.h"
#include "hearth/model-writer.h"
#include "hearth/model.h"
#include "hearth/trainer/data.h"
#include "test-util.h"

using namespace hearth;
using namespace hearth::train;

namespace {

const Tokenizer& llama_tokenizer() {
  static Tokenizer tok = [] {
    auto t = load_tokenizer(test::testdata("models/llama-2-tiny-random.gguf"));
    if (!t) {
      ADD_FAILURE() << t.error().to_string();
      std::abort();
    }
    return *t;
  }();
  return tok;
}

ChatTemplate load_template(const std::string& name) {
  auto src = test::read_text(test::testdata("chat-templates/" + name));
  auto t = ChatTemplate::parse(src);
  if (!t) {
    ADD_FAILURE() << t.error().to_string();
    std::abort();
  }
  return *t;
}

std::filesystem::path fixture(const std::string& name) { return test::source_dir("tests/trainer/data/" + name); }

DataConfig config_for(const std::filesystem::path& p, int64_t max_length = 1024) {
  DataConfig c;
  c.train = p;
  c.max_length = max_length;
  return c;
}

// The text of each maximal run of trained tokens (pieces concatenated).
std::vector<std::string> trained_runs(const Tokenizer& tok, const Example& ex) {
  std::vector<std::string> runs;
  bool in = false;
  for (size_t i = 0; i < ex.tokens.size(); ++i) {
    if (ex.train[i]) {
      if (!in) runs.emplace_back();
      in = true;
      runs.back() += *tok.token_to_piece(ex.tokens[i]);
    } else {
      in = false;
    }
  }
  return runs;
}

Dataset load_ok_with(const DataConfig& c, const Tokenizer& tok, const ChatTemplate* t = nullptr) {
  auto d = load_dataset(c, tok, t, 1);
  if (!d) {
    ADD_FAILURE() << d.error().to_string();
    return {};
  }
  return *d;
}

Dataset load_ok(const DataConfig& c, const ChatTemplate* t, uint64_t seed = 1) {
  auto d = load_dataset(c, llama_tokenizer(), t, seed);
  if (!d) {
    ADD_FAILURE() << d.error().to_string();
    return {};
  }
  return *d;
}

}  // namespace

TEST(DataFormat, DetectsEachFormat) {
  EXPECT_EQ(*detect_format(fixture("alpaca.jsonl")), DataFormat::alpaca);
  EXPECT_EQ(*detect_format(fixture("sharegpt.jsonl")), DataFormat::sharegpt);
  EXPECT_EQ(*detect_format(fixture("messages.jsonl")), DataFormat::messages);
  EXPECT_EQ(*detect_format(fixture("text.jsonl")), DataFormat::text);
  EXPECT_EQ(*detect_format(fixture("text.txt")), DataFormat::text);
  EXPECT_EQ(*detect_format(fixture("bad.jsonl")), DataFormat::messages);  // BOM and bad lines skipped
  auto missing = detect_format(fixture("no-such-file.jsonl"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
  auto dir = test::scratch("detect");
  test::write_text(dir / "odd.jsonl", "{\"foo\": 1}\n");
  auto odd = detect_format(dir / "odd.jsonl");
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error().code, ErrorCode::format);
  EXPECT_NE(odd.error().message.find("odd.jsonl"), std::string::npos);
  test::write_text(dir / "empty.jsonl", "\xEF\xBB\xBF\n\n");
  EXPECT_FALSE(detect_format(dir / "empty.jsonl"));
}

TEST(DataLoad, AlpacaWithChatMLTemplateTrainsExactlyTheReplies) {
  auto tmpl = load_template("Qwen-Qwen2.5-7B-Instruct.jinja");
  Dataset d = load_ok(config_for(fixture("alpaca.jsonl")), &tmpl);
  EXPECT_EQ(d.format, DataFormat::alpaca);
  ASSERT_EQ(d.train.size(), 5u);
  EXPECT_TRUE(d.issues.empty());
  const char* replies[] = {"Paris.", "2 + 3 = 5", "enots", "Blue", "le chat ☺"};
  const Tokenizer& tok = llama_tokenizer();
  for (size_t i = 0; i < 5; ++i) {
    const Example& ex = d.train[i];
    EXPECT_EQ(ex.source_line, int64_t(i + 1));
    ASSERT_EQ(ex.tokens.size(), ex.train.size());
    EXPECT_EQ(ex.tokens[0], *tok.bos_id());  // Llama 2 adds BOS; Qwen's template writes none
    EXPECT_EQ(ex.train[0], 0);
    auto runs = trained_runs(tok, ex);
    ASSERT_EQ(runs.size(), 1u) << i;
    EXPECT_EQ(runs[0], std::string(replies[i]) + "<|im_end|>\n");
  }
  // The user turn joins instruction and input with a blank line; the system key replaces Qwen's default.
  auto text1 = *tok.decode(d.train[1].tokens, true);
  EXPECT_NE(text1.find("<|im_start|>user\nAdd the numbers.\n\n2 and 3<|im_end|>"), std::string::npos) << text1;
  auto text3 = *tok.decode(d.train[3].tokens, true);
  EXPECT_NE(text3.find("<|im_start|>system\nYou are terse.<|im_end|>"), std::string::npos) << text3;
}

TEST(DataLoad, ShareGptMultiTurnMasksEveryAssistantTurn) {
  auto tmpl = load_template("Qwen-Qwen2.5-7B-Instruct.jinja");
  Dataset d = load_ok(config_for(fixture("sharegpt.jsonl")), &tmpl);
  EXPECT_EQ(d.format, DataFormat::sharegpt);
  ASSERT_EQ(d.train.size(), 3u);
  const Tokenizer& tok = llama_tokenizer();
  EXPECT_EQ(trained_runs(tok, d.train[0]), std::vector<std::string>{"Hello! How can I help?<|im_end|>\n"});
  EXPECT_EQ(trained_runs(tok, d.train[1]), (std::vector<std::string>{"Blue<|im_end|>\n", "Green<|im_end|>\n"}));
  EXPECT_EQ(trained_runs(tok, d.train[2]), std::vector<std::string>{"4<|im_end|>\n"});
  auto text = *tok.decode(d.train[1].tokens, true);
  EXPECT_EQ(text,
            "<|im_start|>system\nAnswer with one word.<|im_end|>\n<|im_start|>user\nSky colour?<|im_end|>\n"
            "<|im_start|>assistant\nBlue<|im_end|>\n<|im_start|>user\nGrass colour?<|im_end|>\n"
            "<|im_start|>assistant\nGreen<|im_end|>\n");
}

TEST(DataLoad, MessagesWithInstTemplateTrainsReplyAndEos) {
  // Mistral's [INST] template writes bos_token itself and ends each reply with eos_token.
  auto tmpl = load_template("mistralai-Mistral-Nemo-Instruct-2407.jinja");
  Dataset d = load_ok(config_for(fixture("messages.jsonl")), &tmpl);
  EXPECT_EQ(d.format, DataFormat::messages);
  ASSERT_EQ(d.train.size(), 2u);
  const Tokenizer& tok = llama_tokenizer();
  TokenId bos = *tok.bos_id(), eos = *tok.eos_id();
  for (const Example& ex : d.train) {
    EXPECT_EQ(ex.tokens[0], bos);
    EXPECT_EQ(std::count(ex.tokens.begin(), ex.tokens.end(), bos), 1);  // no second BOS from the text
  }
  EXPECT_EQ(trained_runs(tok, d.train[0]), std::vector<std::string>{"Yes.</s>"});
  EXPECT_EQ(d.train[0].tokens.back(), eos);
  EXPECT_EQ(d.train[0].train.back(), 1);
  // The first reply is found by its text (the template drops the system message once the
  // conversation ends with a reply, so a cut conversation is not a prefix), the last by the cuts.
  EXPECT_EQ(trained_runs(tok, d.train[1]), (std::vector<std::string>{"Two.</s>", "Four, then five.</s>"}));

  // The search for a reply starts after the user turn before it, even when that turn quotes the reply.
  auto dir = test::scratch("inst-quote");
  test::write_text(dir / "q.jsonl",
                   R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Say Yes."}, )"
                   R"({"role": "assistant", "content": "Yes."}, {"role": "user", "content": "Again"}, )"
                   R"({"role": "assistant", "content": "Yes."}]})"
                   "\n");
  Dataset q = load_ok(config_for(dir / "q.jsonl"), &tmpl);
  ASSERT_EQ(q.train.size(), 1u);
  EXPECT_EQ(trained_runs(tok, q.train[0]), (std::vector<std::string>{"Yes.</s>", "Yes.</s>"}));
}

TEST(DataLoad, WeightZeroKeepsAReplyOutOfTheLoss) {
  auto tmpl = load_template("Qwen-Qwen2.5-7B-Instruct.jinja");
  auto dir = test::scratch("weight");
  test::write_text(dir / "w.jsonl",
                   R"({"messages": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "one", "weight": 0}, )"
                   R"({"role": "user", "content": "B"}, {"role": "assistant", "content": "two", "weight": 1}]})"
                   "\n"
                   R"({"messages": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "x", "weight": 0.5}]})"
                   "\n");
  Dataset d = load_ok(config_for(dir / "w.jsonl"), &tmpl);
  ASSERT_EQ(d.train.size(), 1u);
  EXPECT_EQ(trained_runs(llama_tokenizer(), d.train[0]), std::vector<std::string>{"two<|im_end|>\n"});
  ASSERT_EQ(d.issues.size(), 1u);
  EXPECT_EQ(d.issues[0].line, 2);
  EXPECT_NE(d.issues[0].message.find("'weight' must be 0 or 1"), std::string::npos);
}

TEST(DataLoad, NoTemplateFallsBackToChatMLOnce) {
  Dataset d = load_ok(config_for(fixture("alpaca.jsonl")), nullptr);
  ASSERT_EQ(d.train.size(), 5u);
  ASSERT_EQ(d.issues.size(), 1u);
  EXPECT_EQ(d.issues[0].line, 0);
  EXPECT_NE(d.issues[0].message.find("ChatML"), std::string::npos);
  const Tokenizer& tok = llama_tokenizer();
  EXPECT_EQ(trained_runs(tok, d.train[0]), std::vector<std::string>{"Paris.<|im_end|>\n</s>"});
  EXPECT_EQ(d.train[0].tokens.back(), *tok.eos_id());
  EXPECT_EQ(*tok.decode(d.train[0].tokens, true),
            "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nParis.<|im_end|>\n");
}

TEST(DataLoad, ExampleDatasetLoadsCleanlyForTheTinyModel) {
  // resources/examples/tiny-instruct.jsonl as lora-tiny.yaml uses it: the tiny Llama 2 model has no
  // chat template, 10% held out.
  auto path = test::source_dir("resources/examples/tiny-instruct.jsonl");
  DataConfig c = config_for(path, 256);
  c.validation_split = 0.1;
  Dataset d = load_ok(c, nullptr, 42);
  EXPECT_EQ(d.stats.rows, 200);
  EXPECT_EQ(d.stats.bad_rows, 0);
  EXPECT_EQ(d.stats.truncated, 0);
  EXPECT_EQ(d.train.size(), 180u);
  EXPECT_EQ(d.validation.size(), 20u);
  EXPECT_EQ(d.issues.size(), 1u);  // the fallback-template note
  std::vector<std::string> outputs;
  std::istringstream in(test::read_text(path));
  for (std::string line; std::getline(in, line);) outputs.push_back(nlohmann::json::parse(line)["output"]);
  for (const auto* set : {&d.train, &d.validation})
    for (const Example& ex : *set)
      EXPECT_EQ(trained_runs(llama_tokenizer(), ex),
                std::vector<std::string>{outputs[size_t(ex.source_line - 1)] + "<|im_end|>\n</s>"});
}

TEST(DataLoad, TrainOnAllTrainsEverythingButTheFirstToken) {
  auto tmpl = load_template("Qwen-Qwen2.5-7B-Instruct.jinja");
  DataConfig c = config_for(fixture("sharegpt.jsonl"));
  c.train_on_all = true;
  Dataset d = load_ok(c, &tmpl);
  ASSERT_FALSE(d.train.empty());
  for (const Example& ex : d.train) {
    EXPECT_EQ(ex.train[0], 0);
    EXPECT_EQ(std::count(ex.train.begin(), ex.train.end(), 1), int64_t(ex.tokens.size()) - 1);
  }
}

TEST(DataLoad, TextFilesBecomeDocumentsWithBosAndEos) {
  const Tokenizer& tok = llama_tokenizer();
  Dataset d = load_ok(config_for(fixture("text.txt")), nullptr);
  EXPECT_EQ(d.format, DataFormat::text);
  EXPECT_TRUE(d.issues.empty());
  ASSERT_EQ(d.train.size(), 4u);
  const char* docs[] = {"First paragraph, one line.", "Second paragraph\nspans two lines.",
                        "Third after blanks.\nWith a CRLF line.", "Last one"};
  int64_t lines[] = {1, 3, 8, 11};
  for (size_t i = 0; i < 4; ++i) {
    const Example& ex = d.train[i];
    EXPECT_EQ(ex.source_line, lines[i]);
    EXPECT_EQ(ex.tokens.front(), *tok.bos_id());
    EXPECT_EQ(ex.tokens.back(), *tok.eos_id());
    EXPECT_EQ(*tok.decode(ex.tokens, true), docs[i]);
    EXPECT_EQ(ex.train[0], 0);
    EXPECT_EQ(std::count(ex.train.begin(), ex.train.end(), 1), int64_t(ex.tokens.size()) - 1);
  }
  Dataset j = load_ok(config_for(fixture("text.jsonl")), nullptr);
  ASSERT_EQ(j.train.size(), 2u);
  EXPECT_EQ(*tok.decode(j.train[1].tokens, true), "Second document.\nWith two lines.");
  EXPECT_EQ(j.stats.rows, 2);
}

TEST(DataLoad, LongTextDocumentsAreCutIntoRows) {
  const Tokenizer& tok = llama_tokenizer();
  auto dir = test::scratch("longtext");
  std::string doc;
  for (int i = 0; i < 60; ++i) doc += "word" + std::to_string(i) + " ";
  doc.pop_back();
  test::write_text(dir / "long.txt", doc + "\n");
  auto ids = *tok.encode(doc, true);
  ids.push_back(*tok.eos_id());
  Dataset d = load_ok(config_for(dir / "long.txt", 32), nullptr);
  size_t expect_rows = (ids.size() + 31) / 32;
  ASSERT_EQ(d.train.size(), expect_rows);
  std::vector<TokenId> joined;
  for (const Example& ex : d.train) {
    EXPECT_LE(ex.tokens.size(), 32u);
    joined.insert(joined.end(), ex.tokens.begin(), ex.tokens.end());
  }
  EXPECT_EQ(joined, ids);
  EXPECT_EQ(d.stats.truncated, 0);
}

TEST(DataLoad, MalformedLinesAreReportedWithTheirLineNumbers) {
  auto tmpl = load_template("Qwen-Qwen2.5-7B-Instruct.jinja");
  Dataset d = load_ok(config_for(fixture("bad.jsonl")), &tmpl);
  EXPECT_EQ(d.stats.rows, 11);
  EXPECT_EQ(d.stats.bad_rows, 8);
  ASSERT_EQ(d.train.size(), 3u);
  EXPECT_EQ(d.train[0].source_line, 1);
  EXPECT_EQ(d.train[1].source_line, 11);
  EXPECT_EQ(d.train[2].source_line, 13);
  // CR of the CRLF line is not part of the reply.
  EXPECT_EQ(trained_runs(llama_tokenizer(), d.train[2]), std::vector<std::string>{"Now.<|im_end|>\n"});
  std::map<int64_t, std::string> expect = {
      {3, "invalid JSON"},       {4, "not an array"},      {5, "empty"},          {6, "unknown role 'wizard'"},
      {7, "no assistant turn"},  {8, "not a string"},      {9, "JSON object"},    {10, "missing key 'messages'"}};
  ASSERT_EQ(d.issues.size(), expect.size());
  for (const DataIssue& is : d.issues) {
    ASSERT_TRUE(expect.count(is.line)) << is.line << ": " << is.message;
    EXPECT_NE(is.message.find(expect[is.line]), std::string::npos) << is.line << ": " << is.message;
    EXPECT_EQ(is.file, fixture("bad.jsonl"));
  }

  DataConfig strict = config_for(fixture("bad.jsonl"));
  strict.skip_bad_lines = false;
  auto r = load_dataset(strict, llama_tokenizer(), &tmpl, 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::format);
  EXPECT_NE(r.error().message.find("bad.jsonl:3:"), std::string::npos) << r.error().message;
}

TEST(DataLoad, HugeLinesAndGarbageNeverCrash) {
  auto tmpl = load_template("Qwen-Qwen2.5-7B-Instruct.jinja");
  auto dir = test::scratch("huge");
  std::string big = "{\"messages\": [{\"role\": \"user\", \"content\": \"" + std::string((16u << 20) + 10, 'x') + "\"}]}";
  std::string good = R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})";
  std::string deep(100000, '[');
  std::string invalid_utf8 = "{\"messages\": [{\"role\": \"user\", \"content\": \"\xff\xfe\"}, "
                             "{\"role\": \"assistant\", \"content\": \"b\"}]}";
  test::write_text(dir / "huge.jsonl", good + "\n" + big + "\n" + deep + "\n" + invalid_utf8 + "\n" + good + "\n");
  Dataset d = load_ok(config_for(dir / "huge.jsonl"), &tmpl);
  EXPECT_EQ(d.train.size(), 2u);
  EXPECT_EQ(d.stats.bad_rows, 3);
  ASSERT_GE(d.issues.size(), 3u);
  EXPECT_EQ(d.issues[0].line, 2);
  EXPECT_NE(d.issues[0].message.find("16 MiB"), std::string::npos);
  EXPECT_EQ(d.issues[1].line, 3);
  EXPECT_EQ(d.issues[2].line, 4);

  // 40,000 one-letter turns: rendering every prefix would be quadratic; refused, not hung.
  std::string turns = "{\"messages\": [";
  for (int i = 0; i < 20000; ++i) turns += R"({"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}, )";
  turns += R"({"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})";
  test::write_text(dir / "turns.jsonl", turns + "\n" + good + "\n");
  auto t0 = std::chrono::steady_clock::now();
  Dataset t = load_ok(config_for(dir / "turns.jsonl"), &tmpl);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  EXPECT_EQ(t.train.size(), 1u);
  ASSERT_EQ(t.issues.size(), 1u);
  EXPECT_NE(t.issues[0].message.find("too long"), std::string::npos);

  test::write_text(dir / "allbad.jsonl", "{\"messages\": 1}\n{\"messages\": 2}\n");
  auto r = load_dataset(config_for(dir / "allbad.jsonl"), llama_tokenizer(), &tmpl, 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::format);
  EXPECT_NE(r.error().hint.find("allbad.jsonl:1"), std::string::npos) << r.error().hint;
}

TEST(DataLoad, JsonArrayFilesAreReadRecordByRecord) {
  // alpaca_data.json style: one pretty-printed array; a bad element is reported at the line it starts.
  auto dir = test::scratch("array");
  test::write_text(dir / "alpaca_data.json",
                   "[\n"
                   "  {\n"
                   "    \"instruction\": \"Say [hi], {please}\",\n"
                   "    \"input\": \"\",\n"
                   "    \"output\": \"hi \\\"there\\\"\"\n"
                   "  },\n"
                   "  {\"instruction\": 3, \"output\": \"x\"},\n"
                   "  {\"instruction\": \"Count\", \"output\": \"1, 2, 3\"}\n"
                   "]\n");
  EXPECT_EQ(*detect_format(dir / "alpaca_data.json"), DataFormat::alpaca);
  auto tmpl = load_template("Qwen-Qwen2.5-7B-Instruct.jinja");
  Dataset d = load_ok(config_for(dir / "alpaca_data.json"), &tmpl);
  EXPECT_EQ(d.stats.rows, 3);
  ASSERT_EQ(d.train.size(), 2u);
  EXPECT_EQ(d.train[0].source_line, 2);
  EXPECT_EQ(d.train[1].source_line, 8);
  EXPECT_EQ(trained_runs(llama_tokenizer(), d.train[0]), std::vector<std::string>{"hi \"there\"<|im_end|>\n"});
  EXPECT_EQ(trained_runs(llama_tokenizer(), d.train[1]), std::vector<std::string>{"1, 2, 3<|im_end|>\n"});
  ASSERT_EQ(d.issues.size(), 1u);
  EXPECT_EQ(d.issues[0].line, 7);
  EXPECT_NE(d.issues[0].message.find("'instruction' is not a string"), std::string::npos);
  // Truncated: the complete elements still load, the cut one is reported.
  test::write_text(dir / "cut.json", "[{\"instruction\": \"a\", \"output\": \"b\"},\n {\"instruction\": \"c\", \"outp");
  Dataset c = load_ok(config_for(dir / "cut.json"), &tmpl);
  EXPECT_EQ(c.train.size(), 1u);
  EXPECT_EQ(c.stats.bad_rows, 1);
  ASSERT_EQ(c.issues.size(), 1u);
  EXPECT_EQ(c.issues[0].line, 2);
}

TEST(DataLoad, TruncationIsCountedAgainstTheUntruncatedLengths) {
  auto tmpl = load_template("Qwen-Qwen2.5-7B-Instruct.jinja");
  Dataset full = load_ok(config_for(fixture("sharegpt.jsonl"), 4096), &tmpl);
  ASSERT_EQ(full.stats.truncated, 0);
  // Qwen's default system prompt makes every example longer than 40 tokens; the replies of the first
  // turn start after it.
  const int64_t max_len = 60;
  Dataset cut = load_ok(config_for(fixture("sharegpt.jsonl"), max_len), &tmpl);
  int64_t expect_truncated = 0, expect_kept = 0;
  for (const Example& ex : full.train) {
    bool longer = int64_t(ex.tokens.size()) > max_len;
    expect_truncated += longer;
    bool trained_within = false;
    for (int64_t i = 0; i < std::min<int64_t>(max_len, int64_t(ex.tokens.size())); ++i) trained_within |= ex.train[size_t(i)] != 0;
    expect_kept += trained_within;
  }
  EXPECT_GT(expect_truncated, 0);
  EXPECT_EQ(cut.stats.truncated, expect_truncated);
  EXPECT_EQ(int64_t(cut.train.size()), expect_kept);
  for (const Example& ex : cut.train) EXPECT_LE(int64_t(ex.tokens.size()), max_len);
  // Examples left with nothing to train are reported, not silently dropped.
  EXPECT_EQ(int64_t(cut.issues.size()), int64_t(full.train.size()) - expect_kept);
}

TEST(DataLoad, StatisticsAndHashMatchIndependentComputations) {
  auto tmpl = load_template("Qwen-Qwen2.5-7B-Instruct.jinja");
  const int64_t max_len = 128;
  Dataset d = load_ok(config_for(fixture("alpaca.jsonl"), max_len), &tmpl);
  const DatasetStats& s = d.stats;
  EXPECT_EQ(s.rows, 5);
  EXPECT_EQ(s.examples, 5);
  EXPECT_EQ(s.train_examples + s.validation_examples, 5);
  std::vector<int64_t> lens;
  int64_t tokens = 0, trained = 0;
  std::vector<int64_t> hist(16, 0);
  for (const Example& ex : d.train) {
    lens.push_back(int64_t(ex.tokens.size()));
    tokens += int64_t(ex.tokens.size());
    trained += std::count(ex.train.begin(), ex.train.end(), 1);
    hist[size_t(std::min<int64_t>(15, int64_t(ex.tokens.size()) * 16 / max_len))]++;
  }
  std::sort(lens.begin(), lens.end());
  EXPECT_EQ(s.tokens, tokens);
  EXPECT_EQ(s.trained_tokens, trained);
  EXPECT_EQ(s.min_len, lens.front());
  EXPECT_EQ(s.max_len, lens.back());
  EXPECT_DOUBLE_EQ(s.mean_len, double(tokens) / 5.0);
  EXPECT_EQ(s.p50_len, lens[2]);  // nearest rank: ceil(0.5 * 5) = 3rd
  EXPECT_EQ(s.p90_len, lens[4]);
  EXPECT_EQ(s.p99_len, lens[4]);
  EXPECT_EQ(s.histogram, hist);

  auto sum = test::run("sha256sum '" + fixture("alpaca.jsonl").string() + "'");
  ASSERT_EQ(sum.exit_code, 0);
  EXPECT_EQ(d.sha256, sum.out.substr(0, 64));
}

TEST(DataLoad, ValidationSplitIsDeterministicBySeed) {
  auto dir = test::scratch("split");
  std::string rows;
  for (int i = 0; i < 40; ++i)
    rows += "{\"instruction\": \"Say " + std::to_string(i) + "\", \"output\": \"" + std::to_string(i) + "\"}\n";
  test::write_text(dir / "rows.jsonl", rows);
  DataConfig c = config_for(dir / "rows.jsonl");
  c.validation_split = 0.25;
  auto tmpl = load_template("Qwen-Qwen2.5-7B-Instruct.jinja");
  Dataset a = load_ok(c, &tmpl, 7), b = load_ok(c, &tmpl, 7), other = load_ok(c, &tmpl, 8);
  EXPECT_EQ(a.validation.size(), 10u);
  EXPECT_EQ(a.train.size(), 30u);
  EXPECT_EQ(a.stats.validation_examples, 10);
  auto lines = [](const std::vector<Example>& v) {
    std::set<int64_t> s;
    for (const auto& e : v) s.insert(e.source_line);
    return s;
  };
  EXPECT_EQ(lines(a.validation), lines(b.validation));
  EXPECT_NE(lines(a.validation), lines(other.validation));
  std::set<int64_t> all = lines(a.train);
  for (int64_t l : lines(a.validation)) EXPECT_TRUE(all.insert(l).second);  // disjoint
  EXPECT_EQ(all.size(), 40u);

  // A separate validation file: nothing held out of train; the hash covers both files.
  DataConfig sep = config_for(dir / "rows.jsonl");
  sep.validation = fixture("alpaca.jsonl");
  sep.validation_split = 0.25;  // ignored when a file is given
  Dataset s = load_ok(sep, &tmpl, 7);
  EXPECT_EQ(s.train.size(), 40u);
  EXPECT_EQ(s.validation.size(), 5u);
  auto sum = test::run("cat '" + (dir / "rows.jsonl").string() + "' '" + fixture("alpaca.jsonl").string() +
                       "' | sha256sum");
  EXPECT_EQ(s.sha256, sum.out.substr(0, 64));
}

TEST(DataLoad, PreviewShowsTokensAndMask) {
  auto tmpl = load_template("Qwen-Qwen2.5-7B-Instruct.jinja");
  Dataset d = load_ok(config_for(fixture("alpaca.jsonl")), &tmpl);
  auto p = preview_examples(d, llama_tokenizer(), 2);
  ASSERT_EQ(p.size(), 2u);
  ASSERT_EQ(p[0].size(), d.train[0].tokens.size());
  std::string trained;
  for (const auto& t : p[0])
    if (t.trained) trained += t.text;
  EXPECT_EQ(trained, "Paris.<|im_end|>\n");
}

// ---- batches ------------------------------------------------------------------------------------

namespace {

std::vector<Example> synthetic_examples(int n, uint64_t seed) {
  std::vector<Example> v;
  for (int i = 0; i < n; ++i) {
    Example e;
    e.source_line = i + 1;
    int len = 3 + int((seed + uint64_t(i) * 7) % 11);
    for (int k = 0; k < len; ++k) {
      e.tokens.push_back(1000 * (i + 1) + k);  // identifies example and position
      e.train.push_back(k == 0 ? 0 : uint8_t((k % 3) != 1));
    }
    v.push_back(std::move(e));
  }
  return v;
}

}  // namespace

TEST(DataBatches, PaddedRowsShiftTargetsAndCoverEachEpochOnce) {
  auto ex = synthetic_examples(10, 3);
  const int32_t pad = 7;
  BatchIterator it(ex, 4, 12, false, pad, 99);
  ASSERT_EQ(it.batches_per_epoch(), 3);  // 4 + 4 + 2 rows, then two padding rows
  std::multiset<int64_t> seen;
  for (int b = 0; b < 6; ++b) {  // two epochs
    Batch batch = it.next();
    const int64_t epoch = b / 3;
    EXPECT_EQ(it.position().epoch, epoch);
    ASSERT_EQ(batch.B, 4);
    ASSERT_LE(batch.T, 12);
    ASSERT_EQ(batch.tokens.size(), size_t(batch.B * batch.T));
    int64_t n_tokens = 0, n_targets = 0, empty_rows = 0;
    for (int64_t r = 0; r < batch.B; ++r) {
      int32_t first = batch.tokens[size_t(r * batch.T)];
      if (first == pad) {  // a padding row completing the epoch's last batch
        ++empty_rows;
        for (int64_t t = 0; t < batch.T; ++t) EXPECT_EQ(batch.targets[size_t(r * batch.T + t)], -1);
        continue;
      }
      int id = first / 1000 - 1;
      ASSERT_GE(id, 0);
      const Example& e = ex[size_t(id)];
      seen.insert(epoch * 100 + id);
      size_t len = std::min<size_t>(e.tokens.size(), size_t(batch.T));
      for (int64_t t = 0; t < batch.T; ++t) {
        int32_t tok = batch.tokens[size_t(r * batch.T + t)], tgt = batch.targets[size_t(r * batch.T + t)];
        if (size_t(t) < len) {
          EXPECT_EQ(tok, e.tokens[size_t(t)]);
          int32_t want = size_t(t) + 1 < len && e.train[size_t(t) + 1] ? e.tokens[size_t(t) + 1] : -1;
          EXPECT_EQ(tgt, want);
          ++n_tokens;
        } else {
          EXPECT_EQ(tok, pad);
          EXPECT_EQ(tgt, -1);
        }
        n_targets += tgt >= 0;
      }
    }
    EXPECT_EQ(empty_rows, b % 3 == 2 ? 2 : 0);
    EXPECT_EQ(batch.n_tokens, n_tokens);
    EXPECT_EQ(batch.n_targets, n_targets);
  }
  // Each epoch serves every example exactly once.
  for (int id = 0; id < 10; ++id) {
    EXPECT_EQ(seen.count(id), 1u) << id;
    EXPECT_EQ(seen.count(100 + id), 1u) << id;
  }
}

TEST(DataBatches, OrderIsAFunctionOfSeedAndEpochAndSeekResumesExactly) {
  auto ex = synthetic_examples(23, 5);
  for (bool packing : {false, true}) {
    BatchIterator a(ex, 3, 16, packing, 0, 42), b(ex, 3, 16, packing, 0, 42), c(ex, 3, 16, packing, 0, 43);
    std::vector<Batch> seq;
    std::vector<BatchIterator::Position> pos;
    bool differs = false;
    for (int i = 0; i < 30; ++i) {
      pos.push_back(a.position());
      seq.push_back(a.next());
      Batch bb = b.next(), cb = c.next();
      EXPECT_EQ(seq.back().tokens, bb.tokens);
      EXPECT_EQ(seq.back().targets, bb.targets);
      differs |= seq.back().tokens != cb.tokens;
    }
    EXPECT_TRUE(differs);
    EXPECT_GT(pos.back().epoch, 0);  // crossed epochs
    bool epochs_differ = false;  // a new epoch is reshuffled
    for (int k : {7, 19, 29}) {
      BatchIterator r(ex, 3, 16, packing, 0, 42);
      r.seek(pos[size_t(k)]);
      for (int i = k; i < 30; ++i) {
        Batch rb = r.next();
        EXPECT_EQ(rb.tokens, seq[size_t(i)].tokens) << "packing " << packing << " from " << k << " at " << i;
        EXPECT_EQ(rb.targets, seq[size_t(i)].targets);
      }
    }
    BatchIterator e0(ex, 1, 16, packing, 0, 42);
    std::vector<int32_t> first0, first1;
    int64_t per = e0.batches_per_epoch();
    for (int64_t i = 0; i < per; ++i) first0.push_back(e0.next().tokens[0]);
    for (int64_t i = 0; i < per; ++i) first1.push_back(e0.next().tokens[0]);
    epochs_differ = first0 != first1;
    EXPECT_TRUE(epochs_differ);
  }
}

TEST(DataBatches, PackedRowsAreFullAndKeepTargetsInsideExamples) {
  auto ex = synthetic_examples(17, 9);
  int64_t total = 0;
  for (const auto& e : ex) total += int64_t(e.tokens.size());
  const int64_t T = 10;
  BatchIterator it(ex, 2, T, true, -5, 1);
  int64_t rows = (total + T - 1) / T;
  EXPECT_EQ(it.batches_per_epoch(), (rows + 1) / 2);
  std::vector<int32_t> stream, targets;
  int64_t n_tokens = 0;
  for (int64_t i = 0; i < it.batches_per_epoch(); ++i) {
    Batch b = it.next();
    ASSERT_EQ(b.T, T);
    ASSERT_EQ(b.B, 2);
    stream.insert(stream.end(), b.tokens.begin(), b.tokens.end());
    targets.insert(targets.end(), b.targets.begin(), b.targets.end());
    n_tokens += b.n_tokens;
  }
  EXPECT_EQ(it.position().epoch, 0);
  // One epoch: every example's tokens, whole and in order, then padding up to the end of the batch.
  ASSERT_EQ(int64_t(stream.size()), (rows + 1) / 2 * 2 * T);
  std::multiset<int> ids;
  size_t i = 0;
  while (i < size_t(total)) {
    int id = stream[i] / 1000 - 1;
    ASSERT_GE(id, 0);
    const Example& e = ex[size_t(id)];
    ids.insert(id);
    for (size_t k = 0; k < e.tokens.size(); ++k, ++i) {
      ASSERT_EQ(stream[i], e.tokens[k]);
      int32_t want = k + 1 < e.tokens.size() && e.train[k + 1] ? e.tokens[k + 1] : -1;
      EXPECT_EQ(targets[i], want);  // the last token of an example predicts nothing
    }
  }
  EXPECT_EQ(ids.size(), 17u);
  EXPECT_EQ(std::set<int>(ids.begin(), ids.end()).size(), 17u);
  for (; i < stream.size(); ++i) {
    EXPECT_EQ(stream[i], -5);
    EXPECT_EQ(targets[i], -1);
  }
  EXPECT_EQ(n_tokens, total);
}

TEST(DataBatches, EmptyInputGivesEmptyBatches) {
  BatchIterator it({}, 4, 16, false, 0, 1);
  Batch b = it.next();
  EXPECT_EQ(b.B, 0);
  EXPECT_TRUE(b.tokens.empty());
  EXPECT_EQ(it.batches_per_epoch(), 0);
}

TEST(DataBatches, DefaultPadIdFallsBackToEos) {
  const Tokenizer& tok = llama_tokenizer();
  int32_t want = tok.pad_id() ? *tok.pad_id() : *tok.eos_id();
  EXPECT_EQ(default_pad_id(tok), want);
}

// ---- SentencePiece training ---------------------------------------------------------------------

namespace {

struct TrainedTokenizer {
  TokenizerData data;
  std::optional<Tokenizer> from_gguf;
};

// Trains on a slice of a Debian corpus, writes a tiny GGUF model with the vocabulary, reads it back.
std::optional<TrainedTokenizer> train_and_reload(const std::filesystem::path& dir, const std::string& type) {
  const std::filesystem::path corpus_src = "/usr/share/games/fortunes/fortunes";
  std::string text = test::read_text(corpus_src).substr(0, 60000);
  test::write_text(dir / "corpus.txt", text);
  auto td = train_sentencepiece({dir / "corpus.txt"}, dir / "tok", 800, type, 1);
  if (!td) {
    ADD_FAILURE() << td.error().to_string();
    return std::nullopt;
  }
  TrainedTokenizer out;
  out.data = *td;
  ModelParams p = tiny_params(Architecture::llama, 32, 1, int64_t(td->tokens.size()));
  auto w = make_random_weights(p, 1);
  GgufWriteOptions opt;
  opt.tokenizer = *td;
  if (!w || !write_gguf_model(*w, dir / "m.gguf", opt)) {
    ADD_FAILURE() << "cannot write the GGUF model";
    return std::nullopt;
  }
  auto model = open_model(dir / "m.gguf");
  if (!model || !model->gguf()) {
    ADD_FAILURE() << "cannot open the GGUF model";
    return std::nullopt;
  }
  auto tok = Tokenizer::from_gguf(*model->gguf());
  if (!tok) {
    ADD_FAILURE() << tok.error().to_string();
    return std::nullopt;
  }
  out.from_gguf = *tok;
  return out;
}

const std::vector<std::string> SPM_SAMPLES = {"Hello, world!", "The quick brown fox jumps over the lazy dog.",
                                              "  two  spaces and\ttabs", "Zürich costs 12,345.67 — ünïcödé ☃",
                                              "A fortune a day keeps the doctor away."};

}  // namespace

TEST(DataSentencePiece, BpeVocabularyInGgufEncodesAsSentencePieceDoes) {
  if (!std::filesystem::exists("/usr/share/games/fortunes/fortunes"))
    GTEST_SKIP() << "Debian package fortunes is not installed";
  auto dir = test::scratch("spm-bpe");
  auto t = train_and_reload(dir, "bpe");
  ASSERT_TRUE(t);
  const TokenizerData& td = t->data;
  ASSERT_EQ(td.tokens.size(), td.scores.size());
  ASSERT_EQ(td.tokens.size(), td.token_types.size());
  EXPECT_LE(td.tokens.size(), 800u);
  EXPECT_EQ(std::count(td.token_types.begin(), td.token_types.end(), 6), 256);  // byte fallback
  EXPECT_EQ(td.token_types[size_t(*td.unk_id)], 2);
  EXPECT_EQ(td.token_types[size_t(*td.bos_id)], 3);
  EXPECT_EQ(td.token_types[size_t(*td.eos_id)], 3);
  EXPECT_TRUE(*td.add_bos);
  const Tokenizer& tok = *t->from_gguf;
  EXPECT_EQ(tok.vocab_size(), int32_t(td.tokens.size()));
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.bos_id(), std::optional<TokenId>(TokenId(*td.bos_id)));

  // Deterministic: a second run gives the same vocabulary.
  auto again = train_sentencepiece({dir / "corpus.txt"}, dir / "tok2", 800, "bpe", 1);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->tokens, td.tokens);
  EXPECT_EQ(again->scores, td.scores);

  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load((dir / "tok.model").string()).ok());
  for (const std::string& s : SPM_SAMPLES) {
    auto ids = tok.encode(s);
    ASSERT_TRUE(ids) << s;
    std::vector<int> want;
    ASSERT_TRUE(sp.Encode(s, &want).ok());
    EXPECT_EQ(std::vector<int>(ids->begin(), ids->end()), want) << s;
    EXPECT_EQ(*tok.decode(*ids), s);
  }

  // The pretraining path: the corpus as a text dataset with the new tokenizer, packed into full rows.
  Dataset d = load_ok_with(config_for(dir / "corpus.txt", 64), tok);
  ASSERT_GT(d.train.size(), 10u);
  std::string joined;
  for (const Example& ex : d.train) {
    for (TokenId id : ex.tokens) ASSERT_LT(id, tok.vocab_size());
    joined += *tok.decode(ex.tokens, true);
  }
  EXPECT_NE(joined.find("%"), std::string::npos);  // fortune separators are text like any other
  BatchIterator it(d.train, 4, 64, true, default_pad_id(tok), 1);
  Batch b = it.next();
  EXPECT_EQ(b.n_tokens, 4 * 64);
  EXPECT_GT(b.n_targets, 3 * 64);
}

TEST(DataSentencePiece, UnigramVocabularyInGgufRoundTripsText) {
  // GGUF stores no SentencePiece model type and is read as BPE (as llama.cpp does), so a unigram
  // vocabulary's ids may differ from libsentencepiece's; text must still survive encode/decode.
  if (!std::filesystem::exists("/usr/share/games/fortunes/fortunes"))
    GTEST_SKIP() << "Debian package fortunes is not installed";
  auto dir = test::scratch("spm-unigram");
  auto t = train_and_reload(dir, "unigram");
  ASSERT_TRUE(t);
  EXPECT_EQ(std::count(t->data.token_types.begin(), t->data.token_types.end(), 6), 256);
  for (const std::string& s : SPM_SAMPLES) {
    auto ids = t->from_gguf->encode(s);
    ASSERT_TRUE(ids) << s;
    EXPECT_EQ(*t->from_gguf->decode(*ids), s);
  }
}

TEST(DataSentencePiece, BadArgumentsAreErrors) {
  auto dir = test::scratch("spm-bad");
  EXPECT_FALSE(train_sentencepiece({}, dir / "x", 500, "unigram", 1));
  EXPECT_FALSE(train_sentencepiece({dir / "missing.txt"}, dir / "x", 500, "unigram", 1));
  test::write_text(dir / "c.txt", "some text\n");
  EXPECT_FALSE(train_sentencepiece({dir / "c.txt"}, dir / "x", 500, "wordpiece", 1));
  EXPECT_FALSE(train_sentencepiece({dir / "c.txt"}, dir / "x", 10, "unigram", 1));
}

TEST(DataLoad, OtherRealTemplatesTrainEachReplyAndItsEndOfTurn) {
  using Runs = std::vector<std::vector<std::string>>;  // per example of sharegpt.jsonl
  struct Case {
    const char* file;
    Runs runs;
  };
  // Hand-written from each family's documented turn format. Phi-3.5 puts EOS after the final reply only,
  // so its first reply of the two-turn example comes from the fallback (text search + end-of-turn).
  const std::vector<Case> cases = {
      {"HuggingFaceTB-SmolLM3-3B.jinja",
       {{"Hello! How can I help?<|im_end|>\n"}, {"Blue<|im_end|>\n", "Green<|im_end|>\n"}, {"4<|im_end|>\n"}}},
      {"ibm-granite-granite-3.3-2B-Instruct.jinja",
       {{"Hello! How can I help?<|end_of_text|>\n"},
        {"Blue<|end_of_text|>\n", "Green<|end_of_text|>\n"},
        {"4<|end_of_text|>\n"}}},
      {"microsoft-Phi-3.5-mini-instruct.jinja",
       {{"Hello! How can I help?<|end|>\n</s>"}, {"Blue<|end|>\n", "Green<|end|>\n</s>"}, {"4<|end|>\n</s>"}}},
  };
  for (const Case& c : cases) {
    auto tmpl = load_template(c.file);
    Dataset d = load_ok(config_for(fixture("sharegpt.jsonl")), &tmpl);
    ASSERT_EQ(d.train.size(), c.runs.size()) << c.file;
    for (size_t i = 0; i < d.train.size(); ++i)
      EXPECT_EQ(trained_runs(llama_tokenizer(), d.train[i]), c.runs[i]) << c.file << " example " << i;
  }
  // Templates that print today's date see a fixed one, so the tokens do not change from day to day.
  auto llama32 = load_template("meta-llama-Llama-3.2-3B-Instruct.jinja");
  Dataset l = load_ok(config_for(fixture("messages.jsonl")), &llama32);
  ASSERT_FALSE(l.train.empty());
  auto text = *llama_tokenizer().decode(l.train[0].tokens, true);
  EXPECT_NE(text.find("Today Date: 01 Jan 2025"), std::string::npos) << text;
  EXPECT_EQ(trained_runs(llama_tokenizer(), l.train[0]), std::vector<std::string>{"Yes.<|eot_id|>"});
  // A template that raises (Gemma has no system role) reports the line and keeps the others.
  auto gemma = load_template("google-gemma-2-2b-it.jinja");
  Dataset g = load_ok(config_for(fixture("sharegpt.jsonl")), &gemma);
  EXPECT_EQ(g.train.size(), 2u);
  ASSERT_EQ(g.issues.size(), 1u);
  EXPECT_EQ(g.issues[0].line, 2);
  EXPECT_NE(g.issues[0].message.find("System role not supported"), std::string::npos);
  EXPECT_EQ(trained_runs(llama_tokenizer(), g.train[1]), std::vector<std::string>{"4<end_of_turn>\n"});
}

TEST(DataLoad, RealSpecialTokensOfTheModelsOwnVocabulary) {
  // Phi-3's SentencePiece vocabulary has <|user|>, <|assistant|>, <|end|> as control tokens, and (as
  // llama.cpp) puts a "▁" after a special token; DeepSeek's is byte-level BPE. The template markers
  // must become single tokens, and the mask must still cover exactly the replies and end-of-turns.
  {
    auto tok = load_tokenizer(test::testdata("vocab/ggml-vocab-phi-3.gguf"));
    ASSERT_TRUE(tok) << tok.error().to_string();
    auto tmpl = load_template("microsoft-Phi-3.5-mini-instruct.jinja");
    auto d = load_dataset(config_for(fixture("messages.jsonl")), *tok, &tmpl, 1);
    ASSERT_TRUE(d) << d.error().to_string();
    ASSERT_EQ(d->train.size(), 2u);
    TokenId end = *tok->find_token("<|end|>");
    EXPECT_GT(std::count(d->train[1].tokens.begin(), d->train[1].tokens.end(), end), 4);
    // " " before "\n": the tokenizer's own "▁" after <|end|>, part of the trained end-of-turn.
    EXPECT_EQ(trained_runs(*tok, d->train[0]), std::vector<std::string>{"Yes.<|end|> \n<|endoftext|>"});
    EXPECT_EQ(trained_runs(*tok, d->train[1]),
              (std::vector<std::string>{"Two.<|end|> \n", "Four, then five.<|end|> \n<|endoftext|>"}));
  }
  {
    auto tok = load_tokenizer(test::testdata("vocab/ggml-vocab-deepseek-llm.gguf"));
    ASSERT_TRUE(tok) << tok.error().to_string();
    auto tmpl = load_template("deepseek-ai-DeepSeek-V3.1.jinja");
    auto d = load_dataset(config_for(fixture("messages.jsonl")), *tok, &tmpl, 1);
    ASSERT_TRUE(d) << d.error().to_string();
    ASSERT_EQ(d->train.size(), 2u);
    EXPECT_EQ(d->train[0].tokens[0], *tok->bos_id());
    EXPECT_EQ(std::count(d->train[0].tokens.begin(), d->train[0].tokens.end(), *tok->bos_id()), 1);
    EXPECT_EQ(trained_runs(*tok, d->train[0]), std::vector<std::string>{"Yes.<｜end▁of▁sentence｜>"});
    EXPECT_EQ(trained_runs(*tok, d->train[1]),
              (std::vector<std::string>{"Two.<｜end▁of▁sentence｜>", "Four, then five.<｜end▁of▁sentence｜>"}));
  }
}

