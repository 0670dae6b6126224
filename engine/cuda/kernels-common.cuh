/* Internal: small helpers shared by the kernels-*.cu files (warp reductions, launch status, grid sizes).
 *
 * Non-obvious choice: kernels are launched through launch() (not <<<>>> at each site) so that the same
 * sources also compile as C++ against the CPU emulation in tests/gpu/emu; and launch_status() clears nothing and reports cudaGetLastError(), so an error left by
 * an earlier unrelated call is reported by the next launch: the caller (the runner) treats any error as
 * fatal for its stream anyway, and swallowing it here would hide it.
 */
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace hearth::cuda::detail {

constexpr unsigned FULL_MASK = 0xffffffffu;

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
  return v;
}

inline cudaError_t launch_status() { return cudaGetLastError(); }

// k<<<grid, block, smem, stream>>>(args...), as a plain call (template kernel names need no macro
// tricks) that the CPU emulation (tests/gpu/emu) can replace with its own launcher.
template <class... P, class... A>
void launch(void (*k)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, A... args) {
#ifdef HEARTH_CUDA_EMULATION
  (void)smem;
  (void)stream;
  ::emu::launch(k, grid, block, args...);
#else
  k<<<grid, block, smem, stream>>>(args...);
#endif
}

inline bool aligned(const void* p, uintptr_t a) { return (reinterpret_cast<uintptr_t>(p) % a) == 0; }

// Blocks for `n` items of `per_block` each, capped so a 1-D grid stays legal (kernels grid-stride).
inline unsigned grid_for(int64_t n, int64_t per_block, int64_t cap = 65535LL * 32) {
  int64_t g = (n + per_block - 1) / per_block;
  if (g < 1) g = 1;
  if (g > cap) g = cap;
  return unsigned(g);
}

}  // namespace hearth::cuda::detail
