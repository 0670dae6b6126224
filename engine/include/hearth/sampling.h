/* Choosing the next token from logits: greedy, temperature, top-k, top-p, min-p, repetition / frequency /
 * presence penalties over a window of recent tokens, logit bias, and a seed.
 *
 * The order is llama.cpp's: logit bias, penalties, then (unless greedy) top-k, top-p, min-p on the
 * untempered distribution, temperature, and a draw. Penalties: repetition as in CTRL / llama.cpp
 * (a positive logit divided by R, a negative one multiplied), then logit -= count * frequency + (count > 0)
 * * presence, counting each token's occurrences in the last `penalty_last_n` tokens of the history.
 *
 * Non-obvious choice: the random numbers come from a SplitMix64 generator of Hearth's own, not from
 * <random>'s distributions (whose algorithms differ between standard libraries), so a seed gives the same
 * tokens on every platform.
 *
 * Thread-safety: a Sampler holds its random state; use one per generation stream.
 */
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "hearth/error.h"
#include "hearth/tokenizer.h"

namespace hearth {

struct SamplingParams {
  float temperature = 0.8f;       // <= 0: greedy (the most likely token after bias and penalties)
  int64_t top_k = 40;             // keep the k most likely tokens; <= 0: off
  float top_p = 0.95f;            // keep the smallest set with probability >= p; >= 1: off
  float min_p = 0.05f;            // drop tokens below min_p × the top probability; <= 0: off
  float repeat_penalty = 1.0f;    // 1: off
  float frequency_penalty = 0.0f; // 0: off
  float presence_penalty = 0.0f;  // 0: off
  int64_t penalty_last_n = 64;    // window of history the penalties look at; 0: none, -1: all
  std::vector<std::pair<TokenId, float>> logit_bias;  // added to those tokens' logits (-inf bans)
  uint64_t seed = 0;
};

// One candidate after the filters: token and its probability (sums to 1 over the kept set).
struct TokenProb {
  TokenId id;
  float p;
};

class Sampler {
 public:
  // Errors: invalid_argument for top_p/min_p outside [0, 1], repeat_penalty <= 0, or a logit-bias token
  // outside [0, n_vocab).
  static Expected<Sampler> create(const SamplingParams& params, int64_t n_vocab);

  // Picks the next token. `logits` has n_vocab values; `history` is every token so far (prompt and
  // generated), of which the penalties consider the last penalty_last_n.
  TokenId sample(std::span<const float> logits, std::span<const TokenId> history);

  // The kept candidates and their probabilities, most likely first, without drawing (for tests and
  // for showing alternatives). Greedy gives the single best token with p = 1.
  std::vector<TokenProb> distribution(std::span<const float> logits, std::span<const TokenId> history) const;

  // Applies logit bias and penalties in place (exposed for tests of the arithmetic).
  void apply_penalties(std::span<float> logits, std::span<const TokenId> history) const;

  const SamplingParams& params() const { return m_params; }
  void reseed(uint64_t seed) { m_state = seed; }

 private:
  Sampler(SamplingParams p, int64_t n_vocab) : m_params(std::move(p)), m_n_vocab(n_vocab), m_state(m_params.seed) {}
  double next_uniform();  // [0, 1)
  SamplingParams m_params;
  int64_t m_n_vocab;
  uint64_t m_state;
};

}  // namespace hearth
