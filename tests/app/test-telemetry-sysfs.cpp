/* Telemetry readers against a fake /sys and /proc tree in a scratch folder: RAPL counters advancing,
 * wrapping at max_energy_range_uj, unreadable and missing zones; the /proc/stat CPU estimate; the
 * hardware description from /proc/cpuinfo and /proc/meminfo.
 *
 * Non-obvious choice: "unreadable" is made with mode 000 when not root and, for root (who reads mode 000
 * files), by putting a folder where energy_uj should be: both make read() fail as a real
 * permission-restricted energy_uj does.
 */
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "hearth/telemetry/energy.h"
#include "hearth/telemetry/hardware.h"
#include "hearth/telemetry/sensor.h"
#include "test-util.h"

namespace fs = std::filesystem;
using namespace hearth::telemetry;
using hearth::test::scratch;
using hearth::test::write_text;

namespace {

void writeZone(const fs::path& root, const std::string& id, const std::string& name, std::uint64_t uj,
               std::uint64_t range = 262143328850ull) {
  fs::path z = root / "sys/class/powercap" / id;
  fs::create_directories(z);
  write_text(z / "name", name + "\n");
  write_text(z / "energy_uj", std::to_string(uj) + "\n");
  write_text(z / "max_energy_range_uj", std::to_string(range) + "\n");
}

void setCounter(const fs::path& root, const std::string& id, std::uint64_t uj) {
  write_text(root / "sys/class/powercap" / id / "energy_uj", std::to_string(uj) + "\n");
}

void makeUnreadable(const fs::path& file) {
  if (::geteuid() != 0) {
    ::chmod(file.c_str(), 0);
  } else {
    fs::remove(file);
    fs::create_directory(file);  // read() on a folder fails with EISDIR, even for root
  }
}

const Reading* find(const std::vector<Reading>& rs, const std::string& channel) {
  for (const auto& r : rs)
    if (r.channel == channel) return &r;
  return nullptr;
}

}  // namespace

TEST(TelemetryPowercap, CountersAdvanceIntoJoulesAndWatts) {
  auto root = scratch("rapl-advance");
  fs::create_directories(root / "sys/class/powercap/intel-rapl");  // control type, no counter
  writeZone(root, "intel-rapl:0", "package-0", 1'000'000);
  writeZone(root, "intel-rapl:0:0", "core", 500'000);  // part of the package: not a channel
  writeZone(root, "intel-rapl:0:1", "dram", 2'000'000);
  writeZone(root, "intel-rapl:1", "package-1", 7'000'000);
  writeZone(root, "intel-rapl:2", "psys", 9'000'000);  // whole platform: would double count

  auto s = makePowercapSensor(root.string());
  ASSERT_TRUE(s->available()) << s->unavailableReason();
  auto r0 = s->read(10.0);
  ASSERT_EQ(r0.size(), 3u);
  EXPECT_EQ(find(r0, "intel-rapl:0:0"), nullptr);
  EXPECT_EQ(find(r0, "intel-rapl:2"), nullptr);
  for (const auto& r : r0) {
    EXPECT_EQ(r.kind, SensorKind::measured);
    EXPECT_FALSE(r.watts.has_value()) << "no power before a second counter value";
    EXPECT_DOUBLE_EQ(*r.energyJoules, 0.0);
  }

  setCounter(root, "intel-rapl:0", 1'000'000 + 90'000'000);  // 90 J in 2 s
  setCounter(root, "intel-rapl:0:1", 2'000'000 + 12'000'000);  // 12 J
  setCounter(root, "intel-rapl:1", 7'000'000 + 50'000'000);   // 50 J
  auto r1 = s->read(12.0);
  EXPECT_NEAR(*find(r1, "intel-rapl:0")->energyJoules, 90.0, 1e-9);
  EXPECT_NEAR(*find(r1, "intel-rapl:0")->watts, 45.0, 1e-9);
  EXPECT_EQ(find(r1, "intel-rapl:0")->domain, "cpu-package");
  EXPECT_NEAR(*find(r1, "intel-rapl:0:1")->watts, 6.0, 1e-9);
  EXPECT_EQ(find(r1, "intel-rapl:0:1")->domain, "dram");
  EXPECT_NEAR(*find(r1, "intel-rapl:1")->energyJoules, 50.0, 1e-9);

  // Cumulative from the first read, not per interval.
  setCounter(root, "intel-rapl:0", 1'000'000 + 100'000'000);
  auto r2 = s->read(13.0);
  EXPECT_NEAR(*find(r2, "intel-rapl:0")->energyJoules, 100.0, 1e-9);
  EXPECT_NEAR(*find(r2, "intel-rapl:0")->watts, 10.0, 1e-9);
}

TEST(TelemetryPowercap, CounterWrapsAtMaxEnergyRange) {
  auto root = scratch("rapl-wrap");
  const std::uint64_t range = 1'000'000'000;  // 1000 J
  writeZone(root, "intel-rapl:0", "package-0", range - 3'000'000, range);
  auto s = makePowercapSensor(root.string());
  s->read(0.0);
  setCounter(root, "intel-rapl:0", 5'000'000);  // wrapped: 3 J to the top, then 5 J
  auto r = s->read(1.0);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_NEAR(*r[0].energyJoules, 8.0, 1e-9);
  EXPECT_NEAR(*r[0].watts, 8.0, 1e-9);

}

TEST(TelemetryPowercap, AmdZonesHaveTheSameLayout) {
  auto root = scratch("rapl-amd");
  writeZone(root, "amd-rapl:0", "package-0", 0);
  auto s = makePowercapSensor(root.string());
  ASSERT_TRUE(s->available()) << s->unavailableReason();
  s->read(0.0);
  setCounter(root, "amd-rapl:0", 30'000'000);
  auto r = s->read(0.5);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].channel, "amd-rapl:0");
  EXPECT_EQ(r[0].label, "package-0");
  EXPECT_NEAR(*r[0].watts, 60.0, 1e-9);
}

TEST(TelemetryPowercap, UnreadableCounterSkipsTheZoneAndSaysWhy) {
  auto root = scratch("rapl-unreadable");
  writeZone(root, "intel-rapl:0", "package-0", 1000);
  writeZone(root, "intel-rapl:1", "package-1", 1000);
  makeUnreadable(root / "sys/class/powercap/intel-rapl:1/energy_uj");
  auto s = makePowercapSensor(root.string());
  ASSERT_TRUE(s->available());
  EXPECT_NE(s->unavailableReason().find("intel-rapl:1/energy_uj"), std::string::npos) << s->unavailableReason();
  auto r = s->read(0.0);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].channel, "intel-rapl:0");

  // Every zone unreadable (the usual case for a normal user since Linux restricted energy_uj).
  makeUnreadable(root / "sys/class/powercap/intel-rapl:0/energy_uj");
  auto none = makePowercapSensor(root.string());
  EXPECT_FALSE(none->available());
  EXPECT_NE(none->unavailableReason().find("energy_uj"), std::string::npos) << none->unavailableReason();
  EXPECT_TRUE(none->read(1.0).empty());
}

TEST(TelemetryPowercap, CounterThatBecomesUnreadableKeepsItsTotal) {
  auto root = scratch("rapl-vanish");
  writeZone(root, "intel-rapl:0", "package-0", 0);
  auto s = makePowercapSensor(root.string());
  s->read(0.0);
  setCounter(root, "intel-rapl:0", 20'000'000);
  EXPECT_NEAR(*s->read(1.0)[0].energyJoules, 20.0, 1e-9);
  fs::remove_all(root / "sys/class/powercap/intel-rapl:0");  // zone vanished (module unloaded)
  auto r = s->read(2.0);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_FALSE(r[0].error.empty());
  EXPECT_FALSE(r[0].watts.has_value());
  EXPECT_NEAR(*r[0].energyJoules, 20.0, 1e-9);
}

TEST(TelemetryPowercap, MissingTreeOrZonesIsUnavailable) {
  auto root = scratch("rapl-missing");
  auto s = makePowercapSensor(root.string());
  EXPECT_FALSE(s->available());
  EXPECT_NE(s->unavailableReason().find("powercap"), std::string::npos);

  fs::create_directories(root / "sys/class/powercap/intel-rapl");
  writeZone(root, "intel-rapl:0:0", "core", 5);  // only a subzone
  auto t = makePowercapSensor(root.string());
  EXPECT_FALSE(t->available());

  // A malformed counter is a clear error, not a zero.
  writeZone(root, "intel-rapl:0", "package-0", 0);
  write_text(root / "sys/class/powercap/intel-rapl:0/energy_uj", "lots\n");
  auto u = makePowercapSensor(root.string());
  EXPECT_FALSE(u->available());
  EXPECT_NE(u->unavailableReason().find("expected an unsigned integer"), std::string::npos)
      << u->unavailableReason();
}

namespace {
// /proc/stat aggregate line: user nice system idle iowait irq softirq steal
void writeStat(const fs::path& root, std::uint64_t user, std::uint64_t system, std::uint64_t idle,
               std::uint64_t iowait) {
  fs::create_directories(root / "proc");
  write_text(root / "proc/stat", "cpu  " + std::to_string(user) + " 0 " + std::to_string(system) + " " +
                                     std::to_string(idle) + " " + std::to_string(iowait) +
                                     " 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 12345\n");
}
}  // namespace

TEST(TelemetryCpuEstimate, TdpTimesBusyFractionMarkedEstimated) {
  auto root = scratch("cpu-estimate");
  writeStat(root, 1000, 500, 8000, 500);
  auto s = makeCpuEstimateSensor(root.string(), 80.0);
  ASSERT_TRUE(s->available()) << s->unavailableReason();
  auto r0 = s->read(0.0);
  ASSERT_EQ(r0.size(), 1u);
  EXPECT_EQ(r0[0].kind, SensorKind::estimated);
  EXPECT_FALSE(r0[0].watts.has_value());

  // +300 busy (user 200, system 100), +700 idle (600 idle, 100 iowait): 30% busy.
  writeStat(root, 1200, 600, 8600, 600);
  auto r1 = s->read(2.0);
  EXPECT_NEAR(*r1[0].utilization, 0.3, 1e-12);
  EXPECT_NEAR(*r1[0].watts, 80.0 * 0.3, 1e-9);
  EXPECT_NEAR(*r1[0].energyJoules, 80.0 * 0.3 * 2.0, 1e-9);
  EXPECT_EQ(r1[0].kind, SensorKind::estimated);
  EXPECT_NE(r1[0].label.find("estimate"), std::string::npos);

  // Fully busy for one more second.
  writeStat(root, 1700, 600, 8600, 600);
  auto r2 = s->read(3.0);
  EXPECT_NEAR(*r2[0].watts, 80.0, 1e-9);
  EXPECT_NEAR(*r2[0].energyJoules, 48.0 + 80.0, 1e-9);
}

TEST(TelemetryCpuEstimate, MissingOrMalformedProcStatIsUnavailable) {
  auto root = scratch("cpu-estimate-missing");
  auto s = makeCpuEstimateSensor(root.string(), 65.0);
  EXPECT_FALSE(s->available());
  EXPECT_NE(s->unavailableReason().find("proc/stat"), std::string::npos);
  fs::create_directories(root / "proc");
  write_text(root / "proc/stat", "intr 1 2 3\n");
  EXPECT_FALSE(makeCpuEstimateSensor(root.string(), 65.0)->available());
  writeStat(root, 1, 1, 1, 1);
  EXPECT_FALSE(makeCpuEstimateSensor(root.string(), 0.0)->available()) << "a zero TDP is refused";
}

TEST(TelemetryHardware, CpuinfoAndMeminfo) {
  auto root = scratch("hardware");
  fs::create_directories(root / "proc");
  std::string cpuinfo;
  for (int p = 0; p < 2; ++p)
    for (int c = 0; c < 2; ++c)
      for (int t = 0; t < 2; ++t) {
        int n = p * 4 + c * 2 + t;
        cpuinfo += "processor\t: " + std::to_string(n) + "\nmodel name\t: Fake Xeon 9000 @ 3.0GHz\n"
                   "physical id\t: " + std::to_string(p) + "\ncore id\t\t: " + std::to_string(c) + "\n\n";
      }
  write_text(root / "proc/cpuinfo", cpuinfo);
  write_text(root / "proc/meminfo", "MemTotal:       16384000 kB\nMemFree:         1000 kB\n");
  HardwareInfo h = describeHardware(root.string());
  EXPECT_EQ(h.cpuModel, "Fake Xeon 9000 @ 3.0GHz");
  EXPECT_EQ(h.cpuLogicalCores, 8);
  EXPECT_EQ(h.cpuPhysicalCores, 4);
  EXPECT_EQ(h.ramBytes, 16384000ll * 1024);
  auto j = h.toJson();
  EXPECT_EQ(j["cpu"]["model"], "Fake Xeon 9000 @ 3.0GHz");
  EXPECT_EQ(j["ram_bytes"], 16384000ll * 1024);
  EXPECT_TRUE(j["gpus"].empty());

  HardwareInfo none = describeHardware(scratch("hardware-empty").string());
  EXPECT_EQ(none.cpuLogicalCores, 0);
  EXPECT_FALSE(none.toJson().contains("ram_bytes"));
}
