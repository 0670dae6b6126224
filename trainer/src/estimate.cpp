/* Memory and time estimates: see estimate.h.
 *
 * Non-obvious choice: the gemm probe uses ops.h's gemm() (the very product the training steps use,
 * spread over the trainer's threads), so the rate reflects this machine's BLAS and thread count.
 */
#include "hearth/trainer/estimate.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ops.h"

namespace hearth::train {

int64_t count_trainable(const ModelParams& p, int64_t n_params, Method method, const LoraSettings& lora) {
  if (method != Method::lora) return n_params;
  const int64_t hd = p.head_dim > 0 ? p.head_dim : (p.n_head > 0 ? p.n_embd / p.n_head : 0);
  const int64_t q_out = p.n_head * hd, kv_out = p.n_head_kv * hd;
  int64_t per_layer = 0;
  for (const std::string& t : lora.targets) {
    int64_t in = 0, out = 0;
    if (t == "q") in = p.n_embd, out = q_out;
    else if (t == "k" || t == "v") in = p.n_embd, out = kv_out;
    else if (t == "o") in = q_out, out = p.n_embd;
    else if (t == "gate" || t == "up") in = p.n_embd, out = p.n_ff;
    else if (t == "down") in = p.n_ff, out = p.n_embd;
    per_layer += lora.rank * (in + out);
  }
  return per_layer * p.n_layer;
}

namespace {

constexpr uint64_t GPU_OVERHEAD_ALLOWANCE = 600ull << 20;  // as engine/src/gpu-estimate.cpp

// Values (not bytes) of the activations kept for backward, and of the logits chunk.
struct ActivationValues {
  uint64_t kept = 0;
  uint64_t logits = 0;
};

ActivationValues activation_values(const ModelParams& p, const TrainConfig& c) {
  const uint64_t B = uint64_t(std::max<int64_t>(1, c.training.batch_size));
  const uint64_t T = uint64_t(std::max<int64_t>(1, c.data.max_length));
  const uint64_t per_token_layer = 8 * uint64_t(p.n_embd) + 3 * uint64_t(p.n_ff) + uint64_t(p.n_head) * T;
  const uint64_t layers = uint64_t(std::max<int64_t>(1, p.n_layer));
  const uint64_t all = layers * per_token_layer;
  const uint64_t kept = c.training.recompute ? std::min(all, layers * uint64_t(p.n_embd) + per_token_layer) : all;
  const uint64_t logits = std::min<uint64_t>(B * T, 1024) * uint64_t(std::max<int64_t>(1, p.n_vocab));
  return {B * T * kept, logits};
}

}  // namespace

MemoryEstimate estimate_memory(const ModelParams& p, int64_t n_params, uint64_t base_file_bytes,
                               const TrainConfig& c) {
  MemoryEstimate m;
  m.trainable_params = count_trainable(p, n_params, c.method, c.lora);
  m.base_weights = base_file_bytes;
  const uint64_t n = uint64_t(std::max<int64_t>(0, m.trainable_params));
  m.parameters = 4 * n;
  m.gradients = 4 * n;
  m.optimizer = 8 * n;
  const ActivationValues a = activation_values(p, c);
  m.activations = 4 * (a.kept + a.logits);
  m.total = m.base_weights + m.parameters + m.gradients + m.optimizer + m.activations;
  return m;
}

namespace {


// The device trainer's activation and working memory (device-trainer.cpp plan(), device-attention.cpp's
// scratch) for micro-batches of B × T: kept activations of every layer in F32 (attention probabilities
// included), the backward's working buffers, BF16 operand staging, the classifier's logits chunk and the
// attention scratch. Rounding per buffer is ignored (it is below 256 bytes per buffer).
uint64_t gpu_activation_bytes(const ModelParams& p, const TrainConfig& c, bool bf16) {
  const uint64_t B = uint64_t(std::max<int64_t>(1, c.training.batch_size));
  const uint64_t T = uint64_t(std::max<int64_t>(1, c.data.max_length));
  const uint64_t N = B * T, L = uint64_t(std::max<int64_t>(1, p.n_layer));
  const uint64_t D = uint64_t(p.n_embd), F = uint64_t(p.n_ff), V = uint64_t(std::max<int64_t>(1, p.n_vocab));
  const uint64_t hd = uint64_t(p.head_dim > 0 ? p.head_dim : (p.n_head > 0 ? p.n_embd / p.n_head : 0));
  const uint64_t Hq = uint64_t(p.n_head), Hkv = uint64_t(p.n_head_kv), Q = Hq * hd, K = Hkv * hd;
  const bool lora = c.method == Method::lora;
  const uint64_t R = lora ? uint64_t(std::max<int64_t>(1, c.lora.rank)) : 1;
  const uint64_t n_targets = lora ? c.lora.targets.size() : 0;
  const uint64_t W = std::max({D, Q, K, F, R});
  const bool qk = p.has_qk_norm;

  // Kept per layer (F32 values): norms' 1/rms, q/k before the q/k norm, q, k, v, the probabilities,
  // the attention output, the residual after attention, gate and up, and the LoRA products x·A^T.
  // With training.recompute the probabilities are one buffer for all layers (recomputed in backward).
  const uint64_t probs = B * Hq * T * T;
  const uint64_t per_layer = 2 * N + (qk ? N * (Q + Hq + K + Hkv) : 0) + N * (Q + 2 * K) +
                             (c.training.recompute ? 0 : probs) + N * Q + N * D + 2 * N * F + n_targets * N * R;
  // The residual stream (L + 1 rows of N × D), then the backward's working buffers.
  const uint64_t work = (L + 1) * N * D + N * (5 * D + 1) + N * F + 2 * N * W + 3 * N * F + 2 * N * Q + 2 * N * K +
                        (qk ? N * (Q + K) : 0) + N * R;
  uint64_t bytes = 4 * (L * per_layer + work + (c.training.recompute ? probs : 0));
  if (bf16) bytes += 2 * (2 * N * W + N * R + N * std::max(D, F));
  bytes += 4 * 2 * N + (lora ? 0 : 4 * (3 * N + 1));  // token ids and targets; the embedding-gradient plan
  // Classifier rows per chunk: up to 64 Mi logits (at least 64 rows, at most 4096 and N).
  const uint64_t chunk = std::min(N, std::clamp<uint64_t>((uint64_t(64) << 20) / V, 64, 4096));
  bytes += chunk * V * (bf16 ? 6 : 4) + 8 * chunk;
  // Attention scratch: head-major copies and dP in F32, with BF16 the operands' copies and P/dS.
  const uint64_t nq = B * Hq * T * hd, nkv = B * Hkv * T * hd, ntt = B * Hq * T * T;
  bytes += bf16 ? 4 * (nq + ntt) + 2 * (2 * nq + 2 * nkv + ntt) : 4 * (nq + ntt) + 4 * (2 * nq + 2 * nkv);
  return bytes;
}

}  // namespace

MemoryEstimate estimate_gpu_training_memory(const ModelParams& p, int64_t n_params, uint64_t base_file_bytes,
                                            const TrainConfig& c) {
  MemoryEstimate m;
  const bool bf16 = c.training.precision != "f32";
  m.trainable_params = count_trainable(p, n_params, c.method, c.lora);
  const uint64_t n = uint64_t(std::max<int64_t>(0, m.trainable_params));
  const uint64_t D = uint64_t(p.n_embd), F = uint64_t(p.n_ff), V = uint64_t(p.n_vocab);
  const uint64_t hd = uint64_t(p.head_dim > 0 ? p.head_dim : (p.n_head > 0 ? p.n_embd / p.n_head : 0));
  const uint64_t Q = uint64_t(p.n_head) * hd, K = uint64_t(p.n_head_kv) * hd, L = uint64_t(p.n_layer);
  // Values of the matrices a product reads: q, k, v, o, gate, up, down per layer and the classifier's
  // (the tied embedding or lm_head; an untied embedding is only gathered).
  const uint64_t matrix_values = L * (2 * D * Q + 2 * D * K + 3 * D * F) + V * D;
  if (c.method == Method::lora) {
    // The frozen base: in BF16 mode as stored (the file) plus a BF16 copy of the classifier and one
    // dequantized matrix of scratch; in F32 mode every weight in F32.
    m.base_weights = bf16 ? base_file_bytes + 2 * V * D + 2 * std::max({D * Q, D * K, D * F})
                          : 4 * uint64_t(std::max<int64_t>(0, n_params));
  } else {
    m.base_weights = bf16 ? 2 * matrix_values : 0;  // full: the BF16 working copies of the matrices
  }
  m.parameters = 4 * n;
  m.gradients = 4 * n;
  m.optimizer = 8 * n;
  if (c.method == Method::lora && bf16) m.parameters += 2 * n;  // the adapters' BF16 copies
  m.activations = gpu_activation_bytes(p, c, bf16);
  m.overhead = GPU_OVERHEAD_ALLOWANCE;
  m.total = m.base_weights + m.parameters + m.gradients + m.optimizer + m.activations + m.overhead;
  return m;
}

double training_flops(const ModelParams& p, int64_t n_params, int64_t trainable, Method method, double tokens,
                      int64_t seq_len) {
  const double N = double(n_params);
  double per_token = method == Method::lora ? 4.0 * N + 6.0 * double(trainable) : 6.0 * N;
  per_token += 12.0 * double(p.n_layer) * double(p.n_embd) * double(std::max<int64_t>(1, seq_len));
  return per_token * tokens;
}

double measure_gemm_flops(double seconds) {
  constexpr int64_t S = 512;
  std::vector<float> a(size_t(S * S), 0.5f), b(size_t(S * S), 0.25f), c(size_t(S * S), 0.0f);
  using clock = std::chrono::steady_clock;
  ops::gemm(false, false, S, S, S, 1.0f, a.data(), b.data(), 0.0f, c.data());  // warm up threads and caches
  const auto start = clock::now();
  int64_t reps = 0;
  double elapsed = 0;
  do {
    ops::gemm(false, false, S, S, S, 1.0f, a.data(), b.data(), 0.0f, c.data());
    ++reps;
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
  } while (elapsed < seconds && reps < 100000);
  return elapsed > 0 ? 2.0 * double(S) * S * S * double(reps) / elapsed : 1e9;
}

uint64_t available_memory_bytes() {
  std::ifstream f("/proc/meminfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("MemAvailable:", 0) == 0) {
      std::istringstream is(line.substr(13));
      uint64_t kb = 0;
      is >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

}  // namespace hearth::train
