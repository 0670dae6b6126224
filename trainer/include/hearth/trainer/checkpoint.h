/* Checkpoints: everything needed to continue a run bit-for-bit: the trainable tensors, the AdamW
 * moments and step count, the RNG/dropout counter, the data position and the metrics so far.
 *
 * Non-obvious choice: a checkpoint is a folder `step-<N>` holding `state.safetensors` (tensors by
 * name: the params, `optim.m.<name>`, `optim.v.<name>`) and `state.json` (step, data position, seeds,
 * the config JSON); it is written to `step-<N>.tmp` and renamed, so a kill or a full disk mid-write
 * leaves the previous checkpoints intact and never a half one that looks complete.
 */
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "hearth/error.h"
#include "hearth/trainer/data.h"
#include "hearth/trainer/optim.h"
#include "hearth/trainer/param.h"

namespace hearth::train {

struct TrainState {
  int64_t step = 0;                  // optimizer steps done
  int64_t tokens_seen = 0;           // trained tokens so far
  double elapsed_s = 0;              // training time so far (resumes add to it)
  double energy_j = 0;               // energy so far
  BatchIterator::Position data;      // where the next batch comes from
  uint64_t dropout_counter = 0;      // next dropout seed
  double best_val_loss = 0;          // 0 when none yet
  std::string config_json;           // the run's configuration (checked on resume)
};

// Writes `dir`/step-<state.step> atomically (see above) and removes all but the newest `keep`.
// Errors: io (naming the path; the disk full included): previous checkpoints are left as they were.
Expected<std::filesystem::path> save_checkpoint(const std::filesystem::path& dir, const TrainState& state,
                                                const std::vector<const Param*>& params, AdamW& optimizer,
                                                int64_t keep);
// Restores into params (names and shapes must match: invalid_argument naming the first that does not)
// and the optimizer; returns the state.
Expected<TrainState> load_checkpoint(const std::filesystem::path& checkpoint,
                                     const std::vector<Param*>& params, AdamW& optimizer);
// The newest complete checkpoint in `dir` (step-<N> with the largest N), if any.
std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& dir);

// Whether a run configured as `current_config_json` (config_to_json) may continue from a checkpoint
// saved with `saved_config_json` (TrainState::config_json): every key must be equal except those that
// do not change the training arithmetic (name, training.threads, training.log_every, eval.*,
// checkpoint.*, output.*). Errors: invalid_argument naming the first key that differs, with both
// values; format when either text is not a JSON object.
Expected<void> check_resume_config(const std::string& saved_config_json, const std::string& current_config_json);

}  // namespace hearth::train
