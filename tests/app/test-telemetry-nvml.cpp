/* The NVML sensor against fake NVML libraries built by tests/app/telemetry.cmake and loaded by path:
 * power, the energy counter, utilization, memory, temperature, clocks, versions, and the failure paths
 * (library absent, nvmlInit_v2 failing, a required and an optional symbol missing).
 *
 * Non-obvious choice: the test dlopens the same fake library to script it; dlopen of one path returns
 * one handle, so the sensor and the test see the same fake state.
 */
#include <dlfcn.h>
#include <gtest/gtest.h>

#include "hearth/telemetry/hardware.h"
#include "hearth/telemetry/nvml.h"
#include "hearth/telemetry/sampler.h"

using namespace hearth::telemetry;

namespace {

struct FakeNvml {
  void* lib = nullptr;
  void (*script)(int, unsigned, int) = nullptr;
  void (*set)(unsigned, unsigned, unsigned long long) = nullptr;
  int (*shutdownCalls)() = nullptr;
  explicit FakeNvml(const char* path) {
    lib = ::dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) return;
    script = reinterpret_cast<decltype(script)>(::dlsym(lib, "fake_nvml_script"));
    set = reinterpret_cast<decltype(set)>(::dlsym(lib, "fake_nvml_set"));
    shutdownCalls = reinterpret_cast<decltype(shutdownCalls)>(::dlsym(lib, "fake_nvml_shutdown_calls"));
  }
  ~FakeNvml() {
    if (lib) ::dlclose(lib);
  }
  bool ok() const { return lib && script && set && shutdownCalls; }
};

}  // namespace

TEST(TelemetryNvml, ReadsPowerEnergyAndTheRest) {
  FakeNvml fake(HEARTH_FAKE_NVML);
  ASSERT_TRUE(fake.ok()) << ::dlerror();
  fake.script(0, 2, 1);
  fake.set(0, 100'000, 1'000'000);  // 100 W, counter at 1000 J since driver load
  fake.set(1, 250'500, 9'000'000);
  int shutdownsBefore = fake.shutdownCalls();
  {
    NvmlSensor s(HEARTH_FAKE_NVML);
    ASSERT_TRUE(s.available()) << s.unavailableReason();
    ASSERT_EQ(s.gpus().size(), 2u);
    EXPECT_EQ(s.gpus()[1].name, "Fake NVIDIA GPU 1");
    EXPECT_EQ(s.gpus()[0].memoryTotalBytes, 80ll << 30);
    EXPECT_EQ(s.driverVersion(), "550.54.15");
    EXPECT_EQ(s.cudaVersion(), "12.4");

    auto r0 = s.read(0.0);
    ASSERT_EQ(r0.size(), 2u);
    EXPECT_EQ(r0[0].channel, "gpu0");
    EXPECT_EQ(r0[0].kind, SensorKind::measured);
    EXPECT_DOUBLE_EQ(*r0[0].watts, 100.0);
    EXPECT_DOUBLE_EQ(*r0[1].watts, 250.5);
    EXPECT_DOUBLE_EQ(*r0[0].energyJoules, 0.0) << "energy counts from the sensor's first read";
    EXPECT_DOUBLE_EQ(*r0[0].utilization, 0.87);
    EXPECT_DOUBLE_EQ(*r0[1].utilization, 0.88);
    EXPECT_DOUBLE_EQ(*r0[0].memoryUtilization, 0.41);
    EXPECT_EQ(*r0[0].memoryUsedBytes, 12ll << 30);
    EXPECT_DOUBLE_EQ(*r0[0].temperatureC, 64.0);
    EXPECT_EQ(*r0[0].graphicsClockMHz, 1755);
    EXPECT_EQ(*r0[0].smClockMHz, 1785);
    EXPECT_EQ(*r0[0].memoryClockMHz, 2619);

    // Power ramps 100 -> 300 W over 2 s; the counter says 400 J were used (the ramp's integral).
    fake.set(0, 300'000, 1'000'000 + 400'000);
    auto r1 = s.read(2.0);
    EXPECT_DOUBLE_EQ(*r1[0].watts, 300.0);
    EXPECT_DOUBLE_EQ(*r1[0].energyJoules, 400.0);

    HardwareInfo h = describeHardware("/", &s);
    auto j = h.toJson();
    EXPECT_EQ(j["gpus"].size(), 2u);
    EXPECT_EQ(j["gpus"][0]["name"], "Fake NVIDIA GPU 0");
    EXPECT_EQ(j["gpu_driver"], "550.54.15");
    EXPECT_EQ(j["cuda_driver"], "12.4");
  }
  EXPECT_EQ(fake.shutdownCalls(), shutdownsBefore + 1) << "nvmlShutdown once when the sensor goes";
}

TEST(TelemetryNvml, SamplerUsesTheCounterNotThePowerSamples) {
  FakeNvml fake(HEARTH_FAKE_NVML);
  ASSERT_TRUE(fake.ok());
  fake.script(0, 1, 1);
  fake.set(0, 100'000, 0);
  std::vector<std::unique_ptr<hearth::telemetry::Sensor>> v;
  v.push_back(std::make_unique<NvmlSensor>(HEARTH_FAKE_NVML));
  auto sampler = Sampler::create(std::move(v), 100);
  ASSERT_TRUE(sampler.has_value());
  auto a = (*sampler)->sampleAt(0.0);
  // Power samples say 100 W at both ends, but the GPU spiked between them: the counter has 500 J.
  fake.set(0, 100'000, 500'000);
  auto b = (*sampler)->sampleAt(2.0);
  EnergyReport rep = energyBetween(a, b, b.totalWatts, 2, 0, DEFAULT_GRID_G_PER_KWH);
  EXPECT_TRUE(rep.hasData);
  EXPECT_EQ(rep.kind, SensorKind::measured);
  EXPECT_DOUBLE_EQ(rep.joules, 500.0);
  ASSERT_EQ(rep.channels.size(), 1u);
  EXPECT_TRUE(rep.channels[0].fromCounter);
}

TEST(TelemetryNvml, EnergyCounterNotSupportedFallsBackToIntegratingPower) {
  FakeNvml fake(HEARTH_FAKE_NVML);
  ASSERT_TRUE(fake.ok());
  fake.script(0, 1, /*energySupported=*/0);  // pre-Volta: NVML_ERROR_NOT_SUPPORTED
  fake.set(0, 100'000, 0);
  std::vector<std::unique_ptr<hearth::telemetry::Sensor>> v;
  v.push_back(std::make_unique<NvmlSensor>(HEARTH_FAKE_NVML));
  auto sampler = std::move(*Sampler::create(std::move(v), 100));
  auto a = sampler->sampleAt(0.0);
  EXPECT_FALSE(a.channels.at(0).last.energyJoules.has_value());
  fake.set(0, 200'000, 0);
  sampler->sampleAt(1.0);
  fake.set(0, 300'000, 0);
  auto c = sampler->sampleAt(2.0);
  EnergyReport rep = energyBetween(a, c, 300, 3, 0, DEFAULT_GRID_G_PER_KWH);
  // Trapezoids: (100+200)/2*1 + (200+300)/2*1 = 400 J, exact for this linear ramp.
  EXPECT_DOUBLE_EQ(rep.joules, 400.0);
  EXPECT_EQ(rep.kind, SensorKind::measured) << "integrated measured power is still measured";
  EXPECT_FALSE(rep.channels.at(0).fromCounter);
}

TEST(TelemetryNvml, MissingEnergySymbolStillGivesPower) {
  NvmlSensor s(HEARTH_FAKE_NVML_NO_ENERGY);
  ASSERT_TRUE(s.available()) << s.unavailableReason();
  auto r = s.read(0.0);
  ASSERT_FALSE(r.empty());
  EXPECT_TRUE(r[0].watts.has_value());
  EXPECT_FALSE(r[0].energyJoules.has_value());
}

TEST(TelemetryNvml, LibraryAbsentIsUnavailable) {
  NvmlSensor s("/nonexistent/libnvidia-ml.so.1");
  EXPECT_FALSE(s.available());
  EXPECT_NE(s.unavailableReason().find("cannot load"), std::string::npos) << s.unavailableReason();
  EXPECT_TRUE(s.read(0.0).empty());
  EXPECT_TRUE(s.gpus().empty());
  HardwareInfo h = describeHardware("/", &s);
  EXPECT_TRUE(h.gpus.empty());
}

TEST(TelemetryNvml, InitFailureIsUnavailable) {
  FakeNvml fake(HEARTH_FAKE_NVML);
  ASSERT_TRUE(fake.ok());
  fake.script(999, 1, 1);  // NVML_ERROR_UNKNOWN, as with a driver/library mismatch
  int shutdownsBefore = fake.shutdownCalls();
  {
    NvmlSensor s(HEARTH_FAKE_NVML);
    EXPECT_FALSE(s.available());
    EXPECT_NE(s.unavailableReason().find("nvmlInit_v2 returned 999 (Unknown Error)"), std::string::npos)
        << s.unavailableReason();
    EXPECT_TRUE(s.read(0.0).empty());
  }
  EXPECT_EQ(fake.shutdownCalls(), shutdownsBefore) << "no nvmlShutdown without a successful init";
  fake.script(0, 0, 1);  // init fine, no GPU
  NvmlSensor none(HEARTH_FAKE_NVML);
  EXPECT_FALSE(none.available());
  EXPECT_NE(none.unavailableReason().find("no GPU"), std::string::npos);
}

TEST(TelemetryNvml, MissingRequiredSymbolIsUnavailable) {
  NvmlSensor s(HEARTH_FAKE_NVML_NO_COUNT);
  EXPECT_FALSE(s.available());
  EXPECT_NE(s.unavailableReason().find("nvmlDeviceGetCount_v2"), std::string::npos) << s.unavailableReason();
  EXPECT_TRUE(s.read(0.0).empty());
}

TEST(TelemetryNvml, NotALibraryIsUnavailable) {
  // A file that exists but is not a shared library.
  NvmlSensor s(HEARTH_SOURCE_DIR "/CMakeLists.txt");
  EXPECT_FALSE(s.available());
  EXPECT_FALSE(s.unavailableReason().empty());
}
