/* Reference test (label `reference`): the q/k permutation the GGUF writer applies to llama weights is
 * checked against llama.cpp's converter formula, re-implemented in numpy by
 * tests/reference/model-permute-ref.py, which reads both files with its own parsers.
 *
 * Non-obvious choice: qwen2 runs too, as the negative control: its GGUF weights must equal the
 * Hugging Face ones unpermuted, so a script that permuted everything would fail there.
 */
#include <gtest/gtest.h>

#include "hearth/model-writer.h"
#include "test-util.h"

using namespace hearth;

class ModelPermuteReference : public ::testing::TestWithParam<Architecture> {};

TEST_P(ModelPermuteReference, GgufMatchesLlamaCppConverterLayout) {
  ModelParams p = tiny_params(GetParam(), 64, 2, 40);
  auto w = make_random_weights(p, 2024);
  ASSERT_TRUE(w) << w.error().message;
  auto dir = hearth::test::scratch(std::string("permute-") + architecture_name(p.arch));
  ASSERT_TRUE(write_hf_folder(*w, dir / "hf"));
  ASSERT_TRUE(write_gguf_model(*w, dir / "m.gguf"));
  auto r = hearth::test::run(std::string(HEARTH_PYTHON) + " '" +
                             hearth::test::source_dir("tests/reference/model-permute-ref.py").string() + "' '" +
                             (dir / "hf").string() + "' '" + (dir / "m.gguf").string() + "'");
  std::printf("%s", r.out.c_str());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  if (p.arch == Architecture::llama) EXPECT_NE(r.out.find(" 4 of them after"), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Archs, ModelPermuteReference,
                         ::testing::Values(Architecture::llama, Architecture::qwen2, Architecture::qwen3),
                         [](const auto& info) { return std::string(architecture_name(info.param)); });
