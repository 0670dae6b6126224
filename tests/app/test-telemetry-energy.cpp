/* Energy arithmetic and the sampler: counter deltas with wraparound, trapezoidal integration against
 * closed-form integrals, counter versus integration, joules per token, CO2e, the measured/estimated
 * verdict of mixed windows, and the background thread (rate, stop, overlapping meters).
 */
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <thread>

#include "hearth/telemetry/energy.h"
#include "hearth/telemetry/sampler.h"
#include "telemetry-script-sensor.h"

using namespace hearth::telemetry;
using hearth::test::ScriptSensor;

TEST(TelemetryEnergy, CounterDelta) {
  EXPECT_EQ(counterDelta(100, 250, 1000), 150u);
  EXPECT_EQ(counterDelta(900, 50, 1000), 150u);  // wrapped at 1000
  EXPECT_EQ(counterDelta(900, 50, 0), 50u);       // unknown range: a reset, not a wrap
  EXPECT_EQ(counterDelta(2000, 50, 1000), 50u);   // above the range: cannot be a wrap
  EXPECT_EQ(counterDelta(7, 7, 1000), 0u);
}

TEST(TelemetryEnergy, TrapezoidAgainstClosedForms) {
  // Linear ramp 50 W -> 250 W over 4 s: exactly 600 J.
  std::vector<std::pair<double, double>> ramp;
  for (int i = 0; i <= 8; ++i) ramp.push_back({i * 0.5, 50.0 + 50.0 * i * 0.5});
  EXPECT_NEAR(trapezoidJoules(ramp), 600.0, 1e-9);
  // 100 + 50 sin(2 pi t) over one period: 100 J; the trapezoid error falls as the step squared.
  auto sine = [](int n) {
    std::vector<std::pair<double, double>> p;
    for (int i = 0; i <= n; ++i) {
      double t = 1.0 * i / n + 0.1;
      p.push_back({t, 100 + 50 * std::sin(2 * std::numbers::pi * t)});
    }
    return trapezoidJoules(p);
  };
  EXPECT_NEAR(sine(10), 100.0, 1e-6);  // periodic integrand: the trapezoid rule is very accurate
  EXPECT_EQ(trapezoidJoules({{0, 100}}), 0.0);
  EXPECT_EQ(trapezoidJoules({}), 0.0);
  // Non-uniform steps with a quadratic 3t^2: integral over [0,2] = 8; error bounded by the rule's.
  std::vector<std::pair<double, double>> q;
  for (double t : {0.0, 0.1, 0.5, 0.6, 1.3, 2.0}) q.push_back({t, 3 * t * t});
  double err = std::abs(trapezoidJoules(q) - 8.0);
  EXPECT_GT(err, 0.0);
  EXPECT_LT(err, 0.5);
}

TEST(TelemetryEnergy, Co2eAndJoulesPerToken) {
  // 1 kWh is 3.6 MJ; at 480 g/kWh it is 480 g.
  EXPECT_NEAR(co2eGrams(3.6e6, 480.0), 480.0, 1e-9);
  EXPECT_NEAR(co2eGrams(1800.0, 300.0), 0.15, 1e-12);
  EnergyReport r;
  r.hasData = true;
  r.joules = 720.0;
  r.tokens = 360;
  r.gridGramsPerKWh = 50.0;
  EXPECT_DOUBLE_EQ(*r.joulesPerToken(), 2.0);
  EXPECT_NEAR(r.co2eGrams(), 720.0 / 3.6e6 * 50.0, 1e-15);
  auto j = r.toJson();
  EXPECT_DOUBLE_EQ(j["joules_per_token"].get<double>(), 2.0);
  r.tokens = 0;
  EXPECT_FALSE(r.joulesPerToken().has_value());
  EXPECT_TRUE(r.toJson()["joules_per_token"].is_null());
}

TEST(TelemetryEnergy, CounterAndIntegrationAgreeOnARamp) {
  // Same linear power ramp seen by a channel with a counter and one without: both give the integral.
  auto watts = [](double t) { return 100.0 + 20.0 * t; };
  auto energy = [](double t) { return 100.0 * t + 10.0 * t * t; };
  std::vector<std::unique_ptr<Sensor>> v;
  v.push_back(std::make_unique<ScriptSensor>("counted", SensorKind::measured, watts, energy));
  v.push_back(std::make_unique<ScriptSensor>("integrated", SensorKind::measured, watts));
  auto s = std::move(*Sampler::create(std::move(v), 100));
  auto a = s->sampleAt(1.0);
  for (double t : {1.3, 2.0, 2.7, 4.0}) s->sampleAt(t);
  auto b = s->snapshot();
  EnergyReport rep = energyBetween(a, b, 0, 5, 0, DEFAULT_GRID_G_PER_KWH);
  double exact = energy(4.0) - energy(1.0);
  ASSERT_EQ(rep.channels.size(), 2u);
  EXPECT_NEAR(rep.channels[0].joules, exact, 1e-9);
  EXPECT_TRUE(rep.channels[0].fromCounter);
  EXPECT_NEAR(rep.channels[1].joules, exact, 1e-9);
  EXPECT_FALSE(rep.channels[1].fromCounter);
  EXPECT_NEAR(rep.joules, 2 * exact, 1e-9);
  EXPECT_NEAR(rep.seconds, 3.0, 1e-12);
  EXPECT_NEAR(rep.averageWatts, 2 * exact / 3.0, 1e-9);
  EXPECT_EQ(rep.kind, SensorKind::measured);
}

TEST(TelemetryEnergy, AnyEstimatedChannelMakesTheTotalEstimated) {
  std::vector<std::unique_ptr<Sensor>> v;
  v.push_back(std::make_unique<ScriptSensor>(
      "gpu0", SensorKind::measured, [](double) { return 200.0; }, [](double t) { return 200.0 * t; }));
  v.push_back(std::make_unique<ScriptSensor>(
      "cpu", SensorKind::estimated, [](double) { return 30.0; }, [](double t) { return 30.0 * t; }, "cpu"));
  auto s = std::move(*Sampler::create(std::move(v), 100));
  auto a = s->sampleAt(0.0);
  auto b = s->sampleAt(10.0);
  EnergyReport rep = energyBetween(a, b, b.totalWatts, 2, 1000, 400.0);
  EXPECT_NEAR(rep.joules, 2300.0, 1e-9);
  EXPECT_EQ(rep.kind, SensorKind::estimated);
  EXPECT_TRUE(b.anyEstimated);
  EXPECT_NEAR(*rep.joulesPerToken(), 2.3, 1e-12);
  EXPECT_NEAR(rep.co2eGrams(), 2300.0 / 3.6e6 * 400.0, 1e-12);
  auto j = rep.toJson();
  EXPECT_EQ(j["energy_sensor"], "estimated");
  EXPECT_EQ(j["channels"][0]["kind"], "measured");
  EXPECT_EQ(j["channels"][1]["kind"], "estimated");
}

TEST(TelemetryEnergy, NoSensorGivesNoData) {
  auto s = std::move(*Sampler::create({}, 100));
  auto a = s->sampleAt(0.0);
  auto b = s->sampleAt(1.0);
  EnergyReport rep = energyBetween(a, b, 0, 2, 10, DEFAULT_GRID_G_PER_KWH);
  EXPECT_FALSE(rep.hasData);
  EXPECT_FALSE(rep.joulesPerToken().has_value());
  EXPECT_EQ(rep.toJson()["energy_sensor"], "none");
}

TEST(TelemetryEnergy, IntervalOutsideOneToTenHertzIsRefused) {
  EXPECT_FALSE(Sampler::create({}, 99).has_value());
  EXPECT_FALSE(Sampler::create({}, 1001).has_value());
  EXPECT_EQ(Sampler::create({}, 50).error().code, hearth::ErrorCode::invalid_argument);
  EXPECT_TRUE(Sampler::create({}, 100).has_value());
  EXPECT_TRUE(Sampler::create({}, 1000).has_value());
}

TEST(TelemetryEnergy, BackgroundThreadSamplesAtItsRateAndMetersOverlap) {
  // 120 W constant with a counter: any window's energy is 120 W x its length, whatever the timing.
  std::vector<std::unique_ptr<Sensor>> v;
  auto* sensor = new ScriptSensor(
      "gpu0", SensorKind::measured, [](double) { return 120.0; }, [](double t) { return 120.0 * t; });
  v.emplace_back(sensor);
  auto s = std::move(*Sampler::create(std::move(v), 100));
  s->start();
  EXPECT_TRUE(s->running());
  EnergyMeter outer(*s, 480.0);
  outer.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EnergyMeter inner(*s);
  inner.start();
  // Readers on another thread while the sampler writes (run under TSan/ASan in the sanitizer preset).
  std::jthread reader([&](std::stop_token t) {
    while (!t.stop_requested()) (void)s->snapshot().totalWatts;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EnergyReport in = inner.stop(30);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EnergyReport out = outer.stop();
  reader.request_stop();
  reader.join();
  s->stop();
  EXPECT_FALSE(s->running());
  int readsAfterStop = s->snapshot().samples;
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  EXPECT_EQ(s->snapshot().samples, readsAfterStop) << "no sampling after stop()";

  EXPECT_NEAR(in.joules, 120.0 * in.seconds, 1e-6);
  EXPECT_NEAR(out.joules, 120.0 * out.seconds, 1e-6);
  EXPECT_GT(out.seconds, in.seconds + 0.2);
  EXPECT_NEAR(in.seconds, 0.3, 0.25);
  // The peak is at least the window's average (joules / seconds from counter differences), whose rounding
  // reaches 1e-9 W: the same 1e-6 as the energy checks.
  EXPECT_NEAR(in.peakWatts, 120.0, 1e-6);
  EXPECT_NEAR(*in.joulesPerToken(), in.joules / 30.0, 1e-12);
  // ~10 Hz: about 5.5 background samples in 550 ms plus the meters' own; generous bounds for a busy CI.
  EXPECT_GE(out.samples, 4);
  EXPECT_LE(out.samples, 12);
  EXPECT_EQ(out.kind, SensorKind::measured);
}

TEST(TelemetryEnergy, StopWithoutStartIsEmpty) {
  auto s = std::move(*Sampler::create({}, 100));
  EnergyMeter m(*s);
  EXPECT_FALSE(m.stop(5).hasData);
  EXPECT_FALSE(m.running());
}

TEST(TelemetryEnergy, DefaultSetFallsBackToTheEstimateOnAMachineWithoutCounters) {
  auto root = std::filesystem::path(HEARTH_TEST_TMP) / "default-set";
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root / "proc");
  std::ofstream(root / "proc/stat") << "cpu  10 0 10 80 0 0 0 0 0 0\n";
  TelemetryOptions o;
  o.root = root.string();
  o.nvmlLibrary = "/nonexistent/libnvidia-ml.so.1";
  o.intervalMs = 250;
  auto s = makeSampler(o);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ((*s)->intervalMs(), 250);
  auto snap = (*s)->sampleAt(0.0);
  ASSERT_EQ(snap.channels.size(), 1u);
  EXPECT_EQ(snap.channels[0].last.source, "estimate");
  EXPECT_EQ(snap.unavailable.size(), 2u);  // nvml and powercap, with their reasons
  o.intervalMs = 5000;
  EXPECT_FALSE(makeSampler(o).has_value());
}
