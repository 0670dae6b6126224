/* A fake NVML for the telemetry tests: exports the NVML entry points Hearth resolves with dlsym and
 * returns scripted values. Built by tests/app/telemetry.cmake as shared libraries (one complete, and
 * variants without a required or an optional symbol) and loaded by path.
 *
 * Non-obvious choice: with no script set it behaves like a steady GPU, FAKE_NVML_POWER_MW milliwatts
 * (default 150 W) whose energy counter advances with CLOCK_MONOTONIC time, so a separate process (the
 * hearth-cli integration test) gets a counter consistent with its power; in-process tests call
 * fake_nvml_script() to set every value by hand.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXPORT __attribute__((visibility("default")))

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st* nvmlDevice_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;

enum { FAKE_MAX = 4, NVML_ERROR_NOT_SUPPORTED = 3, NVML_ERROR_INVALID_ARGUMENT = 2,
       NVML_ERROR_UNINITIALIZED = 1 };

static struct {
  int scripted;
  int initResult;
  unsigned count;
  unsigned powerMw[FAKE_MAX];
  unsigned long long energyMj[FAKE_MAX];
  int energySupported;
  int initCalls, shutdownCalls, initialised;
  double t0;
} g = {0, 0, 1, {150000}, {0}, 1, 0, 0, 0, 0};

static struct nvmlDevice_st { int index; } devices[FAKE_MAX] = {{0}, {1}, {2}, {3}};

static double monotonicSeconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static unsigned steadyPowerMw(void) {
  const char* e = getenv("FAKE_NVML_POWER_MW");
  return e ? (unsigned)strtoul(e, NULL, 10) : 150000u;
}

/* ---- test control ---- */
EXPORT void fake_nvml_script(int initResult, unsigned count, int energySupported) {
  g.scripted = 1;
  g.initResult = initResult;
  g.count = count > FAKE_MAX ? FAKE_MAX : count;
  g.energySupported = energySupported;
}
EXPORT void fake_nvml_set(unsigned dev, unsigned powerMw, unsigned long long energyMj) {
  if (dev < FAKE_MAX) {
    g.powerMw[dev] = powerMw;
    g.energyMj[dev] = energyMj;
  }
}
EXPORT int fake_nvml_init_calls(void) { return g.initCalls; }
EXPORT int fake_nvml_shutdown_calls(void) { return g.shutdownCalls; }

/* ---- NVML ---- */
EXPORT nvmlReturn_t nvmlInit_v2(void) {
  g.initCalls++;
  if (g.initResult != 0) return g.initResult;
  g.initialised = 1;
  g.t0 = monotonicSeconds();
  return 0;
}
EXPORT nvmlReturn_t nvmlShutdown(void) {
  g.shutdownCalls++;
  g.initialised = 0;
  return 0;
}
EXPORT const char* nvmlErrorString(nvmlReturn_t rc) { return rc == 999 ? "Unknown Error" : "fake error"; }

#ifndef FAKE_NVML_NO_COUNT
EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* n) {
  if (!g.initialised) return NVML_ERROR_UNINITIALIZED;
  *n = g.count;
  return 0;
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t* d) {
  if (i >= g.count) return NVML_ERROR_INVALID_ARGUMENT;
  *d = &devices[i];
  return 0;
}
EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char* name, unsigned int length) {
  const char* base = "Fake NVIDIA GPU ";
  if (length < strlen(base) + 2) return NVML_ERROR_INVALID_ARGUMENT;
  strcpy(name, base);
  name[strlen(base)] = (char)('0' + d->index);
  name[strlen(base) + 1] = 0;
  return 0;
}
EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int* mw) {
  *mw = g.scripted ? g.powerMw[d->index] : steadyPowerMw();
  return 0;
}
#ifndef FAKE_NVML_NO_ENERGY
EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long* mj) {
  if (!g.energySupported) return NVML_ERROR_NOT_SUPPORTED;
  if (g.scripted)
    *mj = g.energyMj[d->index];
  else  /* a counter that already ran before we opened, advancing at the steady power */
    *mj = 5000000ull + (unsigned long long)((monotonicSeconds() - g.t0) * steadyPowerMw());
  return 0;
}
#endif
EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t* u) {
  u->gpu = 87 + (unsigned)d->index;
  u->memory = 41;
  return 0;
}
EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t* m) {
  (void)d;
  m->total = 80ull << 30;
  m->used = 12ull << 30;
  m->free = m->total - m->used;
  return 0;
}
EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int* t) {
  (void)d;
  if (sensor != 0) return NVML_ERROR_INVALID_ARGUMENT;
  *t = 64;
  return 0;
}
EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned int* mhz) {
  (void)d;
  static const unsigned clocks[] = {1755, 1785, 2619};  /* graphics, SM, memory */
  if (type < 0 || type > 2) return NVML_ERROR_INVALID_ARGUMENT;
  *mhz = clocks[type];
  return 0;
}
EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char* v, unsigned int length) {
  const char* s = "550.54.15";
  if (length <= strlen(s)) return NVML_ERROR_INVALID_ARGUMENT;
  strcpy(v, s);
  return 0;
}
EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int* v) {
  *v = 12040;
  return 0;
}
