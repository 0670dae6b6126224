/* Unit tests of the sampler: greedy and bias, the penalty arithmetic and its window, top-k/top-p/min-p
 * cut-offs, temperature's effect on the distribution, and empirical frequencies of seeded draws against
 * the softmax computed here independently.
 */
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "hearth/sampling.h"

using namespace hearth;

namespace {

SamplingParams plain(float temp = 1.0f) {
  SamplingParams p;
  p.temperature = temp;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

Sampler make(const SamplingParams& p, int64_t n) {
  auto s = Sampler::create(p, n);
  EXPECT_TRUE(s) << s.error().to_string();
  return std::move(*s);
}

}  // namespace

TEST(Sampling, GreedyPicksTheLargestAfterBias) {
  std::vector<float> l = {0.1f, 2.0f, 1.5f, -1.0f};
  SamplingParams p = plain(0.0f);
  EXPECT_EQ(make(p, 4).sample(l, {}), 1);
  p.logit_bias = {{2, 1.0f}};
  EXPECT_EQ(make(p, 4).sample(l, {}), 2);
  p.logit_bias = {{1, -INFINITY}, {2, -INFINITY}};
  EXPECT_EQ(make(p, 4).sample(l, {}), 0);
}

TEST(Sampling, PenaltyArithmetic) {
  SamplingParams p = plain();
  p.repeat_penalty = 1.5f;
  p.frequency_penalty = 0.25f;
  p.presence_penalty = 0.5f;
  p.penalty_last_n = 4;
  Sampler s = make(p, 5);
  std::vector<float> l = {3.0f, -1.0f, 2.0f, 1.0f, 0.5f};
  // History: token 0 twice and token 1 once inside the window of 4; token 2 only before it.
  std::vector<TokenId> h = {2, 0, 1, 0, 4};
  s.apply_penalties(l, h);
  EXPECT_FLOAT_EQ(l[0], 3.0f / 1.5f - 2 * 0.25f - 0.5f);
  EXPECT_FLOAT_EQ(l[1], -1.0f * 1.5f - 0.25f - 0.5f);
  EXPECT_FLOAT_EQ(l[2], 2.0f);  // outside the window
  EXPECT_FLOAT_EQ(l[3], 1.0f);  // never seen
  EXPECT_FLOAT_EQ(l[4], 0.5f / 1.5f - 0.25f - 0.5f);
}

TEST(Sampling, TopKTopPMinP) {
  // Probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625.
  std::vector<float> l = {std::log(0.5f), std::log(0.25f), std::log(0.125f), std::log(0.0625f), std::log(0.0625f)};
  SamplingParams p = plain();
  p.top_k = 2;
  auto d = make(p, 5).distribution(l, {});
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].id, 0);
  EXPECT_NEAR(d[0].p, 2.0 / 3.0, 1e-6);
  p = plain();
  p.top_p = 0.8f;  // 0.5 + 0.25 = 0.75 < 0.8, so three are kept
  EXPECT_EQ(make(p, 5).distribution(l, {}).size(), 3u);
  p.top_p = 0.75f;
  EXPECT_EQ(make(p, 5).distribution(l, {}).size(), 2u);
  p = plain();
  p.min_p = 0.2f;  // keep p >= 0.1: three tokens
  d = make(p, 5).distribution(l, {});
  ASSERT_EQ(d.size(), 3u);
  EXPECT_NEAR(d[2].p, 0.125 / 0.875, 1e-6);
}

TEST(Sampling, TemperatureSharpensAndFlattens) {
  std::vector<float> l = {std::log(0.6f), std::log(0.3f), std::log(0.1f)};
  auto d = make(plain(0.5f), 3).distribution(l, {});
  double z = 0.36 + 0.09 + 0.01;
  EXPECT_NEAR(d[0].p, 0.36 / z, 1e-6);
  EXPECT_NEAR(d[2].p, 0.01 / z, 1e-6);
  auto f = make(plain(1000.0f), 3).distribution(l, {});
  EXPECT_NEAR(f[0].p, 1.0 / 3, 1e-3);
}

TEST(Sampling, DrawsFollowTheDistribution) {
  std::vector<float> l = {1.0f, 0.0f, -0.5f, 2.0f, 0.3f, -3.0f};
  for (float temp : {1.0f, 0.7f}) {
    SamplingParams p = plain(temp);
    p.seed = 42;
    Sampler s = make(p, 6);
    const int N = 40000;
    std::map<TokenId, int> n;
    for (int i = 0; i < N; ++i) ++n[s.sample(l, {})];
    double z = 0;
    for (float v : l) z += std::exp(v / temp);
    for (int i = 0; i < 6; ++i) {
      double want = std::exp(l[size_t(i)] / temp) / z;
      double sd = std::sqrt(want * (1 - want) / N);
      EXPECT_NEAR(double(n[i]) / N, want, 5 * sd + 1e-4) << "token " << i << " temperature " << temp;
    }
  }
}

TEST(Sampling, SeedDeterminesTheSequence) {
  std::vector<float> l(50);
  for (size_t i = 0; i < l.size(); ++i) l[i] = float(std::sin(double(i)));
  auto seq = [&](uint64_t seed) {
    SamplingParams p = plain();
    p.seed = seed;
    Sampler s = make(p, 50);
    std::vector<TokenId> out;
    for (int i = 0; i < 64; ++i) out.push_back(s.sample(l, {}));
    return out;
  };
  EXPECT_EQ(seq(7), seq(7));
  EXPECT_NE(seq(7), seq(8));
}

TEST(Sampling, BadParameters) {
  SamplingParams p = plain();
  p.top_p = 1.5f;
  EXPECT_EQ(Sampler::create(p, 10).error().code, ErrorCode::invalid_argument);
  p = plain();
  p.repeat_penalty = 0.0f;
  EXPECT_FALSE(Sampler::create(p, 10));
  p = plain();
  p.logit_bias = {{10, 1.0f}};
  auto e = Sampler::create(p, 10);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("10"), std::string::npos);
}
