/* CPU power estimate where no energy counter is readable: a configured TDP times the busy fraction of
 * all CPUs, from the aggregate "cpu" line of /proc/stat between two reads. Always marked estimated.
 *
 * Non-obvious choice: the estimate keeps its own cumulative joules (TDP x busy x dt per interval), so
 * the energy of a window is exact for the model over the window's /proc/stat deltas, not a trapezoid
 * over whatever samples happened to land in it. iowait counts as idle (the CPU is not computing).
 */
#include <algorithm>
#include <sstream>

#include "file-read.h"
#include "hearth/telemetry/sensor.h"

namespace hearth::telemetry {
namespace {

struct CpuTimes {
  std::uint64_t busy = 0, total = 0;
};

std::optional<CpuTimes> readCpuTimes(const std::string& path, std::string* error) {
  auto text = detail::readSmallFile(path, error, 1 << 16);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("cpu ")) continue;
    std::istringstream ls(line.substr(4));
    // user nice system idle iowait irq softirq steal (guest fields are already in user/nice)
    std::uint64_t v[8] = {};
    int n = 0;
    while (n < 8 && ls >> v[n]) ++n;
    if (n < 4) break;
    CpuTimes t;
    std::uint64_t idle = v[3] + (n > 4 ? v[4] : 0);
    for (int i = 0; i < n; ++i) t.total += v[i];
    t.busy = t.total - idle;
    return t;
  }
  if (error) *error = path + ": no aggregate 'cpu' line with at least 4 counters";
  return std::nullopt;
}

class CpuEstimateSensor : public Sensor {
 public:
  CpuEstimateSensor(const std::string& root, double tdp)
      : m_path(detail::joinPath(root, "/proc/stat")), m_tdp(tdp) {
    std::string err;
    if (!(tdp > 0)) {
      m_reason = "CPU TDP must be positive";
    } else if (!readCpuTimes(m_path, &err)) {
      m_reason = err;
    }
  }
  std::string source() const override { return "estimate"; }
  bool available() const override { return m_reason.empty(); }
  std::string unavailableReason() const override { return m_reason; }

  std::vector<Reading> read(double now) override {
    if (!available()) return {};
    Reading r;
    r.channel = "cpu";
    std::ostringstream label;
    label << "CPU (estimate, " << m_tdp << " W TDP x utilization)";
    r.label = label.str();
    r.source = "estimate";
    r.domain = "cpu";
    r.kind = SensorKind::estimated;
    std::string err;
    auto t = readCpuTimes(m_path, &err);
    if (!t) {
      r.error = err;
      if (m_last) r.energyJoules = m_joules;
      return {r};
    }
    if (m_last && t->total > m_last->total && t->busy >= m_last->busy) {
      double util = static_cast<double>(t->busy - m_last->busy) / static_cast<double>(t->total - m_last->total);
      util = std::clamp(util, 0.0, 1.0);
      double dt = now - m_lastTime;
      r.utilization = util;
      r.watts = m_tdp * util;
      if (dt > 0) m_joules += *r.watts * dt;
    } else if (m_last && m_lastUtil) {
      // No tick elapsed (reads closer than 1/USER_HZ): keep the previous utilization for this slice.
      r.utilization = m_lastUtil;
      r.watts = m_tdp * *m_lastUtil;
      double dt = now - m_lastTime;
      if (dt > 0) m_joules += *r.watts * dt;
    }
    if (r.utilization) m_lastUtil = r.utilization;
    if (!m_last || t->total > m_last->total) m_last = t;
    m_lastTime = now;
    r.energyJoules = m_joules;
    return {r};
  }

 private:
  std::string m_path;
  double m_tdp;
  std::string m_reason;
  std::optional<CpuTimes> m_last;
  std::optional<double> m_lastUtil;
  double m_lastTime = 0;
  double m_joules = 0;
};

}  // namespace

std::unique_ptr<Sensor> makeCpuEstimateSensor(const std::string& root, double tdpWatts) {
  return std::make_unique<CpuEstimateSensor>(root, tdpWatts);
}

}  // namespace hearth::telemetry
