/* Linux powercap (RAPL) sensor: CPU package and DRAM energy counters from energy_uj, with wraparound at
 * max_energy_range_uj. Intel's zones are intel-rapl:N[:M], AMD's amd-rapl:N[:M] (same layout).
 *
 * Non-obvious choice: only zones named package-* and dram become channels. Core and uncore are parts
 * of a package and psys covers the whole platform, so summing them with the packages would count the
 * same joules twice.
 */
#include <algorithm>
#include <filesystem>

#include "file-read.h"
#include "hearth/telemetry/energy.h"
#include "hearth/telemetry/sensor.h"

namespace hearth::telemetry {
namespace {

using detail::joinPath;
using detail::readSmallFile;
using detail::readU64File;
using detail::trimmed;

struct Zone {
  std::string dir;   // full path of the zone folder
  std::string id;    // "intel-rapl:0"
  std::string name;  // "package-0", "dram"
  std::uint64_t maxRange = 0;
  std::optional<std::uint64_t> lastCounter;
  std::optional<double> lastTime;
  double joules = 0;
};

class PowercapSensor : public Sensor {
 public:
  explicit PowercapSensor(const std::string& root) {
    namespace fs = std::filesystem;
    std::string base = joinPath(root, "/sys/class/powercap");
    std::error_code ec;
    if (!fs::is_directory(base, ec)) {
      m_reason = base + ": no powercap folder (kernel without RAPL support, or not Linux)";
      return;
    }
    std::vector<std::string> dirs;
    for (fs::directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
      std::string n = it->path().filename().string();
      // Zones have a colon (intel-rapl:0); the bare control-type folder (intel-rapl) has no counter.
      if ((n.starts_with("intel-rapl:") || n.starts_with("amd-rapl:"))) dirs.push_back(n);
    }
    std::sort(dirs.begin(), dirs.end());
    std::vector<std::string> problems;
    for (const auto& id : dirs) {
      Zone z;
      z.dir = base + "/" + id;
      z.id = id;
      std::string err;
      auto name = readSmallFile(z.dir + "/name", &err, 256);
      if (!name) {
        problems.push_back(err);
        continue;
      }
      z.name = trimmed(*name);
      if (!(z.name.starts_with("package") || z.name == "dram")) continue;
      auto counter = readU64File(z.dir + "/energy_uj", &err);
      if (!counter) {
        problems.push_back(err);
        continue;
      }
      std::string rangeErr;
      if (auto r = readU64File(z.dir + "/max_energy_range_uj", &rangeErr)) z.maxRange = *r;
      m_zones.push_back(std::move(z));
    }
    if (m_zones.empty()) {
      m_reason = problems.empty() ? base + ": no package or dram zone" : "no readable zone: " + problems[0];
      if (problems.size() > 1) m_reason += " (and " + std::to_string(problems.size() - 1) + " more)";
    } else if (!problems.empty()) {
      m_reason = "skipped: " + problems[0];
    }
  }

  std::string source() const override { return "powercap"; }
  bool available() const override { return !m_zones.empty(); }
  std::string unavailableReason() const override { return m_reason; }

  std::vector<Reading> read(double now) override {
    std::vector<Reading> out;
    for (auto& z : m_zones) {
      Reading r;
      r.channel = z.id;
      r.label = z.name;
      r.source = "powercap";
      r.domain = z.name == "dram" ? "dram" : "cpu-package";
      r.kind = SensorKind::measured;
      std::string err;
      auto counter = readU64File(z.dir + "/energy_uj", &err);
      if (!counter) {
        r.error = err;
        // Keep the total; the counter ran on, so the gap is counted when it reads again.
        if (z.lastCounter) r.energyJoules = z.joules;
        out.push_back(std::move(r));
        continue;
      }
      if (z.lastCounter) {
        double dj = static_cast<double>(counterDelta(*z.lastCounter, *counter, z.maxRange)) * 1e-6;
        z.joules += dj;
        double dt = now - *z.lastTime;
        if (dt > 0) r.watts = dj / dt;
      }
      z.lastCounter = *counter;
      z.lastTime = now;
      r.energyJoules = z.joules;
      out.push_back(std::move(r));
    }
    return out;
  }

 private:
  std::vector<Zone> m_zones;
  std::string m_reason;
};

}  // namespace

std::unique_ptr<Sensor> makePowercapSensor(const std::string& root) {
  return std::make_unique<PowercapSensor>(root);
}

const char* sensorKindName(SensorKind k) { return k == SensorKind::measured ? "measured" : "estimated"; }

}  // namespace hearth::telemetry
