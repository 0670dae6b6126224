/* The trainer's operations on the CPU, forward and backward side by side (llm.c's layout), all F32,
 * row-major, PyTorch conventions: a Linear weight W is {out, in}; activations are (N, channels) with
 * N = B·T rows.
 *
 * Conventions every function follows:
 * - Backward functions ACCUMULATE (+=) into the gradients they are given; any gradient pointer may be
 *   null (not wanted, e.g. a frozen weight or the input of the first layer).
 * - Threads: OpenMP parallel loops with static schedules and OpenBLAS sgemm; no atomics, so results
 *   are bit-identical run to run for one thread count. Calls from several threads at once are safe
 *   (no shared mutable state besides the thread count), they just share the cores. Bad shapes/ids throw (std::invalid_argument / out_of_range);
 *   the trainer's public functions turn that into hearth::Error.
 * - Element-wise kernels are compiled for AVX-512, AVX2 and baseline x86-64 and give identical bits
 *   on each (no FMA contraction, fixed reduction order); exp is a vectorizable ~1-ulp polynomial.
 * - Each is checked by finite differences in tests/trainer/test-ops.cpp.
 */
#pragma once

#include <cstdint>
#include <vector>

#include "hearth/model.h"

namespace hearth::train::ops {

// y (n, out) = x (n, in) · W^T (+ bias (out)). When accumulate, y += instead of =.
void linear_forward(float* y, const float* x, const float* w, const float* bias, int64_t n, int64_t in,
                    int64_t out, bool accumulate = false);
// dx (n, in) += dy · W; dw (out, in) += dy^T · x; dbias (out) += column sums of dy.
void linear_backward(float* dx, float* dw, float* dbias, const float* dy, const float* x, const float* w,
                     int64_t n, int64_t in, int64_t out);

// Plain matrix product helpers over sgemm: c (m, n) = alpha · a (m, k) · b (k, n) + beta · c, with
// optional transposes of a and b as stored (row-major). Spread over threads() as a grid of blocks of c,
// each a single-threaded OpenBLAS call (set_threads keeps OpenBLAS itself at one thread), so use this
// rather than cblas_sgemm directly; do not call it from inside an OpenMP parallel region.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          const float* b, float beta, float* c);

// y (n, d) = x / rms(x) · w, rms = sqrt(mean(x²) + eps); rstd (n) saves 1/rms for backward (may be null
// when no backward follows).
void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, int64_t n, int64_t d, float eps);
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      const float* rstd, int64_t n, int64_t d);

// Rotary embedding, in place, on (B·T, n_heads, head_dim) q or k rows; position of row r is r % T.
// `inv_freq` (head_dim/2) are the angular frequencies (scaling applied); layout half_split pairs
// (i, i + head_dim/2), interleaved pairs (2i, 2i+1). Backward applies the inverse rotation to the
// gradient (in place). The cos/sin table of the last (T, frequencies) is kept per calling thread.
void rope_forward(float* x, int64_t B, int64_t T, int64_t n_heads, int64_t head_dim,
                  const std::vector<float>& inv_freq, RopeLayout layout);
void rope_backward(float* dx, int64_t B, int64_t T, int64_t n_heads, int64_t head_dim,
                   const std::vector<float>& inv_freq, RopeLayout layout);
// The angular frequencies of a model (theta, linear and llama3 scaling), head_dim/2 values. Linear
// scaling is folded in (frequency / factor). The ModelParams form computes llama3 divisors with
// hearth::rope_freq_factors and throws std::invalid_argument when factor/original_ctx are unknown (a GGUF
// that only stores rope_freqs.weight); the ModelDesc form uses ModelDesc::rope_freq_factors, exactly as
// the engine's forward pass does, so prefer it when a ModelDesc is at hand.
std::vector<float> rope_inv_freq(const ModelParams& p);
std::vector<float> rope_inv_freq(const ModelDesc& md);
// The same frequencies in double, and rope overloads taking them: angles then match the engine's
// inference RoPE to the last bit (a float frequency is off by up to ~1e-4 rad at position 2048).
std::vector<double> rope_inv_freq_f64(const ModelParams& p);
std::vector<double> rope_inv_freq_f64(const ModelDesc& md);
void rope_forward(float* x, int64_t B, int64_t T, int64_t n_heads, int64_t head_dim,
                  const std::vector<double>& inv_freq, RopeLayout layout);
void rope_backward(float* dx, int64_t B, int64_t T, int64_t n_heads, int64_t head_dim,
                   const std::vector<double>& inv_freq, RopeLayout layout);

// Causal grouped-query attention. q (B·T, n_head, hd), k and v (B·T, n_head_kv, hd);
// out (B·T, n_head, hd); att (B, n_head, T, T) keeps the softmax probabilities for backward.
// Scale 1/sqrt(hd). Head h reads kv head h / (n_head / n_head_kv). att's upper triangle is written as 0.
// Backward reads att (not recomputed); with n_head_kv < n_head it keeps a scratch of 2·B·T·n_head·hd
// floats per calling thread (thread_local, reused). Throws std::invalid_argument when n_head is not a
// multiple of n_head_kv.
void attention_forward(float* out, float* att, const float* q, const float* k, const float* v, int64_t B,
                       int64_t T, int64_t n_head, int64_t n_head_kv, int64_t hd);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* att, const float* q,
                        const float* k, const float* v, int64_t B, int64_t T, int64_t n_head,
                        int64_t n_head_kv, int64_t hd);

// h = silu(gate) ⊙ up, n values.
void swiglu_forward(float* h, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n);

// x (n, d) = table (vocab, d) rows of tokens (ids must be < vocab: the caller checks; negative ids
// throw std::out_of_range); backward scatters dx rows into dtable (sequentially: one
// thread per column block, so it stays deterministic).
void embedding_forward(float* x, const float* table, const int32_t* tokens, int64_t n, int64_t d);
void embedding_backward(float* dtable, const float* dx, const int32_t* tokens, int64_t n, int64_t d);

// Fused classifier: logits = x (n, d) · W^T (W {vocab, d}), softmax, cross-entropy against targets
// (< 0: ignored), processed in chunks of rows so at most chunk × vocab logits exist at once.
// Returns the SUM of the losses over counted rows and sets *n_counted. When dx/dw are given, adds
// grad_scale · d(sum loss / n_norm)/d(x, W) into them, with n_norm = the number of counted rows
// (the loss is a mean). `scratch` is reused between calls. A target >= vocab throws std::out_of_range.
// Cost note: dW is updated once per chunk (a full pass over the vocab × d gradient), so use a chunk of
// a few hundred rows when dw is wanted and memory allows.
double classifier_forward_backward(float* dx, float* dw, const float* x, const float* w, const int32_t* targets,
                                   int64_t n, int64_t d, int64_t vocab, float grad_scale, int64_t* n_counted,
                                   std::vector<float>& scratch, int64_t chunk = 64);

// Per-head RMS norm (qwen3 q/k norm): x (rows, hd) normalised with weight w (hd). Same as rmsnorm:
// call rmsnorm_forward/backward on q as (B·T·n_head, head_dim) rows (rstd then has B·T·n_head values).

// Dropout mask for LoRA inputs: out = x · mask / (1 - p), mask from a counter-based hash of
// (seed, index), so it is reproducible and independent of threads. Returns nothing when p == 0
// (out = x; out may equal x). Use a different seed per call site and step. Backward ACCUMULATES
// dout · mask / (1 - p) into dx.
void dropout_forward(float* out, const float* x, int64_t n, float p, uint64_t seed);
void dropout_backward(float* dx, const float* dout, int64_t n, float p, uint64_t seed);

// Number of OpenMP threads the ops use (0: hardware threads). OpenBLAS is kept at one thread: matrix
// products are split over the OpenMP threads by gemm (one pool, none spinning). Process-wide: every
// op passes it to its parallel loops, so it holds whichever thread calls the ops. threads() returns the
// resolved count (it calls set_threads(0) on first use when nobody has). Results are bit-identical run to
// run for one count; attention, rope, norms, embedding and dropout are identical across counts too.
void set_threads(int n);
int threads();

}  // namespace hearth::train::ops
