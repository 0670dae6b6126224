/* Integration: `hearth-cli telemetry --seconds 1 --json` on this machine, and on a fake machine (a fake
 * sysfs/procfs tree plus the fake NVML library) where every figure is known.
 *
 * Non-obvious choice: the test decides on its own what this machine can measure (can it dlopen
 * libnvidia-ml.so.1, can it read a RAPL package counter) and checks that the CLI says the same, so it
 * holds on a laptop, a GPU server and a CI container alike.
 */
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test-util.h"

namespace fs = std::filesystem;
using hearth::test::cli;
using hearth::test::run;
using hearth::test::scratch;
using hearth::test::write_text;

namespace {

bool raplPackageReadable() {
  std::error_code ec;
  for (const char* base : {"/sys/class/powercap"}) {
    if (!fs::is_directory(base, ec)) continue;
    for (const auto& e : fs::directory_iterator(base, ec)) {
      std::string n = e.path().filename().string();
      if (!(n.starts_with("intel-rapl:") || n.starts_with("amd-rapl:"))) continue;
      std::ifstream name(e.path() / "name");
      std::string zone;
      name >> zone;
      if (!zone.starts_with("package")) continue;
      std::ifstream counter(e.path() / "energy_uj");
      unsigned long long v = 0;
      if (counter >> v) return true;
    }
  }
  return false;
}

bool nvmlLoadable() {
  void* h = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) return false;
  using InitFn = int (*)();
  auto init = reinterpret_cast<InitFn>(::dlsym(h, "nvmlInit_v2"));
  bool ok = init && init() == 0;
  if (ok) {
    auto shutdown = reinterpret_cast<InitFn>(::dlsym(h, "nvmlShutdown"));
    if (shutdown) shutdown();
  }
  ::dlclose(h);
  return ok;
}

nlohmann::json runJson(const std::string& args) {
  auto r = run(cli() + " telemetry " + args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  return j;
}

}  // namespace

TEST(TelemetryCli, ThisMachineSaysHonestlyWhatIsMeasured) {
  auto j = runJson("--seconds 1 --json --interval-ms 200");
  ASSERT_TRUE(j.is_object());
  bool gpu = nvmlLoadable();
  bool rapl = raplPackageReadable();
  bool sawCpu = false, sawGpu = false;
  for (const auto& c : j["channels"]) {
    std::string source = c["source"];
    if (source == "nvml") {
      sawGpu = true;
      EXPECT_EQ(c["kind"], "measured");
    } else if (source == "powercap") {
      sawCpu = true;
      EXPECT_EQ(c["kind"], "measured");
      EXPECT_TRUE(rapl);
    } else if (source == "estimate") {
      sawCpu = true;
      EXPECT_EQ(c["kind"], "estimated");
      EXPECT_FALSE(rapl) << "an estimate although RAPL is readable";
      EXPECT_GE(c["watts"].get<double>(), 0.0);
    }
  }
  EXPECT_TRUE(sawCpu) << j.dump(2);
  EXPECT_EQ(sawGpu, gpu) << j.dump(2);
  const auto& t = j["totals"];
  EXPECT_EQ(t["energy_sensor"], rapl ? "measured" : "estimated") << j.dump(2);
  EXPECT_NEAR(t["seconds"].get<double>(), 1.0, 0.5);
  EXPECT_GE(t["energy_j"].get<double>(), 0.0);
  EXPECT_GE(t["samples"].get<int>(), 3);
  // Whatever is not available is listed with a reason.
  if (!gpu) {
    bool listed = false;
    for (const auto& u : j["unavailable"]) listed |= u.get<std::string>().starts_with("nvml:");
    EXPECT_TRUE(listed) << j.dump(2);
  }
  EXPECT_FALSE(j["hardware"]["cpu"]["model"].get<std::string>().empty());
}

TEST(TelemetryCli, FakeMachineWithGpuAndRaplIsMeasured) {
  auto root = scratch("fake-machine");
  fs::path z = root / "sys/class/powercap/intel-rapl:0";
  fs::create_directories(z);
  write_text(z / "name", "package-0\n");
  write_text(z / "energy_uj", "1000\n");  // a frozen counter: 0 W, but readable and measured
  write_text(z / "max_energy_range_uj", "262143328850\n");
  fs::create_directories(root / "proc");
  write_text(root / "proc/cpuinfo", "processor : 0\nmodel name : Fake CPU\n");
  write_text(root / "proc/meminfo", "MemTotal: 1024 kB\n");
  auto j = runJson("--seconds 1 --json --interval-ms 100 --root '" + root.string() +
                   "' --nvml-library '" HEARTH_FAKE_NVML "' --grid-g-per-kwh 100");
  ASSERT_TRUE(j.is_object());
  const auto& t = j["totals"];
  EXPECT_EQ(t["energy_sensor"], "measured") << j.dump(2);
  // The fake GPU draws 150 W and its counter advances with real time: energy = 150 W x window.
  double seconds = t["seconds"].get<double>();
  double gpuJ = 0;
  for (const auto& c : t["channels"])
    if (c["source"] == "nvml") gpuJ += c["energy_j"].get<double>();
  EXPECT_NEAR(gpuJ, 150.0 * seconds, 150.0 * 0.05) << j.dump(2);
  EXPECT_NEAR(t["energy_j"].get<double>(), gpuJ, 1e-9) << "the frozen RAPL counter adds nothing";
  EXPECT_NEAR(t["co2e_g"].get<double>(), t["energy_j"].get<double>() / 3.6e6 * 100.0, 1e-9);
  EXPECT_EQ(j["hardware"]["gpus"][0]["name"], "Fake NVIDIA GPU 0");
  EXPECT_EQ(j["hardware"]["cpu"]["model"], "Fake CPU");
  EXPECT_EQ(j["hardware"]["cuda_driver"], "12.4");
  bool sawGpu = false;
  for (const auto& c : j["channels"])
    if (c["source"] == "nvml") {
      sawGpu = true;
      EXPECT_DOUBLE_EQ(c["watts"].get<double>(), 150.0);
      EXPECT_DOUBLE_EQ(c["utilization"].get<double>(), 0.87);
    }
  EXPECT_TRUE(sawGpu);
}

TEST(TelemetryCli, FakeMachineWithoutCountersIsEstimated) {
  auto root = scratch("fake-estimate");
  fs::create_directories(root / "proc");
  write_text(root / "proc/stat", "cpu  100 0 100 800 0 0 0 0 0 0\n");
  auto j = runJson("--seconds 1 --json --interval-ms 250 --root '" + root.string() +
                   "' --nvml-library /nonexistent/libnvidia-ml.so.1 --tdp-watts 40");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["totals"]["energy_sensor"], "estimated");
  ASSERT_EQ(j["channels"].size(), 1u);
  EXPECT_EQ(j["channels"][0]["kind"], "estimated");
  EXPECT_EQ(j["unavailable"].size(), 2u) << j.dump(2);  // nvml and powercap, each with its reason
}

TEST(TelemetryCli, BadOptionsFailWithOneLine) {
  auto r = run(cli() + " telemetry --seconds 1 --interval-ms 20");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.out.empty());
  EXPECT_NE(r.err.find("100..1000"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  auto r2 = run(cli() + " telemetry --seconds 0");
  EXPECT_NE(r2.exit_code, 0);
}
