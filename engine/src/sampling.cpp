/* Token sampling (see hearth/sampling.h).
 *
 * Non-obvious choice: top-k uses partial_sort on the candidates before anything else that needs order,
 * so a 150k-token vocabulary is sorted only down to k; without top-k the whole list is sorted once.
 */
#include "hearth/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <unordered_map>

namespace hearth {

Expected<Sampler> Sampler::create(const SamplingParams& p, int64_t n_vocab) {
  if (!(p.top_p >= 0.0f && p.top_p <= 1.0f))
    return make_error(ErrorCode::invalid_argument, "top-p must be in [0, 1], got " + std::to_string(p.top_p));
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f))
    return make_error(ErrorCode::invalid_argument, "min-p must be in [0, 1], got " + std::to_string(p.min_p));
  if (!(p.repeat_penalty > 0.0f))
    return make_error(ErrorCode::invalid_argument, "repeat penalty must be > 0, got " + std::to_string(p.repeat_penalty));
  if (n_vocab <= 0) return make_error(ErrorCode::invalid_argument, "vocabulary size must be > 0");
  for (auto [id, b] : p.logit_bias)
    if (id < 0 || id >= n_vocab)
      return make_error(ErrorCode::invalid_argument, "logit bias for token " + std::to_string(id) +
                                                         " outside the vocabulary (0.." + std::to_string(n_vocab - 1) + ")");
  return Sampler(p, n_vocab);
}

double Sampler::next_uniform() {
  uint64_t z = (m_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return double(z >> 11) * (1.0 / 9007199254740992.0);
}

void Sampler::apply_penalties(std::span<float> logits, std::span<const TokenId> history) const {
  const SamplingParams& p = m_params;
  for (auto [id, b] : p.logit_bias) logits[size_t(id)] += b;
  if (p.penalty_last_n == 0) return;
  if (p.repeat_penalty == 1.0f && p.frequency_penalty == 0.0f && p.presence_penalty == 0.0f) return;
  size_t n = history.size();
  size_t start = p.penalty_last_n < 0 || size_t(p.penalty_last_n) >= n ? 0 : n - size_t(p.penalty_last_n);
  std::unordered_map<TokenId, int> count;
  for (size_t i = start; i < n; ++i)
    if (history[i] >= 0 && history[i] < m_n_vocab) ++count[history[i]];
  for (auto [id, c] : count) {
    float& l = logits[size_t(id)];
    l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
    l -= float(c) * p.frequency_penalty + p.presence_penalty;
  }
}

std::vector<TokenProb> Sampler::distribution(std::span<const float> logits_in, std::span<const TokenId> history) const {
  const SamplingParams& p = m_params;
  std::vector<float> logits(logits_in.begin(), logits_in.end());
  apply_penalties(logits, history);
  if (p.temperature <= 0.0f) {
    TokenId best = TokenId(std::max_element(logits.begin(), logits.end()) - logits.begin());
    return {{best, 1.0f}};
  }
  std::vector<TokenId> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  auto by_logit = [&](TokenId a, TokenId b) {
    return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
  };
  if (p.top_k > 0 && size_t(p.top_k) < ids.size()) {
    std::partial_sort(ids.begin(), ids.begin() + p.top_k, ids.end(), by_logit);
    ids.resize(size_t(p.top_k));
  } else {
    std::sort(ids.begin(), ids.end(), by_logit);
  }
  // Drop banned tokens (-inf) unless nothing else is left.
  while (ids.size() > 1 && std::isinf(logits[size_t(ids.back())]) && logits[size_t(ids.back())] < 0) ids.pop_back();
  // Probabilities of the untempered logits for top-p and min-p.
  auto softmax = [&](float temp) {
    std::vector<double> pr(ids.size());
    double mx = logits[size_t(ids[0])], sum = 0;
    for (size_t i = 0; i < ids.size(); ++i) sum += pr[i] = std::exp((double(logits[size_t(ids[i])]) - mx) / temp);
    for (double& v : pr) v /= sum;
    return pr;
  };
  if (p.top_p < 1.0f) {
    auto pr = softmax(1.0f);
    double cum = 0;
    size_t keep = ids.size();
    for (size_t i = 0; i < ids.size(); ++i) {
      cum += pr[i];
      if (cum >= p.top_p) {
        keep = i + 1;
        break;
      }
    }
    ids.resize(keep);
  }
  if (p.min_p > 0.0f) {
    auto pr = softmax(1.0f);
    size_t keep = 1;
    while (keep < ids.size() && pr[keep] >= double(p.min_p) * pr[0]) ++keep;
    ids.resize(keep);
  }
  auto pr = softmax(p.temperature);
  std::vector<TokenProb> out(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) out[i] = {ids[i], float(pr[i])};
  return out;
}

TokenId Sampler::sample(std::span<const float> logits, std::span<const TokenId> history) {
  auto d = distribution(logits, history);
  if (d.size() == 1) return d[0].id;
  double u = next_uniform(), cum = 0;
  for (const TokenProb& c : d) {
    cum += c.p;
    if (u < cum) return c.id;
  }
  return d.back().id;
}

}  // namespace hearth
