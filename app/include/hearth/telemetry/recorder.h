/* Telemetry into the project store: a run's power and energy as metrics while it runs, its energy
 * total and sensor kind in its final metrics, the hardware description on the run, a reply's energy on
 * its message, and cumulative energy per project.
 *
 * Non-obvious choice: the store has no column for the sensor kind, so it travels in JSON fields the
 * store already keeps verbatim: "energy_sensor" in a run's final metrics, "energy" in a message's
 * sampling parameters, and the metric series "energy_estimated" (1 = estimated, 0 = measured) beside
 * "power_w" and "energy_j". docs/telemetry.md lists every name.
 *
 * Threading: a RunRecorder uses its Project from the caller's thread only (one Project is one SQLite
 * connection); the Sampler it reads is thread-safe.
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "hearth/error.h"
#include "hearth/store/project.h"
#include "hearth/telemetry/hardware.h"
#include "hearth/telemetry/sampler.h"

namespace hearth::telemetry {

// Metric names written by RunRecorder::record().
constexpr const char* METRIC_POWER_W = "power_w";              // total watts of all channels
constexpr const char* METRIC_POWER_GPU_W = "power_gpu_w";      // watts of the GPU channels
constexpr const char* METRIC_POWER_CPU_W = "power_cpu_w";      // watts of CPU package/DRAM/estimate
constexpr const char* METRIC_ENERGY_J = "energy_j";            // joules since begin()
constexpr const char* METRIC_ENERGY_ESTIMATED = "energy_estimated";  // 1 estimated, 0 measured

// Sets run.hardware to the hardware JSON (call before Project::createRun).
void describeRun(store::Run& run, const HardwareInfo& hardware);

class RunRecorder {
 public:
  RunRecorder(store::Project& project, store::Id runId, Sampler& sampler,
              double gridGramsPerKWh = DEFAULT_GRID_G_PER_KWH);
  void begin();
  // Appends one batch at `step`: power_w, power_gpu_w / power_cpu_w (those present), energy_j and
  // energy_estimated. Errors: the store's (io when the disk is full, ...).
  Expected<void> record(std::int64_t step, std::int64_t tokensSeen = 0);
  // Ends the window (tokens: trained or generated, for joules per token).
  EnergyReport end(std::int64_t tokens = 0);

 private:
  store::Project& m_project;
  store::Id m_runId;
  Sampler& m_sampler;
  EnergyMeter m_meter;
};

// Adds the report to `finalMetricsJson` (energy_j, energy_sensor, avg_power_w, peak_power_w, co2e_g,
// grid_g_per_kwh, joules_per_token) and finishes the run with energy_joules set. Errors: the store's;
// invalid_argument when finalMetricsJson is not a JSON object.
Expected<void> finishRunWithEnergy(store::Project& project, store::Id runId, const EnergyReport& report,
                                   const std::string& finalMetricsJson = "{}",
                                   const std::string& bestMetricsJson = "{}",
                                   std::optional<store::Id> outputVersionId = std::nullopt);

// Sets message.energyJoules (when the report has data) and samplingParams["energy"] =
// {"sensor", "joules_per_token", "co2e_g", "grid_g_per_kwh"}. Call before Project::addMessage.
void annotateMessage(store::Message& message, const EnergyReport& report);

struct ProjectEnergy {
  double joules = 0;           // runs + messages
  double measuredJoules = 0;   // part whose sensor kind is measured
  double estimatedJoules = 0;  // part estimated, or of unknown kind (stored by something else)
  double runJoules = 0, messageJoules = 0;
  std::int64_t runs = 0, messages = 0;  // how many carry an energy figure
  double co2eGrams = 0;                 // at the given grid intensity
};

// Cumulative energy of a project: every run's and every message's stored energy.
Expected<ProjectEnergy> projectEnergy(store::Project& project,
                                      double gridGramsPerKWh = DEFAULT_GRID_G_PER_KWH);

}  // namespace hearth::telemetry
