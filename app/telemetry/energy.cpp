/* Energy arithmetic: counter differences with wraparound, trapezoidal integration, CO2e, and the JSON
 * form of an EnergyReport.
 *
 * Non-obvious choice: a counter that goes backwards with no known range (or beyond it) is treated as
 * reset to zero, never as a wrap, so a driver reload cannot add a whole counter range of phantom joules.
 */
#include "hearth/telemetry/energy.h"

namespace hearth::telemetry {

std::uint64_t counterDelta(std::uint64_t previous, std::uint64_t current, std::uint64_t maxRange) {
  if (current >= previous) return current - previous;
  if (maxRange > 0 && previous <= maxRange) return (maxRange - previous) + current;
  return current;
}

double trapezoidJoules(const std::vector<std::pair<double, double>>& timeWatts) {
  double j = 0;
  for (std::size_t i = 1; i < timeWatts.size(); ++i) {
    double dt = timeWatts[i].first - timeWatts[i - 1].first;
    if (dt > 0) j += 0.5 * (timeWatts[i].second + timeWatts[i - 1].second) * dt;
  }
  return j;
}

double co2eGrams(double joules, double gramsPerKWh) { return joules / 3.6e6 * gramsPerKWh; }

std::optional<double> EnergyReport::joulesPerToken() const {
  if (tokens <= 0 || !hasData) return std::nullopt;
  return joules / static_cast<double>(tokens);
}

double EnergyReport::co2eGrams() const { return telemetry::co2eGrams(joules, gridGramsPerKWh); }

nlohmann::json EnergyReport::toJson() const {
  nlohmann::json j;
  j["energy_j"] = hasData ? nlohmann::json(joules) : nlohmann::json(nullptr);
  j["seconds"] = seconds;
  j["avg_power_w"] = hasData ? nlohmann::json(averageWatts) : nlohmann::json(nullptr);
  j["peak_power_w"] = hasData ? nlohmann::json(peakWatts) : nlohmann::json(nullptr);
  j["energy_sensor"] = hasData ? sensorKindName(kind) : "none";
  j["co2e_g"] = hasData ? nlohmann::json(co2eGrams()) : nlohmann::json(nullptr);
  j["grid_g_per_kwh"] = gridGramsPerKWh;
  j["samples"] = samples;
  j["tokens"] = tokens;
  auto jpt = joulesPerToken();
  j["joules_per_token"] = jpt ? nlohmann::json(*jpt) : nlohmann::json(nullptr);
  j["channels"] = nlohmann::json::array();
  for (const auto& c : channels)
    j["channels"].push_back({{"channel", c.channel},
                             {"label", c.label},
                             {"source", c.source},
                             {"domain", c.domain},
                             {"kind", sensorKindName(c.kind)},
                             {"energy_j", c.joules},
                             {"method", c.kind == SensorKind::estimated ? "model"
                                        : c.fromCounter                    ? "counter"
                                                                           : "integrated"}});
  return j;
}

}  // namespace hearth::telemetry
