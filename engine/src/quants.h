/* Internal: block layouts of ggml's quantized types and the per-type row kernels behind
 * hearth::dequantize() / hearth::quantize() (tensor-types.cpp dispatches here).
 *
 * Non-obvious choice: blocks are read and written through byte offsets with memcpy, never by casting to a
 * packed struct, because a tensor inside a mapped file (or a fuzzer's buffer) need not be aligned for the
 * struct's fp16/fp32 members; compilers turn these memcpys into plain loads.
 */
#pragma once

#include <cstdint>
#include <algorithm>
#include <cstring>

namespace hearth::quants {

constexpr int QK = 32;    // elements per block of the Q4_0 .. Q8_1 family
constexpr int QK_K = 256; // elements per super-block of the K-quants

// Bytes per block, as in ggml-common.h.
constexpr int Q4_0_BYTES = 2 + QK / 2;                 // d, qs[16]
constexpr int Q4_1_BYTES = 2 + 2 + QK / 2;             // d, m, qs[16]
constexpr int Q5_0_BYTES = 2 + 4 + QK / 2;             // d, qh[4], qs[16]
constexpr int Q5_1_BYTES = 2 + 2 + 4 + QK / 2;         // d, m, qh[4], qs[16]
constexpr int Q8_0_BYTES = 2 + QK;                     // d, qs[32]
constexpr int Q8_1_BYTES = 2 + 2 + QK;                 // d, s, qs[32]
constexpr int Q2_K_BYTES = QK_K / 16 + QK_K / 4 + 2 + 2;          // scales[16], qs[64], d, dmin
constexpr int Q3_K_BYTES = QK_K / 8 + QK_K / 4 + 12 + 2;          // hmask[32], qs[64], scales[12], d
constexpr int Q4_K_BYTES = 2 + 2 + 12 + QK_K / 2;                 // d, dmin, scales[12], qs[128]
constexpr int Q5_K_BYTES = 2 + 2 + 12 + QK_K / 8 + QK_K / 2;      // d, dmin, scales[12], qh[32], qs[128]
constexpr int Q6_K_BYTES = QK_K / 2 + QK_K / 4 + QK_K / 16 + 2;   // ql[128], qh[64], scales[16], d
constexpr int Q8_K_BYTES = 4 + QK_K + 2 * (QK_K / 16);            // d (f32), qs[256], bsums[16]

float half_to_float(uint16_t h);
// All 65536 halves as floats (built once, thread-safe): the fast path of the decoders.
const float* half_table();
uint16_t float_to_half(float f);

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline float load_half(const uint8_t* p) { return half_to_float(load_u16(p)); }
inline void store_half(uint8_t* p, float f) {
  uint16_t h = float_to_half(f);
  std::memcpy(p, &h, 2);
}

// Nearest integer to v (halves up), clamped to [lo, hi], lo >= -1024. Clamping in float first keeps
// the conversion defined for any finite v; the +1024 bias makes truncation act as floor, so the whole
// thing is branch-free (it sits in the innermost loop of every quantizer).
inline int round_clamp(float v, int lo, int hi) {
  v = std::min(std::max(v, float(lo)), float(hi));
  return int(v + 1024.5f) - 1024;
}

// Fits x[i] ≈ a * q[i] + b, q[i] an integer in [0, nmax], over a few candidate grids each refined by
// least squares. With `offset_nonpositive`, b <= 0 (the K-quants store -b as an unsigned "min").
struct AffineFit {
  float a, b;
};
AffineFit fit_affine(const float* x, int n, int nmax, bool offset_nonpositive);
// Fits x[i] ≈ d * q[i], q[i] an integer in [qmin, qmax] (qmin < 0 < qmax); d may be negative.
float fit_symmetric(const float* x, int n, int qmin, int qmax);

// Each kernel converts `nb` whole blocks.
void dequantize_q4_0(const uint8_t* x, float* y, int64_t nb);
void dequantize_q4_1(const uint8_t* x, float* y, int64_t nb);
void dequantize_q5_0(const uint8_t* x, float* y, int64_t nb);
void dequantize_q5_1(const uint8_t* x, float* y, int64_t nb);
void dequantize_q8_0(const uint8_t* x, float* y, int64_t nb);
void dequantize_q8_1(const uint8_t* x, float* y, int64_t nb);
void dequantize_q2_k(const uint8_t* x, float* y, int64_t nb);
void dequantize_q3_k(const uint8_t* x, float* y, int64_t nb);
void dequantize_q4_k(const uint8_t* x, float* y, int64_t nb);
void dequantize_q5_k(const uint8_t* x, float* y, int64_t nb);
void dequantize_q6_k(const uint8_t* x, float* y, int64_t nb);
void dequantize_q8_k(const uint8_t* x, float* y, int64_t nb);

// Inputs must be finite (the caller checks).
void quantize_q4_0(const float* x, uint8_t* y, int64_t nb);
void quantize_q4_1(const float* x, uint8_t* y, int64_t nb);
void quantize_q5_0(const float* x, uint8_t* y, int64_t nb);
void quantize_q5_1(const float* x, uint8_t* y, int64_t nb);
void quantize_q8_0(const float* x, uint8_t* y, int64_t nb);
void quantize_q2_k(const float* x, uint8_t* y, int64_t nb);
void quantize_q3_k(const float* x, uint8_t* y, int64_t nb);
void quantize_q4_k(const float* x, uint8_t* y, int64_t nb);
void quantize_q5_k(const float* x, uint8_t* y, int64_t nb);
void quantize_q6_k(const float* x, uint8_t* y, int64_t nb);

}  // namespace hearth::quants
