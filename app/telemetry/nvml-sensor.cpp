/* NVML sensor: dlopen("libnvidia-ml.so.1") (or a given path), resolve the entry points by name, and read
 * each GPU's power, energy counter, utilization, memory, temperature and clocks.
 *
 * Non-obvious choice: the prototypes and the few constants are declared here from NVIDIA's published
 * API reference instead of including nvml.h, so Hearth builds with no CUDA toolkit and a machine
 * without the driver only loses the GPU figures. nvmlDeviceGetTotalEnergyConsumption counts mJ since the
 * driver loaded; the sensor reports the difference from its first read.
 */
#include "hearth/telemetry/nvml.h"

#include <dlfcn.h>

#include <cstring>

#include "hearth/telemetry/energy.h"

namespace hearth::telemetry {
namespace {

// From the NVML API reference: nvmlReturn_t is an int-sized enum, NVML_SUCCESS is 0, devices are
// opaque handles, and these structs are plain unsigned fields in this order.
using nvmlReturn_t = int;
using nvmlDevice_t = struct nvmlDevice_st*;
struct nvmlUtilization_t {
  unsigned int gpu;     // percent of time a kernel ran
  unsigned int memory;  // percent of time memory was read or written
};
struct nvmlMemory_t {
  unsigned long long total, free, used;  // bytes
};
constexpr nvmlReturn_t NVML_SUCCESS = 0;
constexpr int NVML_TEMPERATURE_GPU = 0;
constexpr int NVML_CLOCK_GRAPHICS = 0, NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2;
constexpr unsigned NVML_DEVICE_NAME_V2_BUFFER_SIZE = 96;
constexpr unsigned NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE = 80;

using InitFn = nvmlReturn_t (*)();
using ShutdownFn = nvmlReturn_t (*)();
using CountFn = nvmlReturn_t (*)(unsigned int*);
using HandleFn = nvmlReturn_t (*)(unsigned int, nvmlDevice_t*);
using NameFn = nvmlReturn_t (*)(nvmlDevice_t, char*, unsigned int);
using PowerFn = nvmlReturn_t (*)(nvmlDevice_t, unsigned int*);  // milliwatts
using EnergyFn = nvmlReturn_t (*)(nvmlDevice_t, unsigned long long*);  // millijoules
using UtilFn = nvmlReturn_t (*)(nvmlDevice_t, nvmlUtilization_t*);
using MemFn = nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_t*);
using TempFn = nvmlReturn_t (*)(nvmlDevice_t, int, unsigned int*);
using ClockFn = nvmlReturn_t (*)(nvmlDevice_t, int, unsigned int*);
using DriverFn = nvmlReturn_t (*)(char*, unsigned int);
using CudaFn = nvmlReturn_t (*)(int*);
using ErrorStringFn = const char* (*)(nvmlReturn_t);

}  // namespace

struct NvmlSensor::Impl {
  void* lib = nullptr;
  bool initialised = false;
  std::string reason;
  InitFn init = nullptr;
  ShutdownFn shutdown = nullptr;
  CountFn count = nullptr;
  HandleFn handle = nullptr;
  NameFn name = nullptr;
  PowerFn power = nullptr;
  EnergyFn energy = nullptr;
  UtilFn util = nullptr;
  MemFn mem = nullptr;
  TempFn temp = nullptr;
  ClockFn clock = nullptr;
  DriverFn driver = nullptr;
  CudaFn cuda = nullptr;
  ErrorStringFn errorString = nullptr;

  struct Device {
    nvmlDevice_t handle = nullptr;
    std::optional<unsigned long long> firstEnergyMj;
    bool energyBroken = false;  // the counter failed once: integrate power from then on, consistently
  };
  std::vector<Device> devices;
  std::vector<GpuInfo> gpus;
  std::string driverVersion, cudaVersion;

  std::string err(const char* what, nvmlReturn_t rc) const {
    std::string s = std::string(what) + " returned " + std::to_string(rc);
    if (errorString) {
      const char* m = errorString(rc);
      if (m) s += " (" + std::string(m) + ")";
    }
    return s;
  }

  template <class F>
  F sym(const char* n) {
    return reinterpret_cast<F>(::dlsym(lib, n));
  }

  void open(const std::string& path) {
    lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* e = ::dlerror();
      reason = "cannot load " + path + ": " + (e ? e : "unknown error") + " (no NVIDIA driver?)";
      return;
    }
    init = sym<InitFn>("nvmlInit_v2");
    shutdown = sym<ShutdownFn>("nvmlShutdown");
    count = sym<CountFn>("nvmlDeviceGetCount_v2");
    handle = sym<HandleFn>("nvmlDeviceGetHandleByIndex_v2");
    name = sym<NameFn>("nvmlDeviceGetName");
    power = sym<PowerFn>("nvmlDeviceGetPowerUsage");
    energy = sym<EnergyFn>("nvmlDeviceGetTotalEnergyConsumption");
    util = sym<UtilFn>("nvmlDeviceGetUtilizationRates");
    mem = sym<MemFn>("nvmlDeviceGetMemoryInfo");
    temp = sym<TempFn>("nvmlDeviceGetTemperature");
    clock = sym<ClockFn>("nvmlDeviceGetClockInfo");
    driver = sym<DriverFn>("nvmlSystemGetDriverVersion");
    cuda = sym<CudaFn>("nvmlSystemGetCudaDriverVersion");
    errorString = sym<ErrorStringFn>("nvmlErrorString");
    const char* missing = !init       ? "nvmlInit_v2"
                          : !shutdown ? "nvmlShutdown"
                          : !count    ? "nvmlDeviceGetCount_v2"
                          : !handle   ? "nvmlDeviceGetHandleByIndex_v2"
                                      : nullptr;
    if (missing) {
      reason = path + " has no " + missing + " (not NVML, or a driver too old)";
      return;
    }
    if (nvmlReturn_t rc = init(); rc != NVML_SUCCESS) {
      reason = err("nvmlInit_v2", rc);
      return;
    }
    initialised = true;
    unsigned int n = 0;
    if (nvmlReturn_t rc = count(&n); rc != NVML_SUCCESS) {
      reason = err("nvmlDeviceGetCount_v2", rc);
      return;
    }
    if (n > 64) n = 64;  // a lying library must not make us allocate without bound
    for (unsigned i = 0; i < n; ++i) {
      Device d;
      if (handle(i, &d.handle) != NVML_SUCCESS) continue;
      GpuInfo g;
      g.index = static_cast<int>(i);
      char buf[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {};
      if (name && name(d.handle, buf, sizeof buf) == NVML_SUCCESS) {
        buf[sizeof buf - 1] = 0;
        g.name = buf;
      } else {
        g.name = "NVIDIA GPU " + std::to_string(i);
      }
      nvmlMemory_t m{};
      if (mem && mem(d.handle, &m) == NVML_SUCCESS) g.memoryTotalBytes = static_cast<std::int64_t>(m.total);
      devices.push_back(d);
      gpus.push_back(g);
    }
    if (devices.empty()) reason = "NVML found no GPU";
    char dv[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = {};
    if (driver && driver(dv, sizeof dv) == NVML_SUCCESS) {
      dv[sizeof dv - 1] = 0;
      driverVersion = dv;
    }
    int cv = 0;
    if (cuda && cuda(&cv) == NVML_SUCCESS && cv > 0)
      cudaVersion = std::to_string(cv / 1000) + "." + std::to_string((cv % 1000) / 10);
  }

  ~Impl() {
    if (initialised && shutdown) shutdown();
    if (lib) ::dlclose(lib);
  }
};

NvmlSensor::NvmlSensor(const std::string& libraryPath) : m_impl(std::make_unique<Impl>()) {
  m_impl->open(libraryPath);
}
NvmlSensor::~NvmlSensor() = default;

bool NvmlSensor::available() const { return m_impl->initialised && !m_impl->devices.empty(); }
std::string NvmlSensor::unavailableReason() const { return m_impl->reason; }
const std::vector<GpuInfo>& NvmlSensor::gpus() const { return m_impl->gpus; }
std::string NvmlSensor::driverVersion() const { return m_impl->driverVersion; }
std::string NvmlSensor::cudaVersion() const { return m_impl->cudaVersion; }

std::vector<Reading> NvmlSensor::read(double /*nowSeconds*/) {
  std::vector<Reading> out;
  if (!available()) return out;
  Impl& m = *m_impl;
  for (std::size_t i = 0; i < m.devices.size(); ++i) {
    auto& d = m.devices[i];
    Reading r;
    r.channel = "gpu" + std::to_string(m.gpus[i].index);
    r.label = m.gpus[i].name;
    r.source = "nvml";
    r.domain = "gpu";
    r.kind = SensorKind::measured;
    unsigned int mw = 0;
    if (m.power) {
      if (nvmlReturn_t rc = m.power(d.handle, &mw); rc == NVML_SUCCESS)
        r.watts = mw / 1000.0;
      else
        r.error = m.err("nvmlDeviceGetPowerUsage", rc);
    }
    unsigned long long mj = 0;
    if (m.energy && !d.energyBroken) {
      if (m.energy(d.handle, &mj) == NVML_SUCCESS) {
        if (!d.firstEnergyMj) d.firstEnergyMj = mj;
        // 64-bit counter since driver load: it does not wrap in practice; a smaller value is a reload.
        r.energyJoules = static_cast<double>(counterDelta(*d.firstEnergyMj, mj, 0)) / 1000.0;
        if (mj < *d.firstEnergyMj) d.energyBroken = true;
      } else {
        d.energyBroken = true;  // pre-Volta: NOT_SUPPORTED; integrate power instead from now on
      }
    }
    nvmlUtilization_t u{};
    if (m.util && m.util(d.handle, &u) == NVML_SUCCESS) {
      r.utilization = std::min(u.gpu, 100u) / 100.0;
      r.memoryUtilization = std::min(u.memory, 100u) / 100.0;
    }
    nvmlMemory_t mem{};
    if (m.mem && m.mem(d.handle, &mem) == NVML_SUCCESS) {
      r.memoryUsedBytes = static_cast<std::int64_t>(mem.used);
      r.memoryTotalBytes = static_cast<std::int64_t>(mem.total);
    }
    unsigned int v = 0;
    if (m.temp && m.temp(d.handle, NVML_TEMPERATURE_GPU, &v) == NVML_SUCCESS) r.temperatureC = v;
    if (m.clock && m.clock(d.handle, NVML_CLOCK_GRAPHICS, &v) == NVML_SUCCESS) r.graphicsClockMHz = v;
    if (m.clock && m.clock(d.handle, NVML_CLOCK_SM, &v) == NVML_SUCCESS) r.smClockMHz = v;
    if (m.clock && m.clock(d.handle, NVML_CLOCK_MEM, &v) == NVML_SUCCESS) r.memoryClockMHz = v;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace hearth::telemetry
