/* The embedding-gradient plan of train-plan.h: a stable counting sort of row indices by token id.
 *
 * Non-obvious choice: counts are indexed by an id's place among the batch's sorted distinct ids (a
 * binary search), not by a vocabulary-sized array, so a 150k-token vocabulary costs nothing for a batch
 * that uses a few thousand ids.
 */
#include "train-plan.h"

#include <algorithm>
#include <limits>
#include <string>

namespace hearth::train::cuda {

Expected<EmbeddingGradPlan> plan_embedding_backward(const int32_t* tokens, int64_t n_rows, int64_t vocab) {
  if (n_rows < 0 || vocab < 0)
    return make_error(ErrorCode::invalid_argument, "embedding gradient plan: negative size (rows " +
                                                       std::to_string(n_rows) + ", vocab " + std::to_string(vocab) + ")");
  if (n_rows > int64_t(std::numeric_limits<int32_t>::max()) / 2)
    return make_error(ErrorCode::invalid_argument,
                      "embedding gradient plan: " + std::to_string(n_rows) + " rows do not fit 32-bit row indices");
  if (n_rows > 0 && tokens == nullptr)
    return make_error(ErrorCode::invalid_argument, "embedding gradient plan: no token ids given");
  for (int64_t r = 0; r < n_rows; ++r)
    if (tokens[r] < 0 || int64_t(tokens[r]) >= vocab)
      return make_error(ErrorCode::out_of_range, "embedding gradient plan: token id " + std::to_string(tokens[r]) +
                                                     " at row " + std::to_string(r) + " is outside the vocabulary of " +
                                                     std::to_string(vocab));
  std::vector<int32_t> ids(tokens, tokens + n_rows);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const int64_t n_seg = int64_t(ids.size());

  // Counts per distinct id, then exclusive prefix sums as each segment's start, then a stable fill.
  std::vector<int32_t> start(size_t(n_seg + 1), 0);
  std::vector<int32_t> seg_of(static_cast<size_t>(n_rows));
  for (int64_t r = 0; r < n_rows; ++r) {
    const auto it = std::lower_bound(ids.begin(), ids.end(), tokens[r]);
    seg_of[size_t(r)] = int32_t(it - ids.begin());
    ++start[size_t(seg_of[size_t(r)]) + 1];
  }
  for (int64_t s = 0; s < n_seg; ++s) start[size_t(s + 1)] += start[size_t(s)];

  EmbeddingGradPlan plan;
  plan.n_rows = n_rows;
  plan.n_segments = n_seg;
  plan.packed.resize(size_t(2 * n_seg + 1 + n_rows));
  std::copy(ids.begin(), ids.end(), plan.packed.begin());
  std::copy(start.begin(), start.end(), plan.packed.begin() + n_seg);
  int32_t* order = plan.packed.data() + 2 * n_seg + 1;
  std::vector<int32_t> cursor(start.begin(), start.end() - 1);
  for (int64_t r = 0; r < n_rows; ++r) order[cursor[size_t(seg_of[size_t(r)])]++] = int32_t(r);
  return plan;
}

}  // namespace hearth::train::cuda
