/* Internal: the trainer's CUDA kernels (backward passes, fused softmax cross-entropy, AdamW, BF16 casts,
 * the global gradient norm), as host functions that enqueue work on a stream. Each mirrors one CPU op
 * of trainer/src/ops.h or optim.cpp: same definition, same eps and scaling, the same order of float
 * operations where that order is cheap to keep.
 *
 * Conventions (every function), as engine/cuda/kernels.h:
 * - Pointers are DEVICE pointers unless named *_host. Matrices are row-major (N rows of d values).
 * - Work is enqueued on `stream`; nothing synchronizes. The return value is the launch status
 *   (cudaGetLastError() after the launches, or cudaErrorInvalidValue for arguments the kernels cannot
 *   take: negative sizes, a null pointer that is needed, an odd head_dim, a step t < 1).
 * - Backward functions ACCUMULATE (+=) into their gradients, as the CPU ops do; a null gradient pointer
 *   means "not wanted". Outputs that are not gradients (casts, dlogits, losses) are written (=).
 * - BF16 values are uint16_t bit patterns (round to nearest even, NaN kept quiet, as
 *   hearth::fp32_to_bf16), so this header needs no CUDA half types and plain C++ can include it.
 * - No float atomics anywhere: every reduction has a fixed shape (per-block partials, then one pass
 *   adding them in index order), so results are bit-identical run to run.
 *
 * Non-obvious choice: the library is compiled with --fmad=false, so a·b + c is never contracted into an
 * FMA behind the source's back; AdamW's FMAs are written out (fmaf) exactly where the CPU's are. With
 * IEEE division and square root, AdamW, SwiGLU's algebra, RoPE and the embedding scatter then perform
 * the CPU's float operations one for one; the reductions differ from the CPU only in summation order.
 *
 * The device trainer (trainer/src/device-trainer.cpp) calls them; tests/gpu/test-cuda-train-kernels.cpp
 * checks each against its CPU op.
 */
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace hearth::train::cuda {

enum class DType { f32, bf16 };

// ---- Mixed precision -------------------------------------------------------------------------------

// y[i] = BF16(x[i]) (round to nearest even), i < n.
cudaError_t f32_to_bf16(const float* x, uint16_t* y, int64_t n, cudaStream_t stream);
// y[i] = F32(x[i]) (exact), i < n.
cudaError_t bf16_to_f32(const uint16_t* x, float* y, int64_t n, cudaStream_t stream);

// ---- Optimizer -------------------------------------------------------------------------------------

// One AdamW step of torch.optim.AdamW (as hearth::train::AdamW::step): for i < n,
//   p = w·f32(1 - lr·wd) (only when decay and wd != 0); m = fma(g, 1-b1, m·b1);
//   v = fma((1-b2)·g, g, v·b2); w = p + (f32(-lr/bc1)·m) / (sqrt(v)/f32(sqrt(bc2)) + eps),
// bc_k = 1 - beta_k^t in double. w, m, v are the F32 master weights and moments (updated in place);
// when w_bf16 is not null it receives BF16(w) for the next forward pass. t >= 1 is the step count
// after this step (AdamW::steps_taken() + 1).
struct AdamWStep {
  double lr = 0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  int64_t t = 1;
  bool decay = true;  // Param::decay
};
cudaError_t adamw_step(float* w, const float* g, float* m, float* v, uint16_t* w_bf16, int64_t n,
                       const AdamWStep& step, cudaStream_t stream);

// Global gradient norm over several tensors, as hearth::train::clip_grad_norm: a sum of squares in
// double per block of GRAD_NORM_BLOCK elements of each tensor, then the blocks added in order.
// `grads_host[k]` is a device pointer to tensor k's sizes_host[k] floats (host arrays of n_tensors).
// `partials` is device scratch of grad_norm_partials(sizes_host, n_tensors) doubles. Writes
// out[0] = sum of squares and out[1] = its square root (the norm), both device doubles.
constexpr int64_t GRAD_NORM_BLOCK = 8192;
int64_t grad_norm_partials(const int64_t* sizes_host, int n_tensors);
cudaError_t grad_norm(const float* const* grads_host, const int64_t* sizes_host, int n_tensors, double* partials,
                      double* out, cudaStream_t stream);
// Clipping without a round trip to the host: with norm = norm_dev[0] (pass grad_norm's out + 1),
// when max_norm > 0, the norm is finite and c = max_norm / (norm + 1e-6) < 1, x[i] *= f32(c); else
// nothing changes. Call once per tensor.
cudaError_t clip_by_norm(float* x, int64_t n, const double* norm_dev, double max_norm, cudaStream_t stream);
// x[i] *= c, i < n.
cudaError_t scale(float* x, int64_t n, float c, cudaStream_t stream);

// ---- Loss ------------------------------------------------------------------------------------------

// What cross_entropy() leaves in device memory.
struct CrossEntropyStats {
  double loss_sum = 0;     // sum over counted rows of logsumexp(row) - row[target]
  double loss_mean = 0;    // loss_sum / n_counted (0 when nothing was counted)
  int64_t n_counted = 0;   // rows with 0 <= target < vocab
  int64_t n_bad = 0;       // rows with target >= vocab: not counted, gradient 0; the caller must fail
};

// Fused softmax cross-entropy over rows of logits (n_rows, vocab), F32 or BF16, as the loss half of
// hearth::train::ops::classifier_forward_backward: rows with target < 0 are ignored; the loss is the
// mean over counted rows. row_loss (n_rows doubles, device) receives each row's loss (0 when ignored).
// When dlogits is not null it receives (=) grad_scale · d(loss_mean)/d(logits), i.e. for a counted row
// (softmax(row) - onehot(target)) · grad_scale / n_counted, and 0 for ignored rows; dlogits may be the
// logits themselves (same type; in place) or another buffer of type dlogits_type. `stats` is one device
// CrossEntropyStats. Softmax: max-shifted, exponentials summed in double as the CPU.
cudaError_t cross_entropy(const void* logits, DType logits_type, void* dlogits, DType dlogits_type,
                          const int32_t* targets, int64_t n_rows, int64_t vocab, float grad_scale, double* row_loss,
                          CrossEntropyStats* stats, cudaStream_t stream);

// ---- Normalization, activation, position -----------------------------------------------------------

// As ops::rmsnorm_forward: y = x · rstd · w with rstd = 1/sqrt(mean(x²) + eps) (sum of squares in
// double); rstd (n, may be null) is kept for the backward pass. In place (y == x) allowed.
cudaError_t rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, int64_t n, int64_t d, float eps,
                            cudaStream_t stream);
// As ops::rmsnorm_backward: dx (n, d) += rstd·w·dy - c·x with c = f32(Σ dy·w·x · rstd³ / d) (sum in
// double); dw (d) += Σ_rows dy·x·rstd (F32), summed per block of RMSNORM_DW_ROWS rows into `partials`
// (device scratch, rmsnorm_dw_partials(n, d) floats; may be null when dw is) and then over the blocks
// in order. dx and dw may each be null.
constexpr int64_t RMSNORM_DW_ROWS = 64;
int64_t rmsnorm_dw_partials(int64_t n, int64_t d);
cudaError_t rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd,
                             int64_t n, int64_t d, float* partials, cudaStream_t stream);

// As ops::swiglu_forward / swiglu_backward: h = silu(g)·u; dg += dh·u·σ(g)·(1 + g(1 - σ(g))),
// du += dh·g·σ(g) (either may be null). The forward may write over gate or up.
cudaError_t swiglu_forward(float* h, const float* gate, const float* up, int64_t n, cudaStream_t stream);
cudaError_t swiglu_backward(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n,
                            cudaStream_t stream);

// As ops::rope_forward / rope_backward (double frequencies): in place on x (B·T, n_heads, head_dim),
// row r at position r % T, pair i (< head_dim/2) is (2i, 2i+1) when `interleaved`, else
// (i, i + head_dim/2); angle = position · inv_freq[i] in double (inv_freq: head_dim/2 device doubles),
// cos and sin rounded to float. Backward applies the inverse rotation to the gradient.
cudaError_t rope_forward(float* x, int64_t B, int64_t T, int64_t n_heads, int64_t head_dim, const double* inv_freq,
                         bool interleaved, cudaStream_t stream);
cudaError_t rope_backward(float* dx, int64_t B, int64_t T, int64_t n_heads, int64_t head_dim, const double* inv_freq,
                          bool interleaved, cudaStream_t stream);

// ---- Embedding -------------------------------------------------------------------------------------

// As ops::embedding_backward: dtable[tokens[r]] += dx[r] for every row r, repeated tokens added in row
// order. `plan` is the device copy of EmbeddingGradPlan::packed (train-plan.h, built on the host from
// the token ids, which also validates them): each of its n_segments distinct tokens is owned by one
// block, which adds that token's rows in order, so the result is deterministic and equals the CPU's.
cudaError_t embedding_backward(float* dtable, const float* dx, const int32_t* plan, int64_t n_segments, int64_t n_rows,
                               int64_t d, cudaStream_t stream);

// ---- Added for the device trainer (trainer/src/device-trainer.cpp) ----------------------------------

// As ops::dropout_forward / dropout_backward: the same counter hash of (seed, index), so the masks are the
// CPU's bit for bit. Forward writes out = x · mask / (1 - p) (out may equal x; p == 0 copies unless
// out == x); backward ACCUMULATES dout · mask / (1 - p) into dx.
cudaError_t dropout_forward(float* out, const float* x, int64_t n, float p, uint64_t seed, cudaStream_t stream);
cudaError_t dropout_backward(float* dx, const float* dout, int64_t n, float p, uint64_t seed, cudaStream_t stream);

// dbias (out) += column sums of dy (n, out) (a Linear's bias gradient), summed per block of
// BIAS_GRAD_ROWS rows into `partials` (bias_grad_partials(n, out) floats of device scratch), then over
// the blocks in order: deterministic.
constexpr int64_t BIAS_GRAD_ROWS = 64;
int64_t bias_grad_partials(int64_t n, int64_t out);
cudaError_t bias_backward(float* dbias, const float* dy, int64_t n, int64_t out, float* partials, cudaStream_t stream);

// Interleaved (GGUF llama) <-> half-split (Hugging Face) columns of (n, heads·hd) rows, as
// train-model.cpp's perm_to_hf / perm_from_hf: stored column 2i+s of a head is Hugging Face column
// s·hd/2 + i. dst and src must not overlap.
cudaError_t qk_to_hf(float* dst, const float* src, int64_t n, int64_t heads, int64_t hd, cudaStream_t stream);
cudaError_t qk_from_hf(float* dst, const float* src, int64_t n, int64_t heads, int64_t hd, cudaStream_t stream);

// x[i] += y[i] (gradients, residuals), i < n.
cudaError_t add_inplace(float* x, const float* y, int64_t n, cudaStream_t stream);

// Attention helpers (trainer/src/device-attention.cpp). Head-major permutes between the ops layout
// (B·T, H, hd) and (B, H, T, hd); from_head_major ACCUMULATES when `accumulate`.
cudaError_t to_head_major(float* dst, const float* src, int64_t B, int64_t T, int64_t H, int64_t hd,
                          cudaStream_t stream);
cudaError_t from_head_major(float* dst, const float* src, int64_t B, int64_t T, int64_t H, int64_t hd,
                            bool accumulate, cudaStream_t stream);
// Causal softmax in place over rows of scores (B·n_head, T, T) (row i of each T×T matrix is position i):
// p[j] = exp(scale·s[j] - max) · f32(1/sum) for j <= i (max and sum over j <= i; exp is the CPU
// attention's exp_fast, the sum in double as the CPU's), p[j] = 0 for j > i. One warp per row. When p_bf16
// is not null it also receives BF16(p).
cudaError_t causal_softmax(float* scores, uint16_t* p_bf16, int64_t n_mat, int64_t T, float scale,
                           cudaStream_t stream);
// Softmax backward in place: ds[j] = scale · p[j] · (dp[j] - sum_k p[k]·dp[k]) over rows of (n_mat, T, T)
// (the sum over k <= i in double, rounded to float as the CPU's; ds[j] = 0 for j > i); dp is overwritten
// by ds. When ds_bf16 is not null it also receives BF16(ds).
cudaError_t softmax_backward(float* dp, uint16_t* ds_bf16, const float* p, int64_t n_mat, int64_t T, float scale,
                             cudaStream_t stream);

}  // namespace hearth::train::cuda
