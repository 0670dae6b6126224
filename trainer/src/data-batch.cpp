/* BatchIterator: training rows served in a per-epoch shuffled order, padded or packed.
 *
 * Non-obvious choice: the iterator's whole state is (epoch, index). The order of an epoch is recomputed
 * from (seed, epoch) by our own Fisher-Yates (detail::seeded_permutation), and with packing `index`
 * counts packed rows, whose content follows from the epoch's order and the prefix sums of example
 * lengths; so seek() needs no history and a resumed run sees exactly the rows it would have seen.
 * Batches never straddle epochs: the last batch of an epoch is filled up with padding rows, so an
 * epoch is exactly batches_per_epoch() batches and serves every example (or packed row) once.
 * The iterator keeps its own copy of the examples, so it may outlive the Dataset it came from.
 */
#include <algorithm>

#include "data-internal.h"
#include "hearth/trainer/data.h"

namespace hearth::train {

struct BatchIterator::Impl {
  std::vector<Example> examples;
  int64_t B = 1, max_length = 1;
  bool packing = false;
  int32_t pad = 0;
  uint64_t seed = 0;
  int64_t epoch = 0, index = 0;

  int64_t perm_epoch = -1;
  std::vector<int64_t> perm;
  std::vector<int64_t> offsets;  // packing: start of perm[i] in the epoch's token stream (size n + 1)
  int64_t total_tokens = 0;

  int64_t n() const { return int64_t(examples.size()); }
  int64_t rows_per_epoch() const {
    if (!packing) return n();
    return (total_tokens + max_length - 1) / max_length;
  }

  void ensure_epoch() {
    if (perm_epoch == epoch) return;
    perm = detail::seeded_permutation(n(), seed, uint64_t(epoch));
    perm_epoch = epoch;
    if (packing) {
      offsets.assign(perm.size() + 1, 0);
      for (size_t i = 0; i < perm.size(); ++i)
        offsets[i + 1] = offsets[i] + int64_t(examples[size_t(perm[i])].tokens.size());
    }
  }

  // At the start of a batch: moves to the next epoch when this one is used up.
  void start_batch() {
    if (index >= rows_per_epoch()) {
      ++epoch;
      index = 0;
    }
    ensure_epoch();
  }
  // Whether another row of this epoch remains for the batch being filled.
  bool has_row() const { return index < rows_per_epoch(); }
};

BatchIterator::BatchIterator(const std::vector<Example>& examples, int64_t batch_size, int64_t max_length,
                             bool packing, int32_t pad_id, uint64_t seed)
    : m_impl(std::make_shared<Impl>()) {
  Impl& m = *m_impl;
  m.examples = examples;
  m.B = std::max<int64_t>(1, batch_size);
  m.max_length = std::max<int64_t>(1, max_length);
  m.packing = packing;
  m.pad = pad_id;
  m.seed = seed;
  for (const Example& e : m.examples) m.total_tokens += int64_t(e.tokens.size());
}

Batch BatchIterator::next() {
  Impl& m = *m_impl;
  Batch b;
  if (m.n() == 0 || m.total_tokens == 0) return b;
  b.B = m.B;
  m.start_batch();
  auto fill_target = [](const Example& ex, size_t o) -> int32_t {
    if (o + 1 < ex.tokens.size() && o + 1 < ex.train.size() && ex.train[o + 1]) return ex.tokens[o + 1];
    return -1;
  };

  if (!m.packing) {
    std::vector<const Example*> rows;
    for (int64_t r = 0; r < m.B && m.has_row(); ++r) {
      rows.push_back(&m.examples[size_t(m.perm[size_t(m.index)])]);
      ++m.index;
    }
    int64_t T = 1;
    for (const Example* e : rows) T = std::max<int64_t>(T, int64_t(e->tokens.size()));
    T = std::min(T, m.max_length);
    b.T = T;
    b.tokens.assign(size_t(b.B * T), m.pad);
    b.targets.assign(size_t(b.B * T), -1);
    for (size_t r = 0; r < rows.size(); ++r) {
      const Example& ex = *rows[r];
      size_t len = std::min(ex.tokens.size(), size_t(T));
      for (size_t t = 0; t < len; ++t) {
        b.tokens[r * size_t(T) + t] = ex.tokens[t];
        // The target of the last kept position would be a cut-off token: none.
        b.targets[r * size_t(T) + t] = t + 1 < len ? fill_target(ex, t) : -1;
      }
      b.n_tokens += int64_t(len);
    }
  } else {
    int64_t T = m.max_length;
    b.T = T;
    b.tokens.assign(size_t(b.B * T), m.pad);
    b.targets.assign(size_t(b.B * T), -1);
    for (int64_t r = 0; r < m.B && m.has_row(); ++r) {
      int64_t start = m.index * T;
      int64_t end = std::min(start + T, m.total_tokens);
      // The example holding stream position `start`.
      size_t e = size_t(std::upper_bound(m.offsets.begin(), m.offsets.end(), start) - m.offsets.begin()) - 1;
      int64_t pos = start;
      while (pos < end && e < m.perm.size()) {
        const Example& ex = m.examples[size_t(m.perm[e])];
        int64_t o = pos - m.offsets[e];
        int64_t len = int64_t(ex.tokens.size());
        for (; o < len && pos < end; ++o, ++pos) {
          size_t at = size_t(r * T + (pos - start));
          b.tokens[at] = ex.tokens[size_t(o)];
          b.targets[at] = fill_target(ex, size_t(o));
        }
        if (o >= len) ++e;
      }
      b.n_tokens += end - start;
      ++m.index;
    }
  }
  for (int32_t t : b.targets) b.n_targets += t >= 0;
  return b;
}

BatchIterator::Position BatchIterator::position() const { return {m_impl->epoch, m_impl->index}; }

void BatchIterator::seek(const Position& p) {
  m_impl->epoch = std::max<int64_t>(0, p.epoch);
  m_impl->index = std::max<int64_t>(0, p.index);
}

int64_t BatchIterator::batches_per_epoch() const {
  int64_t rows = m_impl->rows_per_epoch();
  return (rows + m_impl->B - 1) / m_impl->B;
}

}  // namespace hearth::train
