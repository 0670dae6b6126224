/* Internal: the CPU kernels of the forward pass — matrix products against weights in their stored
 * type, RMSNorm, RoPE, SwiGLU, softmax — and the F32 dot product with run-time SIMD dispatch.
 *
 * Non-obvious choice: a weight is never converted as a whole. Each thread dequantizes a tile of rows
 * into a small F32 buffer and dots it with every token of the batch, so the weights stay in their
 * mapped, stored form (no copy, no extra memory) and a tile is reused across a prompt's tokens.
 * Quantized weights with a matching vec-dot kernel (cpu-quant-dot.cpp) skip the buffer for decoding.
 *
 * Thread-safety: the functions are pure apart from the pool they are given.
 */
#pragma once

#include <cstdint>

#include "hearth/tensor-types.h"
#include "thread-pool.h"

namespace hearth::cpu {

// A weight matrix as stored: n_rows rows of row_len elements of `type`.
struct MatView {
  GgmlType type = GgmlType::F32;
  const uint8_t* data = nullptr;
  int64_t row_len = 0;
  int64_t n_rows = 0;
  uint64_t row_bytes = 0;
};

// Row `r` of `w` as F32 into dst[row_len].
void dequantize_row(const MatView& w, int64_t r, float* dst);

// y[t * w.n_rows + r] = dot(row r of w, x[t * w.row_len ...]) for t < n_tok.
// `quant_dot`: allow the quantized-activation kernels (quant-dot.h) for small batches.
void matmul(ThreadPool& pool, const MatView& w, const float* x, int64_t n_tok, float* y, bool quant_dot = true);

// Dot product of two F32 vectors (AVX2/FMA when the CPU has them).
float dot_f32(const float* a, const float* b, int64_t n);
// y += a * x
void axpy_f32(float a, const float* x, float* y, int64_t n);

// out = x / rms(x) * w  (w may be null: no weight)
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out);

// Which SIMD level the kernels use ("avx2" or "generic").
const char* simd_level();

}  // namespace hearth::cpu
