/* Internal: helpers shared by the trainer's kernels (the .cu files of trainer/cuda): the launch wrapper, BF16 bit
 * conversions, rounded arithmetic and block reductions.
 *
 * Non-obvious choice: as in engine/cuda, kernels are launched through launch() and use only what the
 * CPU emulation in tests/gpu/emu provides (float shuffles, __syncthreads, static __shared__ arrays), so
 * tests/trainer/cuda-train-emu.cmake can run these same sources as C++ on a machine without a GPU.
 * Block reductions go through shared memory in a fixed tree, never atomics: deterministic results.
 */
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>

namespace hearth::train::cuda::detail {

constexpr int THREADS = 256;  // threads per block of every kernel here (a power of two: see block_sum)

template <class... P, class... A>
void launch(void (*k)(P...), dim3 grid, dim3 block, cudaStream_t stream, A... args) {
#ifdef HEARTH_CUDA_EMULATION
  (void)stream;
  ::emu::launch(k, grid, block, args...);
#else
  k<<<grid, block, 0, stream>>>(args...);
#endif
}

inline cudaError_t launch_status() { return cudaGetLastError(); }

// Blocks for n items of per_block each, at least 1, capped (kernels grid-stride past the cap).
inline unsigned grid_for(int64_t n, int64_t per_block, int64_t cap = 65535LL * 8) {
  int64_t g = (n + per_block - 1) / per_block;
  if (g < 1) g = 1;
  if (g > cap) g = cap;
  return unsigned(g);
}

// Blocks for an element-wise kernel over n items (grid-stride beyond the cap).
inline unsigned elem_grid(int64_t n) { return grid_for(n, THREADS); }

#ifdef HEARTH_CUDA_EMULATION
inline float as_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
inline uint32_t as_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
// The host compiler rounds every float operation (no contraction in these files: see the emulation's
// cmake fragment), and sqrtf / division are IEEE there as on the GPU.
inline float div_rn(float a, float b) { return a / b; }
inline float sqrt_rn(float a) { return std::sqrt(a); }
#else
__device__ __forceinline__ float as_float(uint32_t b) { return __uint_as_float(b); }
__device__ __forceinline__ uint32_t as_bits(float f) { return __float_as_uint(f); }
// IEEE division and square root whatever -prec-div / -prec-sqrt say (AdamW must match the CPU's bits).
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
#endif

__device__ __forceinline__ float bf16_to_f32(uint16_t h) { return as_float(uint32_t(h) << 16); }

// Round to nearest even; NaN stays a quiet NaN (hearth::fp32_to_bf16's definition).
__device__ __forceinline__ uint16_t f32_to_bf16(float f) {
  uint32_t x = as_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return uint16_t(x >> 16);
}

__device__ __forceinline__ float load(const void* p, bool bf16, int64_t i) {
  return bf16 ? bf16_to_f32(static_cast<const uint16_t*>(p)[i]) : static_cast<const float*>(p)[i];
}
__device__ __forceinline__ void store(void* p, bool bf16, int64_t i, float v) {
  if (bf16)
    static_cast<uint16_t*>(p)[i] = f32_to_bf16(v);
  else
    static_cast<float*>(p)[i] = v;
}

// Sum of v over the block (THREADS threads), in a fixed tree through `sh` (THREADS values of shared
// memory); every thread gets the result. Barriers on entry and exit, so `sh` may be reused at once.
template <class T>
__device__ __forceinline__ T block_sum(T v, T* sh) {
  const int t = int(threadIdx.x);
  __syncthreads();
  sh[t] = v;
  __syncthreads();
  for (int s = THREADS / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] = sh[t] + sh[t + s];
    __syncthreads();
  }
  const T r = sh[0];
  __syncthreads();
  return r;
}

// Largest v over the block, as block_sum.
__device__ __forceinline__ float block_max(float v, float* sh) {
  const int t = int(threadIdx.x);
  __syncthreads();
  sh[t] = v;
  __syncthreads();
  for (int s = THREADS / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] = sh[t] > sh[t + s] ? sh[t] : sh[t + s];
    __syncthreads();
  }
  const float r = sh[0];
  __syncthreads();
  return r;
}

}  // namespace hearth::train::cuda::detail
