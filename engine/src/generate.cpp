/* Generation loop (see hearth/generate.h): prefill with cache reuse, sample, stream text, stop.
 *
 * Non-obvious choice: when the whole prompt is already in the cache, its last token is evaluated again
 * (after rewinding one position), because the cache keeps keys and values but not the logits needed
 * for the first sampled token.
 */
#include "hearth/generate.h"

#include <algorithm>
#include <chrono>
#include <unordered_set>

namespace hearth {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::max_tokens: return "max_tokens";
    case StopReason::eos: return "eos";
    case StopReason::stop_string: return "stop_string";
    case StopReason::cancelled: return "cancelled";
    case StopReason::context_full: return "context_full";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Length of the longest suffix of `text` that is a proper prefix of some stop string.
size_t held_suffix(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const std::string& s : stops)
    for (size_t k = std::min(s.size() - 1, text.size()); k > hold; --k)
      if (text.compare(text.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
  return hold;
}

}  // namespace

Expected<GenerateResult> generate(InferenceSession& session, const Tokenizer& tokenizer, std::span<const TokenId> prompt,
                                  const GenerateOptions& opt, const OnText& on_text, const KeepGoing& keep_going) {
  if (prompt.empty()) return make_error(ErrorCode::invalid_argument, "the prompt has no tokens");
  for (const std::string& s : opt.stop_strings)
    if (s.empty()) return make_error(ErrorCode::invalid_argument, "a stop string is empty");
  HEARTH_TRY(Sampler sampler, Sampler::create(opt.sampling, session.n_vocab()));
  if (int64_t(prompt.size()) > session.n_ctx())
    return make_error(ErrorCode::out_of_range,
                      "the prompt has " + std::to_string(prompt.size()) + " tokens, more than the context length " +
                          std::to_string(session.n_ctx()),
                      "shorten the prompt or raise the context (--ctx)");

  std::unordered_set<TokenId> stop_ids(opt.stop_tokens.begin(), opt.stop_tokens.end());
  if (opt.stop_at_eos) {
    if (auto e = tokenizer.eos_id()) stop_ids.insert(*e);
    if (auto e = tokenizer.eot_id()) stop_ids.insert(*e);
    for (int64_t e : session.model().desc().tokenizer.eos_ids) stop_ids.insert(TokenId(e));
    if (auto e = session.model().desc().tokenizer.eos_id) stop_ids.insert(TokenId(*e));
  }

  GenerateResult res;
  res.stats.n_prompt = int64_t(prompt.size());
  int64_t keep = std::min<int64_t>(session.common_prefix(prompt), int64_t(prompt.size()) - 1);
  session.truncate(keep);
  res.stats.n_prompt_reused = keep;
  std::vector<float> logits;
  auto t0 = Clock::now();
  auto pr = session.eval(prompt.subspan(size_t(keep)), &logits, false, keep_going);
  res.stats.prefill_s = since(t0);
  if (!pr) {
    if (pr.error().code == ErrorCode::cancelled) {
      res.stop = StopReason::cancelled;
      return res;
    }
    return Unexpected{pr.error()};
  }

  std::vector<TokenId> history(prompt.begin(), prompt.end());
  StreamingDetokenizer detok(tokenizer);
  std::string pending;  // final text not yet given to the callback (may start a stop string)
  bool stopped_by_callback = false;
  auto emit = [&](std::string_view s) {
    res.text += s;
    if (on_text && !s.empty() && !on_text(s)) stopped_by_callback = true;
  };

  auto t1 = Clock::now();
  res.stop = StopReason::max_tokens;
  for (int64_t i = 0; opt.max_tokens < 0 || i < opt.max_tokens; ++i) {
    if (keep_going && !keep_going()) {
      res.stop = StopReason::cancelled;
      break;
    }
    TokenId tok = sampler.sample(logits, history);
    res.tokens.push_back(tok);
    history.push_back(tok);
    ++res.stats.n_generated;
    if (stop_ids.count(tok)) {
      res.stop = StopReason::eos;
      break;
    }
    HEARTH_TRY(std::string piece, detok.push(tok));
    pending += piece;
    bool hit = false;
    for (const std::string& s : opt.stop_strings) {
      size_t at = pending.find(s);
      if (at != std::string::npos) {
        pending.resize(at);
        hit = true;
      }
    }
    if (hit) {
      emit(pending);
      pending.clear();
      res.stop = StopReason::stop_string;
      break;
    }
    size_t hold = held_suffix(pending, opt.stop_strings);
    emit(std::string_view(pending).substr(0, pending.size() - hold));
    pending.erase(0, pending.size() - hold);
    if (stopped_by_callback) {
      res.stop = StopReason::cancelled;
      break;
    }
    if (opt.max_tokens >= 0 && i + 1 >= opt.max_tokens) break;
    if (session.n_past() >= session.n_ctx()) {
      res.stop = StopReason::context_full;
      break;
    }
    auto r = session.eval(std::span<const TokenId>(&tok, 1), &logits, false, keep_going);
    if (!r) {
      if (r.error().code == ErrorCode::cancelled) {
        res.stop = StopReason::cancelled;
        break;
      }
      return Unexpected{r.error()};
    }
  }
  if (res.stop != StopReason::stop_string && res.stop != StopReason::cancelled) {
    pending += detok.finish();
    emit(pending);
  }
  res.stats.decode_s = since(t1);
  return res;
}

}  // namespace hearth
