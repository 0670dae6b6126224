/* engine-test-cuda-runner-emulated (label unit): the CUDA runner (engine/src/cuda-runner.cpp) run on the
 * CPU, its kernels and host wrappers compiled as C++ against the kernels' emulation (tests/gpu/emu) plus
 * this folder's runtime calls and a plain column-major cublasGemmEx. Checks the runner's host logic on
 * every machine: buffer sizes and offsets, the order of operations, the GEMM layout handed to cuBLAS,
 * positions and cache rows, all-logits offsets, cancellation and the fallback reasons, against the CPU
 * InferenceSession (quantized_activations = false).
 *
 * What it cannot check: the GPU itself (memory, timing, races) and the CUDA graph, which the emulation
 * refuses to capture, so the runner's no-graph fallback serves every single-token step here.
 *
 * Tolerances (max |runner - cpu| / max |cpu|): F32 weights 2e-4, F16 weights 5e-3 (prefill activations
 * rounded to F16), quantized 3e-2 (prefill through BF16); 2e-4 for any type while a runner only decodes
 * (matvec, F32 activations; measured 2e-7 to 3e-5). Why F32 is not tighter: keys and values are rounded to the F16 cache, and a 1e-6 difference
 * in summation order (this GEMM is a plain loop, the CPU's is blocked) flips a value that lies on a
 * rounding boundary by one F16 step, which moved the logits by up to 8.5e-5 here.
 */
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <system_error>

#include "cuda-runner.h"
#include "hearth/inference.h"
#include "hearth/model-writer.h"
#include "test-util.h"

using namespace hearth;

namespace {

struct Case {
  const char* name;
  Architecture arch;
  GgmlType type;
  double tol_prefill;
  int64_t n_layer = 1;
};

ModelParams small_params(Architecture a, int64_t n_layer) {
  // head_dim 64 (the smallest the CUDA attention takes) on a model small enough for the emulation, whose
  // every launch starts one OS thread per GPU thread.
  ModelParams p = tiny_params(a, 128, n_layer, 160);
  p.n_head = 2;
  p.n_head_kv = 1;
  p.head_dim = 64;
  if (a == Architecture::qwen3) p.n_head = 4;  // q is 256 wide on a 128-wide model, as qwen3 allows
  p.n_ff = 256;
  return p;
}

Model write_model(const Case& c) {
  auto dir = test::scratch(std::string("cuda-runner-emu-") + c.name);
  auto w = make_random_weights(small_params(c.arch, c.n_layer), 21);
  if (!w) throw std::runtime_error(w.error().to_string());
  GgufWriteOptions o;
  o.type = c.type;
  auto path = dir / "m.gguf";
  if (auto r = write_gguf_model(*w, path, o); !r) throw std::runtime_error(r.error().to_string());
  auto m = open_model(path);
  if (!m) throw std::runtime_error(m.error().to_string());
  return std::move(*m);
}

CudaRunnerConfig config(const ModelDesc& d, int64_t n_ctx, int64_t n_batch) {
  CudaRunnerConfig c;
  c.n_ctx = n_ctx;
  c.n_batch = n_batch;
  const ModelParams& p = d.params;
  for (int64_t i = 0; i < p.head_dim / 2; ++i)  // as model-llama.cpp computes them (no scaling here)
    c.inv_freq.push_back(std::pow(double(p.rope_theta), -2.0 * double(i) / double(p.head_dim)));
  return c;
}

std::unique_ptr<InferenceSession> cpu_session(const Model& m, int64_t n_ctx) {
  InferenceOptions o;
  o.n_ctx = n_ctx;
  o.n_threads = 2;
  o.quantized_activations = false;
  auto s = InferenceSession::create(m, o);
  if (!s) throw std::runtime_error(s.error().to_string());
  return std::move(*s);
}

double rel_err(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num = std::max(num, double(std::fabs(a[i] - ref[i])));
    den = std::max(den, double(std::fabs(ref[i])));
  }
  return num / den;
}

class RunnerEmulated : public ::testing::TestWithParam<Case> {};

}  // namespace

// Prefill (cuBLAS path), decode steps (matvec, no graph), a 5-token chunk, then a rewind that
// overwrites cache rows, each against the CPU session doing the same.
TEST_P(RunnerEmulated, MatchesTheCpuPass) {
  const Case& c = GetParam();
  Model m = write_model(c);
  const ModelDesc& d = m.desc();
  const int64_t V = d.params.n_vocab, n_ctx = 32;
  std::string why;
  auto gpu = CudaRunner::create(d, config(d, n_ctx, 16), why);
  ASSERT_TRUE(gpu) << why;
  EXPECT_EQ(gpu->name(), "cuda:0 Emulated GPU");
  EXPECT_EQ(gpu->kv_bytes(), uint64_t(d.params.n_layer) * 2 * n_ctx * uint64_t(d.params.n_head_kv * d.params.head_dim) * 2);
  auto cpu = cpu_session(m, n_ctx);

  std::mt19937 rng(1);
  auto toks = [&](size_t n) {
    std::vector<TokenId> t(n);
    for (auto& x : t) x = TokenId(rng() % uint32_t(V));
    return t;
  };
  int64_t pos = 0;
  auto step = [&](const std::vector<TokenId>& t, bool all, double tol, const char* what) {
    std::vector<float> g(size_t(all ? t.size() : 1) * size_t(V)), r;
    gpu->forward(t, pos, g.data(), all, {});
    ASSERT_TRUE(cpu->eval(t, &r, all).has_value());
    pos += int64_t(t.size());
    double e = rel_err(g, r);
    std::printf("  %-12s %-28s max rel err %.3g\n", c.name, what, e);
    EXPECT_LE(e, tol) << what;
  };
  const double tol_decode = 2e-4;  // F32 arithmetic only; the margin is the F16 cache's (see the top)
  step(toks(12), true, c.tol_prefill, "prefill 12, all logits");
  step(toks(1), false, c.tol_prefill, "decode 1");
  step(toks(5), true, c.tol_prefill, "chunk of 5, all logits");
  // Rewind to 10 and evaluate other tokens over the old rows.
  pos = 10;
  cpu->truncate(10);
  step(toks(2), false, c.tol_prefill, "2 tokens after a rewind");
  // A fresh runner decoding token by token: the matvec path only, so the tight tolerance.
  auto gpu2 = CudaRunner::create(d, config(d, n_ctx, 16), why);
  ASSERT_TRUE(gpu2) << why;
  gpu = std::move(gpu2);
  cpu = cpu_session(m, n_ctx);
  pos = 0;
  for (int i = 0; i < 2; ++i) step(toks(1), false, tol_decode, "token by token");
  step(toks(8), true, tol_decode, "chunk of 8 (matvec)");
}

INSTANTIATE_TEST_SUITE_P(Models, RunnerEmulated,
                         ::testing::Values(Case{"llama_F32", Architecture::llama, GgmlType::F32, 2e-4, 2},
                                           Case{"qwen2_F16", Architecture::qwen2, GgmlType::F16, 5e-3},
                                           Case{"qwen3_Q8_0", Architecture::qwen3, GgmlType::Q8_0, 3e-2}),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

TEST(RunnerEmulatedCases, CancelAndArguments) {
  Model m = write_model({"cancel", Architecture::llama, GgmlType::F32, 0});
  const ModelDesc& d = m.desc();
  std::string why;
  auto gpu = CudaRunner::create(d, config(d, 16, 16), why);
  ASSERT_TRUE(gpu) << why;
  std::vector<TokenId> t(10, 3);
  std::vector<float> l(size_t(d.params.n_vocab));
  int calls = 0;
  try {
    gpu->forward(t, 0, l.data(), false, [&] { return ++calls < 1; });  // stop before the first layer
    FAIL() << "not cancelled";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::operation_canceled);
  }
  EXPECT_EQ(calls, 1);
  EXPECT_THROW(gpu->forward(t, 10, l.data(), false, {}), std::out_of_range);  // 10 + 10 > n_ctx 16
  gpu->forward(std::span<const TokenId>(t).first(1), 0, l.data(), false, {});  // still usable
}

TEST(RunnerEmulatedCases, ModelReasonsComeFirst) {
  std::string why;
  Model q5 = write_model({"q5k", Architecture::llama, GgmlType::Q5_K, 0});
  EXPECT_FALSE(CudaRunner::create(q5.desc(), config(q5.desc(), 16, 16), why));
  EXPECT_NE(why.find("weight type Q5_K has no CUDA kernel"), std::string::npos) << why;
  auto tiny = open_model(test::testdata("models/llama-2-tiny-random.gguf"));
  ASSERT_TRUE(tiny.has_value());
  EXPECT_FALSE(CudaRunner::create(tiny->desc(), config(tiny->desc(), 16, 16), why));
  EXPECT_NE(why.find("head size 4"), std::string::npos) << why;
  Model m = write_model({"idx", Architecture::llama, GgmlType::F32, 0});
  CudaRunnerConfig c = config(m.desc(), 16, 16);
  c.gpu_index = 3;
  EXPECT_FALSE(CudaRunner::create(m.desc(), c, why));
  EXPECT_NE(why.find("no usable GPU: GPU 3 asked for, 1 present"), std::string::npos) << why;
}
