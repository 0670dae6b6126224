/* The seeded permutation used for validation splits and epoch shuffles (data-internal.h says why it
 * is our own Fisher-Yates).
 */
#include <algorithm>
#include <random>

#include "data-internal.h"

namespace hearth::train::detail {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed, uint64_t stream) {
  std::vector<int64_t> perm(size_t(std::max<int64_t>(n, 0)));
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = int64_t(i);
  std::mt19937_64 rng(splitmix64(splitmix64(seed) ^ splitmix64(stream + 0x5851f42d4c957f2dull)));
  for (size_t i = perm.size(); i > 1; --i) {
    // j uniform in [0, i): multiply-high range reduction (Lemire), same result on every platform.
    uint64_t j = uint64_t((unsigned __int128)rng() * i >> 64);
    std::swap(perm[i - 1], perm[j]);
  }
  return perm;
}

}  // namespace hearth::train::detail
