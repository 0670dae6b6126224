/* Unit tests of the training loop's choice of device (training.device, trainer.h): a run that asks for a
 * GPU that cannot serve trains on the CPU, says why (message, on_device, TrainResult), and computes
 * exactly what a device: cpu run computes; a checkpoint resumes under another training.device.
 *
 * Non-obvious choice: the fallback runs ask for GPU 99, which no machine has, so they fall back on every
 * machine (with or without CUDA, with or without a GPU) and the bit-for-bit comparison with the CPU run
 * always holds; the automatic choice of GPU 0 is compared only where it fell back. Runs use the shared
 * tiny Llama model (one 8-wide layer): six LoRA steps take well under a second.
 */
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "hearth/trainer/trainer.h"
#include "test-util.h"
#include "train-data.h"

using namespace hearth;
using namespace hearth::train;
namespace fs = std::filesystem;

namespace {

TrainConfig tiny_config(const fs::path& data, const std::string& device, int gpu) {
  TrainConfig c;
  c.name = "device";
  c.model = hearth::test::testdata("models/llama-2-tiny-random.gguf");
  c.method = Method::lora;
  c.lora.rank = 4;
  c.lora.alpha = 8;
  c.lora.dropout = 0.1f;  // so the dropout seeds matter too
  c.lora.targets = {"q", "v", "up", "down"};
  c.data.train = data;
  c.data.validation_split = 0.2;
  c.data.max_length = 64;
  c.training.steps = 6;
  c.training.batch_size = 4;
  c.training.grad_accum = 2;
  c.training.lr = 1e-3;
  c.training.warmup_steps = 2;
  c.training.seed = 7;
  c.training.threads = 2;
  c.training.device = device;
  c.training.gpu = gpu;
  c.training.precision = "f32";
  c.eval.every = 3;
  c.output.formats = {"gguf-lora"};
  return c;
}

struct TrainRun {
  std::vector<StepMetrics> steps;
  std::vector<double> val_losses;
  std::vector<std::string> messages;
  std::vector<TrainDeviceInfo> devices;
  TrainResult result;
};

TrainRun run_tiny(const TrainConfig& c, const fs::path& run_dir, int64_t stop_after = -1,
          const std::optional<fs::path>& resume = std::nullopt) {
  TrainRun r;
  TrainCallbacks cb;
  cb.on_step = [&](const StepMetrics& m) { r.steps.push_back(m); };
  cb.on_eval = [&](const EvalResult& e) { r.val_losses.push_back(e.val_loss); };
  cb.on_message = [&](const std::string& s) { r.messages.push_back(s); };
  cb.on_device = [&](const TrainDeviceInfo& d) { r.devices.push_back(d); };
  cb.should_stop = [&] { return stop_after >= 0 && !r.steps.empty() && r.steps.back().step >= stop_after; };
  auto res = run_training(c, run_dir, cb, resume);
  EXPECT_TRUE(res.has_value()) << (res ? "" : res.error().to_string());
  if (res) r.result = *res;
  return r;
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

void expect_same_losses(const TrainRun& a, const TrainRun& b) {
  ASSERT_EQ(a.steps.size(), b.steps.size());
  for (size_t i = 0; i < a.steps.size(); ++i) {
    EXPECT_TRUE(same_bits(a.steps[i].loss, b.steps[i].loss))
        << "step " << a.steps[i].step << ": " << a.steps[i].loss << " vs " << b.steps[i].loss;
    EXPECT_TRUE(same_bits(a.steps[i].grad_norm, b.steps[i].grad_norm)) << "step " << a.steps[i].step;
  }
  ASSERT_EQ(a.val_losses.size(), b.val_losses.size());
  for (size_t i = 0; i < a.val_losses.size(); ++i) EXPECT_TRUE(same_bits(a.val_losses[i], b.val_losses[i])) << i;
}

bool has_message(const TrainRun& r, const std::string& text) {
  for (const auto& m : r.messages)
    if (m == text) return true;
  return false;
}

std::string messages_text(const TrainRun& r) {
  std::string s;
  for (const auto& m : r.messages) s += m + "\n";
  return s;
}

// The device: cpu run every other run is compared with, made once per process (with its data file).
struct Reference {
  fs::path data;
  TrainRun run;
};
const Reference& cpu_reference() {
  static const Reference ref = [] {
    Reference r;
    auto dir = hearth::test::scratch("train-device-reference");
    r.data = hearth::test::write_instruction_data(dir, 40);
    r.run = run_tiny(tiny_config(r.data, "cpu", 0), dir / "run");
    return r;
  }();
  return ref;
}

}  // namespace

TEST(TrainDevice, CpuRunSaysWhereItTrains) {
  const TrainRun& r = cpu_reference().run;
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].device, "cpu");
  EXPECT_EQ(r.devices[0].description, "CPU, 2 threads");
  EXPECT_TRUE(r.devices[0].note.empty());
  EXPECT_EQ(r.devices[0].memory_bytes, 0u);
  EXPECT_TRUE(has_message(r, "training on the CPU (CPU, 2 threads)")) << messages_text(r);
  EXPECT_EQ(r.result.device, "cpu");
  EXPECT_EQ(r.result.device_description, "CPU, 2 threads");
  EXPECT_TRUE(r.result.device_note.empty());
  EXPECT_EQ(r.result.steps, 6);
  EXPECT_FALSE(r.result.outputs.empty());
}

TEST(TrainDevice, UnusableGpuFallsBackToTheCpuWithTheReasonAndTheSameLosses) {
  auto dir = hearth::test::scratch("train-device-fallback");
  const fs::path data = cpu_reference().data;
  const TrainRun& cpu = cpu_reference().run;
  for (const char* device : {"cuda", "auto"}) {
    SCOPED_TRACE(device);
    TrainRun r = run_tiny(tiny_config(data, device, 99), dir / device);
    ASSERT_EQ(r.devices.size(), 1u);
    EXPECT_EQ(r.devices[0].device, "cpu");
    const std::string note = r.devices[0].note;
    EXPECT_FALSE(note.empty());
    EXPECT_TRUE(has_message(r, "training on the CPU: " + note)) << messages_text(r);
    EXPECT_EQ(r.result.device, "cpu");
    EXPECT_EQ(r.result.device_note, note);
    EXPECT_EQ(r.result.device_description, "CPU, 2 threads");
    EXPECT_EQ(r.result.device_memory_bytes, 0u);
    ASSERT_EQ(r.result.steps, 6);  // a finished run, not an error
    expect_same_losses(cpu, r);
    EXPECT_TRUE(same_bits(cpu.result.final_loss, r.result.final_loss));
    ASSERT_EQ(r.result.outputs.size(), cpu.result.outputs.size());
    EXPECT_EQ(hearth::test::read_text(r.result.outputs[0].path), hearth::test::read_text(cpu.result.outputs[0].path));
  }
}

TEST(TrainDevice, AutomaticChoiceOfGpuZeroEitherTrainsThereOrFallsBackIdentically) {
  auto dir = hearth::test::scratch("train-device-auto");
  const fs::path data = cpu_reference().data;
  TrainRun r = run_tiny(tiny_config(data, "auto", 0), dir / "auto");
  ASSERT_EQ(r.devices.size(), 1u);
  if (r.result.device == "cuda") {
    // A GPU served (a GPU machine): the comparison with the CPU is gpu-train-loop's.
    EXPECT_TRUE(r.result.device_note.empty());
    EXPECT_GT(r.result.device_memory_bytes, 0u);
    GTEST_SKIP() << "trained on " << r.result.device_description;
  }
  EXPECT_FALSE(r.result.device_note.empty());
  expect_same_losses(cpu_reference().run, r);
}

TEST(TrainDevice, CheckpointResumesUnderAnotherDeviceSetting) {
  auto dir = hearth::test::scratch("train-device-resume");
  const fs::path data = cpu_reference().data;
  const TrainRun& whole = cpu_reference().run;
  TrainRun first = run_tiny(tiny_config(data, "cpu", 0), dir / "part", 3);
  ASSERT_EQ(first.result.outcome, TrainOutcome::stopped);
  ASSERT_FALSE(first.result.checkpoint.empty());
  // Resumed asking for a GPU (that falls back), in the other precision: the device keys are not part of
  // the training arithmetic that a resume must keep.
  TrainConfig c = tiny_config(data, "cuda", 99);
  c.training.precision = "bf16";
  TrainRun rest = run_tiny(c, dir / "part", -1, first.result.checkpoint);
  ASSERT_EQ(rest.result.outcome, TrainOutcome::finished);
  ASSERT_EQ(rest.result.steps, 6);
  std::vector<StepMetrics> joined = first.steps;
  joined.insert(joined.end(), rest.steps.begin(), rest.steps.end());
  ASSERT_EQ(joined.size(), whole.steps.size());
  for (size_t i = 0; i < joined.size(); ++i)
    EXPECT_TRUE(same_bits(joined[i].loss, whole.steps[i].loss)) << "step " << joined[i].step;
  EXPECT_TRUE(same_bits(rest.result.final_loss, whole.result.final_loss));
  // Another change still is refused.
  TrainConfig other = tiny_config(data, "cpu", 0);
  other.training.lr = 2e-3;
  TrainCallbacks cb;
  auto bad = run_training(other, dir / "part", cb, first.result.checkpoint);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("training.lr"), std::string::npos) << bad.error().message;
}
