/* SHA-256 (FIPS 180-4) for the project store: file hashes of models and datasets, and the event log's
 * hash chain.
 *
 * Non-obvious choice: written here (about a hundred lines) rather than linking OpenSSL or nettle, so the
 * headless store adds no dependency beyond SQLite; it is checked against the FIPS 180-4 example vectors.
 *
 * Threading: a Sha256 object is a plain value; use one per thread.
 */
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "hearth/error.h"

namespace hearth::store {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Finishes and returns the 32-byte digest; the object is then reset for a new message.
  std::array<std::uint8_t, 32> finish();
  // Finishes and returns the digest as 64 lowercase hex digits.
  std::string finishHex();

 private:
  void compress(const std::uint8_t* block);
  void reset();
  std::array<std::uint32_t, 8> m_h;
  std::array<std::uint8_t, 64> m_buffer;
  std::size_t m_buffered = 0;
  std::uint64_t m_totalBytes = 0;
};

// Hex SHA-256 of a byte string.
std::string sha256Hex(std::string_view data);

// Hex SHA-256 of a file's contents, read in chunks. Errors: io when the file cannot be opened or read.
Expected<std::string> sha256File(const std::string& path);

}  // namespace hearth::store
