/* The training loop's GPU branch (trainer.cpp with training.device = cuda), checked on every machine: a
 * test double of DeviceTrainer (device-trainer.h) that keeps its "device" weights, gradients and AdamW
 * moments in its own host vectors and computes with the CPU TrainModel, so a run through the loop's
 * device branch must equal the CPU run BIT FOR BIT: step losses, gradient norms, learning rates,
 * validation losses, sample generations, the exported adapter or model, and a checkpoint written from
 * the "device" resumed on the CPU and on the device.
 *
 * Non-obvious choice: the double swaps its own vectors into the model's Params only for the duration of
 * each call and swaps them back, so the host TrainModel holds stale weights exactly as with a real GPU;
 * a loop that checkpoints, generates or exports without download(), or resumes without upload(), gives
 * different bits here. The link lets this file's definitions replace hearth_trainer's device-trainer.o
 * (-Wl,--allow-multiple-definition, as the CUDA emulation tests do); tests/gpu/test-cuda-train-loop.cpp
 * is the same comparison on a real GPU.
 */
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "device-trainer.h"
#include "hearth/trainer/optim.h"
#include "hearth/trainer/trainer.h"
#include "test-util.h"
#include "train-data.h"

using namespace hearth;
using namespace hearth::train;
namespace fs = std::filesystem;

// ---- the test double -----------------------------------------------------------------------------------

namespace hearth::train {

const char* precision_name(TrainPrecision p) { return p == TrainPrecision::f32 ? "f32" : "bf16"; }

std::string cuda_training_unavailable(int gpu_index) {
  return gpu_index == 0 ? std::string() : "no GPU " + std::to_string(gpu_index) + " (test double)";
}

struct DeviceTrainer::Impl {
  TrainModel* model = nullptr;
  DeviceTrainOptions options;
  int64_t max_B = 0, max_T = 0;
  std::vector<std::vector<float>> w, g, m, v;  // the "device" state, in trainable() order

  // Runs f with the device state in the model's Params, then puts the host's back.
  template <class F>
  auto on_device(F&& f) {
    auto ps = model->trainable();
    auto swap_all = [&] {
      for (size_t i = 0; i < ps.size(); ++i) {
        std::swap(ps[i]->value, w[i]);
        std::swap(ps[i]->grad, g[i]);
      }
    };
    swap_all();
    auto r = f(ps);
    swap_all();
    return r;
  }
};

DeviceTrainer::DeviceTrainer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
DeviceTrainer::~DeviceTrainer() = default;

Expected<std::unique_ptr<DeviceTrainer>> DeviceTrainer::create(TrainModel& model, const DeviceTrainOptions& options,
                                                               int64_t max_B, int64_t max_T) {
  if (!cuda_training_unavailable(options.gpu_index).empty())
    return make_error(ErrorCode::unsupported, cuda_training_unavailable(options.gpu_index));
  auto im = std::make_unique<Impl>();
  im->model = &model;
  im->options = options;
  im->max_B = max_B, im->max_T = max_T;
  for (const Param* p : model.trainable()) {
    im->w.push_back(p->value);
    im->g.emplace_back(p->value.size(), 0.0f);
    im->m.emplace_back(p->value.size(), 0.0f);
    im->v.emplace_back(p->value.size(), 0.0f);
  }
  return std::unique_ptr<DeviceTrainer>(new DeviceTrainer(std::move(im)));
}

std::string DeviceTrainer::device_name() const { return "Test double"; }
std::string DeviceTrainer::description() const { return "Test double (GPU 0), F32"; }
TrainPrecision DeviceTrainer::precision() const { return m_impl->options.precision; }

Expected<LossResult> DeviceTrainer::forward_backward(std::span<const int32_t> tokens, std::span<const int32_t> targets,
                                                     int64_t B, int64_t T, float grad_scale, uint64_t dropout_seed) {
  if (B > m_impl->max_B || T > m_impl->max_T) return make_error(ErrorCode::invalid_argument, "batch too large");
  return m_impl->on_device([&](auto&) {
    return m_impl->model->forward_backward(tokens, targets, B, T, grad_scale, dropout_seed);
  });
}
Expected<LossResult> DeviceTrainer::evaluate(std::span<const int32_t> tokens, std::span<const int32_t> targets,
                                             int64_t B, int64_t T) {
  return m_impl->on_device([&](auto&) { return m_impl->model->evaluate(tokens, targets, B, T); });
}
Expected<void> DeviceTrainer::zero_grad() {
  for (auto& x : m_impl->g) std::fill(x.begin(), x.end(), 0.0f);
  return {};
}
Expected<double> DeviceTrainer::clip_grad_norm(double max_norm) {
  return m_impl->on_device([&](std::vector<Param*>& ps) { return train::clip_grad_norm(ps, max_norm); });
}
Expected<void> DeviceTrainer::adamw_step(double lr, const AdamWSettings& s, int64_t t) {
  return m_impl->on_device([&](std::vector<Param*>& ps) -> Expected<void> {
    AdamW opt(ps, s);
    opt.m() = m_impl->m;
    opt.v() = m_impl->v;
    opt.set_steps_taken(t - 1);
    opt.step(lr);
    m_impl->m = opt.m();
    m_impl->v = opt.v();
    return {};
  });
}
Expected<void> DeviceTrainer::download(TrainModel& model, std::vector<std::vector<float>>* m,
                                       std::vector<std::vector<float>>* v) {
  auto ps = model.trainable();
  for (size_t i = 0; i < ps.size(); ++i) ps[i]->value = m_impl->w[i];
  if (m) *m = m_impl->m;
  if (v) *v = m_impl->v;
  return {};
}
Expected<void> DeviceTrainer::download_grads(TrainModel& model) {
  auto ps = model.trainable();
  for (size_t i = 0; i < ps.size(); ++i) ps[i]->grad = m_impl->g[i];
  return {};
}
Expected<void> DeviceTrainer::upload(const TrainModel& model, const std::vector<std::vector<float>>& m,
                                     const std::vector<std::vector<float>>& v) {
  auto ps = model.trainable();
  for (size_t i = 0; i < ps.size(); ++i) m_impl->w[i] = ps[i]->value;
  if (!m.empty()) m_impl->m = m;
  if (!v.empty()) m_impl->v = v;
  return {};
}
uint64_t DeviceTrainer::device_bytes() const {
  uint64_t n = 0;
  for (const auto& x : m_impl->w) n += 16 * x.size();
  return n;
}

}  // namespace hearth::train

// ---- the tests -----------------------------------------------------------------------------------------

namespace {

TrainConfig config(const fs::path& data, Method method, const std::string& device) {
  TrainConfig c;
  c.name = "fake-device";
  c.model = hearth::test::testdata("models/llama-2-tiny-random.gguf");
  c.method = method;
  c.lora.rank = 4;
  c.lora.alpha = 8;
  c.lora.dropout = 0.1f;  // the dropout seeds must be the CPU's
  c.data.train = data;
  c.data.validation_split = 0.2;
  c.data.max_length = 64;
  c.training.steps = 6;
  c.training.batch_size = 4;
  c.training.grad_accum = 2;
  c.training.lr = 1e-3;
  c.training.warmup_steps = 2;
  c.training.weight_decay = 0.01;
  c.training.seed = 7;
  c.training.threads = 2;
  c.training.device = device;
  c.training.precision = "f32";
  c.eval.every = 3;
  c.eval.prompts = {"Tell me about the river."};
  c.eval.max_new_tokens = 4;
  c.checkpoint.every = 3;
  c.checkpoint.keep = 4;
  c.output.formats = method == Method::lora ? std::vector<std::string>{"gguf-lora"}
                                            : std::vector<std::string>{"gguf-f16"};
  return c;
}

struct LoopRun {
  std::vector<StepMetrics> steps;
  std::vector<EvalResult> evals;
  TrainResult result;
};

LoopRun run(const TrainConfig& c, const fs::path& dir, int64_t stop_after = -1,
        const std::optional<fs::path>& resume = std::nullopt) {
  LoopRun r;
  TrainCallbacks cb;
  cb.on_step = [&](const StepMetrics& m) { r.steps.push_back(m); };
  cb.on_eval = [&](const EvalResult& e) { r.evals.push_back(e); };
  cb.should_stop = [&] { return stop_after >= 0 && !r.steps.empty() && r.steps.back().step >= stop_after; };
  auto res = run_training(c, dir, cb, resume);
  EXPECT_TRUE(res) << (res ? "" : res.error().to_string());
  if (res) r.result = *res;
  return r;
}

std::string file_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

// Step metrics of `got` equal `want`'s of the same step, bit for bit (loss, gradient norm, learning rate).
void expect_same_steps(const std::vector<StepMetrics>& got, const std::vector<StepMetrics>& want) {
  for (const StepMetrics& g : got) {
    auto it = std::find_if(want.begin(), want.end(), [&](const StepMetrics& w) { return w.step == g.step; });
    ASSERT_NE(it, want.end()) << "step " << g.step;
    EXPECT_EQ(g.loss, it->loss) << "step " << g.step;
    EXPECT_EQ(g.grad_norm, it->grad_norm) << "step " << g.step;
    EXPECT_EQ(g.lr, it->lr) << "step " << g.step;
  }
}

void expect_same_outputs(const TrainResult& got, const TrainResult& want) {
  ASSERT_EQ(got.outputs.size(), want.outputs.size());
  for (size_t i = 0; i < got.outputs.size(); ++i) {
    EXPECT_EQ(got.outputs[i].format, want.outputs[i].format);
    EXPECT_TRUE(file_bytes(got.outputs[i].path) == file_bytes(want.outputs[i].path))
        << got.outputs[i].path << " differs from " << want.outputs[i].path;
  }
}

class LoopOnFakeDevice : public ::testing::TestWithParam<Method> {};

}  // namespace

TEST_P(LoopOnFakeDevice, EqualsTheCpuRunBitForBitAndResumesAcrossDevices) {
  const Method method = GetParam();
  const fs::path dir = hearth::test::scratch(std::string("fake-device-") + method_name(method));
  const fs::path data = hearth::test::write_instruction_data(dir, 40);
  LoopRun cpu = run(config(data, method, "cpu"), dir / "cpu");
  LoopRun dev = run(config(data, method, "cuda"), dir / "dev");
  ASSERT_EQ(cpu.result.device, "cpu");
  ASSERT_EQ(dev.result.device, "cuda") << dev.result.device_note;
  EXPECT_EQ(dev.result.device_description, "Test double (GPU 0), F32");
  ASSERT_EQ(dev.steps.size(), 6u);
  ASSERT_EQ(cpu.steps.size(), 6u);
  expect_same_steps(dev.steps, cpu.steps);
  ASSERT_EQ(dev.evals.size(), cpu.evals.size());
  for (size_t i = 0; i < dev.evals.size(); ++i) {
    EXPECT_EQ(dev.evals[i].val_loss, cpu.evals[i].val_loss) << "evaluation " << i;
    EXPECT_EQ(dev.evals[i].samples, cpu.evals[i].samples) << "evaluation " << i;  // generated from host weights
  }
  EXPECT_EQ(dev.result.final_loss, cpu.result.final_loss);
  expect_same_outputs(dev.result, cpu.result);

  // Stopped after step 3 on the device: the checkpoint (weights and moments downloaded) resumes on the CPU
  // and on the device, and both finish exactly as the uninterrupted CPU run did.
  LoopRun part = run(config(data, method, "cuda"), dir / "part", 3);
  ASSERT_EQ(part.result.outcome, TrainOutcome::stopped);
  ASSERT_FALSE(part.result.checkpoint.empty());
  expect_same_steps(part.steps, cpu.steps);
  for (const char* device : {"cpu", "cuda"}) {
    SCOPED_TRACE(device);
    LoopRun rest = run(config(data, method, device), dir / (std::string("rest-") + device), -1, part.result.checkpoint);
    ASSERT_EQ(rest.result.outcome, TrainOutcome::finished);
    EXPECT_EQ(rest.result.device, device);
    ASSERT_EQ(rest.steps.size(), 3u);
    expect_same_steps(rest.steps, cpu.steps);
    expect_same_outputs(rest.result, cpu.result);
  }
}

INSTANTIATE_TEST_SUITE_P(Methods, LoopOnFakeDevice, ::testing::Values(Method::lora, Method::full),
                         [](const ::testing::TestParamInfo<Method>& i) { return std::string(method_name(i.param)); });
