/* SHA-256 (FIPS 180-4): file hashes of models and datasets (the trainer's dataset hash, the store's
 * model and dataset records) and the project store's event-log hash chain.
 *
 * Non-obvious choice: written here (about a hundred lines) rather than linking OpenSSL or nettle, so the
 * headless stack adds no dependency; it lives in the engine, the lowest layer, so the trainer and the
 * store share one implementation. Checked against the FIPS 180-4 example vectors (tests/app/test-sha256).
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

namespace hearth {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Finishes and returns the 32-byte digest; the object is then reset for a new message.
  std::array<std::uint8_t, 32> finish();
  // Finishes and returns the digest as 64 lowercase hex digits.
  std::string finish_hex();

 private:
  void compress(const std::uint8_t* block);
  void reset();
  std::array<std::uint32_t, 8> m_h;
  std::array<std::uint8_t, 64> m_buffer;
  std::size_t m_buffered = 0;
  std::uint64_t m_totalBytes = 0;
};

// Hex SHA-256 of a byte string.
std::string sha256_hex(std::string_view data);

// Hex SHA-256 of a file's contents, read in chunks. Errors: io when the file cannot be opened or read.
Expected<std::string> sha256_file(const std::string& path);

}  // namespace hearth
