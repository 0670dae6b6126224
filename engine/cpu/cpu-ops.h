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
#include <memory>
#include <span>

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
  // The rows are stored interleaved eight at a time (quant-dot.h's X8 layout of `type`); n_rows % 8 == 0.
  // row_bytes is still one row's size.
  bool x8 = false;
};

// Row `r` of `w` as F32 into dst[row_len].
void dequantize_row(const MatView& w, int64_t r, float* dst);

// y[t * w.n_rows + r] = dot(row r of w, x[t * w.row_len ...]) for t < n_tok.
// `quant_dot`: allow the quantized-activation kernels (quant-dot.h) for small batches.
void matmul(ThreadPool& pool, const MatView& w, const float* x, int64_t n_tok, float* y, bool quant_dot = true);

// Decoding (one token): ys[i] = ws[i] x for matrices that read the same x (q, k and v), in one parallel
// job with x quantized once per activation format. The same values as matmul() of each.
void matvec_multi(ThreadPool& pool, std::span<const MatView* const> ws, const float* x, std::span<float* const> ys,
                  bool quant_dot = true);
// Decoding: out[i] = silu((gate x)[i]) * (up x)[i], both products and the product of the two in one
// parallel job (each thread takes the same rows of gate and up). The same values as the separate steps.
void matvec_swiglu(ThreadPool& pool, const MatView& gate, const MatView& up, const float* x, float* out,
                   bool quant_dot = true);

// The view decoding should use for `w`: for a matrix whose rows come in eights and whose type has a
// profitable interleaved kernel (quant_dot_x8_for), a copy with the rows
// interleaved (x8), made with `pool` and shared by every caller holding `keep` for the same stored matrix;
// otherwise `w` itself (and `keep` is reset). Returns whether a copy is in use.
bool decode_view(const MatView& w, ThreadPool& pool, MatView& out, std::shared_ptr<const void>& keep);

// Dot product of two F32 vectors (AVX2/FMA when the CPU has them).
float dot_f32(const float* a, const float* b, int64_t n);
// y += a * x
void axpy_f32(float a, const float* x, float* y, int64_t n);

// out = x / rms(x) * w  (w may be null: no weight)
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out);

// Which SIMD level the kernels use ("avx2" or "generic").
const char* simd_level();

}  // namespace hearth::cpu
