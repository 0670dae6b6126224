/* The sentences the desktop program shows for the GPU memory estimate (docs/gpu.md, "GPU memory
 * estimate"): one for a model's inference on the Models page, one for a fine-tuning run in the wizard.
 *
 * Non-obvious choice: a model "fits" when the estimate is at most the card's TOTAL memory (as
 * `hearth-cli estimate` says): the estimate already carries the CUDA context allowance, and what is
 * free changes from second to second.
 *
 * Threading: plain functions over values; queryBackendsOrReason() may run on any thread (the pages call
 * it through QtConcurrent, since the CUDA query can take a second).
 */
#pragma once

#include <QString>
#include <cstdint>

#include "hearth/backend.h"
#include "hearth/gpu-estimate.h"
#include "hearth/trainer/estimate.h"
#include "hearth/trainer/train-model.h"

namespace hearth::ui {

// "2.41" (GiB, two decimals, no unit).
QString gibNumber(std::uint64_t bytes);

// "GPU memory at 4096 context: 2.41 GiB (weights 2.05, KV cache 0.09, activations 0.08, dequant 0.00,
// CUDA allowance 0.59 GiB) — fits on NVIDIA H200 (139.80 GiB)", or "… — no GPU found: <reason>".
QString gpuInferenceText(const GpuMemoryEstimate& e, std::int64_t nCtx, const BackendInfo& backends);

// The wizard's GPU line: the run's GPU estimate and whether it fits on each GPU; with no GPU, one
// sentence saying runs use the CPU (and why there is no GPU). `recomputedTotal` (when not 0) is the same
// run's total with the attention probabilities recomputed in backward, which the GPU trainer chooses by
// itself when keeping them all does not fit: a GPU between the two totals "fits by recomputing attention".
QString gpuTrainingText(const train::MemoryEstimate& m, train::Method method, const BackendInfo& backends,
                        std::uint64_t recomputedTotal = 0);

// query_backends(), or no GPU with "the GPU query failed" as the reason when it throws.
BackendInfo queryBackendsOrReason();

}  // namespace hearth::ui
