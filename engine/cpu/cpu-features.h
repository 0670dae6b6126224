/* Run-time CPU feature checks for kernel dispatch.
 * Non-obvious choice: F16C is read from CPUID directly (leaf 1, ECX bit 29) because clang 14's
 * __builtin_cpu_supports does not know "f16c", and the fuzz preset builds the engine with clang. */
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace hearth::cpu {

inline bool has_f16c() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c & (1u << 29)) != 0;
#else
  return false;
#endif
}

// AVX2 + FMA + F16C: what the x86 kernels of engine/cpu/ are compiled for.
inline bool has_avx2_fma_f16c() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
#else
  return false;
#endif
}

// AVX-512 F/BW/VL with VNNI (vpdpbusd on 256-bit registers), on top of AVX2/FMA/F16C.
inline bool has_avx512_vnni() {
#if defined(__x86_64__) || defined(__i386__)
  return has_avx2_fma_f16c() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

}  // namespace hearth::cpu
