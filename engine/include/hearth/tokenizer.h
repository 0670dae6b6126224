/* Tokenizers: text to token ids and back, for SentencePiece, byte-level BPE and WordPiece vocabularies.
 *
 * One Tokenizer type serves every kind and both file formats:
 *  - SentencePiece (Llama 2, TinyLlama, Mistral, Gemma, Phi-3): GGUF `tokenizer.ggml.model == "llama"`, or
 *    a Hugging Face folder with `tokenizer.model`. Encoding is done by libsentencepiece; for GGUF the
 *    SentencePiece model is built from the file's pieces, scores and token types.
 *  - Byte-level BPE (GPT-2, Llama 3, Qwen 2/3, SmolLM, StarCoder, DeepSeek, Falcon, MPT, Refact, ...):
 *    GGUF `tokenizer.ggml.model == "gpt2"` with `tokenizer.ggml.merges` and a pre-tokenizer named by
 *    `tokenizer.ggml.pre`, or a Hugging Face `tokenizer.json` whose model is BPE with a ByteLevel
 *    pre-tokenizer (its Split/Digits/Punctuation/Sequence steps are honoured).
 *  - WordPiece (BERT, e.g. bge embedding models): GGUF `tokenizer.ggml.model == "bert"` only; lower-cases and
 *    strips accents as BERT's uncased normalizer does, so decode() does not give the original text back.
 *
 * Non-obvious choice: a Tokenizer is a cheap, copyable handle to immutable shared state. Copies share the
 * vocabulary; every const member function, encode() included, may be called from many threads at once.
 *
 * Special tokens: tokens of type control (and unknown) are recognised in text only when encode() is asked to
 * (parse_special); user-defined tokens (added tokens that are not special) are always recognised, as
 * Hugging Face and llama.cpp do.
 */
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/error.h"

namespace hearth {

class GgufFile;

using TokenId = int32_t;

// Token types, numbered as GGUF's `tokenizer.ggml.token_type` (and SentencePiece's piece types).
enum class TokenType : uint8_t {
  normal = 1,        // ordinary text piece
  unknown = 2,       // the <unk> token
  control = 3,       // special tokens: BOS, EOS, chat markers; never produced from plain text
  user_defined = 4,  // added tokens that always match their text literally
  unused = 5,        // reserved slots (SentencePiece never produces them)
  byte = 6,          // SentencePiece byte-fallback tokens <0x00>..<0xFF>
};
const char* token_type_name(TokenType t);

class Tokenizer {
 public:
  enum class Kind { sentencepiece, byte_level_bpe, wordpiece };
  static const char* kind_name(Kind k);  // "sentencepiece", "byte-level-bpe", "wordpiece"

  // Builds the tokenizer described by a GGUF file's `tokenizer.ggml.*` metadata (a vocabulary-only file
  // is enough). Errors: not_found (no tokenizer metadata), format (arrays of different lengths, special
  // ids outside the vocabulary, malformed merges), unsupported (an unknown tokenizer model or
  // pre-tokenizer name).
  static Expected<Tokenizer> from_gguf(const GgufFile& file);

  // Builds the tokenizer of a Hugging Face model folder: `tokenizer.json` (byte-level BPE) or
  // `tokenizer.model` (SentencePiece), with `tokenizer_config.json` for special tokens and add_bos/add_eos.
  // Errors: not_found (no tokenizer file), io, format (invalid JSON, missing or mistyped fields; the
  // message names the file and the field), unsupported (a model or pre-tokenizer type Hearth lacks).
  static Expected<Tokenizer> from_hf_folder(const std::filesystem::path& dir);

  // Writes this tokenizer as a Hugging Face folder that from_hf_folder() reads back to the same ids:
  // `tokenizer.model` (SentencePiece) or `tokenizer.json` (byte-level BPE), plus `tokenizer_config.json`.
  // The folder is created if needed; existing files of those names are replaced. Errors: io; unsupported
  // for WordPiece.
  Expected<void> save_hf_folder(const std::filesystem::path& dir) const;

  Tokenizer(const Tokenizer&) = default;
  Tokenizer& operator=(const Tokenizer&) = default;
  Tokenizer(Tokenizer&&) noexcept = default;
  Tokenizer& operator=(Tokenizer&&) noexcept = default;
  ~Tokenizer();

  Kind kind() const;
  // The pre-tokenizer: the GGUF `tokenizer.ggml.pre` name ("gpt-2", "llama-bpe", ...), "tokenizer.json"
  // for one read from a Hugging Face file, or "default" for SentencePiece.
  const std::string& pre_tokenizer() const;
  int32_t vocab_size() const;

  std::optional<TokenId> bos_id() const;
  std::optional<TokenId> eos_id() const;
  std::optional<TokenId> eot_id() const;  // end of turn (<|eot_id|>, <|im_end|>, <|end|>, ...)
  std::optional<TokenId> pad_id() const;
  std::optional<TokenId> unk_id() const;
  // Whether generation should stop at `id`: it is eos_id() or eot_id().
  bool is_end_of_generation(TokenId id) const;
  bool add_bos() const;  // encode(add_special = true) puts bos_id() first
  bool add_eos() const;  // encode(add_special = true) puts eos_id() last
  // SentencePiece: whether a space is put before the text (so "Hello" and " Hello" differ). WordPiece: true
  // (word-initial pieces carry a space that decode() drops from the first one).
  bool add_space_prefix() const;

  // Type and stored text of a token. Out-of-range ids give TokenType::unused and an empty string.
  TokenType token_type(TokenId id) const;
  const std::string& token_text(TokenId id) const;
  // The id whose stored text is exactly `text` (as stored: "▁Hello" for SentencePiece, "ĠHello" for
  // byte-level BPE).
  std::optional<TokenId> find_token(std::string_view text) const;

  // Text to ids. `add_special`: put BOS/EOS as add_bos()/add_eos() say. `parse_special`: recognise the
  // text of control tokens ("<|im_start|>") as those tokens; otherwise it is tokenized as plain text.
  // Errors: invalid_argument when `text` is not valid UTF-8 (the message gives the byte offset);
  // invalid_argument when BOS/EOS must be added but the vocabulary has none.
  Expected<std::vector<TokenId>> encode(std::string_view text, bool add_special = false,
                                        bool parse_special = false) const;

  // The bytes a token stands for, as it appears inside generated text: "▁Hello" gives " Hello", <0x0A>
  // gives "\n", a byte-level token gives its raw bytes (possibly part of a UTF-8 character), control
  // tokens give their text. Errors: out_of_range for an id outside the vocabulary.
  Expected<std::string> token_to_piece(TokenId id) const;

  // Ids to text: the concatenated pieces, with the leading space that add_space_prefix() puts in front
  // removed from the first piece, so decode(encode(x)) == x. `skip_special` leaves out control, unknown
  // and unused tokens. The result is raw bytes and may end in an incomplete UTF-8 character when the ids
  // do; use StreamingDetokenizer where only whole characters may be shown.
  // Errors: out_of_range for an id outside the vocabulary.
  Expected<std::string> decode(std::span<const TokenId> ids, bool skip_special = false) const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> m_impl;
  friend struct TokenizerBuilder;
};

// Loads the tokenizer of a model: a `.gguf` file or a Hugging Face folder.
Expected<Tokenizer> load_tokenizer(const std::filesystem::path& path);

// Turns a stream of token ids into text that only ever contains whole UTF-8 characters: bytes of a
// character split across tokens (byte-fallback <0xE2><0x82><0xAC>, or byte-level BPE pieces) are held
// until the character is complete. Bytes that can never form a character become U+FFFD.
// One detokenizer per stream; not thread-safe (the Tokenizer it holds is).
class StreamingDetokenizer {
 public:
  // `strip_leading_space`: drop the space that add_space_prefix() put before the first piece (for
  // detokenizing a whole prompt; leave false when streaming generated tokens).
  explicit StreamingDetokenizer(Tokenizer tokenizer, bool skip_special = false,
                                bool strip_leading_space = false);

  // Adds one token; returns the text completed by it (possibly empty). Errors: out_of_range.
  Expected<std::string> push(TokenId id);
  // Ends the stream: returns U+FFFD for a character left incomplete, and resets.
  std::string finish();
  void reset();
  // Bytes held back waiting for the rest of a character (0..3).
  size_t pending_bytes() const { return m_pending.size(); }

 private:
  Tokenizer m_tokenizer;
  bool m_skip_special;
  bool m_strip_leading_space;
  bool m_first = true;
  std::string m_pending;
};

}  // namespace hearth
