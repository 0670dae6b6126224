/* Asking for the GPU where it cannot serve (label unit; runs everywhere, GPU or not): the session is a
 * working CPU session whose logits equal a plain CPU session's exactly, and backend_note() names the
 * reason. Reasons checked: built without CUDA; no usable GPU (CI has none); a weight type without a
 * CUDA kernel (Q5_K); a head size the attention kernel does not take (the shared tiny model's 4);
 * LoRA; an F32 KV cache. hearth-cli prints the note once on stderr and the same stdout as on the CPU.
 *
 * Non-obvious choice: on a machine where a GPU does serve, the "no usable GPU" case has nothing to
 * check and skips itself (tests/gpu/test-cuda-inference.cpp compares the GPU with the CPU there); the
 * other reasons hold on every machine, so those cases always run.
 */
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "hearth/inference.h"
#include "hearth/lora.h"
#include "hearth/model-writer.h"
#include "test-util.h"

using namespace hearth;

namespace {

#ifdef HEARTH_HAVE_CUDA
constexpr bool CUDA_BUILT = true;
#else
constexpr bool CUDA_BUILT = false;
#endif

// A tiny llama whose heads (64) the CUDA attention takes, so only the machine can send it to the CPU.
std::filesystem::path write_model(const std::string& name, GgmlType type, Architecture arch = Architecture::llama) {
  auto dir = test::scratch("device-fallback-" + name);
  ModelParams p = tiny_params(arch, 256, 2, 300);
  auto w = make_random_weights(p, 7);
  EXPECT_TRUE(w.has_value());
  GgufWriteOptions o;
  o.type = type;
  auto path = dir / (name + ".gguf");
  auto r = write_gguf_model(*w, path, o);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().to_string());
  return path;
}

std::unique_ptr<InferenceSession> session(const Model& m, InferenceOptions::Device dev, KvType kv = KvType::f16,
                                          std::shared_ptr<const LoraAdapter> lora = nullptr) {
  InferenceOptions o;
  o.device = dev;
  o.n_threads = 2;
  o.n_ctx = 64;
  o.kv_type = kv;
  o.lora = std::move(lora);
  auto s = InferenceSession::create(m, o);
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().to_string());
  return s ? std::move(*s) : nullptr;
}

// Logits of a 12-token prompt (all rows), then of three single decode steps, concatenated.
std::vector<float> run(InferenceSession& s) {
  std::mt19937 rng(3);
  std::vector<TokenId> prompt(12);
  for (auto& t : prompt) t = TokenId(rng() % uint32_t(s.n_vocab()));
  std::vector<float> all, l;
  EXPECT_TRUE(s.eval(prompt, &l, true).has_value());
  all.insert(all.end(), l.begin(), l.end());
  for (int i = 0; i < 3; ++i) {
    TokenId t = TokenId(rng() % uint32_t(s.n_vocab()));
    EXPECT_TRUE(s.eval(std::span<const TokenId>(&t, 1), &l).has_value());
    all.insert(all.end(), l.begin(), l.end());
  }
  EXPECT_EQ(s.n_past(), 15);
  return all;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && !a.empty() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The note a CUDA-less build gives, whatever else is wrong.
void expect_reason(const InferenceSession& s, const std::string& cuda_build_reason) {
  EXPECT_EQ(s.backend(), "cpu");
  if (!CUDA_BUILT) {
    EXPECT_EQ(s.backend_note(), "built without CUDA");
  } else {
    EXPECT_NE(s.backend_note().find(cuda_build_reason), std::string::npos) << "note: " << s.backend_note();
  }
}

}  // namespace

TEST(DeviceFallback, CpuAskedForHasNoNote) {
  auto path = write_model("cpu", GgmlType::F32);
  auto m = open_model(path);
  ASSERT_TRUE(m.has_value());
  auto s = session(*m, InferenceOptions::Device::cpu);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->backend(), "cpu");
  EXPECT_TRUE(s->backend_note().empty());
}

TEST(DeviceFallback, NoUsableGpuGivesTheCpuWithExactLogits) {
  auto path = write_model("nogpu", GgmlType::F32);
  auto m = open_model(path);
  ASSERT_TRUE(m.has_value());
  auto cpu = session(*m, InferenceOptions::Device::cpu);
  ASSERT_TRUE(cpu);
  const std::vector<float> ref = run(*cpu);
  for (auto dev : {InferenceOptions::Device::cuda, InferenceOptions::Device::automatic}) {
    auto s = session(*m, dev);
    ASSERT_TRUE(s);
    if (s->backend() != "cpu") GTEST_SKIP() << "a GPU serves here (" << s->backend() << "); see the gpu tests";
    ASSERT_FALSE(s->backend_note().empty());
    if (!CUDA_BUILT) EXPECT_EQ(s->backend_note(), "built without CUDA");
    else EXPECT_EQ(s->backend_note().rfind("no usable GPU", 0), 0u) << "note: " << s->backend_note();
    EXPECT_TRUE(bitwise_equal(run(*s), ref));
    EXPECT_EQ(s->kv_type(), KvType::f16);
    EXPECT_EQ(s->kv_bytes(), cpu->kv_bytes());
  }
}

TEST(DeviceFallback, WeightTypeWithoutKernelNamesTheType) {
  auto path = write_model("q5k", GgmlType::Q5_K);
  auto m = open_model(path);
  ASSERT_TRUE(m.has_value());
  auto cpu = session(*m, InferenceOptions::Device::cpu);
  auto s = session(*m, InferenceOptions::Device::cuda);
  ASSERT_TRUE(cpu && s);
  expect_reason(*s, "weight type Q5_K has no CUDA kernel");
  EXPECT_TRUE(bitwise_equal(run(*s), run(*cpu)));
}

TEST(DeviceFallback, SharedTinyModelHeadSizeStaysOnTheCpu) {
  auto m = open_model(test::testdata("models/llama-2-tiny-random.gguf"));
  ASSERT_TRUE(m.has_value()) << m.error().to_string();
  ASSERT_EQ(m->desc().params.head_dim, 4);
  auto cpu = session(*m, InferenceOptions::Device::cpu);
  auto s = session(*m, InferenceOptions::Device::automatic);
  ASSERT_TRUE(cpu && s);
  expect_reason(*s, "head size 4 has no CUDA attention kernel");
  EXPECT_TRUE(bitwise_equal(run(*s), run(*cpu)));
}

TEST(DeviceFallback, LoraAndF32CacheStayOnTheCpu) {
  auto path = write_model("lora", GgmlType::F32);
  auto m = open_model(path);
  ASSERT_TRUE(m.has_value());
  const ModelParams& p = m->desc().params;
  auto ad = std::make_shared<LoraAdapter>();
  ad->rank = 2;
  ad->alpha = 4;
  ad->layers.resize(size_t(p.n_layer));
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 0.1f);
  LoraMatrix v;
  v.rank = 2, v.n_in = p.n_embd, v.n_out = p.n_head_kv * p.head_dim;
  v.a.resize(size_t(v.rank * v.n_in)), v.b.resize(size_t(v.n_out * v.rank));
  for (auto& x : v.a) x = nd(rng);
  for (auto& x : v.b) x = nd(rng);
  ad->layers[1].wv = v;

  auto cpu = session(*m, InferenceOptions::Device::cpu, KvType::f16, ad);
  auto s = session(*m, InferenceOptions::Device::cuda, KvType::f16, ad);
  ASSERT_TRUE(cpu && s);
  expect_reason(*s, "LoRA adapters run on the CPU");
  EXPECT_TRUE(bitwise_equal(run(*s), run(*cpu)));

  auto cpu32 = session(*m, InferenceOptions::Device::cpu, KvType::f32);
  auto s32 = session(*m, InferenceOptions::Device::automatic, KvType::f32);
  ASSERT_TRUE(cpu32 && s32);
  expect_reason(*s32, "F32 KV cache runs on the CPU");
  EXPECT_EQ(s32->kv_type(), KvType::f32);
  EXPECT_TRUE(bitwise_equal(run(*s32), run(*cpu32)));
}

TEST(DeviceFallback, CliPrintsTheNoteOnceAndTheSameText) {
  // Q5_K falls back on every machine (and in every build), so the CLI's fallback is always exercised.
  auto path = write_model("cli", GgmlType::Q5_K);
  // The file has no tokenizer, so bench (random token ids) is the command that runs it.
  std::string bench = test::cli() + " bench -m '" + path.string() + "' -p 16 -n 4 -t 2 -r 1 --json";
  auto cpu = test::run(bench);
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
  EXPECT_EQ(cpu.err.find("running on the CPU"), std::string::npos) << cpu.err;
  auto cuda = test::run(bench + " --device cuda");
  ASSERT_EQ(cuda.exit_code, 0) << cuda.err;
  const std::string note = CUDA_BUILT ? "weight type Q5_K has no CUDA kernel" : "built without CUDA";
  size_t at = cuda.err.find("hearth-cli: running on the CPU: ");
  ASSERT_NE(at, std::string::npos) << cuda.err;
  EXPECT_EQ(cuda.err.find("running on the CPU", at + 20), std::string::npos) << "printed twice: " << cuda.err;
  EXPECT_NE(cuda.err.find(note), std::string::npos) << cuda.err;
  auto j = nlohmann::json::parse(cuda.out);
  EXPECT_EQ(j["backend"], "cpu");
  EXPECT_NE(j["backend_note"].get<std::string>().find(note), std::string::npos);
  auto bad = test::run(bench + " --device tpu");
  EXPECT_NE(bad.exit_code, 0);
}
