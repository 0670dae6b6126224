/* Comparing two vectors of results (logits, activations) as the reference tests report it: the largest
 * absolute difference divided by the largest magnitude of the reference.
 */
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace hearth::test {

// max |a - b| / max |b| (the plain max difference when b is all zeros); sizes must agree.
inline double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double e = 0, m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    e = std::max(e, std::abs(double(a[i]) - double(b[i])));
    m = std::max(m, std::abs(double(b[i])));
  }
  return m > 0 ? e / m : e;
}

}  // namespace hearth::test
