/* Telemetry into the project store (runs, metrics, messages) and cumulative energy per project.
 *
 * Non-obvious choice: a figure whose sensor kind cannot be found (stored by an older Hearth or by hand)
 * counts as estimated in the project totals: the measured total is never overstated.
 */
#include "hearth/telemetry/recorder.h"

#include <chrono>

namespace hearth::telemetry {

void describeRun(store::Run& run, const HardwareInfo& hardware) { run.hardware = hardware.toJson().dump(); }

RunRecorder::RunRecorder(store::Project& project, store::Id runId, Sampler& sampler, double grid)
    : m_project(project), m_runId(runId), m_sampler(sampler), m_meter(sampler, grid) {}

void RunRecorder::begin() { m_meter.start(); }

Expected<void> RunRecorder::record(std::int64_t step, std::int64_t tokensSeen) {
  EnergyReport rep = m_meter.peek(tokensSeen);
  Snapshot snap = m_sampler.snapshot();
  double wall = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto point = [&](double v) { return store::MetricPoint{step, v, wall, tokensSeen}; };
  double gpu = 0, cpu = 0;
  bool haveGpu = false, haveCpu = false;
  for (const auto& c : snap.channels) {
    if (!c.last.watts) continue;
    if (c.last.domain == "gpu") {
      gpu += *c.last.watts;
      haveGpu = true;
    } else {
      cpu += *c.last.watts;
      haveCpu = true;
    }
  }
  std::vector<store::MetricRecord> batch;
  if (haveGpu || haveCpu) batch.push_back({METRIC_POWER_W, point(gpu + cpu)});
  if (haveGpu) batch.push_back({METRIC_POWER_GPU_W, point(gpu)});
  if (haveCpu) batch.push_back({METRIC_POWER_CPU_W, point(cpu)});
  if (rep.hasData) {
    batch.push_back({METRIC_ENERGY_J, point(rep.joules)});
    batch.push_back({METRIC_ENERGY_ESTIMATED, point(rep.kind == SensorKind::estimated ? 1.0 : 0.0)});
  }
  if (batch.empty()) return {};
  return m_project.appendMetrics(m_runId, batch);
}

EnergyReport RunRecorder::end(std::int64_t tokens) { return m_meter.stop(tokens); }

Expected<void> finishRunWithEnergy(store::Project& project, store::Id runId, const EnergyReport& report,
                                   const std::string& finalMetricsJson, const std::string& bestMetricsJson,
                                   std::optional<store::Id> outputVersionId) {
  nlohmann::json fm = nlohmann::json::parse(finalMetricsJson, nullptr, false);
  if (fm.is_discarded() || !fm.is_object())
    return make_error(ErrorCode::invalid_argument, "final metrics of run " + std::to_string(runId) +
                                                       " are not a JSON object: '" +
                                                       finalMetricsJson.substr(0, 60) + "'");
  nlohmann::json e = report.toJson();
  for (const char* k : {"energy_j", "energy_sensor", "avg_power_w", "peak_power_w", "co2e_g",
                        "grid_g_per_kwh", "joules_per_token"})
    if (!e[k].is_null()) fm[k] = e[k];
  std::optional<double> joules;
  if (report.hasData) joules = report.joules;
  return project.finishRun(runId, fm.dump(), bestMetricsJson, joules, outputVersionId);
}

void annotateMessage(store::Message& message, const EnergyReport& report) {
  if (!report.hasData) return;
  message.energyJoules = report.joules;
  nlohmann::json sp = nlohmann::json::parse(message.samplingParams, nullptr, false);
  if (sp.is_discarded() || !sp.is_object()) sp = nlohmann::json::object();
  nlohmann::json e = {{"sensor", sensorKindName(report.kind)},
                      {"co2e_g", report.co2eGrams()},
                      {"grid_g_per_kwh", report.gridGramsPerKWh}};
  if (auto jpt = report.joulesPerToken()) e["joules_per_token"] = *jpt;
  sp["energy"] = e;
  message.samplingParams = sp.dump();
}

Expected<ProjectEnergy> projectEnergy(store::Project& project, double grid) {
  ProjectEnergy pe;
  HEARTH_TRY(auto runs, project.runs());
  for (const auto& r : runs) {
    if (!r.energyJoules) continue;
    nlohmann::json fm = nlohmann::json::parse(r.finalMetrics, nullptr, false);
    bool measured = fm.is_object() && fm.value("energy_sensor", std::string()) == "measured";
    (measured ? pe.measuredJoules : pe.estimatedJoules) += *r.energyJoules;
    pe.runJoules += *r.energyJoules;
    pe.runs += 1;
  }
  // The store lists messages per conversation only; one read-only query over its messages table.
  HEARTH_TRY(auto st, project.database().prepare(
                          "SELECT energy_joules, sampling_params FROM messages WHERE energy_joules IS NOT NULL"));
  while (true) {
    HEARTH_TRY(bool row, st.step());
    if (!row) break;
    double j = st.real(0);
    nlohmann::json sp = nlohmann::json::parse(st.text(1), nullptr, false);
    bool measured = sp.is_object() && sp.contains("energy") && sp["energy"].is_object() &&
                    sp["energy"].value("sensor", std::string()) == "measured";
    (measured ? pe.measuredJoules : pe.estimatedJoules) += j;
    pe.messageJoules += j;
    pe.messages += 1;
  }
  pe.joules = pe.runJoules + pe.messageJoules;
  pe.co2eGrams = co2eGrams(pe.joules, grid);
  return pe;
}

}  // namespace hearth::telemetry
