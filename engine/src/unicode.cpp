/* UTF-8 decoding, validation and encoding for the tokenizers.
 *
 * Non-obvious choice: a character that is cut off at the end of a buffer is reported separately from
 * an invalid one (utf8_complete_prefix), because the streaming detokenizer must hold the first and
 * replace the second.
 */
#include "unicode.h"

namespace hearth::detail {

size_t utf8_sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;  // continuation byte or overlong 2-byte lead
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

// Checks the bytes after the lead byte; `avail` may be shorter than the sequence. Returns how many
// bytes (starting at the lead) form a valid prefix of a character.
static size_t valid_prefix(const uint8_t* p, size_t avail, size_t need) {
  size_t ok = 1;
  for (size_t i = 1; i < need && i < avail; ++i) {
    uint8_t c = p[i];
    uint8_t lo = 0x80, hi = 0xBF;
    if (i == 1) {
      // Second-byte ranges that rule out overlongs, surrogates and values past U+10FFFF.
      if (p[0] == 0xE0) lo = 0xA0;
      else if (p[0] == 0xED) hi = 0x9F;
      else if (p[0] == 0xF0) lo = 0x90;
      else if (p[0] == 0xF4) hi = 0x8F;
    }
    if (c < lo || c > hi) break;
    ++ok;
  }
  return ok;
}

bool utf8_decode(std::string_view s, size_t pos, uint32_t& cp, size_t& len) {
  len = 1;
  if (pos >= s.size()) return false;
  auto p = reinterpret_cast<const uint8_t*>(s.data()) + pos;
  size_t need = utf8_sequence_length(p[0]);
  if (need == 0) return false;
  size_t avail = s.size() - pos;
  if (need > avail) return false;
  if (valid_prefix(p, avail, need) != need) return false;
  switch (need) {
    case 1: cp = p[0]; break;
    case 2: cp = (uint32_t(p[0] & 0x1F) << 6) | (p[1] & 0x3F); break;
    case 3: cp = (uint32_t(p[0] & 0x0F) << 12) | (uint32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F); break;
    default:
      cp = (uint32_t(p[0] & 0x07) << 18) | (uint32_t(p[1] & 0x3F) << 12) | (uint32_t(p[2] & 0x3F) << 6) |
           (p[3] & 0x3F);
  }
  len = need;
  return true;
}

size_t utf8_first_invalid(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    if (static_cast<uint8_t>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    uint32_t cp;
    size_t len;
    if (!utf8_decode(s, pos, cp, len)) return pos;
    pos += len;
  }
  return std::string_view::npos;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

size_t utf8_complete_prefix(std::string_view s, bool& tail_incomplete, size_t& bad_len) {
  tail_incomplete = false;
  bad_len = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    auto p = reinterpret_cast<const uint8_t*>(s.data()) + pos;
    size_t need = utf8_sequence_length(p[0]);
    if (need == 0) {
      bad_len = 1;
      return pos;
    }
    size_t avail = s.size() - pos;
    size_t ok = valid_prefix(p, avail, need);
    if (ok == need) {
      pos += need;
      continue;
    }
    // A valid but cut-off start of a character: more bytes may complete it.
    tail_incomplete = (ok == avail && avail < need);
    if (!tail_incomplete) bad_len = ok;
    return pos;
  }
  return pos;
}

}  // namespace hearth::detail
