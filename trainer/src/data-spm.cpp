/* Training a SentencePiece tokenizer on a text corpus (for pretraining) with libsentencepiece's trainer,
 * and turning the result into the GGUF tokenizer metadata the model writer stores.
 *
 * Non-obvious choice: the trainer is run with the identity normalizer and without removal of extra
 * whitespace, because that is how Hearth (like llama.cpp) reads a SentencePiece vocabulary back from a
 * GGUF file, which stores only pieces, scores and types; with NFKC or whitespace folding the model
 * file and the GGUF file would tokenize differently. Byte fallback is on (no <unk> at chat time), one
 * thread and a fixed random seed keep the result reproducible. Sentences are fed through an iterator,
 * so corpus paths with commas or spaces need no escaping: blank lines and fortune-file `%` separators
 * are dropped, and over-long lines are cut into pieces the trainer accepts.
 */
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <fstream>
#include <sstream>
#include <unordered_map>

#include "hearth/trainer/data.h"

namespace hearth::train {

namespace {

constexpr size_t MAX_SENTENCE = 4000;  // below the trainer's max_sentence_length (4192 bytes)

class CorpusIterator : public sentencepiece::SentenceIterator {
 public:
  explicit CorpusIterator(std::vector<std::string> lines) : m_lines(std::move(lines)) {}
  bool done() const override { return m_pos >= m_lines.size(); }
  void Next() override { ++m_pos; }
  const std::string& value() const override { return m_lines[m_pos]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  std::vector<std::string> m_lines;
  size_t m_pos = 0;
};

// Cuts a long line at spaces (or anywhere, keeping UTF-8 characters whole) into pieces <= MAX_SENTENCE.
void push_line(std::vector<std::string>& out, std::string_view line) {
  while (line.size() > MAX_SENTENCE) {
    size_t cut = line.rfind(' ', MAX_SENTENCE);
    if (cut == std::string_view::npos || cut == 0) {
      cut = MAX_SENTENCE;
      while (cut > 0 && (uint8_t(line[cut]) & 0xC0) == 0x80) --cut;
      if (cut == 0) cut = MAX_SENTENCE;
    }
    out.emplace_back(line.substr(0, cut));
    line.remove_prefix(cut);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
  }
  if (!line.empty()) out.emplace_back(line);
}

}  // namespace

Expected<TokenizerData> train_sentencepiece(const std::vector<std::filesystem::path>& corpus,
                                            const std::filesystem::path& model_prefix, int64_t vocab_size,
                                            const std::string& model_type, uint64_t seed) {
  if (corpus.empty()) return make_error(ErrorCode::invalid_argument, "no corpus file given for the tokenizer");
  if (model_type != "unigram" && model_type != "bpe")
    return make_error(ErrorCode::invalid_argument, "unknown tokenizer type '" + model_type + "'",
                      "use unigram or bpe");
  // Byte fallback needs 256 byte pieces plus <unk>, <s>, </s>, and room for real pieces.
  if (vocab_size < 300 || vocab_size > 1'000'000)
    return make_error(ErrorCode::invalid_argument,
                      "tokenizer vocabulary size " + std::to_string(vocab_size) + " is out of range",
                      "use at least 300 (256 byte pieces are reserved)");

  std::vector<std::string> lines;
  for (const auto& file : corpus) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      std::error_code ec;
      if (!std::filesystem::exists(file, ec))
        return make_error(ErrorCode::not_found, "corpus file not found: " + file.string());
      return make_error(ErrorCode::io, "cannot open corpus file " + file.string());
    }
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
      if (first && line.size() >= 3 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
      first = false;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line == "%") continue;
      push_line(lines, line);
    }
  }
  if (lines.empty()) return make_error(ErrorCode::invalid_argument, "the tokenizer corpus holds no text");

  std::error_code ec;
  if (model_prefix.has_parent_path()) std::filesystem::create_directories(model_prefix.parent_path(), ec);
  std::unordered_map<std::string, std::string> args = {
      {"model_prefix", model_prefix.string()},
      {"vocab_size", std::to_string(vocab_size)},
      {"model_type", model_type},
      {"byte_fallback", "true"},
      {"character_coverage", "0.9995"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "true"},
      {"split_digits", "true"},
      {"num_threads", "1"},
      {"hard_vocab_limit", "false"},
      {"input_sentence_size", "2000000"},
      {"shuffle_input_sentence", "true"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"minloglevel", "2"},
  };
  sentencepiece::SetRandomGeneratorSeed(unsigned(seed ^ (seed >> 32)));
  CorpusIterator it(std::move(lines));
  auto status = sentencepiece::SentencePieceTrainer::Train(args, &it);
  if (!status.ok())
    return make_error(ErrorCode::invalid_argument, std::string("SentencePiece training failed: ") + status.ToString(),
                      "a larger corpus or a smaller vocabulary may help");

  sentencepiece::SentencePieceProcessor sp;
  std::string model_file = model_prefix.string() + ".model";
  status = sp.Load(model_file);
  if (!status.ok())
    return make_error(ErrorCode::io, "cannot read the trained tokenizer " + model_file + ": " + status.ToString());

  TokenizerData td;
  td.model = "llama";
  int n = sp.GetPieceSize();
  td.tokens.reserve(size_t(n));
  td.scores.reserve(size_t(n));
  td.token_types.reserve(size_t(n));
  for (int i = 0; i < n; ++i) {
    td.tokens.push_back(sp.IdToPiece(i));
    td.scores.push_back(sp.GetScore(i));
    TokenType t = TokenType::normal;
    if (sp.IsUnknown(i)) t = TokenType::unknown;
    else if (sp.IsControl(i)) t = TokenType::control;
    else if (sp.IsByte(i)) t = TokenType::byte;
    else if (sp.IsUnused(i)) t = TokenType::unused;
    td.token_types.push_back(int32_t(t));
  }
  if (sp.bos_id() >= 0) td.bos_id = sp.bos_id();
  if (sp.eos_id() >= 0) td.eos_id = sp.eos_id();
  if (sp.unk_id() >= 0) td.unk_id = sp.unk_id();
  td.add_bos = true;
  td.add_eos = false;
  return td;
}

}  // namespace hearth::train
