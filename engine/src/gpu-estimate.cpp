/* The GPU memory estimate of an inference session: the CUDA runner's allocation plan, see gpu-estimate.h
 * and docs/gpu.md ("GPU memory estimate").
 *
 * Non-obvious choice: weights are sized from their shape and stored type (row_nbytes × rows), not from
 * TensorRef::nbytes, so a description built in memory (no file behind it) is sized the same way as an
 * opened file; 1-D weights (norms, biases) count as F32 whatever their file type, because the runner
 * uploads them converted to F32. The decode attention scratch follows the split-KV kernel in
 * engine/cuda/kernels-attention.cu (at least 64 cache rows per split, at most 256 splits; no scratch
 * with a single split); the two constants below must follow that file.
 */
#include "hearth/gpu-estimate.h"

#include <algorithm>

namespace hearth {

namespace {

constexpr int64_t GPU_ATTN_SPLIT_KEYS = 64;               // decode attention: cache rows per split, at least
constexpr int64_t GPU_ATTN_MAX_SPLITS = 256;              // decode attention: splits, at most
constexpr int64_t GPU_DEFAULT_CTX = 2048;                  // when neither the caller nor the file says
constexpr uint64_t GPU_OVERHEAD_ALLOWANCE = 600ull << 20;  // CUDA context (~300-500 MiB) + cuBLAS workspace

bool is_plain_float(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

// Rows of a weight: every dimension but the first (GGUF order).
int64_t row_count(const TensorRef& t) {
  int64_t rows = 1;
  for (size_t i = 1; i < t.shape.size(); ++i) rows *= std::max<int64_t>(0, t.shape[i]);
  return rows;
}

bool is_matrix(const TensorRef& t) { return t.shape.size() >= 2 && row_count(t) > 1; }

uint64_t device_bytes(const TensorRef& t) {
  if (t.shape.empty()) return t.nbytes;
  if (!is_matrix(t)) return uint64_t(std::max<int64_t>(0, t.n_elements())) * 4;
  const auto row = row_nbytes(t.type, t.shape[0]);
  if (!row) return t.nbytes;  // a shape the type cannot hold was rejected by the reader; keep the file's size
  return *row * uint64_t(row_count(t));
}

}  // namespace

GpuMemoryEstimate estimate_gpu_inference(const ModelDesc& desc, int64_t n_ctx, int64_t n_batch) {
  const ModelParams& p = desc.params;
  GpuMemoryEstimate e;

  if (n_ctx <= 0) n_ctx = p.n_ctx_train > 0 ? p.n_ctx_train : GPU_DEFAULT_CTX;
  n_batch = std::clamp<int64_t>(n_batch, 1, n_ctx);  // a chunk never holds more tokens than the context

  uint64_t largest_quant = 0;  // elements of the largest quantized matrix
  for (const TensorRef* t : desc.all_tensors()) {
    e.weights += device_bytes(*t);
    if (is_matrix(*t) && !is_plain_float(t->type))
      largest_quant = std::max(largest_quant, uint64_t(std::max<int64_t>(0, t->n_elements())));
  }

  const int64_t head_dim = p.head_dim > 0 ? p.head_dim : (p.n_head > 0 ? p.n_embd / p.n_head : 0);
  const uint64_t q_dim = uint64_t(p.n_head * head_dim), kv_dim = uint64_t(p.n_head_kv * head_dim);
  const uint64_t embd = uint64_t(p.n_embd), ff = uint64_t(p.n_ff), vocab = uint64_t(p.n_vocab);
  const uint64_t ctx = uint64_t(n_ctx), batch = uint64_t(n_batch);

  e.kv_cache = uint64_t(p.n_layer) * 2 * ctx * kv_dim * 2;

  // One chunk: x, xn, q, k, v, attention out, o (the down projection writes into o), gate, up: F32.
  const uint64_t per_token = embd + embd + q_dim + kv_dim + kv_dim + q_dim + embd + ff + ff;
  const uint64_t n_splits = uint64_t(std::clamp<int64_t>((n_ctx + GPU_ATTN_SPLIT_KEYS - 1) / GPU_ATTN_SPLIT_KEYS, 1,
                                                         GPU_ATTN_MAX_SPLITS));
  // Decode's partial outputs with their running max and sum, per head and split.
  const uint64_t attn_scratch = n_splits > 1 ? uint64_t(p.n_head) * n_splits * uint64_t(head_dim + 2) * 4 : 0;
  const uint64_t logits = batch * vocab * 4;                          // all_logits: every token of the chunk
  const uint64_t gemm_in = batch * std::max({embd, ff, q_dim}) * 2;  // F16/BF16 copy of a GEMM input
  const uint64_t small = (batch + 1) * 4 + uint64_t(head_dim / 2) * 8;  // token ids + position, RoPE frequencies
  e.activations = batch * per_token * 4 + attn_scratch + logits + gemm_in + small;

  e.dequant = largest_quant * 2;
  e.overhead = GPU_OVERHEAD_ALLOWANCE;
  e.total = e.weights + e.kv_cache + e.activations + e.dequant + e.overhead;
  return e;
}

}  // namespace hearth
