/* Internal: the keys and values of every evaluated position, per layer, in F16 (default) or F32.
 *
 * Non-obvious choice: storage grows by doubling as positions are added, up to n_ctx, so memory follows
 * what a conversation uses rather than the model's (possibly 128k) context. Layout per layer and per
 * tensor: [position][n_head_kv * head_dim], so appending a position never moves the others' offsets.
 *
 * Thread-safety: ensure()/truncate() by the owner only; stores and reads of distinct rows from many
 * threads at once.
 */
#pragma once

#include <cstdint>
#include <vector>

#include "hearth/inference.h"

namespace hearth {

class KvCache {
 public:
  KvCache(int64_t n_layer, int64_t n_ctx, int64_t row_len, KvType type);

  // Makes room for positions [0, n_pos). n_pos <= n_ctx.
  void ensure(int64_t n_pos);
  int64_t n_ctx() const { return m_n_ctx; }
  int64_t capacity() const { return m_capacity; }
  KvType type() const { return m_type; }
  uint64_t bytes() const;

  void store_k(int64_t layer, int64_t pos, const float* row);
  void store_v(int64_t layer, int64_t pos, const float* row);
  // dot(q[0..n), K[layer][pos][offset..offset+n))
  float dot_k(int64_t layer, int64_t pos, int64_t offset, const float* q, int64_t n) const;
  // out[0..n) += w * V[layer][pos][offset..offset+n)
  void add_v(int64_t layer, int64_t pos, int64_t offset, float w, float* out, int64_t n) const;

 private:
  void store(std::vector<uint8_t>& buf, int64_t pos, const float* row);
  int64_t m_n_layer, m_n_ctx, m_row_len;
  KvType m_type;
  size_t m_elem;
  int64_t m_capacity = 0;
  std::vector<std::vector<uint8_t>> m_k, m_v;  // per layer
};

}  // namespace hearth
