/* Sampler: reads a set of sensors on a background thread (std::jthread, 1-10 Hz) and keeps, per channel,
 * the latest reading and the energy accumulated since the sampler started. EnergyMeter: start/stop
 * around a training run, an evaluation or one chat reply, giving an EnergyReport.
 *
 * Non-obvious choice: a meter takes a fresh sample on the caller's thread at start() and stop() (reads
 * are serialised with the background thread), so a window as short as one chat reply is bounded by
 * real readings at both ends instead of by the nearest background tick.
 *
 * Threading: every Sampler method is thread-safe; snapshot() returns a copy. Sensors are owned by the
 * Sampler and only read under its read lock. An EnergyMeter is used from one thread; many meters may
 * share one Sampler. The Sampler must outlive its meters.
 */
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hearth/error.h"
#include "hearth/telemetry/energy.h"
#include "hearth/telemetry/sensor.h"

namespace hearth::telemetry {

// Everything telemetry can be configured with; the CLI and sessions fill it from their settings.
struct TelemetryOptions {
  std::string root = "/";                        // prefix for /sys and /proc (tests: a fake tree)
  std::string nvmlLibrary = "libnvidia-ml.so.1";  // dlopen name or path
  double cpuTdpWatts = DEFAULT_CPU_TDP_WATTS;    // for the CPU estimate
  int intervalMs = 500;                          // 100..1000 (10 Hz .. 1 Hz)
  double gridGramsPerKWh = DEFAULT_GRID_G_PER_KWH;
  bool useNvml = true;
};

// NVML, then powercap; the CPU estimate only when powercap has no readable package zone. Unavailable
// sensors are kept so their reasons can be shown.
std::vector<std::unique_ptr<Sensor>> makeDefaultSensors(const TelemetryOptions& options);

struct ChannelState {
  Reading last;
  double joules = 0;            // accumulated since the sampler's first sample
  double integratedJoules = 0;  // the part of `joules` integrated from power (no counter)
  bool hasEnergy = false;       // some energy could be accounted (counter or two power readings)
};

struct Snapshot {
  double time = 0;  // of the latest sample, steady-clock seconds (or the caller's clock in sampleAt)
  std::int64_t samples = 0;
  double totalWatts = 0;      // sum of the channels' latest watts
  bool anyEstimated = false;  // some channel with watts or energy is estimated
  std::vector<ChannelState> channels;
  std::vector<std::string> unavailable;  // "nvml: <reason>" per unavailable sensor
};

class Sampler {
 public:
  // Errors: invalid_argument when intervalMs is outside 100..1000.
  static Expected<std::unique_ptr<Sampler>> create(std::vector<std::unique_ptr<Sensor>> sensors,
                                                   int intervalMs);
  ~Sampler();  // stops the thread
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  void start();  // starts the background thread (no-op when running); takes a first sample now
  void stop();   // requests stop and joins
  bool running() const;
  int intervalMs() const { return m_intervalMs; }

  Snapshot sampleNow();                     // one sample at steady_clock now
  Snapshot sampleAt(double nowSeconds);     // one sample at the caller's clock (tests)
  Snapshot snapshot() const;

  struct Window {  // updated at every sample while a meter holds it
    std::atomic<double> peakWatts{0.0};
    std::atomic<std::int64_t> samples{0};
  };
  std::shared_ptr<Window> openWindow();

 private:
  Sampler(std::vector<std::unique_ptr<Sensor>> sensors, int intervalMs);
  void loop(std::stop_token token);
  Snapshot sampleLocked(double nowSeconds);  // caller holds m_readMutex

  std::vector<std::unique_ptr<Sensor>> m_sensors;
  int m_intervalMs;
  std::mutex m_readMutex;           // serialises sensor reads (background thread vs sampleNow)
  mutable std::mutex m_stateMutex;  // guards m_state and m_windows
  Snapshot m_state;
  std::vector<std::weak_ptr<Window>> m_windows;
  std::jthread m_thread;
  mutable std::mutex m_threadMutex;
};

// makeDefaultSensors(options) in a Sampler at options.intervalMs (not started). Errors: as create().
Expected<std::unique_ptr<Sampler>> makeSampler(const TelemetryOptions& options);

class EnergyMeter {
 public:
  explicit EnergyMeter(Sampler& sampler, double gridGramsPerKWh = DEFAULT_GRID_G_PER_KWH);
  void start();
  // Ends the window; `tokens` (generated or trained on) gives joules per token. Without a matching
  // start() it returns an empty report (hasData false).
  EnergyReport stop(std::int64_t tokens = 0);
  bool running() const { return m_running; }
  // The report so far without ending the window (a fresh sample is taken).
  EnergyReport peek(std::int64_t tokens = 0);

 private:
  EnergyReport between(const Snapshot& end, std::int64_t tokens) const;
  Sampler& m_sampler;
  double m_grid;
  bool m_running = false;
  Snapshot m_start;
  std::shared_ptr<Sampler::Window> m_window;
};

// Pure helper behind EnergyMeter: the report between two snapshots of the same sampler.
EnergyReport energyBetween(const Snapshot& begin, const Snapshot& end, double peakWatts,
                           std::int64_t samples, std::int64_t tokens, double gridGramsPerKWh);

}  // namespace hearth::telemetry
