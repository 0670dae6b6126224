/* Before a model is loaded on a GPU or a run starts there: how much GPU memory it will need, so the
 * desktop program can say "needs 3.1 GiB of the 80 GiB free" and the CUDA backend can refuse (and fall
 * back to the CPU) before allocating anything.
 *
 * Non-obvious choice: the inference estimate is the CUDA backend's own allocation plan (the runner
 * allocates exactly these buffers: weights as stored, the F16 KV cache for the whole context, the
 * activations of one n_batch chunk, the BF16 dequantization buffer of the largest matrix for cuBLAS,
 * logits), plus a fixed allowance for the CUDA context and cuBLAS workspace, which the driver reserves
 * outside any allocation Hearth makes.
 *
 * Threads: pure functions.
 */
#pragma once

#include <cstdint>

#include "hearth/model.h"

namespace hearth {

struct GpuMemoryEstimate {
  uint64_t weights = 0;      // every weight tensor in its stored type (+ F32 norms and biases)
  uint64_t kv_cache = 0;     // n_layer * 2 * n_ctx * n_head_kv * head_dim * 2 bytes (F16)
  uint64_t activations = 0;  // scratch of one chunk of n_batch tokens, the attention scratch, logits
  uint64_t dequant = 0;      // BF16 copy of the largest quantized matrix (prefill through cuBLAS); 0 if none
  uint64_t overhead = 0;     // CUDA context + cuBLAS workspace allowance (fixed)
  uint64_t total = 0;        // sum of the above
};

// n_ctx: positions the session holds (0: the model's training context); n_batch: tokens per chunk.
GpuMemoryEstimate estimate_gpu_inference(const ModelDesc& desc, int64_t n_ctx, int64_t n_batch = 512);

}  // namespace hearth
