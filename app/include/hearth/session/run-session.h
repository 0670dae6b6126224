/* A training run in the project store: the trainer's loop (trainer/trainer.h) with everything around it
 * that makes the run reproducible and comparable later: the base model version (imported by sha256 when
 * the project lacks it), the dataset (sha256, rows, token statistics), configuration, seed, code
 * version and hardware on the run; loss, learning rate, gradient norm, throughput, validation loss and
 * power/energy as metrics each log step; the output registered as a new model version with lineage.
 *
 * Non-obvious choices (docs/training.md, "Runs in the project"):
 * - The run row is created when the data has loaded (TrainCallbacks::on_data), because the dataset's
 *   hash and statistics must be on it from the start. The run folder therefore cannot be named after
 *   the run id: it is `<project folder>/runs/<UTC time>-<run name>`, and its path is stored in the run's
 *   config JSON under the extra top-level key "run_dir" (the other keys are the trainer config).
 * - Sample generations (eval.prompts) are appended to `<run_dir>/samples.jsonl` at each evaluation and,
 *   when the run finishes, stored in its final metrics as "samples": [{"step", "prompt", "output"}].
 * - Where the run trained (train::TrainDeviceInfo: the CPU, or a GPU, and why the CPU served when a GPU
 *   was asked for) is appended to the run's hardware JSON under "training_devices" once the trainer has
 *   chosen, one entry per part of a resumed run ({"from_step", "device", "description", "note",
 *   "memory_bytes"}), through Project::recordRunDevice (an audited update); the final metrics repeat it.
 * - A stopped run (Ctrl-C, the dashboard's Stop) is left `interrupted` with a checkpoint and can be
 *   resumed; a store failure mid-run (disk full) stops training with a checkpoint and fails the run,
 *   which stays resumable too. A resumed run continues the same run id: its energy_j series continues
 *   from the value stored at the checkpoint's step, and its final energy includes the earlier part.
 *
 * Threading: runTraining() runs on the caller's thread and uses `project` only from it; the telemetry
 * sampler reads sensors on its own thread.
 */
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "hearth/error.h"
#include "hearth/store/project.h"
#include "hearth/telemetry/energy.h"
#include "hearth/telemetry/sampler.h"
#include "hearth/trainer/trainer.h"

namespace hearth::session {

struct TrainRunOptions {
  std::optional<store::Id> resumeRunId;   // continue this run (interrupted or failed) from its last checkpoint
  telemetry::TelemetryOptions telemetry;  // sensors, interval, CPU TDP, grid intensity
  std::function<bool()> shouldStop;       // polled between micro-batches; true: checkpoint and stop
  // Also called with what the trainer reports (the CLI's progress output); its should_stop is ignored.
  train::TrainCallbacks observer;
  std::filesystem::path runsRoot;         // empty: <project folder>/runs
};

struct TrainRunResult {
  store::Id runId = 0;
  train::TrainOutcome outcome = train::TrainOutcome::finished;
  std::optional<store::Id> outputVersionId;  // adapter (LoRA), merged (full) or new base (pretrain)
  std::optional<store::Id> mergedVersionId;  // a LoRA run that also exported a merged model
  std::filesystem::path runDir;
  train::TrainResult train;
  telemetry::EnergyReport energy;  // of this process's part of the run
};

// The run's folder as stored with it (config JSON key "run_dir"). Errors: not_found (no such run),
// format (the run has no run_dir: it was not made by runTraining()).
Expected<std::filesystem::path> runDirectory(store::Project& project, store::Id runId);

// The configuration stored with a run (without "run_dir"), with `overrides` ("key=value") applied.
Expected<train::TrainConfig> storedRunConfig(store::Project& project, store::Id runId,
                                             const std::vector<std::string>& overrides = {});

// Runs (or resumes) training and records it. Returns the result also when the run was stopped
// (outcome stopped; the run is then `interrupted`). Errors: the trainer's and the store's; when the run
// row exists by then it is marked failed with the message first.
Expected<TrainRunResult> runTraining(store::Project& project, const train::TrainConfig& config,
                                     const TrainRunOptions& options = {});

}  // namespace hearth::session
