/* Internal: the per-block decoding of GGUF weight types (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K) that the
 * CUDA kernels use, and the bit-exact half / bfloat16 conversions, written once for host and device so
 * that a plain C++ test (tests/engine/test-cuda-quant-decode.cpp) checks the very indexing the GPU runs.
 *
 * A block is cut into CHUNKS "chunks", each decoded by one GPU lane from contiguous bytes. A chunk yields
 * NRUN * RUN values: value v[r * RUN + i] is element run_start(c, r) + i of the block. The matvec kernel
 * multiplies each run with RUN consecutive activations (float4 loads), so the traits describe both how
 * the weights are read and which activations they meet. Quantized values come as exact small integers
 * (made without int-to-float instructions, see MAGIC) and one scale (and min) per run.
 *
 * Non-obvious choice: the arithmetic of every decoder mirrors engine/src/quants*.cpp operation for
 * operation (e.g. Q4_K is (d * sc) * q - dmin * m, with the product kept unfused on the device), so the
 * results are bit-identical to hearth::dequantize on the host and on the GPU.
 */
#pragma once

#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define HEARTH_HD __host__ __device__ __forceinline__
#else
#define HEARTH_HD inline
#endif

namespace hearth::cuda::qd {

// ---- loads: __ldg (read-only path) on the device, memcpy (no alignment assumed) on the host ----------

HEARTH_HD uint8_t load_u8(const uint8_t* p) {
#ifdef __CUDA_ARCH__
  return __ldg(p);
#else
  return *p;
#endif
}

HEARTH_HD uint16_t load_u16(const uint8_t* p) {  // p 2-byte aligned on the device
#ifdef __CUDA_ARCH__
  return __ldg(reinterpret_cast<const unsigned short*>(p));
#else
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
#endif
}

HEARTH_HD uint32_t load_u32(const uint8_t* p) {  // p 4-byte aligned on the device
#ifdef __CUDA_ARCH__
  return __ldg(reinterpret_cast<const unsigned int*>(p));
#else
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
#endif
}

// Four bytes from a 2-byte aligned address (two loads).
HEARTH_HD uint32_t load_u32_a2(const uint8_t* p) {
  return uint32_t(load_u16(p)) | (uint32_t(load_u16(p + 2)) << 16);
}

// Sixteen bytes as four words; one 16-byte load when `al16` (p 16-byte aligned), else four 4-byte loads.
HEARTH_HD void load_16(const uint8_t* p, bool al16, uint32_t w[4]) {
#ifdef __CUDA_ARCH__
  if (al16) {
    // Read-only path, and no L1 allocation: weights stream through once and would only evict the
    // activations that every row reuses.
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(w[0]), "=r"(w[1]), "=r"(w[2]), "=r"(w[3])
        : "l"(p));
    return;
  }
#else
  (void)al16;
#endif
  for (int i = 0; i < 4; ++i) w[i] = load_u32(p + 4 * i);
}

// ---- half and bfloat16 ----------------------------------------------------------------------------

HEARTH_HD float bits_to_float(uint32_t b) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(b);
#else
  float f;
  std::memcpy(&f, &b, 4);
  return f;
#endif
}

HEARTH_HD uint32_t float_to_bits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
#endif
}

// IEEE binary16 -> binary32, exact for every input (subnormals, infinities; on the host NaN payloads
// too). The device uses the hardware conversion (one instruction instead of a dozen integer ones and a
// select, which would make F16 weights compute-bound).
HEARTH_HD float half_to_float(uint16_t h) {
#ifdef __CUDA_ARCH__
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
#else
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24 is exact in float.
    const float v = float(mant) * 5.9604644775390625e-8f;
    return bits_to_float(float_to_bits(v) | sign);
  }
  if (exp == 31) return bits_to_float(sign | 0x7f800000u | (mant << 13));
  return bits_to_float(sign | ((exp + 112u) << 23) | (mant << 13));
#endif
}

// a * b rounded on its own: on the device this keeps nvcc from fusing it with a following add into an
// FMA, so the decoders round exactly as the CPU's (which are compiled without FMA contraction).
HEARTH_HD float mul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

HEARTH_HD float bf16_to_float(uint16_t h) { return bits_to_float(uint32_t(h) << 16); }

// binary32 -> bfloat16, round to nearest even; NaN stays a quiet NaN (as hearth::fp32_to_bf16).
HEARTH_HD uint16_t float_to_bf16(float f) {
  uint32_t x = float_to_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return uint16_t(x >> 16);
}

// binary32 -> binary16, round to nearest even (as hearth::fp32_to_fp16, NaN payloads included).
HEARTH_HD uint16_t float_to_half(float f) {
  uint32_t x = float_to_bits(f);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u)  // inf or NaN
    return uint16_t(sign | 0x7c00u | (ax > 0x7f800000u ? (0x200u | ((ax >> 13) & 0x3ffu)) : 0u));
  if (ax >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: infinity
  if (ax < 0x38800000u) {
    // Below 2^-14: a subnormal half. ax * 2^24 is exact; round it to an integer, ties to even.
    const float v = bits_to_float(ax) * 16777216.0f;
#ifdef __CUDA_ARCH__
    const float r = rintf(v);
#else
    const float r = __builtin_rintf(v);
#endif
    return uint16_t(sign | uint16_t(r));
  }
  const uint32_t odd = (ax >> 13) & 1u;
  ax += 0xc8000fffu + odd;  // rebias the exponent by -112 and round to nearest even
  return uint16_t(sign | (ax >> 13));
}

// ---- small integers to float without a conversion instruction ---------------------------------------
// The bits 0x4B000000 | n are the float 2^23 + n (n < 2^23), so subtracting 2^23 + bias yields
// float(n - bias) exactly, with one integer and one FP32 instruction. The GPU's int-to-float conversion
// runs at a quarter of the FP32 rate or less, which would make the quantized matvec compute-bound.

constexpr uint32_t MAGIC = 0x4B000000u;  // 2^23 as float bits
constexpr float MAGIC_F = 8388608.0f;

// MAGIC | byte i of w.
HEARTH_HD uint32_t magic_byte(uint32_t w, int i) {
#ifdef __CUDA_ARCH__
  return __byte_perm(w, MAGIC, 0x7650u | unsigned(i));  // bytes: w.i, MAGIC.1, MAGIC.2, MAGIC.3
#else
  return MAGIC | ((w >> (8 * i)) & 0xffu);
#endif
}

// float(byte i of w) - bias, exactly (`minus` = MAGIC_F + bias).
HEARTH_HD float byte_value(uint32_t w, int i, float minus) { return bits_to_float(magic_byte(w, i)) - minus; }

// ---- block traits -----------------------------------------------------------------------------------
// Each traits struct: VALUES (elements per block), BYTES (bytes per block), CHUNKS (lanes per block),
// NRUN, RUN (values per chunk = NRUN * RUN), run_start(c, r), and
//   decode_q(blk, c, al16, q, scale, mn): q[NRUN * RUN] are integers (exact floats) and run r's values
//     are scale[r] * q - mn[r] (mn only when HAS_MIN); the matvec works on these (a run's dot product
//     with x is scale * sum(q x) - mn * sum(x)), so it never multiplies a scale per element;
//   decode(blk, c, al16, v): the values themselves, rounded exactly as engine/src/quants*.cpp do.
// `al16` says the block start is 16-byte aligned (only the 16-byte chunk types use it).

// Runs of q/scale/mn to values: mul_rn(scale, q) [- mn], the CPU's own operations.
template <class T>
HEARTH_HD void values_from_q(const float* q, const float* scale, const float* mn, float* v) {
  for (int r = 0; r < T::NRUN; ++r)
    for (int i = 0; i < T::RUN; ++i) {
      float x = mul_rn(scale[r], q[r * T::RUN + i]);
      if constexpr (T::HAS_MIN) x -= mn[r];
      v[r * T::RUN + i] = x;
    }
}

// Plain types: decode() is primary; decode_q() is the values with scale 1.
template <class T>
struct Plain {
  static constexpr bool HAS_MIN = false;
  HEARTH_HD static int run_start(int, int) { return 0; }
  HEARTH_HD static void decode_q(const uint8_t* b, int c, bool al16, float* q, float* scale, float*) {
    T::decode(b, c, al16, q);
    scale[0] = 1.0f;
  }
};

// Plain types, one element per block (any alignment, any k).
struct F32Scalar : Plain<F32Scalar> {
  static constexpr int VALUES = 1, BYTES = 4, CHUNKS = 1, NRUN = 1, RUN = 1;
  HEARTH_HD static void decode(const uint8_t* b, int, bool, float* v) { v[0] = bits_to_float(load_u32(b)); }
};
struct F16Scalar : Plain<F16Scalar> {
  static constexpr int VALUES = 1, BYTES = 2, CHUNKS = 1, NRUN = 1, RUN = 1;
  HEARTH_HD static void decode(const uint8_t* b, int, bool, float* v) { v[0] = half_to_float(load_u16(b)); }
};
struct BF16Scalar : Plain<BF16Scalar> {
  static constexpr int VALUES = 1, BYTES = 2, CHUNKS = 1, NRUN = 1, RUN = 1;
  HEARTH_HD static void decode(const uint8_t* b, int, bool, float* v) { v[0] = bf16_to_float(load_u16(b)); }
};

// Plain types read 16 bytes at a time (rows 16-byte aligned, k a multiple of VALUES).
struct F32Vec : Plain<F32Vec> {
  static constexpr int VALUES = 4, BYTES = 16, CHUNKS = 1, NRUN = 1, RUN = 4;
  HEARTH_HD static void decode(const uint8_t* b, int, bool al16, float* v) {
    uint32_t w[4];
    load_16(b, al16, w);
    for (int i = 0; i < 4; ++i) v[i] = bits_to_float(w[i]);
  }
};
struct F16Vec : Plain<F16Vec> {
  static constexpr int VALUES = 8, BYTES = 16, CHUNKS = 1, NRUN = 1, RUN = 8;
  HEARTH_HD static void decode(const uint8_t* b, int, bool al16, float* v) {
    uint32_t w[4];
    load_16(b, al16, w);
    for (int i = 0; i < 4; ++i) {
      v[2 * i] = half_to_float(uint16_t(w[i] & 0xffffu));
      v[2 * i + 1] = half_to_float(uint16_t(w[i] >> 16));
    }
  }
};
struct BF16Vec : Plain<BF16Vec> {
  static constexpr int VALUES = 8, BYTES = 16, CHUNKS = 1, NRUN = 1, RUN = 8;
  HEARTH_HD static void decode(const uint8_t* b, int, bool al16, float* v) {
    uint32_t w[4];
    load_16(b, al16, w);
    for (int i = 0; i < 4; ++i) {
      v[2 * i] = bf16_to_float(uint16_t(w[i] & 0xffffu));
      v[2 * i + 1] = bf16_to_float(uint16_t(w[i] >> 16));
    }
  }
};

// Quantized types: decode_q() is primary; decode() is its values.
template <class T>
struct Quant {
  HEARTH_HD static void decode(const uint8_t* b, int c, bool al16, float* v) {
    float q[T::NRUN * T::RUN], scale[T::NRUN], mn[T::NRUN];
    T::decode_q(b, c, al16, q, scale, mn);
    values_from_q<T>(q, scale, mn, v);
  }
};

// Q8_0: d (f16), qs[32] (int8). Chunk c (0..7): qs[4c .. 4c+3] -> elements 4c .. 4c+3.
struct Q8_0 : Quant<Q8_0> {
  static constexpr int VALUES = 32, BYTES = 34, CHUNKS = 8, NRUN = 1, RUN = 4;
  static constexpr bool HAS_MIN = false;
  HEARTH_HD static int run_start(int c, int) { return 4 * c; }
  HEARTH_HD static void decode_q(const uint8_t* b, int c, bool, float* q, float* scale, float*) {
    scale[0] = half_to_float(load_u16(b));
    const uint32_t w = load_u32_a2(b + 2 + 4 * c) ^ 0x80808080u;  // int8 + 128 in each byte
    for (int i = 0; i < 4; ++i) q[i] = byte_value(w, i, MAGIC_F + 128.0f);
  }
};

// Q4_0: d (f16), qs[16]; element j < 16 is the low nibble of qs[j] minus 8, element j + 16 the high one.
// Chunk c (0..3): qs[4c .. 4c+3] -> elements 4c .. 4c+3 (run 0) and 16+4c .. 16+4c+3 (run 1).
struct Q4_0 : Quant<Q4_0> {
  static constexpr int VALUES = 32, BYTES = 18, CHUNKS = 4, NRUN = 2, RUN = 4;
  static constexpr bool HAS_MIN = false;
  HEARTH_HD static int run_start(int c, int r) { return 16 * r + 4 * c; }
  HEARTH_HD static void decode_q(const uint8_t* b, int c, bool, float* q, float* scale, float*) {
    const float d = half_to_float(load_u16(b));
    scale[0] = d, scale[1] = d;
    const uint32_t w = load_u32_a2(b + 2 + 4 * c);
    const uint32_t lo = w & 0x0F0F0F0Fu, hi = (w >> 4) & 0x0F0F0F0Fu;
    for (int i = 0; i < 4; ++i) {
      q[i] = byte_value(lo, i, MAGIC_F + 8.0f);
      q[4 + i] = byte_value(hi, i, MAGIC_F + 8.0f);
    }
  }
};

// Q4_K: d, dmin (f16), scales[12] (eight 6-bit scale/min pairs), qs[128]. Byte l of the 32-byte group g
// (g < 4) holds element 64g + l in its low nibble (sub-block 2g) and 64g + 32 + l in its high nibble
// (sub-block 2g + 1). Chunk c (0..7): qs[16c .. 16c+15], i.e. group c/2, l from 16(c%2):
// run 0 = elements 64(c/2) + 16(c%2) + 0..15, run 1 = the same + 32.
struct Q4_K : Quant<Q4_K> {
  static constexpr int VALUES = 256, BYTES = 144, CHUNKS = 8, NRUN = 2, RUN = 16;
  static constexpr bool HAS_MIN = true;
  HEARTH_HD static int run_start(int c, int r) { return 64 * (c >> 1) + 16 * (c & 1) + 32 * r; }
  // Byte i (< 12) of the packed scales held as three words (selects, not an indexed array, so the
  // device keeps everything in registers).
  HEARTH_HD static int sbyte(uint32_t w0, uint32_t w1, uint32_t w2, int i) {
    const uint32_t w = i < 4 ? w0 : (i < 8 ? w1 : w2);
    return int((w >> (8 * (i & 3))) & 0xffu);
  }
  // The 6-bit scale and min of sub-block j (as engine/src/quants-k.cpp unpacks them).
  HEARTH_HD static void scale_min(uint32_t w0, uint32_t w1, uint32_t w2, int j, int& sc, int& mn) {
    if (j < 4) {
      sc = sbyte(w0, w1, w2, j) & 63;
      mn = sbyte(w0, w1, w2, j + 4) & 63;
    } else {
      sc = (sbyte(w0, w1, w2, j + 4) & 0xF) | ((sbyte(w0, w1, w2, j - 4) >> 6) << 4);
      mn = (sbyte(w0, w1, w2, j + 4) >> 4) | ((sbyte(w0, w1, w2, j) >> 6) << 4);
    }
  }
  HEARTH_HD static void decode_q(const uint8_t* b, int c, bool al16, float* q, float* scale, float* mn) {
    const uint32_t dm = load_u32(b);
    const float d = half_to_float(uint16_t(dm & 0xffffu));
    const float dmin = half_to_float(uint16_t(dm >> 16));
    const uint32_t w0 = load_u32(b + 4), w1 = load_u32(b + 8), w2 = load_u32(b + 12);
    const int g = c >> 1;
    int sc, m;
    scale_min(w0, w1, w2, 2 * g, sc, m);
    scale[0] = d * float(sc), mn[0] = dmin * float(m);
    scale_min(w0, w1, w2, 2 * g + 1, sc, m);
    scale[1] = d * float(sc), mn[1] = dmin * float(m);
    uint32_t w[4];
    load_16(b + 16 + 16 * c, al16, w);
    for (int k = 0; k < 4; ++k) {
      const uint32_t lo = w[k] & 0x0F0F0F0Fu, hi = (w[k] >> 4) & 0x0F0F0F0Fu;
      for (int i = 0; i < 4; ++i) {
        q[4 * k + i] = byte_value(lo, i, MAGIC_F);
        q[16 + 4 * k + i] = byte_value(hi, i, MAGIC_F);
      }
    }
  }
};

// Q6_K: ql[128], qh[64], scales[16] (int8), d (f16). Half n (0, 1) covers elements 128n .. 128n+127 from
// ql[64n ..], qh[32n ..], scales[8n ..]: for l < 32, element 128n + l + 32j (j < 4) takes 4 bits of
// ql[64n + l + 32(j&1)] (low nibble for j < 2, high for j >= 2) and bits 2j, 2j+1 of qh[32n + l], minus
// 32, times d * scales[8n + l/16 + 2j]. Chunk c (0..15): n = c/8, l = 4(c%8) .. +3; run j = elements
// 128n + 32j + 4(c%8) + 0..3. The four 6-bit values of a run are assembled a word (4 bytes) at a time.
struct Q6_K : Quant<Q6_K> {
  static constexpr int VALUES = 256, BYTES = 210, CHUNKS = 16, NRUN = 4, RUN = 4;
  static constexpr bool HAS_MIN = false;
  HEARTH_HD static int run_start(int c, int r) { return 128 * (c >> 3) + 32 * r + 4 * (c & 7); }
  HEARTH_HD static void decode_q(const uint8_t* b, int c, bool, float* q, float* scale, float*) {
    const int n = c >> 3, l0 = 4 * (c & 7);
    const uint32_t qa = load_u32_a2(b + 64 * n + l0);
    const uint32_t qb = load_u32_a2(b + 64 * n + 32 + l0);
    const uint32_t qh = load_u32_a2(b + 128 + 32 * n + l0);
    const float d = half_to_float(load_u16(b + 208));
    const uint8_t* scp = b + 192 + 8 * n + l0 / 16;
    for (int j = 0; j < 4; ++j) scale[j] = d * float(int8_t(load_u8(scp + 2 * j)));
    // Byte k of word j: the 6-bit value of element 128n + 32j + l0 + k (high bits into bits 4, 5).
    const uint32_t m4 = 0x0F0F0F0Fu, m2 = 0x30303030u;
    const uint32_t wj[4] = {(qa & m4) | ((qh << 4) & m2), (qb & m4) | ((qh << 2) & m2),
                            ((qa >> 4) & m4) | (qh & m2), ((qb >> 4) & m4) | ((qh >> 2) & m2)};
    for (int j = 0; j < 4; ++j)
      for (int i = 0; i < 4; ++i) q[4 * j + i] = byte_value(wj[j], i, MAGIC_F + 32.0f);
  }
};

// Decodes a whole block into out[VALUES] through the chunk decoders (the CPU test's entry point).
template <class T>
inline void decode_block(const uint8_t* blk, float* out) {
  float v[T::NRUN * T::RUN];
  for (int c = 0; c < T::CHUNKS; ++c) {
    T::decode(blk, c, false, v);
    for (int r = 0; r < T::NRUN; ++r)
      for (int i = 0; i < T::RUN; ++i) out[T::run_start(c, r) + i] = v[r * T::RUN + i];
  }
}

}  // namespace hearth::cuda::qd
