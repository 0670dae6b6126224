/* Unit tests of generate() on the shared llama-2-tiny-random.gguf (real SentencePiece vocabulary):
 * seeded generation is deterministic, greedy equals argmax decoding, max tokens, stop strings across
 * tokens, cancelling from the text callback, cache reuse across calls, and a full context.
 */
#include <gtest/gtest.h>

#include "hearth/generate.h"
#include "test-util.h"

using namespace hearth;

namespace {

struct Fixture {
  Model model;
  Tokenizer tok;
};

Fixture& fx() {
  static Fixture* f = [] {
    auto path = test::testdata("models/llama-2-tiny-random.gguf");
    auto m = open_model(path);
    EXPECT_TRUE(m) << m.error().to_string();
    auto t = load_tokenizer(path);
    EXPECT_TRUE(t) << t.error().to_string();
    return new Fixture{std::move(*m), std::move(*t)};
  }();
  return *f;
}

std::unique_ptr<InferenceSession> session(int64_t n_ctx = 512) {
  InferenceOptions o;
  o.n_ctx = n_ctx;
  o.n_threads = 1;
  auto s = InferenceSession::create(fx().model, o);
  EXPECT_TRUE(s);
  return std::move(*s);
}

std::vector<TokenId> prompt() { return *fx().tok.encode("Once upon a time", true); }

}  // namespace

TEST(Generate, SeededIsDeterministic) {
  GenerateOptions o;
  o.max_tokens = 24;
  o.sampling.seed = 1234;
  o.sampling.temperature = 1.0f;
  auto a = generate(*session(), fx().tok, prompt(), o);
  auto b = generate(*session(), fx().tok, prompt(), o);
  ASSERT_TRUE(a) << a.error().to_string();
  ASSERT_TRUE(b);
  EXPECT_EQ(a->tokens, b->tokens);
  EXPECT_EQ(a->text, b->text);
  o.sampling.seed = 99;
  auto c = generate(*session(), fx().tok, prompt(), o);
  EXPECT_NE(a->tokens, c->tokens);
}

TEST(Generate, GreedyIsArgmaxAndTextStreams) {
  GenerateOptions o;
  o.max_tokens = 16;
  o.sampling.temperature = 0;
  o.stop_at_eos = false;
  std::string streamed;
  auto r = generate(*session(), fx().tok, prompt(), o, [&](std::string_view s) {
    streamed += s;
    return true;
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->stop, StopReason::max_tokens);
  EXPECT_EQ(r->tokens.size(), 16u);
  EXPECT_EQ(streamed, r->text);
  EXPECT_EQ(r->text, *fx().tok.decode(r->tokens));
  // Argmax decoding by hand.
  auto s = session();
  std::vector<float> logits;
  auto p = prompt();
  ASSERT_TRUE(s->eval(p, &logits));
  for (TokenId want : r->tokens) {
    TokenId best = TokenId(std::max_element(logits.begin(), logits.end()) - logits.begin());
    ASSERT_EQ(best, want);
    ASSERT_TRUE(s->eval(std::span<const TokenId>(&best, 1), &logits));
  }
  EXPECT_GT(r->stats.n_generated, 0);
  EXPECT_GE(r->stats.prefill_s, 0.0);
}

TEST(Generate, StopStringAcrossTokens) {
  GenerateOptions o;
  o.max_tokens = 40;
  o.sampling.temperature = 0;
  o.stop_at_eos = false;
  auto full = generate(*session(), fx().tok, prompt(), o);
  ASSERT_TRUE(full);
  ASSERT_GE(full->text.size(), 12u) << full->text;
  // A stop string that starts in the middle of the text.
  std::string stop = full->text.substr(full->text.size() / 2, 5);
  size_t first = full->text.find(stop);
  o.stop_strings = {stop};
  std::string streamed;
  auto r = generate(*session(), fx().tok, prompt(), o, [&](std::string_view s) {
    streamed += s;
    return true;
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->stop, StopReason::stop_string);
  EXPECT_EQ(r->text, full->text.substr(0, first));
  EXPECT_EQ(streamed, r->text);
}

TEST(Generate, CallbackCancels) {
  GenerateOptions o;
  o.max_tokens = 50;
  o.stop_at_eos = false;
  int calls = 0;
  auto r = generate(*session(), fx().tok, prompt(), o, [&](std::string_view) { return ++calls < 3; });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->stop, StopReason::cancelled);
  EXPECT_EQ(calls, 3);
  EXPECT_LT(r->tokens.size(), 50u);
}

TEST(Generate, ReusesTheCacheAndReportsAFullContext) {
  auto s = session(64);
  GenerateOptions o;
  o.max_tokens = 8;
  o.sampling.temperature = 0;
  o.stop_at_eos = false;
  auto p = prompt();
  auto a = generate(*s, fx().tok, p, o);
  ASSERT_TRUE(a);
  std::vector<TokenId> p2 = p;
  p2.insert(p2.end(), a->tokens.begin(), a->tokens.end());
  auto b = generate(*s, fx().tok, p2, o);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->stats.n_prompt_reused, int64_t(p.size() + a->tokens.size() - 1));
  // Same continuation as from a fresh session.
  auto c = generate(*session(64), fx().tok, p2, o);
  EXPECT_EQ(b->tokens, c->tokens);
  o.max_tokens = -1;
  auto d = generate(*s, fx().tok, p, o);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->stop, StopReason::context_full);
  EXPECT_EQ(s->n_past(), 64);
  std::vector<TokenId> too_long(65, 1);
  auto e = generate(*s, fx().tok, too_long, o);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, ErrorCode::out_of_range);
}
