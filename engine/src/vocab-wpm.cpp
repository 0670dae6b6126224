/* WordPiece (BERT) vocabularies from GGUF (`tokenizer.ggml.model == "bert"`): BERT's normalizer and
 * pre-tokenizer, then greedy longest-match-first pieces.
 *
 * Non-obvious choices: GGUF stores BERT vocabularies as llama.cpp converts them, with "▁" in front of
 * word-initial pieces and no "##" on continuations, so a word is matched as "▁" + word. Lower-casing and
 * accent stripping (NFD, then dropping Mn marks) come from a table generated from Python's unicodedata
 * (unicode-bert-data.py), with Hangul syllables decomposed arithmetically; character classes (control,
 * whitespace, punctuation) come from PCRE2's Unicode properties.
 */
#include <algorithm>
#include <stdexcept>
#include <unordered_map>

#include "tokenizer-impl.h"
#include "unicode.h"

namespace hearth::detail {

namespace {

struct BertMapEntry {
  uint32_t cp;
  const char* to;
};
const BertMapEntry BERT_MAP[] = {
#include "unicode-bert-data.inc"
};

const std::unordered_map<uint32_t, const char*>& bert_map() {
  static const std::unordered_map<uint32_t, const char*> m = [] {
    std::unordered_map<uint32_t, const char*> r;
    r.reserve(sizeof BERT_MAP / sizeof BERT_MAP[0] * 2);
    for (auto& e : BERT_MAP) r.emplace(e.cp, e.to);
    return r;
  }();
  return m;
}

// Hangul syllable -> its conjoining jamo (the canonical decomposition).
void append_hangul(std::string& out, uint32_t cp) {
  const uint32_t s = cp - 0xAC00;
  utf8_append(out, 0x1100 + s / (21 * 28));
  utf8_append(out, 0x1161 + (s % (21 * 28)) / 28);
  if (s % 28) utf8_append(out, 0x11A7 + s % 28);
}

}  // namespace

WpmModel::WpmModel(const VocabSpec& spec, const std::unordered_map<std::string, TokenId>& text_to_id)
    : m_text_to_id(&text_to_id) {
  if (!spec.unk) throw std::runtime_error("a WordPiece vocabulary needs an unknown token ([UNK])");
  m_unk = *spec.unk;
  for (auto& t : spec.tokens) m_max_len = std::max(m_max_len, t.size());
  // BERT's clean-up: control characters (but not \t \n \r), NUL and U+FFFD are dropped.
  m_control = std::make_shared<const Regex>(R"((?![\t\n\r])\p{C}|\x{FFFD})");
  m_cjk = std::make_shared<const Regex>(
      R"([\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}])");
  // Words: runs of anything but whitespace and punctuation, or one punctuation character (ASCII
  // punctuation counts, as in BERT, though Unicode calls some of it symbols).
  m_words = std::make_shared<const Regex>(R"([^\s\p{P}!-/:-@\[-`{-~]+|[\p{P}!-/:-@\[-`{-~])");
}

std::string WpmModel::normalize(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> m;
  // 1. drop control characters; 2. put spaces around CJK ideographs.
  std::string clean;
  clean.reserve(text.size());
  m_control->find_all(text, m);
  size_t pos = 0;
  for (auto [b, e] : m) {
    clean.append(text.substr(pos, b - pos));
    pos = e;
  }
  clean.append(text.substr(pos));
  std::string spaced;
  spaced.reserve(clean.size() + 16);
  m_cjk->find_all(clean, m);
  pos = 0;
  for (auto [b, e] : m) {
    spaced.append(clean, pos, b - pos);
    spaced.push_back(' ');
    spaced.append(clean, b, e - b);
    spaced.push_back(' ');
    pos = e;
  }
  spaced.append(clean, pos, std::string::npos);
  // 3. accents stripped and lower case, character by character.
  const auto& map = bert_map();
  std::string out;
  out.reserve(spaced.size());
  pos = 0;
  while (pos < spaced.size()) {
    uint32_t cp = 0;
    size_t len = 1;
    if (!utf8_decode(spaced, pos, cp, len)) {
      ++pos;  // cannot happen: encode() validated the text
      continue;
    }
    if (cp >= 0xAC00 && cp <= 0xD7A3) {
      append_hangul(out, cp);
    } else if (auto it = map.find(cp); it != map.end()) {
      out.append(it->second);
    } else {
      out.append(spaced, pos, len);
    }
    pos += len;
  }
  return out;
}

void WpmModel::encode(std::string_view text, std::vector<TokenId>& out) const {
  std::string norm = normalize(text);
  std::vector<std::pair<size_t, size_t>> words;
  m_words->find_all(norm, words);
  std::string word;
  std::vector<TokenId> pieces;
  for (auto [b, e] : words) {
    // Hugging Face's limit: a word of more than 100 characters is unknown.
    size_t chars = 0;
    for (size_t i = b; i < e; ++i) chars += (uint8_t(norm[i]) & 0xC0) != 0x80;
    if (chars > 100) {
      out.push_back(m_unk);
      continue;
    }
    word.assign("\xE2\x96\x81");
    word.append(norm, b, e - b);
    pieces.clear();
    size_t pos = 0;
    bool ok = true;
    while (pos < word.size()) {
      size_t end = std::min(word.size(), pos + m_max_len);
      TokenId found = -1;
      for (; end > pos; --end) {
        // Only cut at character boundaries.
        if (end < word.size() && (uint8_t(word[end]) & 0xC0) == 0x80) continue;
        auto it = m_text_to_id->find(word.substr(pos, end - pos));
        if (it != m_text_to_id->end()) {
          found = it->second;
          break;
        }
      }
      if (found < 0) {
        ok = false;
        break;
      }
      pieces.push_back(found);
      pos = end;
    }
    if (ok) out.insert(out.end(), pieces.begin(), pieces.end());
    else out.push_back(m_unk);
  }
}

}  // namespace hearth::detail
