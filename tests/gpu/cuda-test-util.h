/* Shared by the CUDA kernel tests (tests/gpu/test-cuda-*.cpp), which also build against the CPU emulation
 * of the CUDA runtime (tests/gpu/emu): a checked-call macro, the "is there a GPU" question, a device
 * buffer, never-zero random values and float bit patterns.
 *
 * Non-obvious choice: <cuda_runtime.h> is included by name, so an emulated build (whose include path puts
 * tests/gpu/emu first) gets the emulation's header, and a real build the toolkit's.
 */
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

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

// A device array of n values, freed with the object; p stays null when cudaMalloc fails (tests check it).
template <class T>
struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  explicit DevBuf(size_t count) : n(count) {
    if (cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(count, 1) * sizeof(T)) != cudaSuccess) p = nullptr;
  }
  DevBuf(const std::vector<T>& h) : DevBuf(h.size()) { upload(h); }
  ~DevBuf() {
    if (p) cudaFree(p);
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  void upload(const std::vector<T>& h) {
    if (p && !h.empty()) cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice);
  }
  std::vector<T> download() const {
    std::vector<T> h(n);
    if (p && n) cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost);
    return h;
  }
};

// Uniform in [-1, -0.05] u [0.05, 1] times scale: never zero.
inline std::vector<float> random_values(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(0.05f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = (rng() & 1 ? mag(rng) : -mag(rng)) * scale;
  return v;
}

// The bit pattern of a float (for exact comparisons that tell -0 from 0 and keep NaNs apart).
inline uint32_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

}  // namespace hearth::test
