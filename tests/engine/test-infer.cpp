/* Unit tests of InferenceSession (the CPU forward pass) on tiny random models: the ways of feeding the
 * same tokens (one prompt, token by token, in small chunks, on 1 or 3 threads, after a rewind) give the
 * same logits; the F16 KV cache stays close to F32; errors for full context, bad ids and cancelling.
 * Correctness against an independent implementation is engine-infer-reference's job.
 */
#include <gtest/gtest.h>

#include <cmath>

#include "hearth/inference.h"
#include "hearth/model-writer.h"
#include "compare.h"
#include "test-util.h"

using namespace hearth;

using hearth::test::rel_diff;

namespace {

Model tiny_model(Architecture arch, const std::string& name, GgmlType type = GgmlType::F32, int64_t n_embd = 64,
                 bool q4_k_m_mix = false) {
  auto w = make_random_weights(tiny_params(arch, n_embd), 3);
  EXPECT_TRUE(w);
  auto path = test::scratch("infer-" + name) / "m.gguf";
  GgufWriteOptions o;
  o.type = type;
  o.q4_k_m_mix = q4_k_m_mix;
  EXPECT_TRUE(write_gguf_model(*w, path, o));
  auto m = open_model(path);
  EXPECT_TRUE(m) << m.error().to_string();
  return std::move(*m);
}

std::unique_ptr<InferenceSession> session(const Model& m, int threads = 1, KvType kv = KvType::f32,
                                          int64_t n_ctx = 0, int64_t n_batch = 512) {
  InferenceOptions o;
  o.n_threads = threads;
  o.kv_type = kv;
  o.n_ctx = n_ctx;
  o.n_batch = n_batch;
  auto s = InferenceSession::create(m, o);
  EXPECT_TRUE(s) << s.error().to_string();
  return std::move(*s);
}

const std::vector<TokenId> TOKS = {1, 17, 42, 5, 88, 13, 64, 2, 9, 33, 71, 50};

}  // namespace

TEST(Infer, PromptAtOnceEqualsTokenByToken) {
  for (auto arch : {Architecture::llama, Architecture::qwen2, Architecture::qwen3}) {
    SCOPED_TRACE(architecture_name(arch));
    Model m = tiny_model(arch, architecture_name(arch));
    auto a = session(m);
    std::vector<float> all;
    ASSERT_TRUE(a->eval(TOKS, &all, true));
    ASSERT_EQ(all.size(), TOKS.size() * size_t(a->n_vocab()));
    auto b = session(m);
    for (size_t i = 0; i < TOKS.size(); ++i) {
      std::vector<float> one;
      ASSERT_TRUE(b->eval(std::span<const TokenId>(&TOKS[i], 1), &one));
      std::vector<float> row(all.begin() + i * a->n_vocab(), all.begin() + (i + 1) * a->n_vocab());
      EXPECT_LT(rel_diff(one, row), 1e-5) << "position " << i;
    }
    EXPECT_EQ(b->n_past(), int64_t(TOKS.size()));
  }
}

TEST(Infer, ThreadsAndChunksDoNotChangeResults) {
  Model m = tiny_model(Architecture::llama, "threads", GgmlType::Q8_0);
  std::vector<float> ref, got;
  ASSERT_TRUE(session(m, 1)->eval(TOKS, &ref, true));
  ASSERT_TRUE(session(m, 3)->eval(TOKS, &got, true));
  EXPECT_LT(rel_diff(got, ref), 1e-6);
  ASSERT_TRUE(session(m, 2, KvType::f32, 0, 5)->eval(TOKS, &got, true));
  EXPECT_LT(rel_diff(got, ref), 1e-5);
}

TEST(Infer, F16CacheCloseToF32) {
  Model m = tiny_model(Architecture::qwen2, "kv16");
  std::vector<float> a, b;
  auto s16 = session(m, 1, KvType::f16);
  ASSERT_TRUE(s16->eval(TOKS, &a, true));
  ASSERT_TRUE(session(m, 1, KvType::f32)->eval(TOKS, &b, true));
  double d = rel_diff(a, b);
  std::printf("F16 vs F32 KV cache: max relative logit difference %.3g\n", d);
  EXPECT_LT(d, 5e-3);
  EXPECT_GT(d, 0.0);  // the cache really is F16
  EXPECT_EQ(s16->kv_type(), KvType::f16);
}

TEST(Infer, TruncateRewindsExactly) {
  Model m = tiny_model(Architecture::qwen3, "rewind");
  auto s = session(m);
  std::vector<float> first, again;
  ASSERT_TRUE(s->eval(TOKS, &first));
  s->truncate(4);
  EXPECT_EQ(s->n_past(), 4);
  EXPECT_EQ(s->common_prefix(TOKS), 4);
  ASSERT_TRUE(s->eval(std::span<const TokenId>(TOKS).subspan(4), &again));
  // Equal up to summation order (a batch of 8 and one of 12 may be blocked differently by sgemm).
  EXPECT_LT(rel_diff(again, first), 1e-6);
}

TEST(Infer, ContextFullIsAnErrorAndChangesNothing) {
  Model m = tiny_model(Architecture::llama, "full");
  auto s = session(m, 1, KvType::f16, 10);
  EXPECT_EQ(s->n_ctx(), 10);
  ASSERT_TRUE(s->eval(std::span<const TokenId>(TOKS).first(8), nullptr));
  auto r = s->eval(std::span<const TokenId>(TOKS).subspan(8), nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::out_of_range);
  EXPECT_NE(r.error().message.find("context full"), std::string::npos) << r.error().message;
  EXPECT_EQ(s->n_past(), 8);
  EXPECT_TRUE(s->eval(std::span<const TokenId>(TOKS).subspan(8, 2), nullptr));
}

TEST(Infer, ContextDefaultsToTheModel) {
  Model m = tiny_model(Architecture::llama, "ctx");
  EXPECT_EQ(session(m)->n_ctx(), m.desc().params.n_ctx_train);
}

TEST(Infer, BadTokenAndOptions) {
  Model m = tiny_model(Architecture::llama, "bad");
  auto s = session(m);
  std::vector<TokenId> bad = {1, 96};
  auto r = s->eval(bad, nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::out_of_range);
  EXPECT_NE(r.error().message.find("96"), std::string::npos);
  EXPECT_EQ(s->n_past(), 0);
  InferenceOptions o;
  o.n_ctx = -1;
  auto e = InferenceSession::create(m, o);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, ErrorCode::invalid_argument);
}

TEST(Infer, Cancel) {
  Model m = tiny_model(Architecture::llama, "cancel");
  auto s = session(m);
  auto r = s->eval(TOKS, nullptr, false, [] { return false; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::cancelled);
  EXPECT_EQ(s->n_past(), 0);
}

// Decoding a Q4_0 or Q4_K_M-style model (Q4_K, Q6_K) reads a copy of its matrices with rows interleaved
// eight at a time where that kernel pays (quant_dot_x8_for), shared by the sessions on that model: two
// sessions (1 and 3 threads) decode the same logits, the second keeps working after the first is gone,
// and a prompt evaluated at once (dequantized rows, through the stored layout or the copy) agrees with
// the same prompt decoded token by token within the 8-bit activations' rounding.
void check_decode_copy_shared(const Model& m) {
  auto a = session(m, 1), b = session(m, 3);
  std::vector<float> la, lb, batch;
  for (TokenId t : TOKS) {
    ASSERT_TRUE(a->eval(std::span<const TokenId>(&t, 1), &la));
    ASSERT_TRUE(b->eval(std::span<const TokenId>(&t, 1), &lb));
    ASSERT_EQ(la, lb);
  }
  a.reset();
  b->reset();
  ASSERT_TRUE(b->eval(std::span<const TokenId>(TOKS.data(), 1), &lb));
  std::vector<float> lb2;
  for (size_t i = 1; i < TOKS.size(); ++i) ASSERT_TRUE(b->eval(std::span<const TokenId>(&TOKS[i], 1), &lb2));
  EXPECT_EQ(lb2, la);  // the last token's logits again, after the first session released its share
  auto c = session(m, 2);
  ASSERT_TRUE(c->eval(TOKS, &batch));
  EXPECT_LT(rel_diff(batch, la), 5e-2);
}

TEST(Infer, Q4_0DecodeCopySharedBetweenSessions) {
  check_decode_copy_shared(tiny_model(Architecture::llama, "q4-0-x8", GgmlType::Q4_0));
}

TEST(Infer, Q4_K_MDecodeCopySharedBetweenSessions) {
  check_decode_copy_shared(tiny_model(Architecture::llama, "q4-k-m-x8", GgmlType::Q4_K, 256, true));
}
