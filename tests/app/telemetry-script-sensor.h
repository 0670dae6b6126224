/* A scripted Sensor for the telemetry tests: power as a function of the time it is read at, with an
 * optional energy counter that is that function's exact integral.
 *
 * Non-obvious choice: the counter is computed from the time passed to read(), so sampler windows
 * timed by the real steady clock still have exactly known energy.
 */
#pragma once

#include <functional>

#include "hearth/telemetry/sensor.h"

namespace hearth::test {

class ScriptSensor : public telemetry::Sensor {
 public:
  // watts(t) and, when counter is set, energy(t) (joules, any offset: the sensor reports differences).
  ScriptSensor(std::string channel, telemetry::SensorKind kind, std::function<double(double)> watts,
               std::function<double(double)> energy = {}, std::string domain = "gpu")
      : m_channel(std::move(channel)), m_kind(kind), m_watts(std::move(watts)), m_energy(std::move(energy)),
        m_domain(std::move(domain)) {}
  std::string source() const override { return "script"; }
  bool available() const override { return true; }
  std::string unavailableReason() const override { return {}; }
  std::vector<telemetry::Reading> read(double t) override {
    telemetry::Reading r;
    r.channel = m_channel;
    r.label = m_channel;
    r.source = "script";
    r.domain = m_domain;
    r.kind = m_kind;
    r.watts = m_watts(t);
    if (m_energy) {
      if (!m_e0) m_e0 = m_energy(t);
      r.energyJoules = m_energy(t) - *m_e0;
    }
    reads += 1;
    return {r};
  }
  int reads = 0;

 private:
  std::string m_channel;
  telemetry::SensorKind m_kind;
  std::function<double(double)> m_watts, m_energy;
  std::string m_domain;
  std::optional<double> m_e0;
};

}  // namespace hearth::test
