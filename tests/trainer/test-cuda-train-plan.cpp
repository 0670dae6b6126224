/* The host-side plan of the CUDA embedding gradient (trainer/cuda/train-plan.h): rows grouped by token
 * id in a stable order, and token ids validated with errors naming the row. Runs without a GPU.
 * Checked against a plain reference (for each distinct id in ascending order, the rows holding it in
 * ascending order), on random batches with many repeats and on the edge cases.
 */
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "../../trainer/cuda/train-plan.h"

namespace tc = hearth::train::cuda;

namespace {

// The plan as (id -> rows) from its packed form, checking the layout's invariants on the way.
std::map<int32_t, std::vector<int32_t>> unpack(const tc::EmbeddingGradPlan& p) {
  std::map<int32_t, std::vector<int32_t>> groups;
  const int64_t ns = p.n_segments;
  EXPECT_EQ(int64_t(p.packed.size()), 2 * ns + 1 + p.n_rows);
  const int32_t* ids = p.packed.data();
  const int32_t* start = ids + ns;
  const int32_t* order = start + ns + 1;
  EXPECT_EQ(start[0], 0);
  EXPECT_EQ(start[ns], p.n_rows);
  for (int64_t s = 0; s < ns; ++s) {
    if (s > 0) {
      EXPECT_LT(ids[s - 1], ids[s]) << "segment ids ascend";
    }
    EXPECT_LT(start[s], start[s + 1]) << "no empty segment";
    for (int32_t k = start[s]; k < start[s + 1]; ++k) groups[ids[s]].push_back(order[k]);
  }
  return groups;
}

TEST(CudaTrainPlan, GroupsRowsByTokenInRowOrder) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t vocab = 1 + int64_t(rng() % 50), n = int64_t(rng() % 300);
    std::vector<int32_t> tokens(static_cast<size_t>(n));
    for (auto& t : tokens) t = int32_t(rng() % uint32_t(vocab));
    auto plan = tc::plan_embedding_backward(tokens.data(), n, vocab);
    ASSERT_TRUE(plan.has_value()) << plan.error().to_string();
    EXPECT_EQ(plan->n_rows, n);
    std::map<int32_t, std::vector<int32_t>> want;
    for (int64_t r = 0; r < n; ++r) want[tokens[size_t(r)]].push_back(int32_t(r));
    EXPECT_EQ(plan->n_segments, int64_t(want.size()));
    EXPECT_EQ(unpack(*plan), want) << "trial " << trial;
  }
}

TEST(CudaTrainPlan, EmptyBatchAndSingleToken) {
  auto empty = tc::plan_embedding_backward(nullptr, 0, 10);
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->n_segments, 0);
  EXPECT_EQ(empty->packed, std::vector<int32_t>{0});
  const std::vector<int32_t> same(5, 9);
  auto one = tc::plan_embedding_backward(same.data(), 5, 10);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->packed, (std::vector<int32_t>{9, 0, 5, 0, 1, 2, 3, 4}));
}

TEST(CudaTrainPlan, RejectsIdsOutsideTheVocabularyNamingTheRow) {
  const std::vector<int32_t> high{1, 2, 10, 3};
  auto e = tc::plan_embedding_backward(high.data(), 4, 10);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().code, hearth::ErrorCode::out_of_range);
  EXPECT_NE(e.error().message.find("row 2"), std::string::npos) << e.error().message;
  EXPECT_NE(e.error().message.find("10"), std::string::npos) << e.error().message;
  const std::vector<int32_t> neg{0, -1};
  auto n = tc::plan_embedding_backward(neg.data(), 2, 10);
  ASSERT_FALSE(n.has_value());
  EXPECT_NE(n.error().message.find("row 1"), std::string::npos) << n.error().message;
  EXPECT_FALSE(tc::plan_embedding_backward(neg.data(), -1, 10).has_value());
  EXPECT_FALSE(tc::plan_embedding_backward(nullptr, 3, 10).has_value());
}

}  // namespace
