/* What compute this machine offers: the CPU (model, threads, SIMD features) and, when Hearth was built
 * with CUDA, the GPUs the driver reports.
 *
 * Non-obvious choice: a CUDA-built binary on a machine without a driver or GPU must not fail: the CUDA
 * query reports its reason in `cuda_status` and returns no devices, and the CPU backend serves.
 * Thread-safety: query_backends() may be called from any thread.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hearth {

struct GpuInfo {
  int index = 0;
  std::string name;
  uint64_t total_memory = 0;  // bytes
  int cc_major = 0, cc_minor = 0;
};

struct BackendInfo {
  std::string cpu_name;
  int cpu_threads = 0;
  std::vector<std::string> cpu_features;  // "avx2", "fma", "f16c", "avx512f", ...
  bool cuda_compiled = false;             // built with the CUDA backend
  std::string cuda_status;                // "ok", or why no GPU is usable
  int cuda_runtime_version = 0;           // e.g. 13000
  int cuda_driver_version = 0;            // 0 when no driver
  std::vector<GpuInfo> gpus;
};

BackendInfo query_backends();

}  // namespace hearth
