/* Telemetry into the project store: a run's power and energy land as metrics with the sensor kind
 * beside them, its totals on the run (energy_joules and final metrics), its hardware JSON on the run;
 * a reply's energy on its message; and the project's cumulative energy split measured/estimated.
 *
 * Non-obvious choice: the sensors are scripted with a counter that is the exact integral of their
 * power at the time they are read, so figures stored from a run timed by the real clock can be checked
 * exactly against the window length the meter reports.
 */
#include <gtest/gtest.h>

#include <thread>

#include "hearth/store/project.h"
#include "hearth/telemetry/recorder.h"
#include "telemetry-script-sensor.h"
#include "test-util.h"

using namespace hearth::telemetry;
using hearth::store::Project;
using hearth::test::ScriptSensor;

namespace {

std::unique_ptr<Sampler> makeSampler(SensorKind cpuKind) {
  std::vector<std::unique_ptr<Sensor>> v;
  v.push_back(std::make_unique<ScriptSensor>(
      "gpu0", SensorKind::measured, [](double) { return 300.0; }, [](double t) { return 300.0 * t; }));
  v.push_back(std::make_unique<ScriptSensor>(
      "cpu", cpuKind, [](double) { return 50.0; }, [](double t) { return 50.0 * t; }, "cpu-package"));
  return std::move(*Sampler::create(std::move(v), 100));
}

Project openProject(const std::string& name) {
  auto dir = hearth::test::scratch(name);
  auto p = Project::create((dir / "p.hearth").string());
  EXPECT_TRUE(p.has_value()) << (p ? "" : p.error().to_string());
  return std::move(*p);
}

}  // namespace

TEST(TelemetryStore, RunCarriesMetricsTotalsSensorKindAndHardware) {
  Project project = openProject("run");
  auto sampler = makeSampler(SensorKind::measured);
  sampler->start();

  HardwareInfo hw;
  hw.cpuModel = "Fake CPU";
  hw.cpuLogicalCores = 4;
  hw.ramBytes = 1ll << 30;
  hw.gpus.push_back({0, "Fake GPU", 8ll << 30});
  hw.gpuDriverVersion = "550.54.15";
  hearth::store::Run run;
  run.name = "lora-1";
  describeRun(run, hw);
  auto id = project.createRun(run);
  ASSERT_TRUE(id.has_value()) << id.error().to_string();
  ASSERT_TRUE(project.startRun(*id).has_value());

  RunRecorder rec(project, *id, *sampler, 200.0);
  rec.begin();
  for (int step = 1; step <= 3; ++step) {
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    auto ok = rec.record(step, step * 100);
    ASSERT_TRUE(ok.has_value()) << ok.error().to_string();
  }
  EnergyReport rep = rec.end(300);
  sampler->stop();
  ASSERT_TRUE(rep.hasData);
  EXPECT_EQ(rep.kind, SensorKind::measured);
  EXPECT_NEAR(rep.joules, 350.0 * rep.seconds, 1e-6);
  auto fin = finishRunWithEnergy(project, *id, rep, R"({"loss": 1.25})");
  ASSERT_TRUE(fin.has_value()) << fin.error().to_string();

  auto stored = project.run(*id);
  ASSERT_TRUE(stored.has_value());
  ASSERT_TRUE(stored->energyJoules.has_value());
  EXPECT_NEAR(*stored->energyJoules, rep.joules, 1e-9);
  auto fm = nlohmann::json::parse(stored->finalMetrics);
  EXPECT_DOUBLE_EQ(fm["loss"].get<double>(), 1.25) << "the caller's metrics are kept";
  EXPECT_EQ(fm["energy_sensor"], "measured");
  EXPECT_NEAR(fm["energy_j"].get<double>(), rep.joules, 1e-9);
  EXPECT_NEAR(fm["co2e_g"].get<double>(), rep.joules / 3.6e6 * 200.0, 1e-12);
  EXPECT_NEAR(fm["joules_per_token"].get<double>(), rep.joules / 300.0, 1e-12);
  auto hwj = nlohmann::json::parse(stored->hardware);
  EXPECT_EQ(hwj["cpu"]["model"], "Fake CPU");
  EXPECT_EQ(hwj["gpus"][0]["name"], "Fake GPU");
  EXPECT_EQ(hwj["gpu_driver"], "550.54.15");

  auto power = project.readMetric(*id, METRIC_POWER_W);
  ASSERT_TRUE(power.has_value());
  ASSERT_EQ(power->size(), 3u);
  for (const auto& p : *power) EXPECT_DOUBLE_EQ(p.value, 350.0);
  EXPECT_EQ((*power)[2].tokensSeen, 300);
  auto gpu = project.readMetric(*id, METRIC_POWER_GPU_W);
  ASSERT_EQ(gpu->size(), 3u);
  EXPECT_DOUBLE_EQ((*gpu)[0].value, 300.0);
  EXPECT_DOUBLE_EQ((*project.readMetric(*id, METRIC_POWER_CPU_W))[0].value, 50.0);
  auto energy = project.readMetric(*id, METRIC_ENERGY_J);
  ASSERT_EQ(energy->size(), 3u);
  EXPECT_GT((*energy)[0].value, 0.0);
  EXPECT_LT((*energy)[0].value, (*energy)[2].value) << "cumulative energy grows step by step";
  EXPECT_LE((*energy)[2].value, rep.joules);
  auto kind = project.readMetric(*id, METRIC_ENERGY_ESTIMATED);
  ASSERT_EQ(kind->size(), 3u);
  for (const auto& p : *kind) EXPECT_EQ(p.value, 0.0);
}

TEST(TelemetryStore, EstimatedRunAndReplySayEstimatedAndProjectTotalsSplit) {
  Project project = openProject("estimated");
  auto sampler = makeSampler(SensorKind::estimated);

  hearth::store::Run run;
  run.name = "eval-1";
  run.kind = "eval";
  auto id = *project.createRun(run);
  ASSERT_TRUE(project.startRun(id).has_value());
  RunRecorder rec(project, id, *sampler);
  rec.begin();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ASSERT_TRUE(rec.record(1).has_value());
  EnergyReport runRep = rec.end();
  EXPECT_EQ(runRep.kind, SensorKind::estimated);
  ASSERT_TRUE(finishRunWithEnergy(project, id, runRep).has_value());
  EXPECT_EQ((*project.readMetric(id, METRIC_ENERGY_ESTIMATED))[0].value, 1.0);
  EXPECT_EQ(nlohmann::json::parse(project.run(id)->finalMetrics)["energy_sensor"], "estimated");

  // One chat reply measured by a meter on a measured-only sampler.
  std::vector<std::unique_ptr<Sensor>> v;
  v.push_back(std::make_unique<ScriptSensor>(
      "gpu0", SensorKind::measured, [](double) { return 100.0; }, [](double t) { return 100.0 * t; }));
  auto gpuOnly = std::move(*Sampler::create(std::move(v), 100));
  EnergyMeter meter(*gpuOnly);
  meter.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EnergyReport reply = meter.stop(42);
  auto conv = project.createConversation({0, "chat", std::nullopt, "", ""});
  ASSERT_TRUE(conv.has_value()) << conv.error().to_string();
  hearth::store::Message m;
  m.conversationId = *conv;
  m.role = "assistant";
  m.content = "hello";
  m.completionTokens = 42;
  m.samplingParams = R"({"temperature":0.7})";
  annotateMessage(m, reply);
  auto mid = project.addMessage(m);
  ASSERT_TRUE(mid.has_value()) << mid.error().to_string();
  auto msgs = *project.messages(*conv);
  ASSERT_EQ(msgs.size(), 1u);
  ASSERT_TRUE(msgs[0].energyJoules.has_value());
  EXPECT_NEAR(*msgs[0].energyJoules, reply.joules, 1e-9);
  auto sp = nlohmann::json::parse(msgs[0].samplingParams);
  EXPECT_DOUBLE_EQ(sp["temperature"].get<double>(), 0.7);
  EXPECT_EQ(sp["energy"]["sensor"], "measured");
  EXPECT_NEAR(sp["energy"]["joules_per_token"].get<double>(), reply.joules / 42, 1e-12);

  auto pe = projectEnergy(project, 300.0);
  ASSERT_TRUE(pe.has_value()) << pe.error().to_string();
  EXPECT_EQ(pe->runs, 1);
  EXPECT_EQ(pe->messages, 1);
  EXPECT_NEAR(pe->joules, runRep.joules + reply.joules, 1e-9);
  EXPECT_NEAR(pe->estimatedJoules, runRep.joules, 1e-9);
  EXPECT_NEAR(pe->measuredJoules, reply.joules, 1e-9);
  EXPECT_NEAR(pe->co2eGrams, pe->joules / 3.6e6 * 300.0, 1e-12);
}

TEST(TelemetryStore, BadFinalMetricsAreRefusedAndNoDataStoresNoEnergy) {
  Project project = openProject("bad");
  hearth::store::Run run;
  run.name = "r";
  auto id = *project.createRun(run);
  ASSERT_TRUE(project.startRun(id).has_value());
  EnergyReport empty;  // no sensor: hasData false
  auto bad = finishRunWithEnergy(project, id, empty, "[1,2]");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, hearth::ErrorCode::invalid_argument);
  ASSERT_TRUE(finishRunWithEnergy(project, id, empty).has_value());
  EXPECT_FALSE(project.run(id)->energyJoules.has_value()) << "no figure rather than a false zero";
  hearth::store::Message m;
  annotateMessage(m, empty);
  EXPECT_FALSE(m.energyJoules.has_value());
  EXPECT_EQ(m.samplingParams, "{}");
}
