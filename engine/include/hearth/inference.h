/* The forward pass: an InferenceSession runs a Model (llama, qwen2, qwen3) over tokens and returns
 * logits, keeping the keys and values of every evaluated position in its KV cache. It runs on the CPU,
 * or on an NVIDIA GPU when InferenceOptions::device asks for it and the GPU can serve (docs/gpu.md);
 * the CPU is the fallback and the reference.
 *
 * Non-obvious choice: a session keeps the list of tokens it has evaluated, so a caller that re-submits a
 * longer conversation (chat) only pays for the new suffix: `common_prefix()` + `truncate()` rewind the
 * cache to the part that still matches. The KV cache grows as positions are added (up to n_ctx), so a
 * model whose training context is 128k does not reserve gigabytes for a short chat. (On the GPU the
 * cache is allocated for all n_ctx positions when the session is created.)
 *
 * Context full: eval() of tokens that would pass n_ctx fails with ErrorCode::out_of_range and changes
 * nothing; truncating or sliding is the caller's explicit choice, never done silently.
 *
 * Ownership and threads: a session points into the Model it was made from, which must outlive it. One
 * session is used by one thread at a time (it owns a pool of worker threads for its own computation);
 * many sessions may share one Model.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hearth/error.h"
#include "hearth/model.h"
#include "hearth/tokenizer.h"

namespace hearth {

struct LoraAdapter;  // hearth/lora.h

enum class KvType { f16, f32 };
const char* kv_type_name(KvType t);

struct InferenceOptions {
  // Where the forward pass runs. cuda and automatic both try the GPU and fall back to the CPU (never
  // failing create()) when it cannot serve; InferenceSession::backend_note() then says why.
  enum class Device { cpu, cuda, automatic };
  Device device = Device::cpu;
  int gpu_index = 0;            // which CUDA device (cudaGetDeviceCount order) for cuda / automatic
  int64_t n_ctx = 0;            // positions the session can hold; 0: the model's training context
  KvType kv_type = KvType::f16;  // element type of the KV cache
  int n_threads = 0;            // worker threads; 0: all hardware threads
  int64_t n_batch = 512;        // tokens per forward chunk when evaluating many at once
  // Decoding with Q8_0/Q4_0 weights: round the activation to 8 bits per 32-value block and use integer
  // dot products (ggml's scheme; several times faster, logits within about 1e-2 relative). false: every
  // product in F32 against the dequantized weights (the exact path the reference test compares).
  bool quantized_activations = true;
  // A LoRA adapter applied on the fly (y = W x + scale · B (A x) after each targeted projection, in F32);
  // null: none. Shared read-only between sessions; create() fails with invalid_argument when its shapes
  // do not fit the model.
  std::shared_ptr<const LoraAdapter> lora;
};

// Called between chunks of work; return false to stop (eval() then fails with ErrorCode::cancelled,
// and the cache keeps the positions evaluated so far, which tokens() reports).
using KeepGoing = std::function<bool()>;

class InferenceSession {
 public:
  // Prepares a session for `model`. Errors: invalid_argument for n_ctx < 0 or n_threads < 0;
  // unsupported when a weight's type cannot be computed with.
  static Expected<std::unique_ptr<InferenceSession>> create(const Model& model,
                                                            const InferenceOptions& options = {});
  ~InferenceSession();
  InferenceSession(const InferenceSession&) = delete;
  InferenceSession& operator=(const InferenceSession&) = delete;

  // Evaluates `tokens` after the ones already in the cache. `logits` (may be null) receives n_vocab
  // values for the last token, or for every token (row by row) when `all_logits`.
  // Errors: out_of_range for a token id outside the vocabulary or when the context would be full
  // (nothing is evaluated then); cancelled when `keep_going` said stop.
  Expected<void> eval(std::span<const TokenId> tokens, std::vector<float>* logits, bool all_logits = false,
                      const KeepGoing& keep_going = {});

  // Tokens whose keys and values are in the cache, in order.
  const std::vector<TokenId>& tokens() const;
  int64_t n_past() const;
  int64_t n_ctx() const;
  int64_t n_vocab() const;
  int n_threads() const;
  KvType kv_type() const;
  // Bytes held by the KV cache now.
  uint64_t kv_bytes() const;

  // Forgets every position at and after `n` (n <= n_past()).
  void truncate(int64_t n);
  void reset() { truncate(0); }
  // Length of the common prefix of tokens() and `tokens`.
  int64_t common_prefix(std::span<const TokenId> tokens) const;

  const Model& model() const;

  // What computes this session: "cpu", or "cuda:0 NVIDIA H200" (index and device name).
  std::string backend() const;
  // Why the CPU serves although InferenceOptions::device asked for cuda or automatic, e.g. "built without
  // CUDA", "no usable GPU: ...", "not enough GPU memory: needs X GiB, Y GiB free on ...", "cuBLAS not
  // found (...)", "weight type Q5_K has no CUDA kernel (...)", "LoRA adapters run on the CPU"; empty
  // when the requested device serves (or the CPU was asked for).
  const std::string& backend_note() const;

  struct Impl;

 private:
  explicit InferenceSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace hearth
