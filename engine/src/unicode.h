/* UTF-8 helpers shared by the tokenizers (internal to the engine).
 *
 * Non-obvious choice: validation follows the strict Unicode definition (no overlongs, no surrogates,
 * nothing past U+10FFFF), the same rule PCRE2 applies in UTF mode, so text accepted here can be handed to
 * the regex engine with PCRE2_NO_UTF_CHECK.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hearth::detail {

// Length of the UTF-8 sequence that starts with `lead` (1..4), or 0 when `lead` cannot start one.
size_t utf8_sequence_length(uint8_t lead);

// Decodes the character at `pos`; on success stores it and its length. Returns false for an invalid or
// truncated sequence (then `len` is 1, so callers can skip one byte).
bool utf8_decode(std::string_view s, size_t pos, uint32_t& cp, size_t& len);

// Byte offset of the first invalid UTF-8 sequence in `s`, or npos when all of `s` is valid.
size_t utf8_first_invalid(std::string_view s);

// Appends the UTF-8 encoding of `cp` (which must be a valid scalar value).
void utf8_append(std::string& out, uint32_t cp);

// Length of the longest prefix of `s` that is complete, valid UTF-8, together with how the rest looks:
// `tail_incomplete` is true when the remaining bytes are the valid start of a character that more bytes
// could complete (at most 3 bytes). Otherwise `bad_len` is the length of the invalid sequence that
// follows the prefix (its maximal valid-looking start, at least 1 byte), to be replaced by one U+FFFD.
size_t utf8_complete_prefix(std::string_view s, bool& tail_incomplete, size_t& bad_len);

}  // namespace hearth::detail
