/* A CPU emulation of the small part of the CUDA runtime and device language that engine/cuda/kernels-*.cu
 * and the trainer's kernels (trainer/cuda) use, so that the kernels and their host wrappers run unchanged
 * (compiled as C++) on a machine without a GPU: tests/engine/cuda-emu.cmake builds gpu-test-cuda-kernels
 * against it. Not a general emulator: only what the kernels use is here.
 *
 * Non-obvious choice: every GPU thread of a block is an OS thread, so warp shuffles and __syncthreads
 * are real rendezvous (std::barrier) and the kernels' cross-lane logic (reductions, the attention's
 * per-lane keys, early-exiting warps) runs as written, not as a sequential rewrite of it. Blocks of a
 * launch run one after another (a barrier between them), so `__shared__` can be a function-local
 * static. Device memory is host memory; __ldg aborts on a misaligned address as the GPU would fault
 * (other accesses are not checked here: compute-sanitizer does that on the GPU).
 */
#pragma once

#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#ifndef HEARTH_CUDA_EMULATION
#define HEARTH_CUDA_EMULATION 1
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct float2 {
  float x, y;
};
struct float4 {
  float x, y, z, w;
};
struct uint2 {
  unsigned x, y;
};
struct uint4 {
  unsigned x, y, z, w;
};
inline uint2 make_uint2(unsigned a, unsigned b) { return uint2{a, b}; }
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return uint4{a, b, c, d}; }

enum cudaError { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2 };
typedef enum cudaError cudaError_t;
struct CUstream_st;
typedef CUstream_st* cudaStream_t;
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};

inline cudaError_t cudaMalloc(void** p, size_t n) {
  *p = std::aligned_alloc(256, (n + 255) / 256 * 256);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
inline cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind) {
  if (n) std::memcpy(dst, src, n);
  return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error (emulated)";
    case cudaErrorInvalidValue: return "invalid argument (emulated)";
    default: return "error (emulated)";
  }
}

namespace emu {

struct Warp {
  std::barrier<> bar;
  uint64_t slot[32] = {};  // one 4- or 8-byte value per lane
  explicit Warp(std::ptrdiff_t n) : bar(n) {}
};

struct Block {
  std::barrier<> bar;
  std::vector<std::unique_ptr<Warp>> warps;
  explicit Block(unsigned n_threads) : bar(n_threads) {
    for (unsigned w = 0; w * 32 < n_threads; ++w)
      warps.push_back(std::make_unique<Warp>(std::ptrdiff_t(n_threads - w * 32 < 32 ? n_threads - w * 32 : 32)));
  }
};

inline thread_local uint3 tl_thread, tl_block;
inline thread_local Block* tl_ctx = nullptr;
inline thread_local int tl_lane = 0, tl_warp = 0;
inline dim3 g_block_dim, g_grid_dim;

template <class T>
T shfl(T v, int src) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  Warp& w = *tl_ctx->warps[size_t(tl_warp)];
  std::memcpy(&w.slot[tl_lane], &v, sizeof(T));
  w.bar.arrive_and_wait();
  T r;
  std::memcpy(&r, &w.slot[src & 31], sizeof(T));
  w.bar.arrive_and_wait();
  return r;
}

// Runs kernel k over the grid: block.x*y*z OS threads, each walking the blocks in order.
template <class... P, class... A>
void launch(void (*k)(P...), dim3 grid, dim3 block, A... args) {
  const unsigned nt = block.x * block.y * block.z;
  const unsigned nb = grid.x * grid.y * grid.z;
  g_block_dim = block;
  g_grid_dim = grid;
  std::vector<std::unique_ptr<Block>> blocks;
  for (unsigned b = 0; b < nb; ++b) blocks.push_back(std::make_unique<Block>(nt));
  std::barrier<> between(nt);
  std::vector<std::thread> threads;
  for (unsigned tid = 0; tid < nt; ++tid) {
    threads.emplace_back([&, tid] {
      tl_thread = uint3{tid % block.x, (tid / block.x) % block.y, tid / (block.x * block.y)};
      tl_lane = int(tid % 32);
      tl_warp = int(tid / 32);
      for (unsigned b = 0; b < nb; ++b) {
        tl_block = uint3{b % grid.x, (b / grid.x) % grid.y, b / (grid.x * grid.y)};
        tl_ctx = blocks[b].get();
        k(args...);
        // A finished (or early-returned) thread no longer takes part in its block's barriers.
        tl_ctx->warps[size_t(tl_warp)]->bar.arrive_and_drop();
        tl_ctx->bar.arrive_and_drop();
        between.arrive_and_wait();
      }
    });
  }
  for (auto& t : threads) t.join();
}

}  // namespace emu

#define threadIdx (::emu::tl_thread)
#define blockIdx (::emu::tl_block)
#define blockDim (::emu::g_block_dim)
#define gridDim (::emu::g_grid_dim)

inline void __syncthreads() { emu::tl_ctx->bar.arrive_and_wait(); }
inline float __shfl_xor_sync(unsigned, float v, int o) { return emu::shfl(v, emu::tl_lane ^ o); }
inline float __shfl_sync(unsigned, float v, int src) { return emu::shfl(v, src); }
inline double __shfl_xor_sync(unsigned, double v, int o) { return emu::shfl(v, emu::tl_lane ^ o); }
// A GPU load faults on an address that is not a multiple of its size: so does the emulation's.
template <class T>
T __ldg(const T* p) {
  if (reinterpret_cast<uintptr_t>(p) % sizeof(T) != 0) {
    std::fprintf(stderr, "emulated GPU: misaligned %zu-byte load at %p\n", sizeof(T), static_cast<const void*>(p));
    std::abort();
  }
  return *p;
}
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
