/* CPU emulation of the two cuda_fp16.h names the attention kernel uses (see cuda_runtime_api.h). */
#pragma once
#include <cstdint>
#include <cstring>

#include "cuda_runtime_api.h"

struct __half2 {
  uint16_t x, y;  // x: the low 16 bits of the word, as on the GPU
};

inline float emu_half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t b;
  if (exp == 0) {
    float v = float(mant) * 5.9604644775390625e-8f;
    std::memcpy(&b, &v, 4);
    b |= sign;
  } else if (exp == 31) {
    b = sign | 0x7f800000u | (mant << 13);
  } else {
    b = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

inline float2 __half22float2(__half2 h) { return float2{emu_half_to_float(h.x), emu_half_to_float(h.y)}; }
