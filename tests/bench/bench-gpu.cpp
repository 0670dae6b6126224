/* bench-gpu: the GPU's own limits that issue 6's targets are measured against (a program, never a test):
 * HBM bandwidth from a device-to-device cudaMemcpy, and the cuBLAS SGEMM (FP32, no TF32) and BF16 GEMM
 * (BF16 in/out, F32 accumulation) rates on random square matrices. Each figure is the mean of the timed
 * repetitions after warm-ups, timed with CUDA events on one stream.
 * Output: one human line per figure, then `RESULT <name> <value> <unit>` lines that tests/gpu/run.sh
 * collects; `--json FILE` writes the same figures with the device's name.
 *
 * Non-obvious choice: the copy's bandwidth counts the bytes read AND written (2 x size per copy), since
 * both cross HBM; that is the figure decode's "bytes read per token" is divided by.
 */
#include <cuda_runtime.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "gpu-gemm.h"

using hearth::gpu_test::GemmRunner;

namespace {

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "bench-gpu: %s\n", msg.c_str());
  std::exit(1);
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) die(hearth::gpu_test::cuda_message(what, e));
}

// Milliseconds per call of `fn` (mean over `reps`) after `warmups` calls.
template <class F>
double time_ms(cudaStream_t stream, int warmups, int reps, F&& fn) {
  for (int i = 0; i < warmups; ++i) fn();
  check(cudaStreamSynchronize(stream), "warm-up");
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "cudaEventCreate");
  check(cudaEventCreate(&b), "cudaEventCreate");
  check(cudaEventRecord(a, stream), "cudaEventRecord");
  for (int i = 0; i < reps; ++i) fn();
  check(cudaEventRecord(b, stream), "cudaEventRecord");
  check(cudaEventSynchronize(b), "cudaEventSynchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / reps;
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  int n = 8192;
  std::size_t copy_mib = 2048;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--n" && i + 1 < argc) n = std::atoi(argv[++i]);
    else if (a == "--copy-mib" && i + 1 < argc) copy_mib = std::strtoull(argv[++i], nullptr, 10);
    else die("usage: bench-gpu [--json FILE] [--n GEMM_SIZE] [--copy-mib MIB]");
  }
  if (n < 256 || n > 32768 || copy_mib < 1) die("--n must be 256..32768 and --copy-mib at least 1");

  int count = 0;
  if (cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess || count == 0)
    die(std::string("no CUDA device: ") + (e != cudaSuccess ? cudaGetErrorString(e) : "none found"));
  check(cudaSetDevice(0), "cudaSetDevice");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  int mem_khz = 0;
  cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, 0);
  // Theoretical peak from the clock and bus width (DDR: two transfers a clock), for comparison only.
  const double peak_gbs = 2.0 * mem_khz * 1e3 * (prop.memoryBusWidth / 8.0) / 1e9;
  std::printf("device: %s, sm_%d%d, %d SMs, %.1f GiB, memory bus %d bits at %d MHz (nominal %.0f GB/s)\n",
              prop.name, prop.major, prop.minor, prop.multiProcessorCount, prop.totalGlobalMem / 1073741824.0,
              prop.memoryBusWidth, mem_khz / 1000, peak_gbs);

  cudaStream_t stream;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  std::vector<std::pair<std::string, std::pair<double, const char*>>> results;

  {  // device-to-device copy
    std::size_t free_b = 0, total_b = 0;
    check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    std::size_t bytes = std::min(copy_mib << 20, free_b / 4);
    void *src = nullptr, *dst = nullptr;
    check(cudaMalloc(&src, bytes), "cudaMalloc");
    check(cudaMalloc(&dst, bytes), "cudaMalloc");
    check(cudaMemsetAsync(src, 0x5A, bytes, stream), "cudaMemset");
    double ms = time_ms(stream, 3, 20, [&] {
      check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream), "cudaMemcpyAsync");
    });
    double gbs = 2.0 * bytes / (ms * 1e-3) / 1e9;
    std::printf("d2d copy: %.0f MiB in %.3f ms = %.0f GB/s (read + written)%s\n", bytes / 1048576.0, ms, gbs,
                peak_gbs > 0 ? (" = " + std::to_string(static_cast<int>(100 * gbs / peak_gbs)) + "% of nominal").c_str()
                             : "");
    results.push_back({"hbm_copy_bandwidth", {gbs, "GB/s"}});
    cudaFree(src);
    cudaFree(dst);
  }
  for (auto [type, name, reps] : {std::tuple{GemmRunner::Type::f32, "sgemm_fp32", 5},
                                  std::tuple{GemmRunner::Type::bf16, "gemm_bf16", 20}}) {
    GemmRunner gemm;
    if (std::string err = gemm.init(n, type, stream); !err.empty()) die(err);
    std::string err;
    double ms = time_ms(stream, 3, reps, [&] {
      if (err.empty()) err = gemm.run(1);
    });
    if (!err.empty()) die(err);
    double tflops = gemm.flops_per_gemm() / (ms * 1e-3) / 1e12;
    std::printf("%s: %d x %d x %d in %.3f ms = %.1f TFLOP/s\n", name, n, n, n, ms, tflops);
    results.push_back({name, {tflops, "TFLOP/s"}});
  }
  for (auto& [name, v] : results) std::printf("RESULT %s %.1f %s\n", name.c_str(), v.first, v.second);

  if (!json_path.empty()) {
    FILE* f = std::fopen(json_path.c_str(), "w");
    if (!f) die("cannot write " + json_path + ": " + std::strerror(errno));
    std::fprintf(f, "{\"device\": \"%s\", \"sm\": \"%d%d\", \"gemm_n\": %d", prop.name, prop.major, prop.minor, n);
    for (auto& [name, v] : results) std::fprintf(f, ", \"%s\": %.3f", name.c_str(), v.first);
    std::fprintf(f, "}\n");
    std::fclose(f);
  }
  cudaStreamDestroy(stream);
  return 0;
}
