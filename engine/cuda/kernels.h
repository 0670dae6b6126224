/* Internal: the CUDA backend's inference kernels, as host functions that enqueue work on a stream.
 *
 * Conventions (every function):
 * - Pointers are DEVICE pointers unless named *_host. Matrices are row-major. A weight "row" is the k
 *   inputs of one output, stored exactly as in the GGUF file (blocks of its GgmlType, row_bytes each).
 * - Work is enqueued on `stream`; nothing synchronizes. The return value is the launch status
 *   (cudaGetLastError() after the launch, or cudaErrorInvalidValue for arguments the kernel cannot take).
 * - F16 and BF16 values are passed as uint16_t bit patterns so that this header needs no CUDA half types
 *   and can be included by plain C++ (engine/src/cuda-runner.cpp).
 * - Values that change every decoded token (the position) are read from device memory (`pos_dev`), so a
 *   decode step can be captured once in a CUDA graph and replayed with only that integer updated.
 *
 * Non-obvious choice: arithmetic is F32 everywhere (accumulation included); quantized weights are
 * dequantized in registers inside the matrix-vector kernels (never to a full F32 copy), and only prefill
 * dequantizes a whole matrix, to BF16, for cuBLAS.
 */
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "hearth/tensor-types.h"

namespace hearth::cuda {

// ---- Weights --------------------------------------------------------------------------------------

// Types matvec(), get_rows() and dequantize_bf16() accept: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K.
bool weight_type_supported(GgmlType type);

// Up to this many tokens matvec() reads the weights once for all of them; more go through cuBLAS.
constexpr int64_t MATVEC_MAX_TOKENS = 8;

// y[t * n_rows + r] = sum_i W[r][i] * x[t * k + i] for r < n_rows, t < n_tok (1 <= n_tok <=
// MATVEC_MAX_TOKENS). k must be a multiple of the type's block size.
cudaError_t matvec(GgmlType type, const void* w, uint64_t row_bytes, int64_t n_rows, int64_t k, const float* x,
                   int64_t n_tok, float* y, cudaStream_t stream);

// out[r * k + i] = W[r][i] as BF16 (round to nearest even) for r < n_rows: the A operand of a prefill GEMM.
cudaError_t dequantize_bf16(GgmlType type, const void* w, uint64_t row_bytes, int64_t n_rows, int64_t k,
                            uint16_t* out, cudaStream_t stream);

// out[t * row_len + i] = table[ids[t]][i] in F32 (token embedding). ids are validated by the caller.
cudaError_t get_rows(GgmlType type, const void* table, uint64_t row_bytes, int64_t row_len, const int32_t* ids,
                     int64_t n, float* out, cudaStream_t stream);

// y[i] = BF16(x[i]), round to nearest even (activations for a BF16 GEMM).
cudaError_t f32_to_bf16(const float* x, uint16_t* y, int64_t n, cudaStream_t stream);
// y[i] = F16(x[i]), round to nearest even (activations for an F16 GEMM).
cudaError_t f32_to_f16(const float* x, uint16_t* y, int64_t n, cudaStream_t stream);

// ---- Element-wise and normalization ---------------------------------------------------------------

// out[r][i] = x[r][i] / sqrt(mean_i(x[r][i]^2) + eps) * (w ? w[i] : 1), for r < n_rows, i < n.
// In place (out == x) allowed. Used per token (n = n_embd) and per head (q/k norm: n = head_dim).
cudaError_t rms_norm(const float* x, const float* w, float* out, int64_t n_rows, int64_t n, float eps,
                     cudaStream_t stream);

// x[r][i] += b[i] for r < n_rows, i < n.
cudaError_t add_bias(float* x, const float* b, int64_t n_rows, int64_t n, cudaStream_t stream);

// x[i] += y[i] for i < n (the residual).
cudaError_t add(float* x, const float* y, int64_t n, cudaStream_t stream);

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). In place (out == gate) allowed.
cudaError_t swiglu(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream);

// RoPE in place on x[t][h * head_dim + ...] for t < n_tok, h < n_heads, at position *pos_dev + t.
// Pair i (i < head_dim/2) is (2i, 2i+1) when `interleaved`, else (i, i + head_dim/2); its angle is
// (position * pos_scale) * inv_freq[i] (inv_freq: head_dim/2 device values, frequency scaling applied),
// computed in double precision as the CPU backend does.
cudaError_t rope(float* x, int64_t n_tok, int64_t n_heads, int64_t head_dim, const int32_t* pos_dev,
                 const double* inv_freq, double pos_scale, bool interleaved, cudaStream_t stream);

// ---- KV cache and attention -----------------------------------------------------------------------
// The cache of one layer: K and V, each [n_ctx][kv_dim] F16 (kv_dim = n_head_kv * head_dim).

// Rows *pos_dev + t of k_cache / v_cache = F16(k[t]) / F16(v[t]) for t < n_tok.
cudaError_t kv_store(const float* k, const float* v, uint16_t* k_cache, uint16_t* v_cache, int64_t n_tok,
                     int64_t kv_dim, const int32_t* pos_dev, cudaStream_t stream);

struct AttentionShape {
  int64_t n_tok = 1;      // queries, at positions *pos_dev + t
  int64_t n_head = 0;     // query heads
  int64_t n_head_kv = 0;  // key/value heads; query head h uses kv head h / (n_head / n_head_kv)
  int64_t head_dim = 0;   // 64, 80, 96, 128 or 256
  int64_t n_ctx = 0;      // rows in the cache (bound on *pos_dev + n_tok)
  float scale = 0;        // usually 1 / sqrt(head_dim)
};

// Causal attention: out[t][h * head_dim + d] = sum_{j <= pos + t} softmax_j(scale * q_t,h . K[j]) V[j][d]
// (softmax in F32 with the running-maximum rescaling). n_tok == 1 uses a split-KV kernel (the keys are
// divided among blocks and the partial results merged, so one token still fills the GPU); n_tok > 1 a
// fused tiled kernel. `scratch` holds attention_scratch_bytes(shape) bytes (may be null when that is 0).
size_t attention_scratch_bytes(const AttentionShape& shape);
cudaError_t attention(const float* q, const uint16_t* k_cache, const uint16_t* v_cache, float* out,
                      const AttentionShape& shape, const int32_t* pos_dev, void* scratch, cudaStream_t stream);

}  // namespace hearth::cuda
