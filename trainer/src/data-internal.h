/* Private helpers of the training-data code (data-*.cpp): SHA-256 of dataset bytes and the seeded
 * shuffle shared by the validation split and the batch iterator.
 *
 * Non-obvious choice: the shuffle is our own Fisher-Yates over std::mt19937_64 with a 128-bit
 * multiply-high range reduction, not std::shuffle/std::uniform_int_distribution, whose algorithms are
 * implementation-defined; the order of examples must be the same with every standard library.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::train::detail {

// Streaming SHA-256 (FIPS 180-4). The engine has none; the app's sits above the trainer.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex();  // finishes; the object must not be updated afterwards

 private:
  void block(const uint8_t* p);
  uint32_t m_h[8];
  uint8_t m_buf[64];
  size_t m_fill = 0;
  uint64_t m_bits = 0;
};

std::string sha256_hex(std::string_view bytes);

uint64_t splitmix64(uint64_t x);

// A permutation of 0..n-1 that depends only on (seed, stream): Fisher-Yates driven by mt19937_64.
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed, uint64_t stream);

}  // namespace hearth::train::detail
