/* Training data: JSONL in the alpaca, ShareGPT and OpenAI-messages shapes, and plain text, turned into
 * token rows with a loss mask, split into training and validation, and served as batches.
 *
 * Non-obvious choices:
 * - Chat rows go through the model's own chat template. The loss covers the assistant replies only
 *   (train_on_all covers everything): the template is rendered for the conversation cut before and
 *   after each assistant message, and the characters in between are the trained span (the reply and
 *   the template's end-of-turn); the whole text is tokenized at once and a token is trained when its
 *   byte span overlaps a trained span (data-formats.cpp says how the spans are found).
 * - Templates that print today's date see a fixed one (2025-01-01), so a dataset tokenizes the same on
 *   every day (a resumed run sees the same tokens).
 * - An assistant message with "weight": 0 (OpenAI's fine-tuning format; ShareGPT too) stays in the
 *   context but out of the loss.
 * - A malformed line never crashes the run: it is reported with its line number and skipped, or fails
 *   the load when the user asked for that (DataConfig::skip_bad_lines = false).
 * - Batch order is a pure function of (seed, epoch): a BatchIterator's position is two integers, so a
 *   checkpoint resumes the data exactly.
 * - Text documents (a .txt paragraph, a {"text"} line) get BOS (when the tokenizer adds one) and EOS,
 *   and one longer than max_length is cut into consecutive examples of max_length tokens (a corpus loses
 *   nothing; not counted as truncated). Chat examples longer than max_length are truncated (counted).
 * - Without a chat template (tmpl == nullptr) chat data is rendered with a ChatML fallback
 *   (fallback_chat_template(): the chat session's ChatML fallback plus EOS after each reply, so the
 *   model learns to stop), and Dataset::issues says so once (line 0).
 *
 * Threads: plain values; a loaded dataset may be read from many threads.
 */
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "hearth/chat-template.h"
#include "hearth/error.h"
#include "hearth/model-writer.h"
#include "hearth/tokenizer.h"
#include "hearth/trainer/config.h"

namespace hearth::train {

struct Example {
  std::vector<int32_t> tokens;  // BOS/EOS as the model and template say
  std::vector<uint8_t> train;   // 1 where tokens[i] is a trained target (predicted from tokens[..i-1])
  int64_t source_line = 0;      // 1-based line (JSONL) or paragraph (text) it came from
};

struct DataIssue {
  std::filesystem::path file;
  int64_t line = 0;      // 1-based; 0 for a note about the whole file
  std::string message;   // what is wrong ("line 7: 'conversations' is not an array")
};

struct DatasetStats {
  int64_t rows = 0;            // lines/records read (bad ones included)
  int64_t bad_rows = 0;        // skipped as malformed
  int64_t examples = 0;        // training + validation examples
  int64_t train_examples = 0, validation_examples = 0;
  int64_t tokens = 0;          // in all examples
  int64_t trained_tokens = 0;  // tokens with train[i] = 1
  int64_t truncated = 0;       // examples cut to max_length
  int64_t min_len = 0, max_len = 0;
  double mean_len = 0;
  int64_t p50_len = 0, p90_len = 0, p99_len = 0;
  std::vector<int64_t> histogram;  // counts of lengths in 16 equal bins over [0, max_length]
};

struct Dataset {
  DataFormat format = DataFormat::auto_detect;  // the detected one
  std::vector<Example> train, validation;
  DatasetStats stats;
  std::vector<DataIssue> issues;  // malformed lines (skipped), at most the first 100
  std::string sha256;             // of the training file's bytes (then the validation file's, when given)
};

// Detects the format from the file name (.txt, .text, .md: text) and the first valid JSON record's keys
// ("conversations": sharegpt, "messages": messages, "instruction": alpaca, "text": text); records are
// JSON lines, or the elements of one top-level JSON array. A file with no JSON record and no .json/.jsonl
// name is plain text. Errors: not_found, io; format for an empty file or JSON records of no known shape.
Expected<DataFormat> detect_format(const std::filesystem::path& file);

// Loads and tokenizes. `tmpl` may be null only for text data. Errors: not_found / io; format for an
// unreadable file, a bad line when !skip_bad_lines (naming file and line), or no usable example.
Expected<Dataset> load_dataset(const DataConfig& config, const Tokenizer& tokenizer, const ChatTemplate* tmpl,
                               uint64_t seed);

// The first `n` training examples as the model will see them: text of each token and whether it is
// trained (for the wizard's preview).
struct PreviewToken {
  std::string text;
  bool trained = false;
};
std::vector<std::vector<PreviewToken>> preview_examples(const Dataset& d, const Tokenizer& tokenizer, size_t n);

// The id padding uses: the tokenizer's pad token, else EOS, else 0.
int32_t default_pad_id(const Tokenizer& tokenizer);
// The ChatML template (Jinja source) used for chat data when the model has none.
const char* fallback_chat_template();

struct Batch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> tokens;   // B·T, padded with pad_id
  std::vector<int32_t> targets;  // B·T: tokens shifted left where trained, else -1
  int64_t n_targets = 0;         // targets >= 0
  int64_t n_tokens = 0;          // real (non-padding) tokens
};

// Serves batches of B rows forever, epoch after epoch, shuffling examples per epoch with (seed, epoch).
// Without packing a row is one example padded to T (= the longest in the batch, at most max_length);
// with packing examples are concatenated (EOS between them) into rows of exactly T = max_length.
// Packing adds no token: text examples already end in EOS and chat examples in the template's
// end-of-turn; an example may continue into the next row, and no target crosses from one example into
// the next. The last row of an epoch is padded. A batch always has B rows and never straddles two
// epochs: the last batch of an epoch is completed with padding rows (targets -1), so batches_per_epoch()
// batches serve each example exactly once (what a validation pass needs).
// No examples: next() returns an empty batch (B = T = 0).
class BatchIterator {
 public:
  struct Position {
    int64_t epoch = 0;
    int64_t index = 0;  // next example (or packed row) within the epoch
  };
  BatchIterator(const std::vector<Example>& examples, int64_t batch_size, int64_t max_length, bool packing,
                int32_t pad_id, uint64_t seed);
  Batch next();
  Position position() const;
  void seek(const Position& p);  // resume exactly where position() was taken
  int64_t batches_per_epoch() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> m_impl;
};

// Trains a SentencePiece model on a text corpus (pretraining). Writes `model_prefix`.model and returns
// the GGUF tokenizer metadata (tokens, scores, types, bos/eos/unk ids) for the model writer.
// model_type "bpe" or "unigram"; byte fallback on, identity normalization, one thread, seeded. The
// vocabulary may come out smaller than vocab_size on a small corpus: size the model by tokens.size().
// A GGUF file stores no SentencePiece model type and is read as BPE (as llama.cpp does), so only a
// "bpe" vocabulary encodes in GGUF exactly as libsentencepiece encodes with the .model file; a
// "unigram" one still round-trips text, with other splits. Errors: invalid_argument (empty corpus,
// unknown type, vocab_size < 300, training failed), not_found / io for corpus files.
Expected<TokenizerData> train_sentencepiece(const std::vector<std::filesystem::path>& corpus,
                                            const std::filesystem::path& model_prefix, int64_t vocab_size,
                                            const std::string& model_type, uint64_t seed);

}  // namespace hearth::train
