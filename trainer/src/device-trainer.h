/* Internal: the trainer's CUDA path (issue 6). A DeviceTrainer holds one TrainModel's trainable tensors
 * on a GPU (F32 master weights, F32 gradients, the AdamW moments, and in BF16 mode a BF16 copy of every
 * weight used by a matrix product), the frozen base of a LoRA run, and the activations of one
 * micro-batch, and runs forward_backward / evaluate / clipping / AdamW there. The training loop
 * (trainer.cpp) uses it in place of TrainModel + AdamW + clip_grad_norm when the configuration asks for
 * the GPU; host Params are brought up to date only when the loop needs them (checkpoint, evaluation
 * samples, export): download().
 *
 * Semantics are the CPU's, one for one: the same network (llama / qwen2 / qwen3, biases, q/k norm, tied
 * embeddings, RoPE scaling, interleaved GGUF q/k rows of a LoRA base), the same loss (mean cross-entropy
 * over targets >= 0), the same LoRA scaling, initialisation (taken from the TrainModel's values) and
 * dropout masks (same counter hash, same seeds), the same AdamW and clipping (train-kernels.h). So a
 * checkpoint written from a GPU run is the CPU's checkpoint format, and a run can resume on either.
 *
 * Precision:
 * - f32: every matrix product in F32 with F32 accumulation (no TF32): gradients match the CPU within
 *   ~1e-5 relative. The tests use it.
 * - bf16 (the default for training): matrix products take BF16 inputs (weights from the BF16 copy that
 *   AdamW refreshes, activations converted just before each product) and accumulate in F32; everything
 *   else (norms, softmax, loss, residual stream, gradients, master weights, moments) stays F32.
 *
 * Errors are hearth::Error values (never exceptions across this API): unsupported (built without CUDA, no
 * usable device, compute capability < 8.0, cuBLAS missing, a base weight type the GPU cannot read),
 * out_of_memory (needs more than the device has free: the message gives both figures), internal (a CUDA
 * or cuBLAS failure, with its text), and TrainModel::forward_backward's argument errors.
 *
 * Threads: one thread uses a DeviceTrainer at a time; all work is on one CUDA stream of its own. Calls
 * that return values to the host (losses, the norm) synchronize that stream; the others only enqueue.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hearth/error.h"
#include "hearth/trainer/optim.h"
#include "hearth/trainer/train-model.h"

namespace hearth::train {

enum class TrainPrecision { bf16, f32 };
const char* precision_name(TrainPrecision p);  // "bf16", "f32"

struct DeviceTrainOptions {
  int gpu_index = 0;
  TrainPrecision precision = TrainPrecision::bf16;
  // Keep one layer's attention probabilities and recompute the others' in backward (one scores GEMM and
  // softmax per layer more; B · heads · T² floats instead of n_layer times that). Without it, create()
  // still chooses this by itself when keeping every layer's does not fit (description() says so).
  // Gradients are the same bits either way.
  bool recompute_attention = false;
};

// Empty when CUDA training can run on GPU gpu_index (built with CUDA, a device of compute capability
// >= 8.0, cuBLAS loadable); otherwise a one-line reason ("built without CUDA", "no CUDA device: ...").
// Memory is not checked here (create() does).
std::string cuda_training_unavailable(int gpu_index);

class DeviceTrainer {
 public:
  // Copies `model`'s trainable values (and, for LoRA, its frozen base weights) to the device and
  // allocates everything for micro-batches of up to max_B rows × max_T positions. `model` must outlive
  // the DeviceTrainer; it is read here and written only by download()/download_grads().
  static Expected<std::unique_ptr<DeviceTrainer>> create(TrainModel& model, const DeviceTrainOptions& options,
                                                         int64_t max_B, int64_t max_T);
  ~DeviceTrainer();
  DeviceTrainer(const DeviceTrainer&) = delete;
  DeviceTrainer& operator=(const DeviceTrainer&) = delete;

  std::string device_name() const;  // "NVIDIA H200"
  std::string description() const;  // "NVIDIA H200 (GPU 0), BF16 mixed precision"
  TrainPrecision precision() const;

  // As TrainModel::forward_backward / evaluate (same arguments, errors and loss definition), with the
  // gradients accumulated on the device. B <= max_B and T <= max_T.
  Expected<LossResult> forward_backward(std::span<const int32_t> tokens, std::span<const int32_t> targets,
                                        int64_t B, int64_t T, float grad_scale = 1.0f, uint64_t dropout_seed = 0);
  Expected<LossResult> evaluate(std::span<const int32_t> tokens, std::span<const int32_t> targets, int64_t B,
                                int64_t T);
  Expected<void> zero_grad();
  // clip_grad_norm (optim.h) over the device gradients; returns the norm before clipping.
  Expected<double> clip_grad_norm(double max_norm);
  // One AdamW::step (optim.h) at learning rate lr; t >= 1 is the step count after this step. In BF16
  // mode it also refreshes the BF16 copies.
  Expected<void> adamw_step(double lr, const AdamWSettings& s, int64_t t);

  // Master weights -> model.trainable()[i].value; when m and v are given, the moments -> (*m)[i], (*v)[i]
  // (resized to numel), in trainable() order (AdamW::m()/v()'s layout).
  Expected<void> download(TrainModel& model, std::vector<std::vector<float>>* m = nullptr,
                          std::vector<std::vector<float>>* v = nullptr);
  // Device gradients -> model.trainable()[i].grad (tests, diagnostics).
  Expected<void> download_grads(TrainModel& model);
  // Host values (and moments, when not empty) -> device, e.g. after a checkpoint was loaded.
  Expected<void> upload(const TrainModel& model, const std::vector<std::vector<float>>& m = {},
                        const std::vector<std::vector<float>>& v = {});

  uint64_t device_bytes() const;  // device memory this trainer holds

  struct Impl;

 private:
  explicit DeviceTrainer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace hearth::train
