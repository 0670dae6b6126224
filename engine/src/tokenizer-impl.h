/* Internals of the tokenizers: the format-neutral vocabulary description both loaders fill, the two
 * encoding back ends (SentencePiece, byte-level BPE) and the pre-tokenizer.
 *
 * Non-obvious choice: loaders (GGUF, tokenizer.json, tokenizer.model) only produce a VocabSpec; one
 * builder turns any VocabSpec into a Tokenizer. So both formats share every rule about special tokens,
 * BOS/EOS and decoding, and the Hugging Face writer is the inverse of one function.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hearth/tokenizer.h"

namespace hearth::detail {

// ---- pre-tokenizer (pre-tokenize.cpp) ---------------------------------------------------------------

enum class SplitBehavior { isolated, removed, merged_with_previous, merged_with_next, contiguous };

// A PCRE2 regex in UTF + UCP mode (\p{L}, \s, ... are Unicode-aware), JIT-compiled where possible.
// Immutable after construction; find_all may run on many threads at once.
class Regex {
 public:
  explicit Regex(const std::string& pattern);  // throws std::runtime_error naming the pattern
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // All non-overlapping matches in `s` (valid UTF-8), leftmost first, as [begin, end) byte offsets.
  void find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;

 private:
  void* m_code = nullptr;  // pcre2_code*
};

// One step of a Hugging Face style pre-tokenizer pipeline.
struct PreTokenizeStep {
  enum class Type { split, byte_level, digits, punctuation };
  Type type = Type::split;
  std::string pattern;              // split: the regex (or the literal, when `literal`)
  bool literal = false;             // split: pattern is a plain string
  SplitBehavior behavior = SplitBehavior::isolated;
  bool invert = false;              // split
  bool add_prefix_space = false;    // byte_level
  bool use_regex = true;            // byte_level
  bool individual_digits = false;   // digits
  std::shared_ptr<const Regex> regex;  // compiled form of what this step splits on
};

// A pipeline of steps. Text is split by the steps before the ByteLevel step as raw UTF-8, then mapped
// byte-by-byte to GPT-2's printable characters, and split further by the steps after it, exactly as
// the Hugging Face tokenizers library orders them.
class PreTokenizer {
 public:
  // The pipeline for a GGUF `tokenizer.ggml.pre` name. Errors: unsupported for an unknown name.
  static Expected<PreTokenizer> from_gguf_name(const std::string& name);
  // The pipeline of a tokenizer.json `pre_tokenizer` value (null allowed). `where` names the file.
  static Expected<PreTokenizer> from_json(const nlohmann::json& j, const std::string& where);
  // Serializes to a tokenizer.json `pre_tokenizer` value that from_json() reads back.
  nlohmann::json to_json() const;

  // Splits `text` (valid UTF-8) into words, each already mapped to byte-level characters.
  void split(std::string_view text, std::vector<std::string>& words) const;

 private:
  std::vector<PreTokenizeStep> m_steps;
};

// GPT-2's byte <-> printable character mapping.
uint32_t byte_to_unicode(uint8_t b);
// The byte for a mapped character, or -1 when `cp` is not one of the 256 mapped characters.
int unicode_to_byte(uint32_t cp);
// Maps raw bytes to their printable characters (UTF-8).
std::string bytes_to_mapped(std::string_view bytes);

// ---- the format-neutral vocabulary ---------------------------------------------------------------------

struct AddedTokenFlags {
  bool lstrip = false;  // swallow whitespace before the token
  bool rstrip = false;  // swallow whitespace after the token
};

struct VocabSpec {
  Tokenizer::Kind kind = Tokenizer::Kind::sentencepiece;
  std::string source;  // file the vocabulary came from, for error messages
  std::string pre = "default";
  std::vector<std::string> tokens;
  std::vector<float> scores;     // empty or one per token
  std::vector<TokenType> types;  // one per token
  std::unordered_map<TokenId, AddedTokenFlags> added_flags;

  // byte-level BPE
  std::vector<std::pair<std::string, std::string>> merges;
  std::optional<nlohmann::json> hf_pre_tokenizer;  // from tokenizer.json; else `pre` names it
  bool ignore_merges = false;

  // SentencePiece
  int spm_model_type = 2;  // TrainerSpec.ModelType: 1 unigram, 2 BPE
  std::string spm_normalizer_name = "identity";
  std::string spm_precompiled_charsmap;
  bool remove_extra_whitespaces = false;

  std::optional<TokenId> bos, eos, eot, pad, unk;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;
};

// Checks a VocabSpec and builds the tokenizer. Errors name spec.source.
Expected<Tokenizer> build_tokenizer(VocabSpec spec);

// ---- back ends -------------------------------------------------------------------------------------

class SpmModel {
 public:
  // Builds the SentencePiece processor from the spec's pieces. Throws std::runtime_error on failure.
  explicit SpmModel(const VocabSpec& spec);
  ~SpmModel();
  // Encodes plain text (no special tokens inside), appending ids. `prefix_space`: this fragment starts
  // the text or follows a special token, so the dummy space prefix applies.
  void encode(std::string_view text, bool prefix_space, std::vector<TokenId>& out) const;
  // A ModelProto for `tokenizer.model`.
  std::string serialized_for_file() const { return m_file_proto; }

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
  std::string m_file_proto;
  bool m_prefix_by_hand = false;
  bool m_add_space_prefix = false;
  int32_t m_n_vocab = 0;
};

// Serializes pieces as a SentencePiece ModelProto (wire format). `add_dummy_prefix` is written as given.
std::string serialize_spm_proto(const VocabSpec& spec, bool add_dummy_prefix);
// Reads a `tokenizer.model` into a VocabSpec (pieces, types, scores, trainer and normalizer settings).
Expected<VocabSpec> parse_spm_proto(std::string_view bytes, const std::string& where);

class BpeModel {
 public:
  // Throws std::runtime_error on failure (message without the file name; the caller adds it).
  BpeModel(const VocabSpec& spec, const std::unordered_map<std::string, TokenId>& text_to_id,
           PreTokenizer pre);
  void encode(std::string_view text, std::vector<TokenId>& out) const;
  const PreTokenizer& pre_tokenizer() const { return m_pre; }
  // Merges in rank order, as token id pairs (for writing tokenizer.json).
  const std::vector<std::pair<TokenId, TokenId>>& merges() const { return m_merge_list; }
  bool ignore_merges() const { return m_ignore_merges; }

 private:
  void bpe_word(const std::string& word, std::vector<TokenId>& out) const;

  struct Merge {
    int32_t rank;
    TokenId result;
  };
  PreTokenizer m_pre;
  const std::unordered_map<std::string, TokenId>* m_text_to_id;
  std::unordered_map<uint64_t, Merge> m_merges;
  std::vector<std::pair<TokenId, TokenId>> m_merge_list;
  TokenId m_byte_id[256];
  bool m_ignore_merges = false;
};

class WpmModel {
 public:
  // Throws std::runtime_error on failure (no [UNK], ...).
  WpmModel(const VocabSpec& spec, const std::unordered_map<std::string, TokenId>& text_to_id);
  void encode(std::string_view text, std::vector<TokenId>& out) const;

 private:
  std::string normalize(std::string_view text) const;
  const std::unordered_map<std::string, TokenId>* m_text_to_id;
  TokenId m_unk = 0;
  size_t m_max_len = 0;
  std::shared_ptr<const Regex> m_control, m_cjk, m_words;
};

}  // namespace hearth::detail

namespace hearth {

struct Tokenizer::Impl {
  Kind kind = Kind::sentencepiece;
  std::string pre_name;
  std::vector<std::string> texts;
  std::vector<TokenType> types;
  std::vector<float> scores;
  std::vector<std::string> pieces;  // decoded bytes of each token
  std::unordered_map<std::string, TokenId> text_to_id;
  std::optional<TokenId> bos, eos, eot, pad, unk;
  bool add_bos = false, add_eos = false, add_space_prefix = false;

  // Special-token matching: candidates by first byte, longest first.
  struct SpecialCandidate {
    TokenId id;
    bool always;  // user-defined: matched even when parse_special is false
    detail::AddedTokenFlags flags;
  };
  std::vector<SpecialCandidate> special_by_byte[256];

  std::unique_ptr<detail::SpmModel> spm;
  std::unique_ptr<detail::BpeModel> bpe;
  std::unique_ptr<detail::WpmModel> wpm;
  detail::VocabSpec spec;  // kept for save_hf_folder()
};

struct TokenizerBuilder {
  static Tokenizer make(std::shared_ptr<const Tokenizer::Impl> impl) { return Tokenizer(std::move(impl)); }
};

}  // namespace hearth
