/* Hardware description from /proc/cpuinfo, /proc/meminfo and NVML.
 *
 * Non-obvious choice: physical cores are counted as distinct (physical id, core id) pairs, which is
 * right on multi-socket x86; where those fields are absent (many VMs, ARM) the count stays 0 (unknown)
 * rather than being guessed from "cpu cores".
 */
#include "hearth/telemetry/hardware.h"

#include <set>
#include <sstream>

#include "file-read.h"

namespace hearth::telemetry {

nlohmann::json HardwareInfo::toJson() const {
  nlohmann::json j;
  j["cpu"] = {{"model", cpuModel}, {"logical_cores", cpuLogicalCores}};
  if (cpuPhysicalCores > 0) j["cpu"]["physical_cores"] = cpuPhysicalCores;
  if (ramBytes > 0) j["ram_bytes"] = ramBytes;
  j["gpus"] = nlohmann::json::array();
  for (const auto& g : gpus) {
    nlohmann::json gj = {{"index", g.index}, {"name", g.name}};
    if (g.memoryTotalBytes > 0) gj["memory_bytes"] = g.memoryTotalBytes;
    j["gpus"].push_back(gj);
  }
  if (!gpuDriverVersion.empty()) j["gpu_driver"] = gpuDriverVersion;
  if (!cudaDriverVersion.empty()) j["cuda_driver"] = cudaDriverVersion;
  if (!energySources.empty()) j["energy_sources"] = energySources;
  return j;
}

HardwareInfo describeHardware(const std::string& root, const NvmlSensor* nvml) {
  HardwareInfo h;
  std::string err;
  if (auto text = detail::readSmallFile(detail::joinPath(root, "/proc/cpuinfo"), &err, 8 << 20)) {
    std::istringstream in(*text);
    std::string line, physId;
    std::set<std::pair<std::string, std::string>> cores;
    while (std::getline(in, line)) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string key = detail::trimmed(line.substr(0, colon));
      std::string value = detail::trimmed(line.substr(colon + 1));
      if (key == "processor") {
        h.cpuLogicalCores += 1;
        physId.clear();
      } else if (key == "model name" && h.cpuModel.empty()) {
        h.cpuModel = value;
      } else if (key == "physical id") {
        physId = value;
      } else if (key == "core id") {
        cores.insert({physId, value});
      }
    }
    h.cpuPhysicalCores = static_cast<int>(cores.size());
  }
  if (auto text = detail::readSmallFile(detail::joinPath(root, "/proc/meminfo"), &err, 1 << 20)) {
    std::istringstream in(*text);
    std::string key;
    long long kb = 0;
    std::string unit;
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      if (ls >> key >> kb && key == "MemTotal:") {
        h.ramBytes = kb * 1024;
        break;
      }
    }
  }
  if (nvml && nvml->available()) {
    h.gpus = nvml->gpus();
    h.gpuDriverVersion = nvml->driverVersion();
    h.cudaDriverVersion = nvml->cudaVersion();
  }
  return h;
}

}  // namespace hearth::telemetry
