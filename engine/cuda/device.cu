/* CUDA device discovery. Every runtime call is checked; a missing driver or GPU is a status, not an
 * error, so a CUDA-built hearth runs on any machine.
 * Non-obvious choice: cudaGetDeviceCount is the first call, and its failure code (no driver, insufficient
 * driver, no device) is kept as the user-facing reason. */
#include <cuda_runtime.h>

#include <string>

#include "hearth/backend.h"

namespace hearth::cuda {

void fill_backend_info(BackendInfo& info) {
  cudaRuntimeGetVersion(&info.cuda_runtime_version);
  if (cudaDriverGetVersion(&info.cuda_driver_version) != cudaSuccess) info.cuda_driver_version = 0;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    info.cuda_status = std::string("no usable GPU: ") + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later calls are not confused
    return;
  }
  if (count == 0) {
    info.cuda_status = "no CUDA device found";
    return;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    GpuInfo g;
    g.index = i;
    g.name = prop.name;
    g.total_memory = prop.totalGlobalMem;
    g.cc_major = prop.major;
    g.cc_minor = prop.minor;
    info.gpus.push_back(g);
  }
  info.cuda_status = info.gpus.empty() ? "no CUDA device could be queried" : "ok";
}

}  // namespace hearth::cuda
