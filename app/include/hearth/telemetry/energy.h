/* Energy arithmetic and the report of one measured window (a training run, an evaluation, one chat
 * reply): joules, joules per token, average and peak watts, CO2e, and whether it was measured.
 *
 * Non-obvious choice: a window's kind is `estimated` as soon as any channel that contributed energy was
 * estimated (a measured GPU plus an estimated CPU is an estimate of the total); the per-channel split
 * keeps the measured part visible.
 *
 * Threading: plain functions and values.
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hearth/telemetry/sensor.h"

namespace hearth::telemetry {

// Default grid carbon intensity, gCO2 per kWh: the world average carbon intensity of electricity
// generation in 2022 (Ember, Global Electricity Review 2023). A placeholder to replace with the figure
// of the user's region; docs/telemetry.md.
constexpr double DEFAULT_GRID_G_PER_KWH = 436.0;

// Increase of a counter that wraps at `maxRange` (RAPL's max_energy_range_uj). current < previous means
// it wrapped once; with maxRange 0 (unknown) or previous > maxRange it is taken as a reset from zero.
std::uint64_t counterDelta(std::uint64_t previous, std::uint64_t current, std::uint64_t maxRange);

// Trapezoidal integral of (time in seconds, watts) points, in joules. Points must be in time order;
// fewer than two points give 0.
double trapezoidJoules(const std::vector<std::pair<double, double>>& timeWatts);

// Grams CO2e for `joules` at `gramsPerKWh` (1 kWh = 3.6e6 J).
double co2eGrams(double joules, double gramsPerKWh);

struct ChannelEnergy {
  std::string channel, label, source, domain;
  SensorKind kind = SensorKind::measured;
  double joules = 0;
  bool fromCounter = true;  // false: integrated from power samples
};

struct EnergyReport {
  double joules = 0;
  double seconds = 0;
  double averageWatts = 0;  // joules / seconds
  double peakWatts = 0;     // highest total of the channels' watts in one sample of the window
  SensorKind kind = SensorKind::estimated;
  bool hasData = false;     // false: no channel gave energy (no sensor at all); joules is then 0
  std::int64_t samples = 0;
  std::int64_t tokens = 0;
  double gridGramsPerKWh = DEFAULT_GRID_G_PER_KWH;
  std::vector<ChannelEnergy> channels;

  std::optional<double> joulesPerToken() const;  // absent when tokens == 0
  double co2eGrams() const;
  // {"energy_j", "seconds", "avg_power_w", "peak_power_w", "energy_sensor": "measured"|"estimated",
  //  "co2e_g", "grid_g_per_kwh", "tokens", "joules_per_token", "channels": [...]}
  nlohmann::json toJson() const;
};

}  // namespace hearth::telemetry
