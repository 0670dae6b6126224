/* Text generation: a prompt's tokens in, sampled tokens out, streamed as text through a callback that
 * can stop it, with prefill/decode timings and the reason generation ended.
 *
 * Non-obvious choices:
 * - The session's cache is reused: generate() keeps the common prefix of what the session already
 *   evaluated and the new prompt, and evaluates only the rest, so a chat that re-submits the whole
 *   conversation each turn pays only for the new turn.
 * - Stop strings may span tokens: text that could still become a stop string is held back from the
 *   callback until it is clear; the stop string itself is never shown and not in `text`.
 * - A full context while decoding ends generation with StopReason::context_full (reported, never a
 *   silent truncation); a prompt that does not fit is an out_of_range error.
 *
 * Thread-safety: runs on the caller's thread; the callbacks are called on it.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/error.h"
#include "hearth/inference.h"
#include "hearth/sampling.h"
#include "hearth/tokenizer.h"

namespace hearth {

enum class StopReason { max_tokens, eos, stop_string, cancelled, context_full };
const char* stop_reason_name(StopReason r);  // "max_tokens", "eos", "stop_string", "cancelled", "context_full"

struct GenerateOptions {
  int64_t max_tokens = 128;  // < 0: until a stop or the context is full
  SamplingParams sampling;
  std::vector<std::string> stop_strings;
  bool stop_at_eos = true;              // the tokenizer's EOS and EOT and the model's eos_ids end generation
  std::vector<TokenId> stop_tokens;     // more ids that end generation
};

struct GenerateStats {
  int64_t n_prompt = 0;          // prompt tokens
  int64_t n_prompt_reused = 0;   // of which were already in the cache
  int64_t n_generated = 0;
  double prefill_s = 0;          // evaluating the prompt (the part not reused)
  double decode_s = 0;           // evaluating generated tokens and sampling
  double prefill_tokens_per_s() const { return prefill_s > 0 ? double(n_prompt - n_prompt_reused) / prefill_s : 0; }
  double decode_tokens_per_s() const { return decode_s > 0 ? double(n_generated) / decode_s : 0; }
};

struct GenerateResult {
  std::vector<TokenId> tokens;  // generated ids (a final stop token included when it ended generation)
  std::string text;             // the generated text, up to (not including) a stop string or stop token
  StopReason stop = StopReason::max_tokens;
  GenerateStats stats;
};

// Receives text as it becomes final; return false to stop (StopReason::cancelled).
using OnText = std::function<bool(std::string_view text)>;

// Generates after `prompt` (which must not be empty). Errors: invalid_argument (empty prompt, bad
// sampling parameters), out_of_range (prompt does not fit the context; bad token id); errors of eval().
// Cancelling through `on_text` or `keep_going` is not an error: the result says StopReason::cancelled.
Expected<GenerateResult> generate(InferenceSession& session, const Tokenizer& tokenizer,
                                  std::span<const TokenId> prompt, const GenerateOptions& options,
                                  const OnText& on_text = {}, const KeepGoing& keep_going = {});

}  // namespace hearth
