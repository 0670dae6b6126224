/* `hearth-cli estimate` end to end: run the program on the tiny test model, parse its JSON, and compare
 * every number with estimate_gpu_inference() / estimate_gpu_training_memory() called here; the text form
 * names each GPU with fits / does not fit, or says why there is none; bad arguments give one error line.
 *
 * Non-obvious choice: the GPU lines are checked against query_backends() in this process, so the test
 * holds on this GPU-less machine ("no GPU: <reason>") and on a GPU machine alike.
 */
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "hearth/backend.h"
#include "hearth/gpu-estimate.h"
#include "hearth/model.h"
#include "hearth/trainer/config.h"
#include "hearth/trainer/estimate.h"
#include "test-util.h"

using namespace hearth;

namespace {
std::string tiny() { return (test::testdata() / "models" / "llama-2-tiny-random.gguf").string(); }
std::string lora_config() { return test::source_dir("resources/examples/lora-tiny.yaml").string(); }
}  // namespace

TEST(EstimateCli, JsonEqualsTheLibrary) {
  const auto r = test::run(test::cli() + " estimate -m '" + tiny() + "' --ctx 256 --batch 64 --json --train '" +
                           lora_config() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);

  auto m = open_model(tiny());
  ASSERT_TRUE(m) << m.error().to_string();
  const ModelDesc& d = m->desc();
  const GpuMemoryEstimate e = estimate_gpu_inference(d, 256, 64);
  EXPECT_EQ(j["n_ctx"].get<int64_t>(), 256);
  EXPECT_EQ(j["n_batch"].get<int64_t>(), 64);
  const auto& ji = j["inference"];
  EXPECT_EQ(ji["weights"].get<uint64_t>(), e.weights);
  EXPECT_EQ(ji["kv_cache"].get<uint64_t>(), e.kv_cache);
  EXPECT_EQ(ji["activations"].get<uint64_t>(), e.activations);
  EXPECT_EQ(ji["dequant"].get<uint64_t>(), e.dequant);
  EXPECT_EQ(ji["overhead"].get<uint64_t>(), e.overhead);
  EXPECT_EQ(ji["total"].get<uint64_t>(), e.total);
  EXPECT_GT(e.weights, 0u);

  auto c = train::parse_config_file(lora_config());
  ASSERT_TRUE(c) << c.error().to_string();
  const train::MemoryEstimate t = train::estimate_gpu_training_memory(d.params, d.n_params, d.file_size, *c);
  const auto& jt = j["training"];
  EXPECT_EQ(jt["method"], "lora");
  EXPECT_EQ(jt["trainable_params"].get<int64_t>(), t.trainable_params);
  EXPECT_EQ(jt["base_weights"].get<uint64_t>(), t.base_weights);
  EXPECT_EQ(jt["parameters"].get<uint64_t>(), t.parameters);
  EXPECT_EQ(jt["gradients"].get<uint64_t>(), t.gradients);
  EXPECT_EQ(jt["optimizer"].get<uint64_t>(), t.optimizer);
  EXPECT_EQ(jt["activations"].get<uint64_t>(), t.activations);
  EXPECT_EQ(jt["overhead"].get<uint64_t>(), t.overhead);
  EXPECT_EQ(jt["total"].get<uint64_t>(), t.total);

  const BackendInfo b = query_backends();
  EXPECT_EQ(j["cuda_status"], b.cuda_status);
  ASSERT_EQ(j["gpus"].size(), b.gpus.size());
  for (size_t i = 0; i < b.gpus.size(); ++i)
    EXPECT_EQ(j["gpus"][i]["fits_inference"].get<bool>(), e.total <= b.gpus[i].total_memory);
}

TEST(EstimateCli, DefaultContextIsTheTrainingContext) {
  const auto r = test::run(test::cli() + " estimate -m '" + tiny() + "' --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  auto m = open_model(tiny());
  ASSERT_TRUE(m);
  const int64_t train_ctx = m->desc().params.n_ctx_train;
  ASSERT_GT(train_ctx, 0);
  EXPECT_EQ(j["n_ctx"].get<int64_t>(), train_ctx);
  EXPECT_EQ(j["inference"]["total"].get<uint64_t>(), estimate_gpu_inference(m->desc(), 0).total);
  EXPECT_FALSE(j.contains("training"));
}

TEST(EstimateCli, TableNamesTheGpusOrWhyThereAreNone) {
  const auto r = test::run(test::cli() + " estimate -m '" + tiny() + "' --ctx 4096");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* row : {"weights", "kv cache", "activations", "dequant", "overhead", "total"})
    EXPECT_NE(r.out.find(row), std::string::npos) << row << "\n" << r.out;
  EXPECT_NE(r.out.find("4096 context"), std::string::npos) << r.out;
  const BackendInfo b = query_backends();
  if (b.gpus.empty()) {
    EXPECT_NE(r.out.find("no GPU: " + b.cuda_status), std::string::npos) << r.out;
  } else {
    for (const GpuInfo& g : b.gpus) EXPECT_NE(r.out.find(g.name), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("fits"), std::string::npos) << r.out;
  }
}

TEST(EstimateCli, BadArgumentsGiveOneErrorLine) {
  auto r = test::run(test::cli() + " estimate -m '" + tiny() + "' --ctx -5");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--ctx"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
  r = test::run(test::cli() + " estimate -m /nonexistent/model.gguf");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/nonexistent/model.gguf"), std::string::npos) << r.err;
  r = test::run(test::cli() + " estimate");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("model"), std::string::npos) << r.err;
}
