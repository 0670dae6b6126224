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
#include <atomic>
#include <functional>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <nlohmann/json.hpp>
#include <random>
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

// Families with a vocabulary file and test vectors (`lossless_only`: leave out WordPiece, which lower-cases).
std::vector<std::string> families(bool lossless_only = false) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(vocab_dir(), ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("ggml-vocab-", 0) != 0 || e.path().extension() != ".gguf") continue;
    if (!fs::exists(e.path().string() + ".inp") || !fs::exists(e.path().string() + ".out")) continue;
    std::string fam = name.substr(11, name.size() - 11 - 5);
    if (lossless_only && fam == "bert-bge") continue;
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
class LosslessVocab : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST(TokenizerVectors, FamiliesArePresent) {
  auto f = families();
  // bert-bge, deepseek-coder, deepseek-llm, falcon, gpt-2, llama-spm, mpt, phi-3, refact, starcoder
  EXPECT_GE(f.size(), 10u) << "test data missing from " << vocab_dir();
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
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__)
  // Optimized builds: a 100k-token vocabulary loads in about 0.2 s (debug and sanitizer builds are slower).
  EXPECT_LT(load_s, 1.0) << "vocabulary loading is too slow";
#endif
}

TEST_P(LosslessVocab, DecodeInvertsEncode) {
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

namespace {
std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}
}  // namespace

INSTANTIATE_TEST_SUITE_P(Families, VocabVectors, ::testing::ValuesIn(families()), param_name);
INSTANTIATE_TEST_SUITE_P(Families, LosslessVocab, ::testing::ValuesIn(families(true)), param_name);

// ---- Hugging Face folders ---------------------------------------------------------------------------------

namespace {

Tokenizer load_folder(const fs::path& dir) {
  auto t = Tokenizer::from_hf_folder(dir);
  if (!t) throw std::runtime_error(t.error().to_string());
  return *t;
}

// The raw GGUF arrays of a vocabulary file, for building a tokenizer.json by hand.
struct RawVocab {
  std::vector<std::string> tokens, merges;
  std::vector<int64_t> types;
};
RawVocab raw_vocab(const std::string& family) {
  auto f = GgufFile::open(vocab_dir() / ("ggml-vocab-" + family + ".gguf"));
  EXPECT_TRUE(f);
  RawVocab r;
  r.tokens = f->get_string_array("tokenizer.ggml.tokens").value_or(std::vector<std::string>{});
  r.merges = f->get_string_array("tokenizer.ggml.merges").value_or(std::vector<std::string>{});
  r.types = f->get_int_array("tokenizer.ggml.token_type").value_or(std::vector<int64_t>{});
  return r;
}

// A tokenizer.json written here (independently of Tokenizer::save_hf_folder) from a GGUF BPE vocabulary.
void write_tokenizer_json(const fs::path& dir, const std::string& family, const nlohmann::json& pre,
                          const nlohmann::json& extra = nlohmann::json::object(),
                          const std::string& config = R"({"add_bos_token": false, "eos_token": "<|endoftext|>"})") {
  RawVocab r = raw_vocab(family);
  nlohmann::json vocab = nlohmann::json::object();
  nlohmann::json added = nlohmann::json::array();
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    vocab[r.tokens[i]] = i;
    if (r.types[i] == 3 || r.types[i] == 4)
      added.push_back({{"id", i}, {"content", r.tokens[i]}, {"special", r.types[i] == 3}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", r.types[i] == 4}, {"single_word", false}});
  }
  nlohmann::json tj = {{"version", "1.0"},
                       {"added_tokens", added},
                       {"normalizer", nullptr},
                       {"pre_tokenizer", pre},
                       {"decoder", {{"type", "ByteLevel"}}},
                       {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", r.merges}}}};
  tj.update(extra);
  fs::create_directories(dir);
  test::write_text(dir / "tokenizer.json", tj.dump());
  test::write_text(dir / "tokenizer_config.json", config);
}

}  // namespace

TEST_P(LosslessVocab, HfFolderWrittenFromGgufGivesSameIds) {
  const std::string fam = GetParam();
  Tokenizer gguf = load_gguf(fam);
  auto dir = test::scratch("hf-" + fam);
  auto saved = gguf.save_hf_folder(dir);
  ASSERT_TRUE(saved) << saved.error().to_string();
  EXPECT_TRUE(fs::exists(dir / (gguf.kind() == Tokenizer::Kind::sentencepiece ? "tokenizer.model" : "tokenizer.json")));
  Tokenizer hf = load_folder(dir);
  EXPECT_EQ(hf.kind(), gguf.kind());
  EXPECT_EQ(hf.vocab_size(), gguf.vocab_size());
  EXPECT_EQ(hf.bos_id(), gguf.bos_id());
  EXPECT_EQ(hf.eos_id(), gguf.eos_id());
  EXPECT_EQ(hf.add_bos(), gguf.add_bos());
  auto cases = read_cases(fam);
  size_t pass = check_cases(hf, cases, fam + " (HF folder)");
  std::printf("[vocab] %-16s HF folder %zu/%zu\n", fam.c_str(), pass, cases.size());
  EXPECT_EQ(pass, cases.size());
  // With BOS/EOS and special tokens the two must agree too.
  for (auto& c : cases) EXPECT_EQ(*hf.encode(c.text, true, true), *gguf.encode(c.text, true, true)) << c.text;
}

TEST(TokenizerHf, HandWrittenGpt2TokenizerJson) {
  auto dir = test::scratch("hf-gpt2-hand");
  write_tokenizer_json(dir, "gpt-2",
                       {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}});
  Tokenizer tok = load_folder(dir);
  EXPECT_EQ(tok.kind(), Tokenizer::Kind::byte_level_bpe);
  EXPECT_EQ(tok.pre_tokenizer(), "tokenizer.json");
  EXPECT_EQ(tok.eos_id(), 50256);
  EXPECT_EQ(tok.token_type(50256), TokenType::control);
  auto cases = read_cases("gpt-2");
  EXPECT_EQ(check_cases(tok, cases, "gpt-2 (hand-written tokenizer.json)"), cases.size());
}

TEST(TokenizerHf, BosFromTemplateProcessingInsideSequence) {
  // Llama 3 declares its BOS only in the post-processor: Sequence[ByteLevel, TemplateProcessing].
  auto dir = test::scratch("hf-template-bos");
  auto post = nlohmann::json::parse(R"({"type": "Sequence", "processors": [
      {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
      {"type": "TemplateProcessing",
       "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]}]})");
  write_tokenizer_json(dir, "gpt-2", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}},
                       {{"post_processor", post}}, "{}");
  Tokenizer tok = load_folder(dir);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.bos_id(), 50256);
  EXPECT_EQ(tok.encode("Hello", true, true)->front(), 50256);
  // A mistyped field is an error naming the file, not an exception.
  write_tokenizer_json(dir, "gpt-2", {{"type", "ByteLevel"}}, {{"post_processor", {{"type", 7}}}}, "{}");
  auto bad = Tokenizer::from_hf_folder(dir);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::format);
}

TEST(TokenizerHf, HandWrittenFalconPipeline) {
  // Falcon's pipeline: Punctuation, ByteLevel with its regex, Digits, then a Split on three digits.
  auto dir = test::scratch("hf-falcon-hand");
  nlohmann::json pre = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Punctuation"}, {"behavior", "Contiguous"}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}},
        {{"type", "Digits"}, {"individual_digits", false}},
        {{"type", "Split"}, {"pattern", {{"Regex", "[0-9][0-9][0-9]"}}}, {"behavior", "Isolated"}, {"invert", false}}}}};
  write_tokenizer_json(dir, "falcon", pre);
  Tokenizer tok = load_folder(dir);
  auto cases = read_cases("falcon");
  EXPECT_EQ(check_cases(tok, cases, "falcon (hand-written tokenizer.json)"), cases.size());
}

TEST(TokenizerHf, AddedTokensFromTokenizerConfig) {
  Tokenizer gguf = load_gguf("llama-spm");
  auto dir = test::scratch("hf-spm-added");
  ASSERT_TRUE(gguf.save_hf_folder(dir));
  test::write_text(dir / "tokenizer_config.json", R"({
    "add_bos_token": true, "add_eos_token": false, "bos_token": "<s>", "eos_token": "<|im_end|>",
    "added_tokens_decoder": {
      "32000": {"content": "<|im_start|>", "special": true, "lstrip": false, "rstrip": false},
      "32001": {"content": "<|im_end|>", "special": true, "lstrip": false, "rstrip": false}}})");
  Tokenizer tok = load_folder(dir);
  EXPECT_EQ(tok.vocab_size(), 32002);
  EXPECT_EQ(tok.eos_id(), 32001);
  EXPECT_EQ(tok.eot_id(), 32001);
  auto ids = *tok.encode("<|im_start|>user\nHi<|im_end|>", true, true);
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 32000);
  EXPECT_EQ(ids.back(), 32001);
  // As plain text the markers are ordinary pieces.
  auto plain = *tok.encode("<|im_start|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 32000), 0);
  // Without a tokenizer file: not found.
  auto empty = test::scratch("hf-empty");
  auto r = Tokenizer::from_hf_folder(empty);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::not_found);
}

TEST(TokenizerHf, SentencePieceTokenizerJsonAddsTokensToTokenizerModel) {
  // A Llama-style folder: tokenizer.json is SentencePiece-like (Metaspace), so tokenizer.model is used and
  // tokenizer.json only contributes its added tokens.
  auto dir = test::scratch("hf-spm-json");
  ASSERT_TRUE(load_gguf("llama-spm").save_hf_folder(dir));
  auto tj = nlohmann::json::parse(R"({
    "added_tokens": [
      {"id": 0, "content": "<unk>", "special": true},
      {"id": 1, "content": "<s>", "special": true},
      {"id": 2, "content": "</s>", "special": true},
      {"id": 32000, "content": "<|end|>", "special": true, "rstrip": true, "lstrip": false}],
    "pre_tokenizer": {"type": "Metaspace", "replacement": "▁"},
    "model": {"type": "BPE", "vocab": {"<unk>": 0}, "merges": [], "byte_fallback": true}})");
  test::write_text(dir / "tokenizer.json", tj.dump());
  Tokenizer tok = load_folder(dir);
  EXPECT_EQ(tok.kind(), Tokenizer::Kind::sentencepiece);
  EXPECT_EQ(tok.vocab_size(), 32001);
  EXPECT_EQ(tok.token_type(32000), TokenType::control);
  EXPECT_EQ(tok.token_type(0), TokenType::unknown);
  // rstrip: the whitespace after <|end|> belongs to the token.
  EXPECT_EQ(*tok.encode("Hi<|end|>  \nthere", false, true), *tok.encode("Hi<|end|>there", false, true));
  auto cases = read_cases("llama-spm");
  EXPECT_EQ(check_cases(tok, cases, "llama-spm (tokenizer.model + tokenizer.json)"), cases.size());
  // Without tokenizer.model such a tokenizer.json is not supported.
  fs::remove(dir / "tokenizer.model");
  auto r = Tokenizer::from_hf_folder(dir);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::unsupported);
  EXPECT_NE(r.error().hint.find("tokenizer.model"), std::string::npos);
}

TEST(TokenizerHf, LoadTokenizerDispatches) {
  auto g = load_tokenizer(vocab_dir() / "ggml-vocab-gpt-2.gguf");
  ASSERT_TRUE(g) << g.error().to_string();
  EXPECT_EQ(g->kind(), Tokenizer::Kind::byte_level_bpe);
  auto dir = test::scratch("hf-dispatch");
  ASSERT_TRUE(load_gguf("phi-3").save_hf_folder(dir));
  auto h = load_tokenizer(dir);
  ASSERT_TRUE(h) << h.error().to_string();
  EXPECT_EQ(h->kind(), Tokenizer::Kind::sentencepiece);
  auto missing = load_tokenizer(dir / "nope.gguf");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("nope.gguf"), std::string::npos);
}

// ---- metadata, special tokens --------------------------------------------------------------------------

TEST(Tokenizer, SpecialIdsAndTypes) {
  Tokenizer spm = load_gguf("llama-spm");
  EXPECT_EQ(spm.kind(), Tokenizer::Kind::sentencepiece);
  EXPECT_EQ(spm.vocab_size(), 32000);
  EXPECT_EQ(spm.bos_id(), 1);
  EXPECT_EQ(spm.eos_id(), 2);
  EXPECT_EQ(spm.unk_id(), 0);
  EXPECT_TRUE(spm.add_bos());
  EXPECT_FALSE(spm.add_eos());
  EXPECT_TRUE(spm.add_space_prefix());
  EXPECT_EQ(spm.token_type(0), TokenType::unknown);
  EXPECT_EQ(spm.token_type(1), TokenType::control);
  EXPECT_EQ(spm.token_type(3 + 0x0A), TokenType::byte);
  EXPECT_EQ(spm.token_type(15043), TokenType::normal);
  EXPECT_EQ(spm.token_type(-1), TokenType::unused);
  EXPECT_EQ(spm.token_text(15043), "\xE2\x96\x81Hello");
  EXPECT_EQ(spm.find_token("\xE2\x96\x81Hello"), 15043);
  EXPECT_EQ(*spm.token_to_piece(15043), " Hello");
  EXPECT_EQ(*spm.token_to_piece(3 + 0x0A), "\n");

  Tokenizer phi = load_gguf("phi-3");
  EXPECT_EQ(phi.eos_id(), 32000);
  EXPECT_EQ(phi.eot_id(), 32007);  // <|end|>, found by its text
  EXPECT_TRUE(phi.is_end_of_generation(32007));
  EXPECT_TRUE(phi.is_end_of_generation(32000));
  EXPECT_FALSE(phi.is_end_of_generation(1));
  EXPECT_EQ(phi.pad_id(), 32000);

  Tokenizer gpt2 = load_gguf("gpt-2");
  EXPECT_EQ(gpt2.bos_id(), 50256);
  EXPECT_FALSE(gpt2.add_bos());
  EXPECT_FALSE(gpt2.unk_id());
  EXPECT_EQ(*gpt2.token_to_piece(*gpt2.find_token("\xC4\xA0world")), " world");
}

TEST(Tokenizer, AddSpecialAndParseSpecial) {
  Tokenizer spm = load_gguf("llama-spm");
  auto plain = *spm.encode("Hello world");
  auto with_bos = *spm.encode("Hello world", true, false);
  ASSERT_EQ(with_bos.size(), plain.size() + 1);
  EXPECT_EQ(with_bos[0], 1);
  EXPECT_TRUE(std::equal(plain.begin(), plain.end(), with_bos.begin() + 1));
  EXPECT_EQ(spm.encode("", true, false)->size(), 1u);
  EXPECT_TRUE(spm.encode("")->empty());

  Tokenizer dsc = load_gguf("deepseek-coder");
  EXPECT_EQ(dsc.encode("x", true, false)->front(), 32013);

  Tokenizer gpt2 = load_gguf("gpt-2");
  auto special = *gpt2.encode("a<|endoftext|>b", false, true);
  EXPECT_EQ(special, (std::vector<TokenId>{*gpt2.find_token("a"), 50256, *gpt2.find_token("b")}));
  auto as_text = *gpt2.encode("a<|endoftext|>b", false, false);
  EXPECT_EQ(std::count(as_text.begin(), as_text.end(), 50256), 0);
  EXPECT_EQ(*gpt2.decode(as_text), "a<|endoftext|>b");

  // Phi-3: chat markers are control tokens; the text after a marker gets SentencePiece's space prefix.
  Tokenizer phi = load_gguf("phi-3");
  std::string chat = "<|user|>\nHi there<|end|>\n<|assistant|>";
  auto ids = *phi.encode(chat, true, true);
  ASSERT_GE(ids.size(), 5u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 32010);
  EXPECT_EQ(ids[2], 29871);  // "▁" before the newline
  EXPECT_NE(std::find(ids.begin(), ids.end(), 32007), ids.end());
  EXPECT_EQ(ids.back(), 32001);
  EXPECT_EQ(*phi.decode(ids, /*skip_special=*/true), "\nHi there \n");
  // WordPiece: [CLS] ... [SEP], lower-cased, accents stripped.
  Tokenizer bert = load_gguf("bert-bge");
  EXPECT_EQ(bert.kind(), Tokenizer::Kind::wordpiece);
  auto b = *bert.encode("Hello, WORLD! Äpfel", true, false);
  EXPECT_EQ(b.front(), 101);
  EXPECT_EQ(b.back(), 102);
  EXPECT_EQ(*bert.decode(b, true), "hello , world ! apfel");
  EXPECT_FALSE(bert.save_hf_folder(test::scratch("hf-bert")));
  // MPT's runs of spaces are user-defined tokens: always recognised.
  Tokenizer mpt = load_gguf("mpt");
  EXPECT_EQ(*mpt.encode("  x"), (std::vector<TokenId>{50276, *mpt.find_token("x")}));
}

// ---- streaming detokenizer ------------------------------------------------------------------------------

namespace {
bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (!len || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += len;
  }
  return true;
}

// Streams `ids` one by one; checks each chunk is whole characters; returns the text.
std::string stream(const Tokenizer& tok, const std::vector<TokenId>& ids, size_t* held_max = nullptr) {
  StreamingDetokenizer d(tok);
  std::string all;
  for (TokenId id : ids) {
    auto chunk = d.push(id);
    EXPECT_TRUE(chunk);
    EXPECT_TRUE(valid_utf8(*chunk)) << "chunk is not whole UTF-8 characters";
    if (held_max) *held_max = std::max(*held_max, d.pending_bytes());
    all += *chunk;
  }
  all += d.finish();
  return all;
}
}  // namespace

TEST(StreamingDetokenizer, ByteFallbackTokens) {
  Tokenizer spm = load_gguf("llama-spm");
  // The llama is not in the vocabulary: four byte tokens <0xF0><0x9F><0xA6><0x99>.
  auto ids = *spm.encode("a \xF0\x9F\xA6\x99 b");
  int bytes = 0;
  for (auto id : ids) bytes += spm.token_type(id) == TokenType::byte;
  ASSERT_EQ(bytes, 4) << "test premise: the emoji is spelled with byte-fallback tokens";
  StreamingDetokenizer d(spm);
  std::vector<std::string> chunks;
  for (auto id : ids) chunks.push_back(*d.push(id));
  EXPECT_EQ(d.finish(), "");
  std::string joined;
  for (auto& c : chunks) {
    EXPECT_TRUE(valid_utf8(c));
    joined += c;
  }
  EXPECT_EQ(joined, " a \xF0\x9F\xA6\x99 b");  // generated text keeps the piece's leading space
  // The first three byte tokens give nothing; the fourth completes the character.
  auto first_byte = std::find_if(ids.begin(), ids.end(), [&](TokenId id) { return spm.token_type(id) == TokenType::byte; });
  size_t k = size_t(first_byte - ids.begin());
  EXPECT_EQ(chunks[k], "");
  EXPECT_EQ(chunks[k + 1], "");
  EXPECT_EQ(chunks[k + 2], "");
  EXPECT_EQ(chunks[k + 3], "\xF0\x9F\xA6\x99");

  StreamingDetokenizer strip(spm, false, /*strip_leading_space=*/true);
  std::string s;
  for (auto id : ids) s += *strip.push(id);
  EXPECT_EQ(s, "a \xF0\x9F\xA6\x99 b");
}

TEST(StreamingDetokenizer, ByteLevelBpeCharacterSplitAcrossTokens) {
  Tokenizer gpt2 = load_gguf("gpt-2");
  std::string text = "Llamas \xF0\x9F\xA6\x99 and \xE1\x9E\x80\xE1\x9E\xB6 text";
  auto ids = *gpt2.encode(text);
  bool split_char = false;
  for (auto id : ids) split_char |= !valid_utf8(*gpt2.token_to_piece(id));
  ASSERT_TRUE(split_char) << "test premise: some token holds part of a character";
  size_t held = 0;
  EXPECT_EQ(stream(gpt2, ids, &held), text);
  EXPECT_GT(held, 0u);
}

TEST(StreamingDetokenizer, InvalidAndUnfinishedBytes) {
  Tokenizer spm = load_gguf("llama-spm");
  TokenId b_ff = 3 + 0xFF, b_e2 = 3 + 0xE2, b_82 = 3 + 0x82, a = *spm.find_token("a");
  StreamingDetokenizer d(spm);
  EXPECT_EQ(*d.push(b_ff), "\xEF\xBF\xBD");  // never part of a character: replaced at once
  EXPECT_EQ(*d.push(b_e2), "");
  EXPECT_EQ(*d.push(b_82), "");
  EXPECT_EQ(d.pending_bytes(), 2u);
  EXPECT_EQ(*d.push(a), "\xEF\xBF\xBD" "a");  // the sequence was broken by a plain letter
  EXPECT_EQ(*d.push(b_e2), "");
  EXPECT_EQ(d.finish(), "\xEF\xBF\xBD");
  EXPECT_EQ(d.pending_bytes(), 0u);
  EXPECT_FALSE(d.push(99999));
  // skip_special leaves out BOS/EOS.
  StreamingDetokenizer s(spm, /*skip_special=*/true);
  EXPECT_EQ(*s.push(1), "");
  StreamingDetokenizer k(spm);
  EXPECT_EQ(*k.push(1), "<s>");
}

// ---- threads ----------------------------------------------------------------------------------------------

TEST(Tokenizer, ConcurrentEncodeGivesSameIds) {
  for (std::string fam : {"llama-spm", "deepseek-llm"}) {
    Tokenizer tok = load_gguf(fam);
    auto cases = read_cases(fam);
    std::vector<std::vector<TokenId>> expected;
    for (auto& c : cases) expected.push_back(*tok.encode(c.text));
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        Tokenizer copy = tok;  // copies share the vocabulary
        for (int rep = 0; rep < 5; ++rep)
          for (size_t i = 0; i < cases.size(); ++i) {
            size_t j = (i + size_t(t) * 7) % cases.size();
            auto ids = copy.encode(cases[j].text);
            if (!ids || *ids != expected[j]) ++mismatches;
          }
      });
    for (auto& th : threads) th.join();
    EXPECT_EQ(mismatches.load(), 0) << fam;
  }
}

// ---- bad input ----------------------------------------------------------------------------------------------

namespace {

// A small valid SentencePiece-style GGUF vocabulary, then whatever `tweak` changes.
Expected<Tokenizer> tiny_gguf(const std::string& name, const std::function<void(GgufWriter&)>& tweak) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "\xE2\x96\x81" "a"});
  w.set_f32_array("tokenizer.ggml.scores", {0, 0, 0, -1, -2, -3});
  w.set_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1});
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  tweak(w);
  auto path = test::scratch("bad-gguf") / (name + ".gguf");
  auto ok = w.write(path);
  if (!ok) return Unexpected{ok.error()};
  return load_tokenizer(path);
}

void expect_error(const Expected<Tokenizer>& r, ErrorCode code, const std::string& needle) {
  ASSERT_FALSE(r) << "expected an error mentioning '" << needle << "'";
  EXPECT_EQ(r.error().code, code) << r.error().to_string();
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().to_string();
}

}  // namespace

TEST(TokenizerBadInput, Gguf) {
  auto good = tiny_gguf("good", [](GgufWriter&) {});
  ASSERT_TRUE(good) << good.error().to_string();
  EXPECT_EQ(*good->encode("a a"), (std::vector<TokenId>{5, 5}));

  expect_error(tiny_gguf("types", [](GgufWriter& w) { w.set_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 1}); }),
               ErrorCode::format, "tokenizer.ggml.token_type has 4 entries");
  expect_error(tiny_gguf("scores", [](GgufWriter& w) { w.set_f32_array("tokenizer.ggml.scores", {0, 0}); }),
               ErrorCode::format, "tokenizer.ggml.scores");
  expect_error(tiny_gguf("bos", [](GgufWriter& w) { w.set_u32("tokenizer.ggml.bos_token_id", 6); }),
               ErrorCode::format, "tokenizer.ggml.bos_token_id = 6 is outside the vocabulary");
  expect_error(tiny_gguf("model", [](GgufWriter& w) { w.set_string("tokenizer.ggml.model", "t5"); }),
               ErrorCode::unsupported, "'t5'");
  expect_error(tiny_gguf("tokens", [](GgufWriter& w) { w.set_u32("tokenizer.ggml.tokens", 3); }),
               ErrorCode::format, "tokenizer.ggml.tokens");
  expect_error(tiny_gguf("nomerges", [](GgufWriter& w) { w.set_string("tokenizer.ggml.model", "gpt2"); }),
               ErrorCode::not_found, "tokenizer.ggml.merges");
  expect_error(tiny_gguf("badmerge",
                         [](GgufWriter& w) {
                           w.set_string("tokenizer.ggml.model", "gpt2");
                           w.set_string_array("tokenizer.ggml.merges", {"ab"});
                         }),
               ErrorCode::format, "tokenizer.ggml.merges[0]");
  expect_error(tiny_gguf("pre",
                         [](GgufWriter& w) {
                           w.set_string("tokenizer.ggml.model", "gpt2");
                           w.set_string_array("tokenizer.ggml.merges", {});
                           w.set_string("tokenizer.ggml.pre", "no-such-family");
                         }),
               ErrorCode::unsupported, "no-such-family");
  // SentencePiece settings from the metadata.
  auto no_prefix = tiny_gguf("noprefix", [](GgufWriter& w) { w.set_bool("tokenizer.ggml.add_space_prefix", false); });
  ASSERT_TRUE(no_prefix) << no_prefix.error().to_string();
  EXPECT_EQ(*no_prefix->encode("a a"), (std::vector<TokenId>{4, 5}));
  auto collapse = tiny_gguf("collapse", [](GgufWriter& w) { w.set_bool("tokenizer.ggml.remove_extra_whitespaces", true); });
  ASSERT_TRUE(collapse) << collapse.error().to_string();
  EXPECT_EQ(*collapse->encode("  a   a "), (std::vector<TokenId>{5, 5}));
  // A "byte" token whose text is not <0xHH> decodes as text instead of crashing.
  auto odd_byte = tiny_gguf("oddbyte", [](GgufWriter& w) { w.set_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 1, 6, 1}); });
  ASSERT_TRUE(odd_byte) << odd_byte.error().to_string();
  EXPECT_EQ(*odd_byte->token_to_piece(4), "a");
  // A GGUF without any tokenizer metadata.
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  auto p = test::scratch("bad-gguf-none") / "none.gguf";
  ASSERT_TRUE(w.write(p));
  expect_error(load_tokenizer(p), ErrorCode::not_found, "tokenizer.ggml.model");
}

TEST(TokenizerBadInput, TokenizerJson) {
  auto dir = test::scratch("bad-json");
  auto try_json = [&](const std::string& text) {
    test::write_text(dir / "tokenizer.json", text);
    return Tokenizer::from_hf_folder(dir);
  };
  const std::string bl = R"("pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"})";
  expect_error(try_json("{\"model\": "), ErrorCode::format, "invalid JSON");
  expect_error(try_json("{" + bl + R"(, "model": {"type": "BPE", "merges": []}})"), ErrorCode::format, "model.vocab");
  expect_error(try_json("{" + bl + R"(, "model": {"type": "BPE", "vocab": {"a": 0}}})"), ErrorCode::format,
               "model.merges");
  expect_error(try_json("{" + bl + R"(, "model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}})"),
               ErrorCode::format, "model.vocab[\"a\"]");
  expect_error(try_json("{" + bl + R"(, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": [7]}})"),
               ErrorCode::format, "model.merges[0]");
  expect_error(try_json(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"},
                            {"type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated"}]}})"),
               ErrorCode::format, "invalid regex");
  expect_error(try_json(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"},
                            {"type": "Split", "pattern": {"Regex": "a"}}]}})"),
               ErrorCode::format, "pre_tokenizer.pretokenizers[1].behavior");
  expect_error(try_json(R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})"), ErrorCode::unsupported, "WordPiece");
  expect_error(try_json(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": 1}],)" + bl + "}"),
               ErrorCode::format, "added_tokens[0].content");
  EXPECT_TRUE(try_json("{" + bl + R"(, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})"));
  // tokenizer.model that is not a protobuf.
  fs::remove(dir / "tokenizer.json");
  test::write_text(dir / "tokenizer.model", std::string("\x0a\xff\xff\xff\xff\x0f garbage", 14));
  expect_error(Tokenizer::from_hf_folder(dir), ErrorCode::format, "tokenizer.model");
}

TEST(TokenizerBadInput, EncodeAndDecode) {
  Tokenizer gpt2 = load_gguf("gpt-2");
  auto bad = gpt2.encode(std::string("ok \xC3\x28", 5));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(bad.error().message.find("byte 3"), std::string::npos);
  std::vector<TokenId> ids = {100, 60000};
  auto d = gpt2.decode(ids);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, ErrorCode::out_of_range);
  EXPECT_FALSE(gpt2.token_to_piece(-5));
}

// ---- randomized properties -----------------------------------------------------------------------------------

namespace {

// Random text from pieces that stress the splitters: spaces and newlines, digits, apostrophes, punctuation,
// accents, Cyrillic, CJK, Khmer, emoji with joiners, special-token look-alikes. (Not U+2581: SentencePiece
// reads it as a space by design.)
std::string random_text(std::mt19937& rng) {
  static const char* const parts[] = {" ", "  ", "\n", "\t", "\r\n", "a", "Hello", "world", "'s", "'LL", "3", "1234567",
                                      "3.14", "!!", "...", "(", ")", "-", "=", "$", "~", "`", "\xC3\xA4", "e\xCC\x81",
                                      "\xD0\xBD\xD0\xB5\xD1\x89\xD0\xBE", "\xE6\x88\x91\xE6\x83\xB3",
                                      "\xE1\x9E\x80\xE1\x9E\xB6", "\xF0\x9F\xA6\x99", "\xF0\x9F\x98\xB6\xE2\x80\x8D",
                                      "\xEF\xBD\x9E", "<|endoftext|>", "<s>", "\xC2\xBD", "\xEF\xBF\xBD"};
  std::uniform_int_distribution<size_t> pick(0, sizeof parts / sizeof parts[0] - 1), len(0, 24);
  std::string s;
  for (size_t i = 0, n = len(rng); i < n; ++i) s += parts[pick(rng)];
  return s;
}

}  // namespace

TEST_P(LosslessVocab, RandomTextRoundTripsAndStreams) {
  const std::string fam = GetParam();
  Tokenizer tok = load_gguf(fam);
  std::mt19937 rng(1234);
  for (int i = 0; i < 150; ++i) {
    std::string text = random_text(rng);
    auto ids = tok.encode(text);
    ASSERT_TRUE(ids) << ids.error().to_string();
    EXPECT_EQ(*tok.decode(*ids), text) << fam << ": '" << text << "'";
    for (TokenId id : *ids) ASSERT_TRUE(id >= 0 && id < tok.vocab_size());
    // Streaming gives the same text, in whole characters (the text has no broken sequences).
    StreamingDetokenizer d(tok, false, /*strip_leading_space=*/true);
    std::string streamed;
    for (TokenId id : *ids) streamed += *d.push(id);
    streamed += d.finish();
    EXPECT_EQ(streamed, text) << fam;
    // With special tokens parsed the text still comes back, for byte-level BPE. (SentencePiece puts a
    // space after each special token, as the models were trained, so there decode adds it.)
    auto sp = tok.encode(text, false, true);
    ASSERT_TRUE(sp);
    if (tok.kind() == Tokenizer::Kind::byte_level_bpe)
      EXPECT_EQ(*tok.decode(*sp), text) << fam << " (parse_special): '" << text << "'";
  }
}

TEST(TokenizerBadInput, MutatedTokenizerModelNeverCrashes) {
  auto base = tiny_gguf("mutate-base", [](GgufWriter&) {});
  ASSERT_TRUE(base);
  auto dir = test::scratch("mutate-spm");
  ASSERT_TRUE(base->save_hf_folder(dir));
  fs::remove(dir / "tokenizer_config.json");
  std::string proto = test::read_text(dir / "tokenizer.model");
  ASSERT_GT(proto.size(), 20u);
  std::mt19937 rng(42);
  int loaded = 0, rejected = 0;
  for (int i = 0; i < 250; ++i) {
    std::string m = proto;
    int edits = 1 + int(rng() % 4);
    for (int k = 0; k < edits && !m.empty(); ++k) {
      size_t at = rng() % m.size();
      switch (rng() % 3) {
        case 0: m[at] = char(rng()); break;
        case 1: m.erase(at, 1 + rng() % 8); break;
        default: m.resize(at); break;
      }
    }
    test::write_text(dir / "tokenizer.model", m);
    auto t = Tokenizer::from_hf_folder(dir);
    if (!t) {
      ++rejected;
      EXPECT_FALSE(t.error().message.empty());
      continue;
    }
    ++loaded;
    auto ids = t->encode("a a b");
    if (ids) (void)t->decode(*ids);
  }
  std::printf("[mutate] tokenizer.model: %d loaded, %d rejected with an error\n", loaded, rejected);
  EXPECT_GT(rejected, 0);
}
