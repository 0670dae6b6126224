/* CPU description for query_backends(); the CUDA part comes from cuda/device.cu when built with CUDA.
 * Non-obvious choice: SIMD features come from the compiler's cpuid builtins (what run-time dispatch
 * will use), not from /proc/cpuinfo flags. */
#include <fstream>
#include <string>
#include <thread>

#include "hearth/backend.h"

namespace hearth {

#ifdef HEARTH_HAVE_CUDA
namespace cuda {
void fill_backend_info(BackendInfo& info);  // engine/cuda/device.cu
}
#endif

BackendInfo query_backends() {
  BackendInfo info;
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) info.cpu_name = line.substr(p + 2);
      break;
    }
  }
  info.cpu_threads = int(std::thread::hardware_concurrency());
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2")) info.cpu_features.push_back("sse4.2");
  if (__builtin_cpu_supports("avx")) info.cpu_features.push_back("avx");
  if (__builtin_cpu_supports("avx2")) info.cpu_features.push_back("avx2");
  if (__builtin_cpu_supports("fma")) info.cpu_features.push_back("fma");
  if (__builtin_cpu_supports("avx512f")) info.cpu_features.push_back("avx512f");
  if (__builtin_cpu_supports("avx512bw")) info.cpu_features.push_back("avx512bw");
  if (__builtin_cpu_supports("avx512vnni")) info.cpu_features.push_back("avx512vnni");
#endif
#ifdef HEARTH_HAVE_CUDA
  info.cuda_compiled = true;
  cuda::fill_backend_info(info);
#else
  info.cuda_status = "not built with CUDA";
#endif
  return info;
}

}  // namespace hearth
