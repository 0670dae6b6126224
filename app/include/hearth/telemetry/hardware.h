/* The hardware description recorded with every run: CPU model and cores (/proc/cpuinfo), RAM
 * (/proc/meminfo), GPU names and memory, driver and CUDA versions (NVML), as JSON.
 *
 * Non-obvious choice: it reads the same root-prefixed files as the sensors, so tests describe a fake
 * machine; anything unreadable is left out of the JSON rather than guessed.
 *
 * Threading: plain functions.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hearth/telemetry/nvml.h"

namespace hearth::telemetry {

struct HardwareInfo {
  std::string cpuModel;
  int cpuLogicalCores = 0;
  int cpuPhysicalCores = 0;  // 0 when /proc/cpuinfo does not say
  std::int64_t ramBytes = 0;
  std::vector<GpuInfo> gpus;
  std::string gpuDriverVersion;
  std::string cudaDriverVersion;
  std::vector<std::string> energySources;  // e.g. "nvml (measured)", "estimate (estimated)"

  // {"cpu":{"model","logical_cores","physical_cores"},"ram_bytes","gpus":[{"index","name",
  //  "memory_bytes"}],"gpu_driver","cuda_driver","energy_sources":[...]}
  nlohmann::json toJson() const;
};

// Reads <root>/proc/cpuinfo and <root>/proc/meminfo; GPU fields from `nvml` when given and available.
HardwareInfo describeHardware(const std::string& root = "/", const NvmlSensor* nvml = nullptr);

}  // namespace hearth::telemetry
