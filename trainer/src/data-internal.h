/* Private helpers of the training-data code (data-*.cpp): the seeded shuffle shared by the validation
 * split and the batch iterator (dataset hashes use the engine's hearth/sha256.h).
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

uint64_t splitmix64(uint64_t x);

// A permutation of 0..n-1 that depends only on (seed, stream): Fisher-Yates driven by mt19937_64.
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed, uint64_t stream);

}  // namespace hearth::train::detail
