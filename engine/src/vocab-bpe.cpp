/* Byte-level BPE: merges applied by rank to each pre-tokenized word.
 *
 * Non-obvious choice: words are merged as token ids, never as strings. Each merge "a b" is stored as
 * (id(a), id(b)) -> (rank, id(a+b)), and a word starts as the ids of its byte characters, so applying a
 * merge is one hash lookup. The order is Hugging Face's: always the lowest rank, leftmost first among
 * equal ranks. Merges whose parts or result are not in the vocabulary can never fire and are dropped.
 */
#include <queue>
#include <stdexcept>

#include "tokenizer-impl.h"
#include "unicode.h"

namespace hearth::detail {

namespace {
inline uint64_t pair_key(TokenId a, TokenId b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
}  // namespace

BpeModel::BpeModel(const VocabSpec& spec, const std::unordered_map<std::string, TokenId>& text_to_id,
                   PreTokenizer pre)
    : m_pre(std::move(pre)), m_text_to_id(&text_to_id), m_ignore_merges(spec.ignore_merges) {
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    utf8_append(ch, byte_to_unicode(uint8_t(b)));
    auto it = text_to_id.find(ch);
    m_byte_id[b] = it == text_to_id.end() ? -1 : it->second;
  }
  m_merges.reserve(spec.merges.size() * 2);
  m_merge_list.reserve(spec.merges.size());
  std::string joined;
  int32_t rank = 0;
  for (auto& [a, b] : spec.merges) {
    auto ia = text_to_id.find(a);
    auto ib = text_to_id.find(b);
    joined.assign(a).append(b);
    auto ir = text_to_id.find(joined);
    if (ia == text_to_id.end() || ib == text_to_id.end() || ir == text_to_id.end()) continue;
    // A repeated pair keeps its first (best) rank.
    if (m_merges.emplace(pair_key(ia->second, ib->second), Merge{rank, ir->second}).second) {
      m_merge_list.emplace_back(ia->second, ib->second);
      ++rank;
    }
  }
}

void BpeModel::encode(std::string_view text, std::vector<TokenId>& out) const {
  std::vector<std::string> words;
  m_pre.split(text, words);
  for (auto& w : words) bpe_word(w, out);
}

void BpeModel::bpe_word(const std::string& word, std::vector<TokenId>& out) const {
  if (m_ignore_merges) {
    auto it = m_text_to_id->find(word);
    if (it != m_text_to_id->end()) {
      out.push_back(it->second);
      return;
    }
  }
  // The word holds mapped characters; each stands for one byte and starts as that byte's token.
  struct Sym {
    TokenId id;
    int32_t prev, next;
  };
  std::vector<Sym> syms;
  syms.reserve(word.size());
  size_t pos = 0;
  while (pos < word.size()) {
    uint32_t cp = 0;
    size_t len = 1;
    TokenId id = -1;
    if (utf8_decode(word, pos, cp, len)) {
      int b = unicode_to_byte(cp);
      if (b >= 0) {
        id = m_byte_id[b];
      } else {
        auto it = m_text_to_id->find(word.substr(pos, len));
        if (it != m_text_to_id->end()) id = it->second;
      }
    }
    pos += len;
    // A byte without a token (a vocabulary that lacks it) is dropped, as Hugging Face does without unk.
    if (id < 0) continue;
    int32_t i = int32_t(syms.size());
    syms.push_back({id, i - 1, i + 1});
  }
  if (syms.empty()) return;
  syms.back().next = -1;

  struct Cand {
    int32_t rank;
    int32_t left;
    TokenId left_id, right_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> queue;
  auto try_add = [&](int32_t left) {
    if (left < 0) return;
    int32_t right = syms[left].next;
    if (right < 0) return;
    auto it = m_merges.find(pair_key(syms[left].id, syms[right].id));
    if (it == m_merges.end()) return;
    queue.push({it->second.rank, left, syms[left].id, syms[right].id});
  };
  for (int32_t i = 0; i + 1 < int32_t(syms.size()); ++i) try_add(i);

  while (!queue.empty()) {
    Cand c = queue.top();
    queue.pop();
    Sym& l = syms[c.left];
    if (l.id != c.left_id || l.next < 0) continue;  // stale: the left symbol changed or was absorbed
    Sym& r = syms[l.next];
    if (r.id != c.right_id) continue;
    auto it = m_merges.find(pair_key(l.id, r.id));
    if (it == m_merges.end() || it->second.rank != c.rank) continue;
    l.id = it->second.result;
    int32_t right_index = l.next;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = c.left;
    r.id = -1;  // absorbed
    (void)right_index;
    try_add(l.prev);
    try_add(c.left);
  }
  for (int32_t i = 0; i >= 0; i = syms[i].next) out.push_back(syms[i].id);
}

}  // namespace hearth::detail
