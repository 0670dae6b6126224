/* must(): unwraps a hearth::Expected inside a GoogleTest body, or records the error and aborts.
 * Non-obvious choice: it aborts rather than returning, because the tests that use it cannot go on
 * without the value, and a silent default would make later assertions meaningless. */
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <utility>

#include "hearth/error.h"

namespace hearth::test {

template <class T>
T must(hearth::Expected<T>&& r) {
  if (!r) {
    ADD_FAILURE() << r.error().to_string();
    std::abort();
  }
  return std::move(*r);
}

inline void must(hearth::Expected<void>&& r) {
  if (!r) {
    ADD_FAILURE() << r.error().to_string();
    std::abort();
  }
}

}  // namespace hearth::test
