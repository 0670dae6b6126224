/* `hearth-cli telemetry [--seconds N] [--json] [--interval-ms M]`: live power readings from every sensor
 * (NVML GPUs, RAPL CPU package/DRAM, or the CPU estimate), each marked measured or estimated, and the
 * energy totals over the window.
 *
 * Non-obvious choice: the window is measured by an EnergyMeter exactly as a run or a reply is, so the
 * totals printed here are the figures the store would record for the same seconds.
 */
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "command.h"
#include "hearth/telemetry/hardware.h"
#include "hearth/telemetry/nvml.h"
#include "hearth/telemetry/sampler.h"

namespace hearth::cli {
namespace {

using namespace hearth::telemetry;

struct TelemetryArgs {
  double seconds = 5;
  int intervalMs = 500;
  bool json = false;
  TelemetryOptions options;
};

nlohmann::json readingJson(const Reading& r) {
  nlohmann::json j = {{"channel", r.channel}, {"label", r.label},     {"source", r.source},
                      {"domain", r.domain},   {"kind", sensorKindName(r.kind)}};
  auto put = [&](const char* k, const auto& opt) {
    if (opt) j[k] = *opt;
  };
  put("watts", r.watts);
  put("utilization", r.utilization);
  put("memory_utilization", r.memoryUtilization);
  put("memory_used_bytes", r.memoryUsedBytes);
  put("memory_total_bytes", r.memoryTotalBytes);
  put("temperature_c", r.temperatureC);
  put("graphics_clock_mhz", r.graphicsClockMHz);
  put("sm_clock_mhz", r.smClockMHz);
  put("memory_clock_mhz", r.memoryClockMHz);
  if (!r.error.empty()) j["error"] = r.error;
  return j;
}

std::string fmt(double v, int precision = 1) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  return s.str();
}

void printLive(const Snapshot& s, double t0) {
  std::cout << "t=" << fmt(s.time - t0, 1) << "s";
  for (const auto& c : s.channels) {
    const Reading& r = c.last;
    std::cout << "  " << r.channel << " " << (r.watts ? fmt(*r.watts) + " W" : std::string("-- W"));
    if (r.utilization) std::cout << " " << fmt(*r.utilization * 100, 0) << "%";
    if (r.temperatureC) std::cout << " " << fmt(*r.temperatureC, 0) << "C";
    std::cout << (r.kind == SensorKind::estimated ? " (estimated)" : " (measured)");
    if (!r.error.empty()) std::cout << " [" << r.error << "]";
  }
  std::cout << "\n" << std::flush;
}

void runTelemetry(const TelemetryArgs& a) {
  if (!(a.seconds > 0) || a.seconds > 86400) throw CliError("--seconds must be in (0, 86400]");
  if (!(a.options.cpuTdpWatts > 0)) throw CliError("--tdp-watts must be positive");
  if (!(a.options.gridGramsPerKWh >= 0)) throw CliError("--grid-g-per-kwh must not be negative");
  auto sensors = makeDefaultSensors(a.options);
  const NvmlSensor* nvml = nullptr;
  for (const auto& s : sensors)
    if (auto* n = dynamic_cast<const NvmlSensor*>(s.get())) nvml = n;
  HardwareInfo hw = describeHardware(a.options.root, nvml);
  for (const auto& s : sensors)
    if (s->available())
      hw.energySources.push_back(s->source() + (s->source() == "estimate" ? " (estimated)" : " (measured)"));
  auto sampler = unwrap(Sampler::create(std::move(sensors), a.intervalMs));

  EnergyMeter meter(*sampler, a.options.gridGramsPerKWh);
  meter.start();
  double t0 = sampler->snapshot().time;
  sampler->start();
  auto end = std::chrono::steady_clock::now() +
             std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(a.seconds));
  std::int64_t printed = 0;
  if (!a.json) {
    for (const auto& u : sampler->snapshot().unavailable) std::cout << "unavailable: " << u << "\n";
  }
  while (std::chrono::steady_clock::now() < end) {
    auto wake = std::min(end, std::chrono::steady_clock::now() + std::chrono::milliseconds(a.intervalMs));
    std::this_thread::sleep_until(wake);
    if (!a.json) {
      Snapshot s = sampler->snapshot();
      if (s.samples != printed) {
        printLive(s, t0);
        printed = s.samples;
      }
    }
  }
  EnergyReport rep = meter.stop();
  sampler->stop();
  Snapshot last = sampler->snapshot();

  if (a.json) {
    nlohmann::json j;
    j["interval_ms"] = a.intervalMs;
    j["channels"] = nlohmann::json::array();
    for (const auto& c : last.channels) j["channels"].push_back(readingJson(c.last));
    j["unavailable"] = last.unavailable;
    j["totals"] = rep.toJson();
    j["hardware"] = hw.toJson();
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << "window: " << fmt(rep.seconds, 2) << " s, " << rep.samples << " samples\n";
  if (!rep.hasData) {
    std::cout << "energy: no sensor could measure or estimate power here\n";
    return;
  }
  for (const auto& c : rep.channels)
    std::cout << "  " << c.channel << " (" << c.label << "): " << fmt(c.joules, 2) << " J, "
              << sensorKindName(c.kind)
              << (c.kind == SensorKind::estimated ? ", TDP x utilization"
                  : c.fromCounter                 ? ", from its counter"
                                                  : ", integrated from power")
              << "\n";
  std::cout << "energy: " << fmt(rep.joules, 2) << " J (" << sensorKindName(rep.kind) << "), average "
            << fmt(rep.averageWatts) << " W, peak " << fmt(rep.peakWatts) << " W\n";
  std::cout << "CO2e:   " << fmt(rep.co2eGrams(), 4) << " g at " << fmt(rep.gridGramsPerKWh, 0)
            << " g/kWh\n";
}

void registerTelemetry(CLI::App& app) {
  auto* sub = app.add_subcommand("telemetry", "Live power readings (measured or estimated) and energy totals");
  auto a = std::make_shared<TelemetryArgs>();
  sub->add_option("--seconds", a->seconds, "How long to sample")->capture_default_str();
  sub->add_option("--interval-ms", a->intervalMs, "Sampling interval, 100..1000 ms")->capture_default_str();
  sub->add_flag("--json", a->json, "Print one JSON object at the end");
  sub->add_option("--tdp-watts", a->options.cpuTdpWatts, "CPU TDP for the estimate when no counter is readable")
      ->capture_default_str();
  sub->add_option("--grid-g-per-kwh", a->options.gridGramsPerKWh, "Grid carbon intensity, gCO2e/kWh")
      ->capture_default_str();
  sub->add_option("--nvml-library", a->options.nvmlLibrary, "NVML library to load")->capture_default_str();
  sub->add_option("--root", a->options.root, "Read /sys and /proc under this folder (testing)");
  sub->callback([a] { runTelemetry(*a); });
}

CommandRegistration reg(registerTelemetry);

}  // namespace
}  // namespace hearth::cli
