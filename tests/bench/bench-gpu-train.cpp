/* bench-gpu-train: training throughput of a llama-shaped model on the GPU (DeviceTrainer, BF16 mixed
 * precision), full fine-tuning and LoRA, against the GPU's own limits: issue 6's targets "full
 * fine-tuning in BF16 of a 350M-1B model at >= 40% model-FLOPs utilization" and "LoRA tokens/s >= 1.5x
 * transformers + PEFT" (the reference is tests/bench/peft_train_bench.py, run by tests/gpu/run.sh with the
 * same shape, batch and sequence length). A benchmark program, never a test.
 *
 *   bench-gpu-train [--method full|lora|both] [--layers 24 --embd 1024 --heads 16 --kv-heads 16 --ff 2816
 *                   --vocab 32000] [--batch 8 --seq 512] [--warmup 3 --steps 10 --min-seconds 2]
 *                   [--rank 16] [--precision bf16|f32] [--base-type BF16] [--gpu 0] [--dir DIR]
 *                   [--peak-tflops X] [--json FILE] [--skip-device-check]
 *
 * One optimizer step = zero_grad + forward_backward + clip_grad_norm(1.0) + adamw_step, timed as wall
 * time between two cudaDeviceSynchronize calls; the figure is the mean over the timed steps (at least
 * --steps of them, and more until --min-seconds have passed, so NVML's energy counter sees a useful
 * window), after --warmup untimed steps. tokens/s = B·T / mean step time (every position processed).
 *
 * Model FLOPs per token (PaLM's appendix B convention; attention counted over all T positions as if not
 * causal, as PaLM and nanoGPT do):
 *   N      = parameters in matrix products: per layer q, k, v, o, gate, up, down, plus the output matrix
 *            (the input embedding is a lookup, the norms are negligible);
 *   attn   = 12 · n_layer · T · (n_head · head_dim)       (QKᵀ and AV: 2 · 2 · T · d forward, ×3 with backward)
 *   full   = 6 · N + attn                                   (forward 2N, input gradients 2N, weight gradients 2N)
 *   LoRA   = 4 · N + 6 · N_lora + attn                      (the frozen weights need no weight gradients;
 *            N_lora = rank · (in + out) summed over the adapted matrices); "mfu_6n" also reports LoRA
 *            under the full formula, the convention many LoRA reports use.
 *   MFU    = tokens/s · FLOPs per token / peak, against both the cuBLAS BF16 GEMM rate measured here
 *            (8192³, BF16 in and out, F32 accumulation, random data: tests/gpu/gpu-gemm.h) and the card's
 *            datasheet dense BF16 rate (a small table by device name; --peak-tflops overrides it).
 *
 * Memory: DeviceTrainer::device_bytes(), and the device memory in use (total − free from cudaMemGetInfo,
 * so including the CUDA context and cuBLAS workspaces, like PyTorch's torch.cuda.mem_get_info), the
 * highest of samples after create, after the warm-up and after the timed steps. Energy: the difference
 * of NVML's total-energy counter of GPU --gpu over the timed window, ÷ tokens (the whole board's energy,
 * idle power included; assumes NVML and CUDA number the GPUs alike: set CUDA_DEVICE_ORDER=PCI_BUS_ID).
 *
 * Output: a markdown table, then `RESULT <name> <value> <unit>` lines that tests/gpu/run.sh collects;
 * --json FILE writes the same figures. When CUDA training is unavailable (no GPU, the DeviceTrainer
 * placeholder, out of memory) it prints one line `bench-gpu-train: ...` on stderr and exits 1.
 *
 * Non-obvious choice: the LoRA base is a real GGUF file (random weights, BF16 matrices by default, the
 * frozen base precision PEFT users load) written once to --dir and reused, because LoRA trains over an
 * opened engine Model; full fine-tuning starts from fresh random weights (create_from_scratch, method
 * pretrain: every weight trainable, F32 master weights), the same arithmetic as fine-tuning a loaded model.
 */
#include <cuda_runtime.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "device-trainer.h"
#include "gpu-gemm.h"
#include "hearth/model-writer.h"
#include "hearth/model.h"
#include "hearth/telemetry/nvml.h"
#include "hearth/trainer/optim.h"
#include "hearth/trainer/train-model.h"

namespace {

using namespace hearth;
using namespace hearth::train;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "bench-gpu-train: %s\n", msg.c_str());
  std::exit(1);
}

double secs_since(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

struct Args {
  std::map<std::string, int64_t> n = {{"layers", 24}, {"embd", 1024}, {"heads", 16}, {"kv-heads", 0},
                                      {"ff", 2816},   {"vocab", 32000}, {"batch", 8}, {"seq", 512},
                                      {"warmup", 3},  {"steps", 10},   {"rank", 16}, {"seed", 1},
                                      {"gpu", 0},     {"gemm-n", 8192}};
  double min_seconds = 2.0;
  double peak_tflops = 0;  // 0: the datasheet table
  double lr = 1e-4;
  std::string method = "both";
  std::string precision = "bf16";
  std::string base_type = "BF16";
  std::string dir = (fs::temp_directory_path() / "hearth-bench-gpu-train").string();
  std::string json;
  bool skip_device_check = false;
};

[[noreturn]] void usage() {
  die("usage: bench-gpu-train [--method full|lora|both] [--layers N --embd N --heads N --kv-heads N --ff N "
      "--vocab N] [--batch N --seq N] [--warmup N --steps N --min-seconds S] [--rank N] [--precision bf16|f32] "
      "[--base-type BF16|F16|F32|Q8_0|...] [--gpu N] [--gemm-n N] [--seed N] [--lr X] [--dir DIR] "
      "[--peak-tflops X] [--json FILE] [--skip-device-check]");
}

ModelParams shape(const Args& a) {
  ModelParams p;
  p.arch = Architecture::llama;
  p.n_layer = a.n.at("layers");
  p.n_embd = a.n.at("embd");
  p.n_head = a.n.at("heads");
  p.n_head_kv = a.n.at("kv-heads") > 0 ? a.n.at("kv-heads") : p.n_head;
  p.head_dim = p.n_head > 0 ? p.n_embd / p.n_head : 0;
  p.n_ff = a.n.at("ff");
  p.n_vocab = a.n.at("vocab");
  p.n_ctx_train = std::max<int64_t>(a.n.at("seq"), 2048);
  return p;
}

// Dense (no sparsity) BF16 tensor-core TFLOP/s from NVIDIA's datasheets; the first name fragment that
// the device name contains wins, so the more specific names come first. 0: unknown card.
double datasheet_bf16_tflops(const std::string& name) {
  static const std::pair<const char*, double> TABLE[] = {
      {"H200 NVL", 835.5}, {"H200", 989.5}, {"GH200", 989.5}, {"H100 NVL", 835.5}, {"H100 PCIe", 756.5},
      {"H100", 989.5},     {"H800", 989.5}, {"B200", 2250.0}, {"A100", 312.0},     {"L40S", 362.1},
  };
  for (const auto& [frag, tf] : TABLE)
    if (name.find(frag) != std::string::npos) return tf;
  return 0;
}

struct Flops {
  int64_t n_params = 0;  // every weight, embeddings included
  int64_t n_matmul = 0;  // weights in matrix products (per-layer projections + output matrix)
  int64_t n_lora = 0;    // LoRA factor values over the 7 projections at `rank`
  double attn = 0;       // per token
  double full() const { return 6.0 * double(n_matmul) + attn; }
  double lora() const { return 4.0 * double(n_matmul) + 6.0 * double(n_lora) + attn; }
};

Flops count_flops(const ModelParams& p, int64_t T, int64_t rank) {
  Flops f;
  const int64_t d = p.n_embd, q = p.n_head * p.head_dim, kv = p.n_head_kv * p.head_dim, ff = p.n_ff;
  const int64_t per_layer = d * q + 2 * d * kv + q * d + 3 * d * ff;
  f.n_matmul = p.n_layer * per_layer + d * p.n_vocab;
  f.n_params = p.n_layer * (per_layer + 2 * d) + d + d * p.n_vocab * (p.tied_embeddings ? 1 : 2);
  f.n_lora = p.n_layer * rank * ((d + q) + 2 * (d + kv) + (q + d) + 2 * (d + ff) + (ff + d));
  f.attn = 12.0 * double(p.n_layer) * double(T) * double(q);
  return f;
}

struct DeviceInfo {
  std::string name = "(device check skipped)";
  uint64_t total_bytes = 0;
};

// Bytes of device memory in use now (all processes on the GPU, this one's context included).
uint64_t device_used() {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return 0;
  return uint64_t(total_b - free_b);
}

// Measured cuBLAS BF16 GEMM rate (TFLOP/s): mean of 20 n³ GEMMs after 3 warm-ups, CUDA events.
double measure_gemm_bf16(int n) {
  using hearth::gpu_test::GemmRunner;
  cudaStream_t stream = nullptr;
  if (cudaError_t e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking); e != cudaSuccess)
    die(hearth::gpu_test::cuda_message("cudaStreamCreate", e));
  double tflops = 0;
  {
    GemmRunner gemm;
    if (std::string err = gemm.init(n, GemmRunner::Type::bf16, stream); !err.empty()) die("GEMM peak: " + err);
    if (std::string err = gemm.run(3); !err.empty()) die("GEMM peak: " + err);
    cudaEvent_t a = nullptr, b = nullptr;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    cudaEventRecord(a, stream);
    const int reps = 20;
    if (std::string err = gemm.run(reps); !err.empty()) die("GEMM peak: " + err);
    cudaEventRecord(b, stream);
    if (cudaError_t e = cudaEventSynchronize(b); e != cudaSuccess)
      die(hearth::gpu_test::cuda_message("GEMM peak", e));
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    tflops = ms > 0 ? gemm.flops_per_gemm() * reps / (double(ms) * 1e-3) / 1e12 : 0;
  }
  cudaStreamDestroy(stream);
  return tflops;
}

// The LoRA base for this shape, written once (random weights, matrices in `type`) and reused.
fs::path lora_base(const Args& a, const ModelParams& p, GgmlType type) {
  char name[256];
  std::snprintf(name, sizeof name, "base-llama-L%lld-d%lld-h%lld-kv%lld-ff%lld-v%lld-%s-s%lld.gguf",
                (long long)p.n_layer, (long long)p.n_embd, (long long)p.n_head, (long long)p.n_head_kv,
                (long long)p.n_ff, (long long)p.n_vocab, type_name(type), (long long)a.n.at("seed"));
  const fs::path path = fs::path(a.dir) / name;
  std::error_code ec;
  if (fs::exists(path, ec)) return path;
  fs::create_directories(a.dir, ec);
  if (ec) die("cannot create " + a.dir + ": " + ec.message());
  const auto t0 = Clock::now();
  auto w = make_random_weights(p, uint64_t(a.n.at("seed")));
  if (!w) die("random base weights: " + w.error().to_string());
  GgufWriteOptions opt;
  opt.type = type;
  opt.name = "bench-gpu-train base";
  const fs::path tmp = path.string() + ".tmp" + std::to_string(getpid());
  if (auto ok = write_gguf_model(*w, tmp, opt); !ok) {
    fs::remove(tmp, ec);
    die("writing the LoRA base " + tmp.string() + ": " + ok.error().to_string());
  }
  fs::rename(tmp, path, ec);
  if (ec) die("renaming " + tmp.string() + ": " + ec.message());
  std::fprintf(stderr, "bench-gpu-train: wrote the LoRA base %s in %.1f s\n", path.c_str(), secs_since(t0));
  return path;
}

struct Row {
  std::string method;
  int64_t trainable = 0;
  int64_t timed_steps = 0;
  double step_ms = 0, step_ms_min = 0, step_ms_max = 0;
  double tokens_per_s = 0;
  double flops_per_token = 0, flops_6n = 0;
  double tflops = 0, mfu_measured = 0, mfu_datasheet = 0, mfu_6n = 0;
  double trainer_mib = 0, used_mib = 0, taken_mib = 0;
  std::optional<double> joules_per_token;
  double loss_first = 0, loss_last = 0;
  double host_setup_s = 0, create_s = 0;
  std::string description;
  std::string error;
};

std::optional<double> nvml_energy(telemetry::NvmlSensor* nvml, int gpu) {
  if (!nvml || !nvml->available()) return std::nullopt;
  const std::string channel = "gpu" + std::to_string(gpu);
  static const auto t0 = Clock::now();  // the sensor expects increasing times for its averages
  for (const auto& r : nvml->read(secs_since(t0)))
    if (r.channel == channel && r.energyJoules) return *r.energyJoules;
  return std::nullopt;
}

// One method, start to end. Errors come back in Row::error (one line).
Row run_method(const Args& a, const std::string& method, const ModelParams& p, double peak_measured,
               double peak_datasheet, telemetry::NvmlSensor* nvml) {
  Row row;
  row.method = method;
  const int64_t B = a.n.at("batch"), T = a.n.at("seq"), rank = a.n.at("rank");
  const int gpu = int(a.n.at("gpu"));
  const Flops fl = count_flops(p, T, rank);
  row.flops_per_token = method == "lora" ? fl.lora() : fl.full();
  row.flops_6n = fl.full();

  // Host side: the TrainModel (and for LoRA its base Model, which must outlive it).
  auto t0 = Clock::now();
  ModelOptions mo;
  mo.seed = uint64_t(a.n.at("seed"));
  std::unique_ptr<Model> base;
  std::unique_ptr<TrainModel> model;
  if (method == "lora") {
    auto type = type_from_name(a.base_type);
    if (!type) {
      row.error = "unknown --base-type " + a.base_type;
      return row;
    }
    const fs::path file = lora_base(a, p, *type);
    auto m = open_model(file);
    if (!m) {
      row.error = "opening the LoRA base: " + m.error().to_string();
      return row;
    }
    base = std::make_unique<Model>(std::move(*m));
    mo.method = Method::lora;
    mo.lora.rank = rank;
    mo.lora.alpha = float(2 * rank);
    auto t = TrainModel::create(*base, mo);
    if (!t) {
      row.error = "TrainModel::create (lora): " + t.error().to_string();
      return row;
    }
    model = std::move(*t);
  } else {
    mo.method = Method::pretrain;
    auto t = TrainModel::create_from_scratch(p, mo);
    if (!t) {
      row.error = "TrainModel::create_from_scratch: " + t.error().to_string();
      return row;
    }
    model = std::move(*t);
  }
  row.trainable = model->n_trainable();
  row.host_setup_s = secs_since(t0);

  const uint64_t used_before = a.skip_device_check ? 0 : device_used();
  t0 = Clock::now();
  DeviceTrainOptions dopt;
  dopt.gpu_index = gpu;
  dopt.precision = a.precision == "f32" ? TrainPrecision::f32 : TrainPrecision::bf16;
  auto dt = DeviceTrainer::create(*model, dopt, B, T);
  if (!dt) {
    row.error = "DeviceTrainer::create (" + method + "): " + dt.error().to_string();
    return row;
  }
  std::unique_ptr<DeviceTrainer> trainer = std::move(*dt);
  row.create_s = secs_since(t0);
  row.description = trainer->description();
  uint64_t used_max = a.skip_device_check ? 0 : device_used();

  std::mt19937_64 rng(uint64_t(a.n.at("seed")));
  std::vector<int32_t> tokens(size_t(B * T)), targets(size_t(B * T));
  for (auto& t : tokens) t = int32_t(rng() % uint64_t(p.n_vocab));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) targets[size_t(b * T + t)] = t + 1 < T ? tokens[size_t(b * T + t + 1)] : -1;

  const AdamWSettings settings{};
  int64_t t_step = 0;
  double loss = 0;
  auto step = [&]() -> std::string {
    if (auto r = trainer->zero_grad(); !r) return "zero_grad: " + r.error().to_string();
    auto r = trainer->forward_backward(tokens, targets, B, T);
    if (!r) return "forward_backward: " + r.error().to_string();
    loss = r->loss;
    if (auto n = trainer->clip_grad_norm(1.0); !n) return "clip_grad_norm: " + n.error().to_string();
    if (auto s = trainer->adamw_step(a.lr, settings, ++t_step); !s) return "adamw_step: " + s.error().to_string();
    return {};
  };
  auto sync = [&]() -> std::string {
    if (a.skip_device_check) return {};
    cudaError_t e = cudaDeviceSynchronize();
    return e == cudaSuccess ? std::string() : hearth::gpu_test::cuda_message("cudaDeviceSynchronize", e);
  };

  for (int64_t i = 0; i < a.n.at("warmup"); ++i) {
    if (std::string e = step(); !e.empty()) {
      row.error = "warm-up step " + std::to_string(i + 1) + ": " + e;
      return row;
    }
    if (i == 0) row.loss_first = loss;
  }
  if (std::string e = sync(); !e.empty()) {
    row.error = e;
    return row;
  }
  if (!a.skip_device_check) used_max = std::max(used_max, device_used());

  const std::optional<double> e0 = nvml_energy(nvml, gpu);
  std::vector<double> times;
  const auto t_window = Clock::now();
  while ((int64_t(times.size()) < a.n.at("steps") || secs_since(t_window) < a.min_seconds) && times.size() < 100000) {
    const auto ts = Clock::now();
    std::string e = step();
    if (e.empty()) e = sync();
    if (!e.empty()) {
      row.error = "timed step " + std::to_string(times.size() + 1) + ": " + e;
      return row;
    }
    times.push_back(secs_since(ts));
    if (a.n.at("warmup") == 0 && times.size() == 1) row.loss_first = loss;
  }
  const double window = secs_since(t_window);
  const std::optional<double> e1 = nvml_energy(nvml, gpu);
  if (!a.skip_device_check) used_max = std::max(used_max, device_used());
  row.loss_last = loss;
  if (!std::isfinite(loss)) {
    row.error = "the loss is not finite (" + std::to_string(loss) + ") after " + std::to_string(t_step) + " steps";
    return row;
  }

  row.timed_steps = int64_t(times.size());
  double total = 0;
  for (double t : times) total += t;
  const double mean = total / double(times.size());
  row.step_ms = 1e3 * mean;
  row.step_ms_min = 1e3 * *std::min_element(times.begin(), times.end());
  row.step_ms_max = 1e3 * *std::max_element(times.begin(), times.end());
  row.tokens_per_s = double(B * T) / mean;
  row.tflops = row.tokens_per_s * row.flops_per_token / 1e12;
  row.mfu_measured = peak_measured > 0 ? 100.0 * row.tflops / peak_measured : 0;
  row.mfu_datasheet = peak_datasheet > 0 ? 100.0 * row.tflops / peak_datasheet : 0;
  row.mfu_6n = peak_measured > 0 ? 100.0 * row.tokens_per_s * row.flops_6n / 1e12 / peak_measured : 0;
  row.trainer_mib = double(trainer->device_bytes()) / 1048576.0;
  row.used_mib = double(used_max) / 1048576.0;
  row.taken_mib = used_max > used_before ? double(used_max - used_before) / 1048576.0 : 0;
  if (e0 && e1 && *e1 > *e0) row.joules_per_token = (*e1 - *e0) / (double(B * T) * double(times.size()));
  std::fprintf(stderr,
               "bench-gpu-train: %s: host set-up %.1f s, DeviceTrainer::create %.1f s, %lld timed steps in %.2f s "
               "(step %.1f-%.1f ms)\n",
               method.c_str(), row.host_setup_s, row.create_s, (long long)row.timed_steps, window, row.step_ms_min,
               row.step_ms_max);
  return row;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--skip-device-check") {
      a.skip_device_check = true;
      continue;
    }
    if (k.rfind("--", 0) != 0 || i + 1 >= argc) usage();
    const std::string v = argv[++i];
    char* end = nullptr;
    if (k == "--method") a.method = v;
    else if (k == "--precision") a.precision = v;
    else if (k == "--base-type") a.base_type = v;
    else if (k == "--dir") a.dir = v;
    else if (k == "--json") a.json = v;
    else if (k == "--min-seconds" || k == "--peak-tflops" || k == "--lr") {
      const double x = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end || !(x >= 0)) die(k + " needs a number >= 0, got '" + v + "'");
      (k == "--min-seconds" ? a.min_seconds : k == "--lr" ? a.lr : a.peak_tflops) = x;
    } else if (a.n.count(k.substr(2))) {
      const long long x = std::strtoll(v.c_str(), &end, 10);
      if (end == v.c_str() || *end || x < 0) die(k + " needs a whole number >= 0, got '" + v + "'");
      a.n[k.substr(2)] = x;
    } else {
      usage();
    }
  }
  if (a.method != "full" && a.method != "lora" && a.method != "both") die("--method must be full, lora or both");
  if (a.precision != "bf16" && a.precision != "f32") die("--precision must be bf16 or f32");
  const ModelParams p = shape(a);
  for (const char* k : {"layers", "embd", "heads", "ff", "vocab", "batch", "seq", "steps", "rank"})
    if (a.n.at(k) < 1) die(std::string("--") + k + " must be at least 1");
  if (p.n_embd % p.n_head != 0 || p.head_dim % 2 != 0)
    die("--embd must be a multiple of --heads with an even head size");
  if (p.n_head % p.n_head_kv != 0) die("--heads must be a multiple of --kv-heads");
  if (a.n.at("gemm-n") < 256 || a.n.at("gemm-n") > 32768) die("--gemm-n must be 256..32768");
  std::vector<std::string> methods;
  if (a.method != "lora") methods.push_back("full");
  if (a.method != "full") methods.push_back("lora");
  const int gpu = int(a.n.at("gpu"));

  // The device, and whether this build can train on it at all: one line and exit 1 when not.
  DeviceInfo dev;
  double peak_measured = 0, peak_datasheet = a.peak_tflops;
  if (!a.skip_device_check) {
    int count = 0;
    if (cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess || count == 0)
      die(std::string("no CUDA device: ") + (e != cudaSuccess ? cudaGetErrorString(e) : "none found"));
    if (gpu >= count) die("--gpu " + std::to_string(gpu) + " but only " + std::to_string(count) + " CUDA device(s)");
    if (std::string why = cuda_training_unavailable(gpu); !why.empty()) die("CUDA training unavailable: " + why);
    if (cudaError_t e = cudaSetDevice(gpu); e != cudaSuccess) die(hearth::gpu_test::cuda_message("cudaSetDevice", e));
    cudaDeviceProp prop{};
    if (cudaError_t e = cudaGetDeviceProperties(&prop, gpu); e != cudaSuccess)
      die(hearth::gpu_test::cuda_message("cudaGetDeviceProperties", e));
    dev.name = prop.name;
    dev.total_bytes = prop.totalGlobalMem;
    if (peak_datasheet <= 0) peak_datasheet = datasheet_bf16_tflops(dev.name);
    peak_measured = measure_gemm_bf16(int(a.n.at("gemm-n")));
    std::printf("device: %s (GPU %d), sm_%d%d, %d SMs, %.1f GiB\n", prop.name, gpu, prop.major, prop.minor,
                prop.multiProcessorCount, double(prop.totalGlobalMem) / 1073741824.0);
  } else {
    std::printf("device: check skipped (--skip-device-check): only the host set-up and DeviceTrainer::create run\n");
  }
  const long long gn = (long long)a.n.at("gemm-n");
  char ds[96] = "unknown for this card (give --peak-tflops)";
  if (peak_datasheet > 0)
    std::snprintf(ds, sizeof ds, "%.1f TFLOP/s%s", peak_datasheet, a.peak_tflops > 0 ? " (--peak-tflops)" : "");
  std::printf("peak: cuBLAS BF16 GEMM %lld^3 measured %.1f TFLOP/s; datasheet dense BF16 %s\n", gn, peak_measured, ds);
  const Flops fl = count_flops(p, a.n.at("seq"), a.n.at("rank"));
  std::printf("model: llama %lld layers x %lld, %lld heads (%lld KV), ff %lld, vocab %lld: %.1f M parameters, "
              "%.1f M in matrix products; LoRA r=%lld alpha=%lld on q,k,v,o,gate,up,down (%.2f M), base %s\n",
              (long long)p.n_layer, (long long)p.n_embd, (long long)p.n_head, (long long)p.n_head_kv,
              (long long)p.n_ff, (long long)p.n_vocab, double(fl.n_params) / 1e6, double(fl.n_matmul) / 1e6,
              (long long)a.n.at("rank"), (long long)(2 * a.n.at("rank")), double(fl.n_lora) / 1e6,
              a.base_type.c_str());
  std::printf("batch %lld x seq %lld (tokens/s counts B*T), %s, AdamW lr %g, clip 1.0; %lld warm-up steps, then "
              ">= %lld steps and >= %.1f s\n",
              (long long)a.n.at("batch"), (long long)a.n.at("seq"),
              a.precision == "bf16" ? "BF16 mixed precision" : "F32", a.lr, (long long)a.n.at("warmup"),
              (long long)a.n.at("steps"), a.min_seconds);
  std::printf("FLOPs/token: full 6N + 12*L*T*d = %.3f G; LoRA 4N + 6N_lora + 12*L*T*d = %.3f G\n\n", fl.full() / 1e9,
              fl.lora() / 1e9);
  std::fflush(stdout);

  std::unique_ptr<telemetry::NvmlSensor> nvml;
  if (!a.skip_device_check) nvml = std::make_unique<telemetry::NvmlSensor>();

  std::vector<Row> rows;
  bool failed = false;
  for (const std::string& m : methods) {
    Row r = run_method(a, m, p, peak_measured, peak_datasheet, nvml.get());
    if (!r.error.empty()) {
      std::fprintf(stderr, "bench-gpu-train: %s\n", r.error.c_str());
      failed = true;
    }
    rows.push_back(std::move(r));
  }

  std::printf("| method | trainable | steps | ms/step | tokens/s | GFLOP/token | TFLOP/s | MFU (measured GEMM) | "
              "MFU (datasheet) | trainer MiB | in use MiB | J/token | loss first -> last |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
  for (const Row& r : rows) {
    if (!r.error.empty()) {
      std::printf("| %s | error: %s |\n", r.method.c_str(), r.error.c_str());
      continue;
    }
    char jpt[32] = "-", mfu_ds[32] = "-";
    if (r.joules_per_token) std::snprintf(jpt, sizeof jpt, "%.4f", *r.joules_per_token);
    if (peak_datasheet > 0) std::snprintf(mfu_ds, sizeof mfu_ds, "%.1f%%", r.mfu_datasheet);
    std::printf("| %s | %lld | %lld | %.1f | %.0f | %.3f | %.1f | %.1f%% | %s | %.0f | %.0f | %s | %.4f -> %.4f |\n",
                r.method.c_str(), (long long)r.trainable, (long long)r.timed_steps, r.step_ms, r.tokens_per_s,
                r.flops_per_token / 1e9, r.tflops, r.mfu_measured,
                mfu_ds,
                r.trainer_mib, r.used_mib, jpt, r.loss_first, r.loss_last);
  }
  std::printf("\n");
  for (const Row& r : rows)
    if (r.error.empty() && !r.description.empty()) std::printf("%s: %s\n", r.method.c_str(), r.description.c_str());

  // RESULT lines (tests/gpu/run.sh turns each into a summary row).
  std::printf("RESULT gemm_bf16 %.1f TFLOP/s\n", peak_measured);
  for (const Row& r : rows) {
    if (!r.error.empty()) continue;
    const char* m = r.method.c_str();
    std::printf("RESULT %s_tokens_per_s %.1f tok/s (B*T / step; %.1f ms/step over %lld steps)\n", m, r.tokens_per_s,
                r.step_ms, (long long)r.timed_steps);
    std::printf("RESULT %s_mfu %.1f %% of the measured BF16 GEMM rate (%.1f of %.1f TFLOP/s", m, r.mfu_measured,
                r.tflops, peak_measured);
    if (peak_datasheet > 0) std::printf("; %.1f %% of the datasheet %.1f", r.mfu_datasheet, peak_datasheet);
    std::printf(")\n");
    if (r.method == "lora")
      std::printf("RESULT lora_mfu_6n %.1f %% of the measured BF16 GEMM rate (LoRA counted as 6N + 12LTd)\n", r.mfu_6n);
    std::printf("RESULT %s_device_mib %.0f MiB in use on the GPU (trainer %.0f MiB, this run took %.0f MiB)\n", m,
                r.used_mib, r.trainer_mib, r.taken_mib);
    if (r.joules_per_token) std::printf("RESULT %s_joules_per_token %.4f J/token (NVML board energy)\n", m, *r.joules_per_token);
  }

  if (!a.json.empty()) {
    FILE* f = std::fopen(a.json.c_str(), "w");
    if (!f) die("cannot write " + a.json + ": " + std::strerror(errno));
    std::fprintf(f,
                 "{\"program\": \"bench-gpu-train\", \"device\": \"%s\", \"gemm_bf16_tflops\": %.3f, "
                 "\"datasheet_bf16_tflops\": %.1f, \"layers\": %lld, \"embd\": %lld, \"heads\": %lld, "
                 "\"kv_heads\": %lld, \"ff\": %lld, \"vocab\": %lld, \"batch\": %lld, \"seq\": %lld, \"rank\": %lld, "
                 "\"precision\": \"%s\", \"base_type\": \"%s\", \"n_params\": %lld, \"n_matmul\": %lld, "
                 "\"n_lora\": %lld, \"runs\": [",
                 json_escape(dev.name).c_str(), peak_measured, peak_datasheet, (long long)p.n_layer,
                 (long long)p.n_embd, (long long)p.n_head, (long long)p.n_head_kv, (long long)p.n_ff,
                 (long long)p.n_vocab, (long long)a.n.at("batch"), (long long)a.n.at("seq"),
                 (long long)a.n.at("rank"), a.precision.c_str(), json_escape(a.base_type).c_str(),
                 (long long)fl.n_params, (long long)fl.n_matmul, (long long)fl.n_lora);
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::fprintf(f, "%s{\"method\": \"%s\"", i ? ", " : "", r.method.c_str());
      if (!r.error.empty()) {
        std::fprintf(f, ", \"error\": \"%s\"}", json_escape(r.error).c_str());
        continue;
      }
      std::fprintf(f,
                   ", \"trainable\": %lld, \"timed_steps\": %lld, \"step_ms\": %.3f, \"step_ms_min\": %.3f, "
                   "\"step_ms_max\": %.3f, \"tokens_per_s\": %.2f, \"flops_per_token\": %.6g, \"tflops\": %.3f, "
                   "\"mfu_measured_pct\": %.3f, \"mfu_datasheet_pct\": %.3f, \"mfu_6n_pct\": %.3f, "
                   "\"trainer_mib\": %.1f, \"device_used_mib\": %.1f, \"device_taken_mib\": %.1f, "
                   "\"loss_first\": %.6f, \"loss_last\": %.6f, \"host_setup_s\": %.2f, \"create_s\": %.2f",
                   (long long)r.trainable, (long long)r.timed_steps, r.step_ms, r.step_ms_min, r.step_ms_max,
                   r.tokens_per_s, r.flops_per_token, r.tflops, r.mfu_measured, r.mfu_datasheet, r.mfu_6n,
                   r.trainer_mib, r.used_mib, r.taken_mib, r.loss_first, r.loss_last, r.host_setup_s, r.create_s);
      if (r.joules_per_token) std::fprintf(f, ", \"joules_per_token\": %.6f", *r.joules_per_token);
      std::fprintf(f, ", \"description\": \"%s\"}", json_escape(r.description).c_str());
    }
    std::fprintf(f, "]}\n");
    std::fclose(f);
  }
  return failed ? 1 : 0;
}
