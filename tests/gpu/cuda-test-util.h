/* Shared by the CUDA kernel tests (tests/gpu/test-cuda-*.cpp), which also build against the CPU emulation
 * of the CUDA runtime (tests/gpu/emu): a checked-call macro and the "is there a GPU" question.
 *
 * Non-obvious choice: <cuda_runtime.h> is included by name, so an emulated build (whose include path puts
 * tests/gpu/emu first) gets the emulation's header, and a real build the toolkit's.
 */
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

// ASSERT that a CUDA call returned cudaSuccess, naming the call and the error.
#define CUDA_OK(expr)                                                                     \
  do {                                                                                    \
    cudaError_t e_ = (expr);                                                              \
    ASSERT_EQ(e_, cudaSuccess) << #expr << ": " << cudaGetErrorString(e_);                \
  } while (0)

namespace hearth::test {

// True when the driver reports at least one device; a failed query (no driver) is cleared and means no.
inline bool have_gpu() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return n > 0;
}

}  // namespace hearth::test
