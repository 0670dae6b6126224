/* NVIDIA GPUs through NVML, loaded at run time with dlopen (no link-time dependency, no NVML header):
 * power (mW), the total-energy counter (mJ, Volta and newer), utilization, memory, temperature, clocks,
 * and the driver and CUDA versions for the hardware description.
 *
 * Non-obvious choice: only the functions needed to enumerate devices are required; every reading
 * function is optional, so a driver without nvmlDeviceGetTotalEnergyConsumption still gives power
 * (and the sampler integrates it) instead of no GPU figures at all.
 *
 * Threading: an NvmlSensor is not thread-safe (the Sampler serialises reads). A missing library, a
 * missing required symbol or a failing nvmlInit_v2 makes it unavailable; it never crashes.
 */
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hearth/telemetry/sensor.h"

namespace hearth::telemetry {

constexpr const char* DEFAULT_NVML_LIBRARY = "libnvidia-ml.so.1";

struct GpuInfo {
  int index = 0;
  std::string name;
  std::int64_t memoryTotalBytes = 0;
};

class NvmlSensor : public Sensor {
 public:
  // Loads `libraryPath` (a file name searched the usual way, or a path) and initialises NVML.
  explicit NvmlSensor(const std::string& libraryPath = DEFAULT_NVML_LIBRARY);
  ~NvmlSensor() override;  // nvmlShutdown and dlclose
  NvmlSensor(const NvmlSensor&) = delete;
  NvmlSensor& operator=(const NvmlSensor&) = delete;

  std::string source() const override { return "nvml"; }
  bool available() const override;
  std::string unavailableReason() const override;
  std::vector<Reading> read(double nowSeconds) override;

  const std::vector<GpuInfo>& gpus() const;
  std::string driverVersion() const;  // "550.54.15", empty when unknown
  std::string cudaVersion() const;    // "12.4", empty when unknown

  struct Impl;

 private:
  std::unique_ptr<Impl> m_impl;
};

}  // namespace hearth::telemetry
