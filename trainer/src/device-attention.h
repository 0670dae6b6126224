/* Internal: causal grouped-query attention for the trainer's CUDA path, forward and backward, with the
 * CPU ops' definition and layouts (trainer/src/ops.h attention_forward / attention_backward): q
 * (B·T, n_head, hd), k and v (B·T, n_head_kv, hd), out (B·T, n_head, hd), att (B, n_head, T, T) the
 * softmax probabilities kept for backward (upper triangle written as 0), scale 1/sqrt(hd), head h reads
 * kv head h / (n_head / n_head_kv). Backward ACCUMULATES into dq, dk, dv (each may be null).
 *
 * Non-obvious choice: the products run as cuBLAS strided-batched GEMMs over (batch row, kv head), with
 * q and the output permuted to head-major (B, n_head, T, hd) so that the n_head / n_head_kv query heads
 * of one kv head are one (group·T, hd) matrix: scores = Q_g · K^T, out = P · V, and in backward
 * dV = P^T · dO and dK = dS^T · Q_g sum over the group inside the GEMM (k = group·T), with no atomics and
 * no separate reduction. The upper triangle is computed and masked (2× the causal FLOPs) in exchange for
 * cuBLAS's full rate; the softmax and its backward are one kernel each (train-kernels.h).
 *
 * Precision follows the TrainBlas operands: `bf16` converts the GEMM inputs to BF16 in scratch (the
 * probabilities and dS included) and accumulates in F32; otherwise everything is F32.
 * Compiled only with the CUDA backend (HEARTH_HAVE_CUDA).
 */
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "hearth/error.h"
#include "train-blas.h"

namespace hearth::train::cuda {

struct AttnShape {
  int64_t B = 0, T = 0, n_head = 0, n_head_kv = 0, hd = 0;
};

// Device scratch (bytes) attention_forward / attention_backward need for `s` (the largest shape of a run
// can be allocated once and reused).
uint64_t attention_scratch_bytes(const AttnShape& s, bool bf16);

// Errors: invalid_argument (n_head not a multiple of n_head_kv, non-positive sizes), internal (a kernel
// or cuBLAS failure, with its text). Work is enqueued on blas's stream.
Expected<void> attention_forward(TrainBlas& blas, bool bf16, float* out, float* att, const float* q, const float* k,
                                 const float* v, const AttnShape& s, void* scratch);
// Only the probabilities of attention_forward (att, bit for bit the same values), for a trainer that
// recomputes them in backward instead of keeping every layer's (B · n_head · T² floats each).
Expected<void> attention_probs(TrainBlas& blas, bool bf16, float* att, const float* q, const float* k,
                               const AttnShape& s, void* scratch);
Expected<void> attention_backward(TrainBlas& blas, bool bf16, float* dq, float* dk, float* dv, const float* dout,
                                  const float* att, const float* q, const float* k, const float* v,
                                  const AttnShape& s, void* scratch);

}  // namespace hearth::train::cuda
