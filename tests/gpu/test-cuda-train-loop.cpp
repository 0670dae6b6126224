/* The training loop on the GPU (label gpu, issue 6): run_training() with training.device = cuda against
 * the same run on the CPU, on a tiny random llama (2 layers, width 256, 4 heads of 64, 2 KV heads, the
 * Llama 2 vocabulary): a LoRA run (with adapter dropout) and a full fine-tuning run in F32 give per-step
 * losses within 1e-4 relative of the CPU's; a checkpoint written from the GPU resumes on the CPU and on
 * the GPU and finishes with the uninterrupted run's losses; the exported models load and match the
 * CPU's export; a BF16 LoRA run stays near the CPU. Skips where no CUDA device is present.
 *
 * Non-obvious choice: a GPU that is present but cannot train (cuda_training_unavailable not empty) FAILS
 * here rather than skipping: on the GPU machine that is exactly the regression this test exists for.
 * Runs are compared step by step through the loop's own callbacks, so the CPU run is the reference and
 * nothing is hard-coded.
 */
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cuda-test-util.h"
#include "device-trainer.h"
#include "hearth/gguf.h"
#include "hearth/model-writer.h"
#include "hearth/model.h"
#include "hearth/trainer/trainer.h"
#include "test-util.h"
#include "train-data.h"

using namespace hearth;
using namespace hearth::train;
namespace fs = std::filesystem;

namespace {

// Writes the tiny model (and the data) once per process; returns the model's path.
fs::path tiny_model(const fs::path& dir) {
  const fs::path path = dir / "tiny-256.gguf";
  if (fs::exists(path)) return path;
  auto src = GgufFile::open(hearth::test::testdata("models/llama-2-tiny-random.gguf"));
  EXPECT_TRUE(src) << (src ? "" : src.error().to_string());
  if (!src) return path;
  TokenizerData td;
  td.model = "llama";
  auto tokens = src->get_string_array("tokenizer.ggml.tokens");
  auto scores = src->get_float_array("tokenizer.ggml.scores");
  auto types = src->get_int_array("tokenizer.ggml.token_type");
  EXPECT_TRUE(tokens && scores && types) << "tokenizer arrays missing in the shared tiny model";
  if (!tokens || !scores || !types) return path;
  td.tokens = *tokens;
  td.scores = *scores;
  for (int64_t t : *types) td.token_types.push_back(int32_t(t));
  td.bos_id = 1;
  td.eos_id = 2;
  td.add_bos = true;
  ModelParams p = tiny_params(Architecture::llama, 256, 2, int64_t(td.tokens.size()));
  auto w = make_random_weights(p, 5);
  EXPECT_TRUE(w);
  GgufWriteOptions o;
  o.tokenizer = td;
  auto r = write_gguf_model(*w, path, o);
  EXPECT_TRUE(r) << (r ? "" : r.error().to_string());
  return path;
}


TrainConfig config(const fs::path& model, const fs::path& data, Method method, const std::string& device) {
  TrainConfig c;
  c.name = "gpu-loop";
  c.model = model;
  c.method = method;
  c.lora.rank = 8;
  c.lora.alpha = 16;
  c.lora.dropout = 0.1f;
  c.data.train = data;
  c.data.validation_split = 0.125;
  c.data.max_length = 96;
  c.training.steps = 6;
  c.training.batch_size = 4;
  c.training.grad_accum = 2;
  c.training.lr = method == Method::lora ? 2e-3 : 5e-4;
  c.training.warmup_steps = 2;
  c.training.weight_decay = 0.01;
  c.training.seed = 11;
  c.training.threads = 4;
  c.training.device = device;
  c.training.gpu = 0;
  c.training.precision = "f32";
  c.eval.every = 3;
  c.checkpoint.every = 3;
  c.checkpoint.keep = 4;
  c.output.formats = method == Method::lora ? std::vector<std::string>{"gguf-lora", "gguf-f16"}
                                            : std::vector<std::string>{"gguf-f16"};
  return c;
}

struct LoopRun {
  std::vector<StepMetrics> steps;
  std::vector<double> val;
  std::vector<std::string> messages;
  TrainResult result;
};

LoopRun run(const TrainConfig& c, const fs::path& dir, int64_t stop_after = -1,
            const std::optional<fs::path>& resume = std::nullopt) {
  LoopRun r;
  TrainCallbacks cb;
  cb.on_step = [&](const StepMetrics& m) { r.steps.push_back(m); };
  cb.on_eval = [&](const EvalResult& e) { r.val.push_back(e.val_loss); };
  cb.on_message = [&](const std::string& s) { r.messages.push_back(s); };
  cb.should_stop = [&] { return stop_after >= 0 && !r.steps.empty() && r.steps.back().step >= stop_after; };
  auto res = run_training(c, dir, cb, resume);
  EXPECT_TRUE(res) << (res ? "" : res.error().to_string());
  if (res) r.result = *res;
  return r;
}

double rel(double a, double b) { return std::abs(a - b) / std::max(1e-12, std::abs(b)); }

// Per-step losses of `got` (steps first_step.. of the reference) within tol relative of `want`'s.
void expect_close_losses(const std::vector<StepMetrics>& got, const std::vector<StepMetrics>& want, double tol,
                         const char* what) {
  double worst = 0;
  for (const auto& g : got) {
    auto it = std::find_if(want.begin(), want.end(), [&](const StepMetrics& w) { return w.step == g.step; });
    ASSERT_NE(it, want.end()) << what << ": step " << g.step << " missing in the reference";
    worst = std::max(worst, rel(g.loss, it->loss));
    EXPECT_LE(rel(g.loss, it->loss), tol) << what << " step " << g.step << ": " << g.loss << " vs " << it->loss;
    EXPECT_LE(rel(g.grad_norm, it->grad_norm), 10 * tol) << what << " step " << g.step << " grad norm";
  }
  std::printf("RESULT %s-max-rel-loss-diff %.3g rel\n", what, worst);
}

bool said(const LoopRun& r, const std::string& prefix) {
  return std::any_of(r.messages.begin(), r.messages.end(), [&](const std::string& m) { return m.rfind(prefix, 0) == 0; });
}

const ExportedFile* output(const TrainResult& r, const std::string& format) {
  for (const auto& f : r.outputs)
    if (f.format == format) return &f;
  return nullptr;
}

// The exported merged GGUF loads, and its weights are the CPU run's (see `close`).
void expect_export_matches(const TrainResult& gpu, const TrainResult& cpu, double tol) {
  const ExportedFile* g = output(gpu, "gguf-f16");
  const ExportedFile* c = output(cpu, "gguf-f16");
  ASSERT_TRUE(g && c);
  auto mg = open_model(g->path);
  ASSERT_TRUE(mg) << mg.error().to_string();
  auto mc = open_model(c->path);
  ASSERT_TRUE(mc) << mc.error().to_string();
  auto wg = read_weights(*mg);
  auto wc = read_weights(*mc);
  ASSERT_TRUE(wg && wc);
  ASSERT_EQ(wg->layers.size(), wc->layers.size());
  // AdamW's first steps move each weight by about ±lr whatever the gradient's size, so a gradient within
  // rounding of zero may take the other sign on the GPU: a few isolated weights may differ by ~lr. Every
  // other weight must agree within `tol` of the tensor's largest value (F16 storage rounds at ~1e-3).
  auto close = [&](const std::vector<float>& a, const std::vector<float>& b, const std::string& name) {
    ASSERT_EQ(a.size(), b.size()) << name;
    double mx = 0;
    for (float v : b) mx = std::max(mx, double(std::abs(v)));
    const double limit = tol * std::max(mx, 1e-6);
    size_t off = 0;
    double worst = 0;
    for (size_t k = 0; k < a.size(); ++k) {
      const double d = std::abs(double(a[k]) - double(b[k]));
      worst = std::max(worst, d);
      off += d > limit;
    }
    EXPECT_LE(off, std::max<size_t>(2, a.size() / 10000))
        << name << ": " << off << " of " << a.size() << " weights differ by more than " << limit << " (largest "
        << worst << ")";
  };
  close(wg->tok_embd, wc->tok_embd, "tok_embd");
  close(wg->output_norm, wc->output_norm, "output_norm");
  close(wg->output, wc->output, "output");
  for (size_t l = 0; l < wg->layers.size(); ++l) {
    const LayerWeights &a = wg->layers[l], &b = wc->layers[l];
    const std::string p = "layer " + std::to_string(l) + " ";
    close(a.attn_norm, b.attn_norm, p + "attn_norm");
    close(a.wq, b.wq, p + "wq");
    close(a.wk, b.wk, p + "wk");
    close(a.wv, b.wv, p + "wv");
    close(a.wo, b.wo, p + "wo");
    close(a.ffn_norm, b.ffn_norm, p + "ffn_norm");
    close(a.ffn_gate, b.ffn_gate, p + "ffn_gate");
    close(a.ffn_up, b.ffn_up, p + "ffn_up");
    close(a.ffn_down, b.ffn_down, p + "ffn_down");
  }
}

class GpuTrainLoop : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!hearth::test::have_gpu()) GTEST_SKIP() << "no CUDA device";
    const std::string why = cuda_training_unavailable(0);
    ASSERT_TRUE(why.empty()) << "a GPU is present but the CUDA training path says: " << why;
    dir = hearth::test::scratch("gpu-train-loop");
    model = tiny_model(dir);
    data = hearth::test::write_instruction_data(dir, 64);
  }
  fs::path dir, model, data;
};

}  // namespace

TEST_F(GpuTrainLoop, LoraF32MatchesTheCpuAndItsCheckpointResumesOnBoth) {
  LoopRun cpu = run(config(model, data, Method::lora, "cpu"), dir / "lora-cpu");
  LoopRun gpu = run(config(model, data, Method::lora, "cuda"), dir / "lora-gpu");
  ASSERT_EQ(gpu.result.device, "cuda") << gpu.result.device_note;
  EXPECT_TRUE(said(gpu, "training on the GPU: ")) << gpu.result.device_description;
  EXPECT_GT(gpu.result.device_memory_bytes, 0u);
  ASSERT_EQ(gpu.steps.size(), cpu.steps.size());
  expect_close_losses(gpu.steps, cpu.steps, 1e-4, "lora-f32");
  ASSERT_EQ(gpu.val.size(), cpu.val.size());
  for (size_t i = 0; i < gpu.val.size(); ++i) EXPECT_LE(rel(gpu.val[i], cpu.val[i]), 1e-4) << "evaluation " << i;
  ASSERT_TRUE(output(gpu.result, "gguf-lora"));
  expect_export_matches(gpu.result, cpu.result, 2e-3);

  // A GPU run stopped after step 3: its checkpoint (downloaded from the device) resumes on the CPU and
  // on the GPU, and both finish with the uninterrupted run's losses.
  LoopRun part = run(config(model, data, Method::lora, "cuda"), dir / "lora-part", 3);
  ASSERT_EQ(part.result.outcome, TrainOutcome::stopped);
  ASSERT_FALSE(part.result.checkpoint.empty());
  expect_close_losses(part.steps, cpu.steps, 1e-4, "lora-f32-first-part");
  for (const char* device : {"cpu", "cuda"}) {
    SCOPED_TRACE(device);
    LoopRun rest = run(config(model, data, Method::lora, device), dir / (std::string("lora-rest-") + device), -1,
                       part.result.checkpoint);
    ASSERT_EQ(rest.result.outcome, TrainOutcome::finished);
    EXPECT_EQ(rest.result.device, device);
    EXPECT_EQ(rest.result.steps, 6);
    ASSERT_EQ(rest.steps.size(), 3u);
    expect_close_losses(rest.steps, cpu.steps, 1e-4, "lora-f32-resumed");
    expect_export_matches(rest.result, cpu.result, 2e-3);
  }
}

TEST_F(GpuTrainLoop, FullF32MatchesTheCpuAndItsCheckpointResumes) {
  LoopRun cpu = run(config(model, data, Method::full, "cpu"), dir / "full-cpu");
  LoopRun gpu = run(config(model, data, Method::full, "cuda"), dir / "full-gpu");
  ASSERT_EQ(gpu.result.device, "cuda") << gpu.result.device_note;
  ASSERT_EQ(gpu.steps.size(), cpu.steps.size());
  expect_close_losses(gpu.steps, cpu.steps, 1e-4, "full-f32");
  expect_export_matches(gpu.result, cpu.result, 2e-3);

  LoopRun part = run(config(model, data, Method::full, "cuda"), dir / "full-part", 3);
  ASSERT_EQ(part.result.outcome, TrainOutcome::stopped);
  for (const char* device : {"cpu", "cuda"}) {
    SCOPED_TRACE(device);
    LoopRun rest = run(config(model, data, Method::full, device), dir / (std::string("full-rest-") + device), -1,
                       part.result.checkpoint);
    ASSERT_EQ(rest.result.outcome, TrainOutcome::finished);
    EXPECT_EQ(rest.result.device, device);
    expect_close_losses(rest.steps, cpu.steps, 1e-4, "full-f32-resumed");
    expect_export_matches(rest.result, cpu.result, 2e-3);
  }
}

TEST_F(GpuTrainLoop, Bf16LoraStaysNearTheCpu) {
  LoopRun cpu = run(config(model, data, Method::lora, "cpu"), dir / "bf16-cpu");
  TrainConfig c = config(model, data, Method::lora, "cuda");
  c.training.precision = "bf16";
  LoopRun gpu = run(c, dir / "bf16-gpu");
  ASSERT_EQ(gpu.result.device, "cuda") << gpu.result.device_note;
  EXPECT_NE(gpu.result.device_description.find("BF16"), std::string::npos) << gpu.result.device_description;
  ASSERT_EQ(gpu.steps.size(), cpu.steps.size());
  double worst = 0;
  for (size_t i = 0; i < gpu.steps.size(); ++i) {
    worst = std::max(worst, rel(gpu.steps[i].loss, cpu.steps[i].loss));
    EXPECT_LE(rel(gpu.steps[i].loss, cpu.steps[i].loss), 2e-2) << "step " << gpu.steps[i].step;
  }
  std::printf("RESULT lora-bf16-max-rel-loss-diff %.3g rel\n", worst);
}
