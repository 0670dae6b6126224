/* The training loop: config in, a trained model out, with a callback per log step, evaluation and
 * checkpoint, that the CLI prints, the app stores in the project, and the dashboard charts.
 *
 * Non-obvious choice: the loop knows nothing of the project store or telemetry (they live in app/,
 * above it). It reports through TrainCallbacks; the app's run session writes metrics, energy and the
 * new model version. Stopping is cooperative: `should_stop` is polled between micro-batches, and a
 * stop writes a checkpoint before returning (TrainOutcome::stopped), so Ctrl-C or the dashboard's
 * Stop never loses more than the current step.
 *
 * Where the steps run (training.device): the CPU, or a CUDA GPU through the trainer's device path with
 * the CPU's semantics. A GPU that cannot serve (none, built without CUDA, too little memory, any set-up
 * error) never fails the run: the CPU trains instead, and on_message / on_device / TrainResult say why.
 *
 * Threads: run_training() runs on the caller's thread; callbacks are called on it.
 */
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "hearth/error.h"
#include "hearth/trainer/config.h"
#include "hearth/trainer/data.h"
#include "hearth/trainer/export.h"

namespace hearth::train {

struct StepMetrics {
  int64_t step = 0;            // optimizer steps done (1-based after the first)
  int64_t total_steps = 0;
  double loss = 0;             // mean training loss of this step's micro-batches
  double lr = 0;
  double grad_norm = 0;        // before clipping
  double tokens_per_s = 0;     // trained tokens / step time
  int64_t tokens_seen = 0;     // trained (target) tokens so far
  double elapsed_s = 0;        // training time so far
  double epoch = 0;            // fractional epoch
};

struct EvalResult {
  int64_t step = 0;
  double val_loss = 0;  // NaN when there is no validation data
  int64_t val_tokens = 0;
  std::vector<std::pair<std::string, std::string>> samples;  // (prompt, greedy continuation)
};

// Where a run's steps are computed, decided once before the first step.
struct TrainDeviceInfo {
  std::string device;          // "cpu" or "cuda"
  std::string description;     // "CPU, 8 threads" or "NVIDIA H200 (GPU 0), BF16 mixed precision"
  std::string note;            // why the CPU serves although training.device asked for a GPU; else empty
  uint64_t memory_bytes = 0;   // device memory the GPU path holds (0 on the CPU)
};

struct TrainCallbacks {
  std::function<void(const Dataset&)> on_data;            // after loading (stats, issues)
  std::function<void(const StepMetrics&)> on_step;        // every log_every steps and the last
  std::function<void(const EvalResult&)> on_eval;
  std::function<void(const std::filesystem::path&, int64_t step)> on_checkpoint;
  std::function<bool()> should_stop;                      // polled between micro-batches
  std::function<void(const std::string&)> on_message;     // progress text ("loading model", ...)
  std::function<void(const TrainDeviceInfo&)> on_device;  // once, when the backend is chosen (before step 1)
};

enum class TrainOutcome { finished, stopped };

struct TrainResult {
  TrainOutcome outcome = TrainOutcome::finished;
  int64_t steps = 0;
  int64_t tokens_seen = 0;
  double elapsed_s = 0;
  double final_loss = 0;
  std::optional<double> final_val_loss, best_val_loss;
  std::string dataset_sha256;
  DatasetStats data_stats;
  std::filesystem::path checkpoint;       // the last one written
  std::vector<ExportedFile> outputs;      // empty when stopped
  uint64_t peak_memory_bytes = 0;        // host memory of the model (and its activations on the CPU)
  // What ran (TrainDeviceInfo): "cpu" or "cuda", its description, why the CPU served when a GPU was asked
  // for, and the device memory held on a GPU.
  std::string device;
  std::string device_description;
  std::string device_note;
  uint64_t device_memory_bytes = 0;
};

// Runs (or, with `resume_from` a checkpoint folder, continues) training as `config` says, writing
// checkpoints under `run_dir`/checkpoints and outputs under config.output.dir (or `run_dir`/output).
// Errors: the config's, the data's, the model's; io when writing fails.
Expected<TrainResult> run_training(const TrainConfig& config, const std::filesystem::path& run_dir,
                                   const TrainCallbacks& callbacks = {},
                                   const std::optional<std::filesystem::path>& resume_from = std::nullopt);

}  // namespace hearth::train
