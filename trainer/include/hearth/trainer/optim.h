/* The optimizer side of a step: AdamW with decoupled weight decay, learning-rate schedules with warmup,
 * and clipping by the global gradient norm.
 *
 * Non-obvious choice: AdamW follows torch.optim.AdamW exactly (bias-corrected moments, decay applied as
 * p -= lr · wd · p before the Adam update, eps added to the corrected sqrt(v)), because the reference
 * test compares ten steps with PyTorch at 1e-4. The global norm is summed in double in a fixed order.
 *
 * Threads: one caller; OpenMP inside. State is plain data so checkpoints can save it.
 */
#pragma once

#include <cstdint>
#include <vector>

#include "hearth/trainer/config.h"
#include "hearth/trainer/param.h"

namespace hearth::train {

struct AdamWSettings {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class AdamW {
 public:
  AdamW(const std::vector<Param*>& params, const AdamWSettings& s);
  // One update of every param from its grad at learning rate `lr` (params with decay = false get no
  // weight decay). Does not clear the grads.
  void step(double lr);
  int64_t steps_taken() const { return m_t; }
  // Moments in param order (m then v for each), for checkpoints.
  std::vector<std::vector<float>>& m() { return m_m; }
  std::vector<std::vector<float>>& v() { return m_v; }
  void set_steps_taken(int64_t t) { m_t = t; }

 private:
  std::vector<Param*> m_params;
  AdamWSettings m_s;
  std::vector<std::vector<float>> m_m, m_v;
  int64_t m_t = 0;
};

// The global L2 norm of all grads (before clipping). When max_norm > 0 and the norm exceeds it, every
// grad is scaled by max_norm / (norm + 1e-6) (PyTorch's clip_grad_norm_).
double clip_grad_norm(const std::vector<Param*>& params, double max_norm);

// Learning rate at optimizer step `step` (0-based) of `total`: linear warmup lr · (step + 1) / warmup
// while step < warmup, then constant, linear or cosine decay over progress
// p = (step - warmup) / (total - 1 - warmup) in [0, 1] (0 when that span is empty), reaching
// lr · min_lr_ratio at the last step (docs/training.md has the formulas).
double learning_rate(ScheduleKind kind, double lr, int64_t step, int64_t total, int64_t warmup,
                     double min_lr_ratio);

}  // namespace hearth::train
