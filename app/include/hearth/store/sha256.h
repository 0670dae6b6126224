/* SHA-256 for the project store: the engine's implementation (hearth/sha256.h) under the store's
 * Qt-style names, so the store, the desktop program and the trainer hash with one routine.
 */
#pragma once

#include <string>
#include <string_view>

#include "hearth/error.h"
#include "hearth/sha256.h"

namespace hearth::store {

class Sha256 : public hearth::Sha256 {
 public:
  // Finishes and returns the digest as 64 lowercase hex digits.
  std::string finishHex() { return finish_hex(); }
};

// Hex SHA-256 of a byte string.
inline std::string sha256Hex(std::string_view data) { return hearth::sha256_hex(data); }

// Hex SHA-256 of a file's contents, read in chunks. Errors: io when the file cannot be opened or read.
inline Expected<std::string> sha256File(const std::string& path) { return hearth::sha256_file(path); }

}  // namespace hearth::store
