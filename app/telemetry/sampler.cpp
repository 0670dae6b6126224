/* Sampler and EnergyMeter: the background sampling thread, per-channel energy accumulation, and
 * windows (start/stop) over it.
 *
 * Non-obvious choice: energy accumulates per channel in the sampler, from counter differences when
 * both neighbouring readings carry a counter and by the trapezoid rule when only power is known, so a
 * meter's window is just the difference of two snapshots and any number of meters can overlap.
 */
#include "hearth/telemetry/sampler.h"

#include <chrono>
#include <condition_variable>

#include "hearth/telemetry/nvml.h"

namespace hearth::telemetry {
namespace {

double steadyNow() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

std::string keyOf(const Reading& r) { return r.source + "/" + r.channel; }

}  // namespace

std::vector<std::unique_ptr<Sensor>> makeDefaultSensors(const TelemetryOptions& o) {
  std::vector<std::unique_ptr<Sensor>> s;
  if (o.useNvml) s.push_back(std::make_unique<NvmlSensor>(o.nvmlLibrary));
  auto rapl = makePowercapSensor(o.root);
  bool haveRapl = rapl->available();
  s.push_back(std::move(rapl));
  if (!haveRapl) s.push_back(makeCpuEstimateSensor(o.root, o.cpuTdpWatts));
  return s;
}

Expected<std::unique_ptr<Sampler>> Sampler::create(std::vector<std::unique_ptr<Sensor>> sensors,
                                                    int intervalMs) {
  if (intervalMs < 100 || intervalMs > 1000)
    return make_error(ErrorCode::invalid_argument,
                      "sampling interval " + std::to_string(intervalMs) + " ms is outside 100..1000 ms",
                      "sample at 1 to 10 Hz");
  return std::unique_ptr<Sampler>(new Sampler(std::move(sensors), intervalMs));
}

Expected<std::unique_ptr<Sampler>> makeSampler(const TelemetryOptions& options) {
  return Sampler::create(makeDefaultSensors(options), options.intervalMs);
}

Sampler::Sampler(std::vector<std::unique_ptr<Sensor>> sensors, int intervalMs)
    : m_sensors(std::move(sensors)), m_intervalMs(intervalMs) {
  for (const auto& s : m_sensors)
    if (!s->available()) m_state.unavailable.push_back(s->source() + ": " + s->unavailableReason());
}

Sampler::~Sampler() { stop(); }

void Sampler::start() {
  std::lock_guard lock(m_threadMutex);
  if (m_thread.joinable()) return;
  sampleNow();
  m_thread = std::jthread([this](std::stop_token t) { loop(t); });
}

void Sampler::stop() {
  std::lock_guard lock(m_threadMutex);
  if (!m_thread.joinable()) return;
  m_thread.request_stop();
  m_thread.join();
  m_thread = std::jthread();
}

bool Sampler::running() const {
  std::lock_guard lock(m_threadMutex);
  return m_thread.joinable();
}

void Sampler::loop(std::stop_token token) {
  std::mutex m;
  std::condition_variable_any cv;
  auto next = std::chrono::steady_clock::now();
  while (!token.stop_requested()) {
    next += std::chrono::milliseconds(m_intervalMs);
    {
      std::unique_lock lock(m);
      // Wakes at once on stop: request_stop notifies waits that were given the token.
      if (cv.wait_until(lock, token, next, [] { return false; })) break;
    }
    if (token.stop_requested()) break;
    sampleNow();
    auto now = std::chrono::steady_clock::now();
    if (next < now) next = now;  // a slow read: do not burst to catch up
  }
}

Snapshot Sampler::sampleNow() {
  std::lock_guard readLock(m_readMutex);
  return sampleLocked(steadyNow());
}

Snapshot Sampler::sampleAt(double now) {
  std::lock_guard readLock(m_readMutex);
  return sampleLocked(now);
}

Snapshot Sampler::sampleLocked(double now) {
  // Reads happen outside the state lock so snapshot() never waits on a slow sensor.
  std::vector<Reading> readings;
  for (auto& s : m_sensors)
    if (s->available())
      for (auto& r : s->read(now)) readings.push_back(std::move(r));

  std::lock_guard lock(m_stateMutex);
  Snapshot& st = m_state;
  double prevTime = st.time;
  std::vector<ChannelState> next;
  next.reserve(readings.size());
  double total = 0;
  bool anyEstimated = false;
  for (auto& r : readings) {
    ChannelState c;
    const ChannelState* prev = nullptr;
    for (const auto& p : st.channels)
      if (keyOf(p.last) == keyOf(r)) prev = &p;
    if (prev) {
      c.joules = prev->joules;
      c.integratedJoules = prev->integratedJoules;
      c.hasEnergy = prev->hasEnergy;
      if (prev->last.energyJoules && r.energyJoules) {
        double d = *r.energyJoules - *prev->last.energyJoules;
        if (d >= 0) c.joules += d;
        c.hasEnergy = true;
      } else if (prev->last.watts && r.watts) {
        double d = trapezoidJoules({{prevTime, *prev->last.watts}, {now, *r.watts}});
        c.joules += d;
        c.integratedJoules += d;
        c.hasEnergy = true;
      }
    }
    if (r.watts) total += *r.watts;
    if (r.kind == SensorKind::estimated && (r.watts || r.energyJoules)) anyEstimated = true;
    c.last = std::move(r);
    next.push_back(std::move(c));
  }
  st.channels = std::move(next);
  st.time = now;
  st.samples += 1;
  st.totalWatts = total;
  st.anyEstimated = anyEstimated;
  for (auto it = m_windows.begin(); it != m_windows.end();) {
    if (auto w = it->lock()) {
      w->samples.fetch_add(1);
      if (total > w->peakWatts.load()) w->peakWatts.store(total);
      ++it;
    } else {
      it = m_windows.erase(it);
    }
  }
  return st;
}

Snapshot Sampler::snapshot() const {
  std::lock_guard lock(m_stateMutex);
  return m_state;
}

std::shared_ptr<Sampler::Window> Sampler::openWindow() {
  auto w = std::make_shared<Window>();
  std::lock_guard lock(m_stateMutex);
  m_windows.push_back(w);
  return w;
}

EnergyReport energyBetween(const Snapshot& begin, const Snapshot& end, double peakWatts,
                           std::int64_t samples, std::int64_t tokens, double grid) {
  EnergyReport rep;
  rep.seconds = end.time - begin.time;
  rep.peakWatts = peakWatts;
  rep.samples = samples;
  rep.tokens = tokens;
  rep.gridGramsPerKWh = grid;
  bool anyEstimated = false;
  for (const auto& c : end.channels) {
    if (!c.hasEnergy) continue;
    const ChannelState* b = nullptr;
    for (const auto& p : begin.channels)
      if (keyOf(p.last) == keyOf(c.last)) b = &p;
    ChannelEnergy ce;
    ce.channel = c.last.channel;
    ce.label = c.last.label;
    ce.source = c.last.source;
    ce.domain = c.last.domain;
    ce.kind = c.last.kind;
    ce.joules = c.joules - (b ? b->joules : 0.0);
    double integrated = c.integratedJoules - (b ? b->integratedJoules : 0.0);
    ce.fromCounter = integrated <= 0;
    rep.hasData = true;
    rep.joules += ce.joules;
    if (ce.kind == SensorKind::estimated) anyEstimated = true;
    rep.channels.push_back(std::move(ce));
  }
  rep.kind = anyEstimated || !rep.hasData ? SensorKind::estimated : SensorKind::measured;
  rep.averageWatts = rep.seconds > 0 ? rep.joules / rep.seconds : 0.0;
  if (rep.peakWatts < rep.averageWatts) rep.peakWatts = rep.averageWatts;  // counters between samples
  return rep;
}

EnergyMeter::EnergyMeter(Sampler& sampler, double grid) : m_sampler(sampler), m_grid(grid) {}

void EnergyMeter::start() {
  m_window = m_sampler.openWindow();
  m_start = m_sampler.sampleNow();
  m_running = true;
}

EnergyReport EnergyMeter::between(const Snapshot& end, std::int64_t tokens) const {
  return energyBetween(m_start, end, m_window ? m_window->peakWatts.load() : 0.0,
                       m_window ? m_window->samples.load() : 0, tokens, m_grid);
}

EnergyReport EnergyMeter::peek(std::int64_t tokens) {
  if (!m_running) {
    EnergyReport r;
    r.tokens = tokens;
    r.gridGramsPerKWh = m_grid;
    return r;
  }
  return between(m_sampler.sampleNow(), tokens);
}

EnergyReport EnergyMeter::stop(std::int64_t tokens) {
  if (!m_running) {
    EnergyReport r;
    r.tokens = tokens;
    r.gridGramsPerKWh = m_grid;
    return r;
  }
  EnergyReport r = between(m_sampler.sampleNow(), tokens);
  m_running = false;
  m_window.reset();
  return r;
}

}  // namespace hearth::telemetry
