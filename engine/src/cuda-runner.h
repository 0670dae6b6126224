/* Internal: the forward pass of llama, qwen2 and qwen3 on an NVIDIA GPU, behind InferenceSession
 * (model-llama.cpp asks for it when InferenceOptions::device is cuda or automatic).
 *
 * The runner mirrors the CPU pass in model-llama.cpp operation for operation: RMSNorm, q/k/v (+ biases),
 * the qwen3 per-head q/k norm, RoPE with the CPU's inv_freq and pos_scale, GQA attention over an F16 KV
 * cache, SwiGLU, the (possibly tied) output matrix. Up to MATVEC_MAX_TOKENS tokens the kernels' matvec
 * reads the stored weights directly; longer chunks go through cuBLAS (loaded at run time).
 *
 * Non-obvious choices:
 * - Everything is allocated once in create(), exactly the buffers estimate_gpu_inference() counts
 *   (weights as stored, F32 norms/biases, the F16 cache for all n_ctx positions, one n_batch chunk of
 *   activations + attention scratch + logits, the BF16 dequantization buffer), after comparing that
 *   estimate with the GPU's free memory; nothing is allocated while evaluating.
 * - A one-token decode step is captured once into a CUDA graph and replayed; the position and the
 *   token id live in device memory and are copied in before each replay, which is all that changes.
 * - This header has no CUDA types; in a build without CUDA create() only says so.
 *
 * Ownership and threads: a runner points into the Model's tensors only while uploading (create); it
 * owns its device memory, stream, cuBLAS handle and graph. One thread at a time (the session's).
 */
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hearth/inference.h"
#include "hearth/model.h"

namespace hearth {

// Whether this build has the CUDA runner (HEARTH_HAVE_CUDA); without it create() only says so.
#ifdef HEARTH_HAVE_CUDA
constexpr bool CUDA_RUNNER_BUILT = true;
#else
constexpr bool CUDA_RUNNER_BUILT = false;
#endif

struct CudaRunnerConfig {
  int gpu_index = 0;
  int64_t n_ctx = 0;    // positions the device cache holds (allocated in full)
  int64_t n_batch = 512;  // most tokens per forward() call
  std::vector<double> inv_freq;  // head_dim/2 RoPE frequencies exactly as the CPU pass computed them
  double pos_scale = 1.0;        // linear RoPE scaling (positions multiplied by it)
};

class CudaRunner {
 public:
  // A runner on GPU cfg.gpu_index, or nullptr with `why` set to the one-line reason the CPU must serve
  // instead ("weight type Q5_K has no CUDA kernel", "no usable GPU: ...", "cuBLAS not found ...",
  // "not enough GPU memory: needs X GiB, Y GiB free", "built without CUDA"). Never throws.
  static std::unique_ptr<CudaRunner> create(const ModelDesc& md, const CudaRunnerConfig& cfg, std::string& why);
  ~CudaRunner();
  CudaRunner(const CudaRunner&) = delete;
  CudaRunner& operator=(const CudaRunner&) = delete;

  // Evaluates `toks` (1..n_batch ids, validated by the caller) at positions pos0, pos0+1, ... (pos0 +
  // toks.size() <= n_ctx), overwriting those rows of the cache. When `logits_host` is not null it
  // receives n_vocab values for the last token, or for every token row by row when `all_logits`.
  // Returns when the logits are on the host. Throws std::runtime_error naming the CUDA call and
  // file:line on a CUDA or cuBLAS error, std::system_error(operation_canceled) when `keep_going`
  // (checked before each layer of a chunk) says stop; rows written so far stay in the cache.
  void forward(std::span<const TokenId> toks, int64_t pos0, float* logits_host, bool all_logits,
               const KeepGoing& keep_going);

  // "cuda:0 NVIDIA H200".
  const std::string& name() const;
  // Bytes of the device KV cache (allocated for all n_ctx positions at create()).
  uint64_t kv_bytes() const;

  struct State;

 private:
  explicit CudaRunner(std::unique_ptr<State> s);
  std::unique_ptr<State> m;
};

}  // namespace hearth
