/* Integration test: `hearth-cli tokenize` and `hearth-cli detokenize` on the vocabulary-only GGUF files of
 * ../shared/testdata/vocab, compared with the expected ids of the .out test vectors.
 *
 * Non-obvious choice: each case text is written to a file byte for byte (no newline added), because
 * tokenize reads every byte of the file; the printed ids are compared as numbers with the .out line,
 * whose lines start with a space.
 */
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "test-util.h"

namespace fs = std::filesystem;
using namespace hearth;

namespace {

std::vector<std::pair<std::string, std::string>> cases(const std::string& family) {
  auto base = test::testdata("vocab") / ("ggml-vocab-" + family + ".gguf");
  std::string inp = test::read_text(base.string() + ".inp");
  std::string out = test::read_text(base.string() + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts, lines;
  for (size_t pos = 0, at; (at = inp.find(sep, pos)) != std::string::npos; pos = at + sep.size())
    texts.push_back(inp.substr(pos, at - pos));
  std::istringstream ls(out);
  for (std::string l; std::getline(ls, l);) lines.push_back(l);
  std::vector<std::pair<std::string, std::string>> r;
  for (size_t i = 0; i < texts.size() && i < lines.size(); ++i) r.emplace_back(texts[i], lines[i]);
  return r;
}

std::vector<long> numbers(const std::string& s) {
  std::istringstream in(s);
  std::vector<long> v;
  for (long x; in >> x;) v.push_back(x);
  return v;
}

class TokenizeCli : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(TokenizeCli, IdsMatchVectorsAndDetokenizeRestoresText) {
  const std::string fam = GetParam();
  auto model = test::testdata("vocab") / ("ggml-vocab-" + fam + ".gguf");
  auto all = cases(fam);
  ASSERT_GE(all.size(), 46u);
  auto dir = test::scratch("cli-" + fam);
  // A short case, a case of whitespace only, and the long mixed one at the end.
  for (size_t idx : {size_t(1), size_t(9), all.size() - 1}) {
    const auto& [text, expected] = all[idx];
    auto file = dir / ("case-" + std::to_string(idx) + ".txt");
    test::write_text(file, text);
    auto r = test::run(test::cli() + " tokenize -m '" + model.string() + "' -f '" + file.string() + "' --ids --no-special");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(numbers(r.out), numbers(expected)) << fam << " case " << idx;
    ASSERT_TRUE(r.out.size() > 0 && r.out.back() == '\n' && r.out.find('\n') == r.out.size() - 1)
        << "the ids must be one line";
    std::string ids = r.out.substr(0, r.out.size() - 1);
    auto d = test::run(test::cli() + " detokenize -m '" + model.string() + "' --ids '" + ids + "'");
    ASSERT_EQ(d.exit_code, 0) << d.err;
    if (fam != "bert-bge") EXPECT_EQ(d.out, text) << fam << " case " << idx;  // WordPiece lower-cases
  }
}

INSTANTIATE_TEST_SUITE_P(Families, TokenizeCli,
                         ::testing::Values("bert-bge", "deepseek-coder", "deepseek-llm", "falcon", "gpt-2", "llama-spm", "mpt",
                                           "phi-3", "refact", "starcoder"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST(TokenizeCli, SpecialTokensAndErrors) {
  auto model = test::testdata("vocab") / "ggml-vocab-llama-spm.gguf";
  auto dir = test::scratch("cli-special");
  test::write_text(dir / "t.txt", "Hello world");
  // Without --no-special the metadata's BOS comes first.
  auto r = test::run(test::cli() + " tokenize -m '" + model.string() + "' -f '" + (dir / "t.txt").string() + "' --ids");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(numbers(r.out), (std::vector<long>{1, 15043, 3186}));
  // The table form: id, quoted piece, type.
  auto t = test::run(test::cli() + " tokenize -m '" + model.string() + "' -p 'Hi\n'");
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("1\t\"<s>\"\tcontrol\n"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("\t\"\\n\"\tbyte\n"), std::string::npos) << t.out;

  auto bad_id = test::run(test::cli() + " detokenize -m '" + model.string() + "' --ids '1 99999'");
  EXPECT_NE(bad_id.exit_code, 0);
  EXPECT_NE(bad_id.err.find("99999"), std::string::npos);
  EXPECT_EQ(std::count(bad_id.err.begin(), bad_id.err.end(), '\n'), 1);
  auto not_num = test::run(test::cli() + " detokenize -m '" + model.string() + "' --ids '1 x2'");
  EXPECT_NE(not_num.exit_code, 0);
  EXPECT_NE(not_num.err.find("x2"), std::string::npos);
  auto no_model = test::run(test::cli() + " tokenize -m '" + (dir / "missing.gguf").string() + "' -p hi --ids");
  EXPECT_NE(no_model.exit_code, 0);
  EXPECT_NE(no_model.err.find("missing.gguf"), std::string::npos);
  EXPECT_TRUE(no_model.out.empty());
}
