/* Host-side preparation for the trainer's CUDA kernels (train-kernels.h) that is plain C++ and needs no
 * GPU: the embedding-gradient plan (token ids grouped by id, validated). Compiled into hearth_trainer
 * with or without CUDA, so tests/trainer/test-cuda-train-plan.cpp runs everywhere.
 *
 * Non-obvious choice: the grouping is a stable counting sort on the host rather than a device sort:
 * the token ids come from the host's data loader anyway, a stable order makes the device sum of each
 * token's rows add them in row order (the CPU's order, so the result is bit-identical), and it keeps
 * the kernels free of atomics.
 */
#pragma once

#include <cstdint>
#include <vector>

#include "hearth/error.h"

namespace hearth::train::cuda {

// Rows grouped by token id, for embedding_backward(). `packed` holds, one after another:
//   seg_id[n_segments]          the distinct token ids, ascending
//   seg_start[n_segments + 1]   segment s is order[seg_start[s] .. seg_start[s + 1])
//   order[n_rows]               row indices, grouped by token id, each group in ascending row order
// (2·n_segments + 1 + n_rows int32 values; upload it as one block).
struct EmbeddingGradPlan {
  int64_t n_rows = 0;
  int64_t n_segments = 0;
  std::vector<int32_t> packed;
};

// Fails (out_of_range) when a token id is negative or >= vocab, naming the row; (invalid_argument)
// when n_rows or vocab is negative or n_rows does not fit an int32 row index.
Expected<EmbeddingGradPlan> plan_embedding_backward(const int32_t* tokens, int64_t n_rows, int64_t vocab);

}  // namespace hearth::train::cuda
