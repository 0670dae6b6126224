/* Fuzz target for the LoRA adapter readers (load_lora_adapter): GGUF adapters, and PEFT
 * adapter_model.safetensors files beside a fixed adapter_config.json, checked against a tiny llama.
 *
 * Non-obvious choice: the reader takes a path, so each input is written to a scratch file (GGUF when it
 * starts with the GGUF magic, safetensors otherwise); an adapter that loads is then applied to a real
 * session, so a shape the reader wrongly accepted shows up as a crash in the forward pass.
 *
 * libFuzzer build: cmake --preset fuzz && ./fuzz-lora -max_total_time=60 corpus/
 */
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "fuzz-driver.h"
#include "hearth/inference.h"
#include "hearth/lora.h"
#include "hearth/model-writer.h"

namespace {

namespace fs = std::filesystem;

fs::path scratch() {
  static fs::path dir = [] {
    auto d = fs::temp_directory_path() / ("hearth-fuzz-lora-" + std::to_string(::getpid()));
    fs::create_directories(d / "peft");
    std::ofstream(d / "peft" / "adapter_config.json")
        << R"({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"], "bias": "none"})";
    return d;
  }();
  static struct Cleanup {
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup;
  return dir;
}

// A tiny llama GGUF base, written once.
const hearth::Model& base() {
  static std::unique_ptr<hearth::Model> m = [] {
    auto p = hearth::tiny_params(hearth::Architecture::llama, 16, 2, 32);
    auto w = hearth::make_random_weights(p, 1);
    if (!w || !hearth::write_gguf_model(*w, scratch() / "base.gguf")) __builtin_trap();
    auto r = hearth::open_model(scratch() / "base.gguf");
    if (!r) __builtin_trap();
    return std::make_unique<hearth::Model>(std::move(*r));
  }();
  return *m;
}

hearth::LoraAdapter seed_adapter() {
  const auto& p = base().desc().params;
  hearth::LoraAdapter ad;
  ad.rank = 2;
  ad.alpha = 4;
  ad.layers.resize(size_t(p.n_layer));
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 0.3f);
  auto mk = [&](int64_t in, int64_t out) {
    hearth::LoraMatrix m;
    m.rank = 2, m.n_in = in, m.n_out = out;
    m.a.resize(size_t(2 * in)), m.b.resize(size_t(out * 2));
    for (float& x : m.a) x = nd(rng);
    for (float& x : m.b) x = nd(rng);
    return m;
  };
  ad.layers[0].wq = mk(p.n_embd, p.n_head * p.head_dim);
  ad.layers[1].down = mk(p.n_ff, p.n_embd);
  return ad;
}

std::vector<uint8_t> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const bool gguf = size >= 4 && std::memcmp(data, "GGUF", 4) == 0;
  const fs::path path = gguf ? scratch() / "in.gguf" : scratch() / "peft" / "adapter_model.safetensors";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  auto ad = hearth::load_lora_adapter(gguf ? path : scratch() / "peft", base().desc());
  if (ad) {
    hearth::InferenceOptions o;
    o.n_threads = 1;
    o.n_ctx = 8;
    o.lora = std::make_shared<const hearth::LoraAdapter>(std::move(*ad));
    auto s = hearth::InferenceSession::create(base(), o);
    if (!s) __builtin_trap();  // a loaded adapter must fit its base
    std::vector<hearth::TokenId> toks = {1, 2, 3};
    std::vector<float> logits;
    if (!(*s)->eval(toks, &logits)) __builtin_trap();
  }
  return 0;
}

std::vector<std::vector<uint8_t>> hearth_fuzz_seeds() {
  std::vector<std::vector<uint8_t>> seeds;
  auto ad = seed_adapter();
  if (hearth::save_gguf_lora(ad, base().desc(), scratch() / "seed.gguf")) seeds.push_back(read_all(scratch() / "seed.gguf"));
  if (hearth::save_peft_adapter(ad, base().desc(), scratch() / "seed-peft"))
    seeds.push_back(read_all(scratch() / "seed-peft" / "adapter_model.safetensors"));
  return seeds;
}

std::string hearth_fuzz_seed_suffix() { return ".lora-seed-none"; }
