/* Test helpers for LoRA: a random adapter for a tiny model, and the same network merged into plain
 * weights (W + scale · B A), which is the reference an adapter applied on the fly must reproduce.
 *
 * Non-obvious choice: the merge is written out here in plain loops over the Hugging Face row-major
 * layout, independently of the engine's forward-pass hook, so a mistake in either shows up as a
 * difference between the two.
 */
#pragma once

#include <random>

#include "hearth/lora.h"
#include "hearth/model-writer.h"

namespace hearth::test {

// Every one of the seven target matrices of every layer, with A and B ~ N(0, sd) (B nonzero, unlike
// a freshly initialised adapter, so the update is visible).
inline LoraAdapter random_adapter(const ModelParams& p, int64_t rank, float alpha, uint64_t seed, float sd = 0.2f) {
  LoraAdapter ad;
  ad.rank = rank;
  ad.alpha = alpha;
  ad.base_model = "tiny-test";
  ad.layers.resize(size_t(p.n_layer));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, sd);
  const int64_t q = p.n_head * p.head_dim, kv = p.n_head_kv * p.head_dim;
  auto make = [&](int64_t n_in, int64_t n_out) {
    LoraMatrix m;
    m.rank = rank, m.n_in = n_in, m.n_out = n_out;
    m.a.resize(size_t(rank * n_in));
    m.b.resize(size_t(n_out * rank));
    for (float& x : m.a) x = normal(rng);
    for (float& x : m.b) x = normal(rng);
    return m;
  };
  for (auto& l : ad.layers) {
    l.wq = make(p.n_embd, q);
    l.wk = make(p.n_embd, kv);
    l.wv = make(p.n_embd, kv);
    l.wo = make(q, p.n_embd);
    l.gate = make(p.n_embd, p.n_ff);
    l.up = make(p.n_embd, p.n_ff);
    l.down = make(p.n_ff, p.n_embd);
  }
  return ad;
}

// w (n_out rows of n_in, row-major) += scale · B A.
inline void merge_into(std::vector<float>& w, const LoraMatrix& m, float scale) {
  for (int64_t o = 0; o < m.n_out; ++o)
    for (int64_t i = 0; i < m.n_in; ++i) {
      double s = 0;
      for (int64_t r = 0; r < m.rank; ++r) s += double(m.b[size_t(o * m.rank + r)]) * double(m.a[size_t(r * m.n_in + i)]);
      w[size_t(o * m.n_in + i)] += float(double(scale) * s);
    }
}

inline ModelWeights merged(ModelWeights w, const LoraAdapter& ad) {
  const float s = ad.scale();
  for (size_t il = 0; il < w.layers.size(); ++il) {
    const LoraLayer& a = ad.layers[il];
    LayerWeights& l = w.layers[il];
    if (a.wq) merge_into(l.wq, *a.wq, s);
    if (a.wk) merge_into(l.wk, *a.wk, s);
    if (a.wv) merge_into(l.wv, *a.wv, s);
    if (a.wo) merge_into(l.wo, *a.wo, s);
    if (a.gate) merge_into(l.ffn_gate, *a.gate, s);
    if (a.up) merge_into(l.ffn_up, *a.up, s);
    if (a.down) merge_into(l.ffn_down, *a.down, s);
  }
  return w;
}

}  // namespace hearth::test
