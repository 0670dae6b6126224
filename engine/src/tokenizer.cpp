/* The Tokenizer: building it from a VocabSpec, special-token splitting, encode, decode and streaming.
 *
 * Non-obvious choice: special tokens are found in the text before the back end sees it, by a
 * leftmost-longest scan over candidates bucketed by first byte. Each stretch of text between them is
 * encoded on its own; for SentencePiece the dummy space prefix goes only before the first stretch and
 * stretches that follow a special token (llama.cpp's rule), so "<|user|>Hi" tokenizes as the model saw
 * it in training.
 */
#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "hearth/tokenizer.h"
#include "tokenizer-impl.h"
#include "unicode.h"

namespace hearth {

const char* token_type_name(TokenType t) {
  switch (t) {
    case TokenType::normal: return "normal";
    case TokenType::unknown: return "unknown";
    case TokenType::control: return "control";
    case TokenType::user_defined: return "user-defined";
    case TokenType::unused: return "unused";
    case TokenType::byte: return "byte";
  }
  return "normal";
}

const char* Tokenizer::kind_name(Kind k) {
  switch (k) {
    case Kind::sentencepiece: return "sentencepiece";
    case Kind::byte_level_bpe: return "byte-level-bpe";
    case Kind::wordpiece: return "wordpiece";
  }
  return "sentencepiece";
}

namespace detail {

namespace {

// The bytes a token stands for in text.
std::string decoded_piece(Tokenizer::Kind kind, const std::string& text, TokenType type) {
  if (type == TokenType::control || type == TokenType::unknown || type == TokenType::unused) return text;
  if (kind != Tokenizer::Kind::byte_level_bpe) {
    if (kind == Tokenizer::Kind::sentencepiece && type == TokenType::byte && text.size() == 6 && text.compare(0, 3, "<0x") == 0 && text[5] == '>' &&
        std::isxdigit(uint8_t(text[3])) && std::isxdigit(uint8_t(text[4]))) {
      return std::string(1, char(std::stoi(text.substr(3, 2), nullptr, 16)));
    }
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      if (text.compare(i, 3, "\xE2\x96\x81") == 0) {  // U+2581 LOWER ONE EIGHTH BLOCK stands for a space
        out.push_back(' ');
        i += 2;
      } else {
        out.push_back(text[i]);
      }
    }
    return out;
  }
  if (type == TokenType::user_defined) return text;  // added tokens hold raw text
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    uint32_t cp;
    size_t len;
    if (utf8_decode(text, pos, cp, len)) {
      int b = unicode_to_byte(cp);
      if (b >= 0) out.push_back(char(b));
      else out.append(text, pos, len);
    } else {
      out.push_back(text[pos]);
    }
    pos += len;
  }
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

const char* const EOT_TEXTS[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                 "<|end_of_text|>", "<EOT>", "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"};

}  // namespace

Expected<Tokenizer> build_tokenizer(VocabSpec spec) {
  const std::string& where = spec.source;
  size_t n = spec.tokens.size();
  if (n == 0) return make_error(ErrorCode::format, where + ": the vocabulary is empty");
  if (n > size_t(INT32_MAX)) return make_error(ErrorCode::format, where + ": vocabulary too large");
  if (spec.types.size() != n)
    return make_error(ErrorCode::format, where + ": " + std::to_string(spec.types.size()) +
                                             " token types for " + std::to_string(n) + " tokens");
  if (!spec.scores.empty() && spec.scores.size() != n)
    return make_error(ErrorCode::format, where + ": " + std::to_string(spec.scores.size()) +
                                             " token scores for " + std::to_string(n) + " tokens");
  for (auto* id : {&spec.bos, &spec.eos, &spec.eot, &spec.pad, &spec.unk})
    if (*id && (**id < 0 || size_t(**id) >= n))
      return make_error(ErrorCode::format, where + ": special token id " + std::to_string(**id) +
                                               " is outside the vocabulary (" + std::to_string(n) + " tokens)");

  auto impl = std::make_shared<Tokenizer::Impl>();
  impl->kind = spec.kind;
  impl->pre_name = spec.kind != Tokenizer::Kind::byte_level_bpe ? "default"
                   : spec.hf_pre_tokenizer                     ? "tokenizer.json"
                                                               : spec.pre;
  impl->text_to_id.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) impl->text_to_id.emplace(spec.tokens[i], TokenId(i));  // first one wins

  if (!spec.eot) {
    for (const char* t : EOT_TEXTS) {
      auto it = impl->text_to_id.find(t);
      if (it != impl->text_to_id.end()) {
        spec.eot = it->second;
        break;
      }
    }
  }

  impl->pieces.resize(n);
  for (size_t i = 0; i < n; ++i) impl->pieces[i] = decoded_piece(spec.kind, spec.tokens[i], spec.types[i]);

  for (size_t i = 0; i < n; ++i) {
    TokenType t = spec.types[i];
    if (spec.tokens[i].empty()) continue;
    if (t != TokenType::control && t != TokenType::user_defined && t != TokenType::unknown) continue;
    detail::AddedTokenFlags flags;
    if (auto it = spec.added_flags.find(TokenId(i)); it != spec.added_flags.end()) flags = it->second;
    impl->special_by_byte[uint8_t(spec.tokens[i][0])].push_back({TokenId(i), t == TokenType::user_defined, flags});
  }
  for (auto& bucket : impl->special_by_byte)
    std::stable_sort(bucket.begin(), bucket.end(), [&](const auto& a, const auto& b) {
      return spec.tokens[a.id].size() > spec.tokens[b.id].size();
    });

  try {
    if (spec.kind == Tokenizer::Kind::sentencepiece) {
      impl->spm = std::make_unique<SpmModel>(spec);
    } else if (spec.kind == Tokenizer::Kind::wordpiece) {
      impl->wpm = std::make_unique<WpmModel>(spec, impl->text_to_id);
    } else {
      PreTokenizer pre;
      if (spec.hf_pre_tokenizer) {
        HEARTH_TRY(pre, PreTokenizer::from_json(*spec.hf_pre_tokenizer, where));
      } else {
        HEARTH_TRY(pre, PreTokenizer::from_gguf_name(spec.pre));
      }
      impl->bpe = std::make_unique<BpeModel>(spec, impl->text_to_id, std::move(pre));
    }
  } catch (const std::exception& e) {
    return make_error(ErrorCode::format, where + ": " + e.what());
  }

  impl->bos = spec.bos;
  impl->eos = spec.eos;
  impl->eot = spec.eot;
  impl->pad = spec.pad;
  impl->unk = spec.unk;
  impl->add_bos = spec.add_bos;
  impl->add_eos = spec.add_eos;
  impl->add_space_prefix = spec.kind != Tokenizer::Kind::byte_level_bpe && spec.add_space_prefix;
  impl->texts = std::move(spec.tokens);
  impl->types = std::move(spec.types);
  impl->scores = std::move(spec.scores);
  spec.merges.clear();
  spec.merges.shrink_to_fit();
  impl->spec = std::move(spec);
  return TokenizerBuilder::make(std::move(impl));
}

}  // namespace detail

// ---- Tokenizer ------------------------------------------------------------------------------------------

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : m_impl(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

Tokenizer::Kind Tokenizer::kind() const { return m_impl->kind; }
const std::string& Tokenizer::pre_tokenizer() const { return m_impl->pre_name; }
int32_t Tokenizer::vocab_size() const { return int32_t(m_impl->texts.size()); }
std::optional<TokenId> Tokenizer::bos_id() const { return m_impl->bos; }
std::optional<TokenId> Tokenizer::eos_id() const { return m_impl->eos; }
std::optional<TokenId> Tokenizer::eot_id() const { return m_impl->eot; }
std::optional<TokenId> Tokenizer::pad_id() const { return m_impl->pad; }
std::optional<TokenId> Tokenizer::unk_id() const { return m_impl->unk; }
bool Tokenizer::is_end_of_generation(TokenId id) const {
  return (m_impl->eos && id == *m_impl->eos) || (m_impl->eot && id == *m_impl->eot);
}
bool Tokenizer::add_bos() const { return m_impl->add_bos; }
bool Tokenizer::add_eos() const { return m_impl->add_eos; }
bool Tokenizer::add_space_prefix() const { return m_impl->add_space_prefix; }

TokenType Tokenizer::token_type(TokenId id) const {
  if (id < 0 || size_t(id) >= m_impl->types.size()) return TokenType::unused;
  return m_impl->types[id];
}

const std::string& Tokenizer::token_text(TokenId id) const {
  static const std::string empty;
  if (id < 0 || size_t(id) >= m_impl->texts.size()) return empty;
  return m_impl->texts[id];
}

std::optional<TokenId> Tokenizer::find_token(std::string_view text) const {
  auto it = m_impl->text_to_id.find(std::string(text));
  if (it == m_impl->text_to_id.end()) return std::nullopt;
  return it->second;
}

Expected<std::vector<TokenId>> Tokenizer::encode(std::string_view text, bool add_special,
                                                 bool parse_special) const {
  const Impl& im = *m_impl;
  size_t bad = detail::utf8_first_invalid(text);
  if (bad != std::string_view::npos)
    return make_error(ErrorCode::invalid_argument,
                      "text is not valid UTF-8 (byte " + std::to_string(bad) + ")");
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && im.add_bos) {
    if (!im.bos) return make_error(ErrorCode::invalid_argument, "the vocabulary asks for BOS but has no BOS token");
    out.push_back(*im.bos);
  }
  try {
    bool prev_special = true;
    auto emit_text = [&](std::string_view frag) {
      if (frag.empty()) return;
      if (im.spm) im.spm->encode(frag, prev_special, out);
      else if (im.wpm) im.wpm->encode(frag, out);
      else im.bpe->encode(frag, out);
      prev_special = false;
    };
    size_t pos = 0, start = 0;
    while (pos < text.size()) {
      const auto& bucket = im.special_by_byte[uint8_t(text[pos])];
      const Impl::SpecialCandidate* hit = nullptr;
      for (const auto& c : bucket) {
        if (!c.always && !parse_special) continue;
        const std::string& t = im.texts[c.id];
        if (text.size() - pos >= t.size() && text.compare(pos, t.size(), t) == 0) {
          hit = &c;
          break;
        }
      }
      if (!hit) {
        ++pos;
        continue;
      }
      std::string_view before = text.substr(start, pos - start);
      if (hit->flags.lstrip)
        while (!before.empty() && detail::is_space(before.back())) before.remove_suffix(1);
      emit_text(before);
      out.push_back(hit->id);
      prev_special = true;
      pos += im.texts[hit->id].size();
      if (hit->flags.rstrip)
        while (pos < text.size() && detail::is_space(text[pos])) ++pos;
      start = pos;
    }
    emit_text(text.substr(start));
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, std::string("tokenizer: ") + e.what());
  }
  if (add_special && im.add_eos) {
    if (!im.eos) return make_error(ErrorCode::invalid_argument, "the vocabulary asks for EOS but has no EOS token");
    out.push_back(*im.eos);
  }
  return out;
}

Expected<std::string> Tokenizer::token_to_piece(TokenId id) const {
  if (id < 0 || size_t(id) >= m_impl->pieces.size())
    return make_error(ErrorCode::out_of_range, "token id " + std::to_string(id) + " is outside the vocabulary (" +
                                                   std::to_string(m_impl->pieces.size()) + " tokens)");
  return m_impl->pieces[id];
}

namespace {
bool skipped(TokenType t) { return t == TokenType::control || t == TokenType::unknown || t == TokenType::unused; }
}  // namespace

Expected<std::string> Tokenizer::decode(std::span<const TokenId> ids, bool skip_special) const {
  const Impl& im = *m_impl;
  std::string out;
  bool first = true;
  for (TokenId id : ids) {
    if (id < 0 || size_t(id) >= im.pieces.size())
      return make_error(ErrorCode::out_of_range, "token id " + std::to_string(id) + " is outside the vocabulary (" +
                                                     std::to_string(im.pieces.size()) + " tokens)");
    if (skip_special && skipped(im.types[id])) continue;
    const std::string& p = im.pieces[id];
    if (first && im.add_space_prefix && !p.empty() && p[0] == ' ' && im.types[id] != TokenType::control)
      out.append(p, 1, std::string::npos);
    else
      out.append(p);
    first = false;
  }
  return out;
}

// ---- StreamingDetokenizer -------------------------------------------------------------------------------

StreamingDetokenizer::StreamingDetokenizer(Tokenizer tokenizer, bool skip_special, bool strip_leading_space)
    : m_tokenizer(std::move(tokenizer)), m_skip_special(skip_special), m_strip_leading_space(strip_leading_space) {}

Expected<std::string> StreamingDetokenizer::push(TokenId id) {
  HEARTH_TRY(std::string piece, m_tokenizer.token_to_piece(id));
  TokenType t = m_tokenizer.token_type(id);
  if (m_skip_special && skipped(t)) return std::string();
  if (m_first && m_strip_leading_space && m_tokenizer.add_space_prefix() && !piece.empty() && piece[0] == ' ' &&
      t != TokenType::control)
    piece.erase(0, 1);
  m_first = false;
  m_pending += piece;
  std::string out;
  for (;;) {
    bool incomplete = false;
    size_t bad = 0;
    size_t n = detail::utf8_complete_prefix(m_pending, incomplete, bad);
    out.append(m_pending, 0, n);
    if (n == m_pending.size()) {
      m_pending.clear();
      break;
    }
    if (incomplete) {
      m_pending.erase(0, n);
      break;
    }
    out.append("\xEF\xBF\xBD");  // bytes that can never be part of a character
    m_pending.erase(0, n + std::max<size_t>(bad, 1));
  }
  return out;
}

std::string StreamingDetokenizer::finish() {
  std::string out = m_pending.empty() ? std::string() : std::string("\xEF\xBF\xBD");
  reset();
  return out;
}

void StreamingDetokenizer::reset() {
  m_pending.clear();
  m_first = true;
}

}  // namespace hearth
