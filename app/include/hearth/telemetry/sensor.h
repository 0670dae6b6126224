/* Telemetry sensors: one interface over NVIDIA GPUs (NVML), CPU package and DRAM energy counters
 * (Linux powercap / RAPL) and, where neither is readable, a CPU power estimate from /proc/stat.
 *
 * Non-obvious choice: every sensor reports, per channel, a cumulative energy figure that it keeps
 * itself (counter differences with wraparound for RAPL and NVML, TDP x busy-fraction x time for the
 * estimate), so the sampler and the meters only ever subtract two readings; trapezoidal integration of
 * power is used only for a channel that has power but no counter (an NVML GPU older than Volta).
 *
 * Threading: a Sensor is not thread-safe; the Sampler (sampler.h) calls read() from one thread at a
 * time. Readings are plain values. Nothing here throws; a failed read gives a Reading with `error` set.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hearth::telemetry {

// Whether a figure comes from a hardware counter or sensor (measured) or from a model (estimated).
enum class SensorKind { measured, estimated };
const char* sensorKindName(SensorKind k);  // "measured" / "estimated"

// One channel's values at one moment. Absent optionals: the hardware or driver does not report it.
struct Reading {
  std::string channel;  // stable id within its sensor: "gpu0", "intel-rapl:0", "cpu"
  std::string label;    // for people: "NVIDIA H100 80GB HBM3", "package-0", "CPU (estimate, 65 W TDP)"
  std::string source;   // "nvml", "powercap" or "estimate"
  std::string domain;   // "gpu", "cpu-package", "dram" or "cpu"
  SensorKind kind = SensorKind::measured;
  std::optional<double> watts;         // instantaneous (NVML) or averaged since the previous read
  std::optional<double> energyJoules;  // cumulative since the sensor opened, wraparound-corrected
  std::optional<double> utilization;   // 0..1 (GPU busy, or CPU busy for the estimate)
  std::optional<double> memoryUtilization;  // 0..1, NVML's memory-controller busy fraction
  std::optional<std::int64_t> memoryUsedBytes;
  std::optional<std::int64_t> memoryTotalBytes;
  std::optional<double> temperatureC;
  std::optional<int> graphicsClockMHz;
  std::optional<int> smClockMHz;
  std::optional<int> memoryClockMHz;
  std::string error;  // set when this read of the channel failed (the channel stays listed)
};

class Sensor {
 public:
  virtual ~Sensor() = default;
  virtual std::string source() const = 0;  // "nvml", "powercap", "estimate"
  // False when the sensor found nothing it can read (no library, no readable zone); read() then
  // returns no readings and unavailableReason() says why in one line.
  virtual bool available() const = 0;
  virtual std::string unavailableReason() const = 0;
  // Reads every channel once. `nowSeconds` is a monotonic time supplied by the caller (the Sampler
  // passes steady_clock; tests pass their own) and is used for power from counter differences.
  virtual std::vector<Reading> read(double nowSeconds) = 0;
};

// Linux powercap (intel-rapl / amd-rapl zones under <root>/sys/class/powercap). Only package and DRAM
// zones become channels (core, uncore and psys overlap them). A zone whose energy_uj cannot be read
// when the sensor opens is skipped and named in unavailableReason().
std::unique_ptr<Sensor> makePowercapSensor(const std::string& root = "/");

// CPU estimate: tdpWatts x busy fraction from <root>/proc/stat deltas, always SensorKind::estimated.
// Its first read only primes the counters (no watts yet).
std::unique_ptr<Sensor> makeCpuEstimateSensor(const std::string& root = "/", double tdpWatts = 65.0);

// Default CPU TDP for the estimate when none is configured (watts).
constexpr double DEFAULT_CPU_TDP_WATTS = 65.0;

}  // namespace hearth::telemetry
