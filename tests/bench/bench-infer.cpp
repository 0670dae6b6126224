/* bench-infer: inference speed against the machine's own limits. Measures the memory bandwidth
 * (STREAM-style triad), the peak F32 GEMM rate (OpenBLAS sgemm, when built with it), then writes
 * TinyLlama-shaped models with random weights (width 2048, 32 heads, 4 KV heads, feed-forward 5632,
 * vocabulary 32000; 22 layers unless --layers says fewer) in F16, Q8_0, Q4_0 and a Q4_K_M-style mix and
 * measures prompt processing (pp) and decoding (tg) as `hearth-cli bench` does. Prints a markdown table
 * with each figure, its bound and the ratio:
 *   decode bound = bandwidth / bytes read per token (every weight matrix once, plus the KV cache at the
 *                  average position of the run); on the CPU the highest of three triads (the run's start,
 *                  just before and just after that model's tg), since a shared VM's bandwidth drifts;
 *   prompt bound = GEMM peak / (2 × multiply-adds per token of the weight matrices).
 *
 *   bench-infer [--threads T] [--layers L] [-p 512] [-n 32] [--dir DIR] [--types F16,Q8_0,Q4_0,Q4_K_M]
 *               [--device cpu|cuda] [--json FILE]
 *
 * --device cuda (the bench-gpu-infer build, tests/gpu/gpu.cmake): the sessions run on GPU 0 and the
 * yardsticks are the GPU's, measured in this program: HBM bandwidth from a device-to-device copy (bytes
 * read + written) and the cuBLAS BF16 GEMM rate (8192^3, F32 accumulation); pp is the mean of three
 * runs after a warm-up. Each figure is also printed as `RESULT <name> <value> <unit>` for
 * tests/gpu/run.sh, and --json FILE writes them.
 *
 * A benchmark program, never a test. Non-obvious choice: the models are written to --dir (default
 * /tmp/hearth-bench-infer) and reused when present, since writing 1.1B random weights takes minutes.
 */
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "hearth/inference.h"
#include "hearth/model-writer.h"

#ifdef HEARTH_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif
#ifdef HEARTH_BENCH_GPU
#include "gpu-gemm.h"
#endif

#ifdef HEARTH_BENCH_OPENBLAS
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
#endif

using namespace hearth;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

double triad_gbs(int threads) {
  const size_t N = size_t(1) << 26;  // 64M floats: 256 MiB per array
  std::vector<float> a(N), b(N, 1.0f), c(N, 2.0f);
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = Clock::now();
    std::vector<std::thread> th;
    for (int t = 0; t < threads; ++t)
      th.emplace_back([&, t] {
        size_t s = N * size_t(t) / size_t(threads), e = N * size_t(t + 1) / size_t(threads);
        for (size_t i = s; i < e; ++i) a[i] = b[i] + 3.0f * c[i];
      });
    for (auto& x : th) x.join();
    best = std::min(best, secs(t0));
  }
  if (a[N / 2] != 7.0f) std::fprintf(stderr, "triad check failed\n");
  return 3.0 * double(N) * 4 / best / 1e9;
}

double sgemm_gflops(int threads) {
#ifdef HEARTH_BENCH_OPENBLAS
  openblas_set_num_threads(threads);
  const int M = 2048, N = 2048, K = 2048;
  std::vector<float> A(size_t(M) * K, 0.5f), B(size_t(K) * N, 0.25f), C(size_t(M) * N);
  double best = 1e30;
  for (int rep = 0; rep < 4; ++rep) {
    auto t0 = Clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C.data(), N);
    best = std::min(best, secs(t0));
  }
  return 2.0 * M * N * K / best / 1e9;
#else
  (void)threads;
  return 0;
#endif
}

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string k;
  while (f >> k) {
    if (k == "VmRSS:") {
      long v;
      f >> v;
      return v;
    }
  }
  return 0;
}

#ifdef HEARTH_HAVE_CUDA
// GB/s of a device-to-device copy of 1 GiB (read + written), mean of 20 after 3 warm-ups; 0 on failure.
double gpu_copy_gbs() {
  const size_t bytes = size_t(1) << 30;
  void *src = nullptr, *dst = nullptr;
  if (cudaMalloc(&src, bytes) != cudaSuccess || cudaMalloc(&dst, bytes) != cudaSuccess) {
    cudaGetLastError();
    if (src) cudaFree(src);
    return 0;
  }
  cudaMemset(src, 0x5A, bytes);
  for (int i = 0; i < 3; ++i) cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  cudaEventRecord(a);
  for (int i = 0; i < 20; ++i) cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice);
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaFree(src);
  cudaFree(dst);
  bool ok = cudaGetLastError() == cudaSuccess && ms > 0;
  return ok ? 2.0 * double(bytes) * 20 / (double(ms) * 1e-3) / 1e9 : 0;
}

// GFLOP/s of cuBLAS BF16 GEMMs (8192^3, F32 accumulation), mean of 20 after 3 warm-ups; 0 when this
// build has no cuBLAS (only bench-gpu-infer links it).
double gpu_bf16_gemm_gflops() {
#ifdef HEARTH_BENCH_GPU
  cudaStream_t stream;
  if (cudaStreamCreate(&stream) != cudaSuccess) return 0;
  double r = 0;
  {
    hearth::gpu_test::GemmRunner gemm;
    if (gemm.init(8192, hearth::gpu_test::GemmRunner::Type::bf16, stream).empty() && gemm.run(3).empty()) {
      cudaEvent_t a, b;
      cudaEventCreate(&a);
      cudaEventCreate(&b);
      cudaEventRecord(a, stream);
      bool ok = gemm.run(20).empty();
      cudaEventRecord(b, stream);
      cudaEventSynchronize(b);
      float ms = 0;
      cudaEventElapsedTime(&ms, a, b);
      cudaEventDestroy(a);
      cudaEventDestroy(b);
      if (ok && ms > 0) r = gemm.flops_per_gemm() * 20 / (double(ms) * 1e-3) / 1e9;
    }
  }
  cudaStreamDestroy(stream);
  return r;
#else
  return 0;
#endif
}
#endif

}  // namespace

int main(int argc, char** argv) {
  int threads = int(std::thread::hardware_concurrency());
  int64_t layers = 22, np = 512, ng = 32;
  std::string dir = "/tmp/hearth-bench-infer", types = "F16,Q8_0,Q4_0,Q4_K_M", device = "cpu", json_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--threads") threads = std::stoi(v);
    else if (a == "--layers") layers = std::stoll(v);
    else if (a == "-p") np = std::stoll(v);
    else if (a == "-n") ng = std::stoll(v);
    else if (a == "--dir") dir = v;
    else if (a == "--types") types = v;
    else if (a == "--device") device = v;
    else if (a == "--json") json_path = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (device != "cpu" && device != "cuda") {
    std::fprintf(stderr, "--device must be cpu or cuda, got %s\n", device.c_str());
    return 2;
  }
  const bool gpu = device == "cuda";
  std::filesystem::create_directories(dir);
  double bw = 0, peak = 0;
  std::string gpu_name;
  if (!gpu) {
    bw = triad_gbs(threads);
    peak = sgemm_gflops(threads);
    std::printf("threads: %d, triad bandwidth: %.2f GB/s, sgemm peak: %.1f GFLOP/s%s\n\n", threads, bw, peak,
                peak > 0 ? "" : " (built without OpenBLAS)");
  } else {
#ifdef HEARTH_HAVE_CUDA
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
      std::fprintf(stderr, "--device cuda: no GPU (%s)\n", cudaGetErrorString(cudaGetLastError()));
      return 1;
    }
    gpu_name = prop.name;
    bw = gpu_copy_gbs();
    peak = gpu_bf16_gemm_gflops();
    std::printf("GPU: %s, d2d copy bandwidth: %.0f GB/s, cuBLAS BF16 GEMM: %.1f TFLOP/s%s\n\n", prop.name, bw,
                peak / 1e3, peak > 0 ? "" : " (not measured: build bench-gpu-infer)");
#else
    std::fprintf(stderr, "--device cuda: this build has no CUDA\n");
    return 1;
#endif
  }
  struct Row {
    std::string name, unit;
    double value;
  };
  std::vector<Row> results;
  if (gpu) {
    results.push_back({"hbm_copy_bandwidth", "GB/s", bw});
    if (peak > 0) results.push_back({"gemm_bf16", "TFLOP/s", peak / 1e3});
  }

  ModelParams p = tiny_params(Architecture::llama, 2048, layers, 32000);
  p.n_head = 32;
  p.n_head_kv = 4;
  p.head_dim = 64;
  p.n_ff = 5632;
  p.n_ctx_train = 2048;
  std::optional<ModelWeights> w;

  std::printf("| type | layers | file MiB | test | tokens/s | bound | ratio |\n|---|---|---|---|---|---|---|\n");
  size_t pos = 0;
  while (pos < types.size()) {
    size_t comma = types.find(',', pos);
    std::string t = types.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? types.size() : comma + 1;
    auto path = std::filesystem::path(dir) / ("tinyllama-shape-" + std::to_string(layers) + "L-" + t + ".gguf");
    if (!std::filesystem::exists(path)) {
      if (!w) {
        auto r = make_random_weights(p, 1);
        if (!r) return std::fprintf(stderr, "%s\n", r.error().to_string().c_str()), 1;
        w = std::move(*r);
      }
      GgufWriteOptions o;
      if (t == "Q4_K_M") o.q4_k_m_mix = true;
      else o.type = *type_from_name(t);
      auto r = write_gguf_model(*w, path, o);
      if (!r) return std::fprintf(stderr, "%s\n", r.error().to_string().c_str()), 1;
    }
    long rss0 = rss_kib();
    auto m = open_model(path);
    if (!m) return std::fprintf(stderr, "%s\n", m.error().to_string().c_str()), 1;
    InferenceOptions io;
    io.n_threads = threads;
    io.n_ctx = np + ng + 1;
    if (gpu) io.device = InferenceOptions::Device::cuda;
    auto s = InferenceSession::create(*m, io);
    if (!s) return std::fprintf(stderr, "%s\n", s.error().to_string().c_str()), 1;
    if (gpu && (*s)->backend() == "cpu") {
      std::fprintf(stderr, "%s: the GPU did not serve: %s\n", t.c_str(), (*s)->backend_note().c_str());
      return 1;
    }
    const ModelDesc& d = m->desc();
    uint64_t mat_bytes = 0;
    int64_t mat_params = 0;
    for (const auto& L : d.layers)
      for (const TensorRef* tr : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down})
        mat_bytes += tr->nbytes, mat_params += tr->n_elements();
    mat_bytes += d.output_weight().nbytes;
    mat_params += d.output_weight().n_elements();
    std::mt19937 rng(1);
    std::vector<TokenId> toks(size_t(std::max(np, ng)));
    for (auto& x : toks) x = TokenId(rng() % 32000);
    std::vector<float> logits;
    // pp
    double pp = 0;
    if (np > 0) {
      // The GPU: one warm-up (cuBLAS picks its kernels, modules load), then the mean of three runs.
      const int warm = gpu ? 1 : 0, reps = gpu ? 3 : 1;
      double total = 0;
      for (int r = 0; r < warm + reps; ++r) {
        (*s)->reset();
        auto t0 = Clock::now();
        if (!(*s)->eval(std::span<const TokenId>(toks).first(size_t(np)), &logits)) return 1;
        if (r >= warm) total += secs(t0);
      }
      pp = double(np) * reps / total;
    }
    // tg (one warm-up token first). On the CPU the bandwidth is measured again just before and just after
    // (a shared VM's bandwidth drifts by 2x within a minute), and the higher of the three gives the bound.
    double tg_bw = bw;
    if (!gpu) tg_bw = std::max(tg_bw, triad_gbs(threads));
    (*s)->reset();
    if (!(*s)->eval(std::span<const TokenId>(toks).first(1), &logits)) return 1;
    auto t0 = Clock::now();
    for (int64_t i = 1; i <= ng; ++i)
      if (!(*s)->eval(std::span<const TokenId>(toks).subspan(size_t(i % int64_t(toks.size())), 1), &logits)) return 1;
    double tg = double(ng) / secs(t0);
    if (!gpu) {
      tg_bw = std::max(tg_bw, triad_gbs(threads));
      std::fprintf(stderr, "%s: tg bound from %.2f GB/s (the highest triad of the run's start, before and after tg)\n",
                   t.c_str(), tg_bw);
    }
    double kv_bytes = 2.0 * double(layers) * (double(ng) / 2 + 1) * double(p.n_head_kv * p.head_dim) * 2;
    double tg_bound = tg_bw * 1e9 / (double(mat_bytes) + kv_bytes);
    double pp_bound = peak > 0 ? peak * 1e9 / (2.0 * double(mat_params)) : 0;
    if (gpu) {
      char unit[96];
      if (np > 0) {
        std::snprintf(unit, sizeof unit, "tok/s, %.2f of the BF16 GEMM bound %.0f", pp_bound > 0 ? pp / pp_bound : 0.0,
                      pp_bound);
        results.push_back({"pp" + std::to_string(np) + "_" + t, unit, pp});
      }
      std::snprintf(unit, sizeof unit, "tok/s, %.2f of the HBM bound %.0f", tg / tg_bound, tg_bound);
      results.push_back({"tg" + std::to_string(ng) + "_" + t, unit, tg});
    }
    long rss = rss_kib() - rss0;
    double mib = double(d.file_size) / (1 << 20);
    if (np > 0)
      std::printf("| %s | %lld | %.0f | pp%lld | %.2f | %.2f | %.2f |\n", t.c_str(), (long long)layers, mib, (long long)np,
                  pp, pp_bound, pp_bound > 0 ? pp / pp_bound : 0.0);
    std::printf("| %s | %lld | %.0f | tg%lld | %.2f | %.2f | %.2f |\n", t.c_str(), (long long)layers, mib, (long long)ng, tg,
                tg_bound, tg / tg_bound);
    std::fprintf(stderr, "%s: resident growth %.0f MiB (file %.0f MiB, KV %.1f MiB)\n", t.c_str(), double(rss) / 1024, mib,
                 double((*s)->kv_bytes()) / (1 << 20));
    std::fflush(stdout);
  }
  for (const Row& r : results) std::printf("RESULT %s %.2f %s\n", r.name.c_str(), r.value, r.unit.c_str());
  if (!json_path.empty()) {
    FILE* f = std::fopen(json_path.c_str(), "w");
    if (!f) return std::fprintf(stderr, "cannot write %s\n", json_path.c_str()), 1;
    std::fprintf(f, "{\"device\": \"%s\", \"layers\": %lld", gpu ? gpu_name.c_str() : "cpu", (long long)layers);
    for (const Row& r : results) std::fprintf(f, ", \"%s\": %.3f", r.name.c_str(), r.value);
    std::fprintf(f, "}\n");
    std::fclose(f);
  }
  return 0;
}
