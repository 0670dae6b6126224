/* The trainer's CUDA path (device-trainer.h). PLACEHOLDER while the implementation is written: every
 * entry point reports that the GPU path is unavailable, so the loop falls back to the CPU. */
#include "device-trainer.h"

namespace hearth::train {

const char* precision_name(TrainPrecision p) { return p == TrainPrecision::f32 ? "f32" : "bf16"; }

std::string cuda_training_unavailable(int) { return "the CUDA training path is not built yet"; }

struct DeviceTrainer::Impl {};
DeviceTrainer::DeviceTrainer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
DeviceTrainer::~DeviceTrainer() = default;

Expected<std::unique_ptr<DeviceTrainer>> DeviceTrainer::create(TrainModel&, const DeviceTrainOptions&, int64_t,
                                                               int64_t) {
  return make_error(ErrorCode::unsupported, cuda_training_unavailable(0));
}
std::string DeviceTrainer::device_name() const { return {}; }
std::string DeviceTrainer::description() const { return {}; }
TrainPrecision DeviceTrainer::precision() const { return TrainPrecision::bf16; }
Expected<LossResult> DeviceTrainer::forward_backward(std::span<const int32_t>, std::span<const int32_t>, int64_t,
                                                     int64_t, float, uint64_t) {
  return make_error(ErrorCode::unsupported, cuda_training_unavailable(0));
}
Expected<LossResult> DeviceTrainer::evaluate(std::span<const int32_t>, std::span<const int32_t>, int64_t, int64_t) {
  return make_error(ErrorCode::unsupported, cuda_training_unavailable(0));
}
Expected<void> DeviceTrainer::zero_grad() { return make_error(ErrorCode::unsupported, cuda_training_unavailable(0)); }
Expected<double> DeviceTrainer::clip_grad_norm(double) {
  return make_error(ErrorCode::unsupported, cuda_training_unavailable(0));
}
Expected<void> DeviceTrainer::adamw_step(double, const AdamWSettings&, int64_t) {
  return make_error(ErrorCode::unsupported, cuda_training_unavailable(0));
}
Expected<void> DeviceTrainer::download(TrainModel&, std::vector<std::vector<float>>*,
                                       std::vector<std::vector<float>>*) {
  return make_error(ErrorCode::unsupported, cuda_training_unavailable(0));
}
Expected<void> DeviceTrainer::download_grads(TrainModel&) {
  return make_error(ErrorCode::unsupported, cuda_training_unavailable(0));
}
Expected<void> DeviceTrainer::upload(const TrainModel&, const std::vector<std::vector<float>>&,
                                     const std::vector<std::vector<float>>&) {
  return make_error(ErrorCode::unsupported, cuda_training_unavailable(0));
}
uint64_t DeviceTrainer::device_bytes() const { return 0; }

}  // namespace hearth::train
