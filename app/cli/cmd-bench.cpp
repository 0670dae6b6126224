/* `hearth-cli bench -m MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS] [--json] [--device cpu|cuda|auto]`:
 * prompt-processing and generation speed as llama-bench's pp512 and tg128 measure them: pp evaluates P
 * tokens from an empty cache in one batch; tg evaluates N tokens one at a time from an empty cache. Each test runs REPS times
 * after one warm-up run; the mean and standard deviation of tokens/s are printed.
 * Non-obvious choice: the tokens are random ids from a fixed seed (as llama-bench does), so the figure
 * does not depend on a text or a tokenizer.
 */
#include <chrono>
#include <cmath>
#include <iostream>
#include <map>
#include <random>

#include "hearth/inference.h"
#include "infer-common.h"

namespace hearth::cli {
namespace {

std::string weight_type(const ModelDesc& d) {
  std::map<std::string, uint64_t> bytes;
  for (const TensorRef* t : d.all_tensors()) bytes[type_name(t->type)] += t->nbytes;
  std::string best;
  uint64_t most = 0;
  for (auto& [k, v] : bytes)
    if (v > most) most = v, best = k;
  return best;
}

void register_bench(CLI::App& app) {
  auto* sub = app.add_subcommand("bench", "Prompt-processing and generation speed (as llama-bench's pp and tg)");
  struct Opts {
    std::string model;
    int64_t p = 512, n = 128;
    int threads = 0, reps = 3;
    bool json = false;
    DeviceOption device;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("-m,--model", o->model, "Model: a .gguf file or a Hugging Face folder")->required();
  sub->add_option("-p,--n-prompt", o->p, "Prompt tokens (0: skip the pp test)");
  sub->add_option("-n,--n-gen", o->n, "Generated tokens (0: skip the tg test)");
  sub->add_option("-t,--threads", o->threads, "Threads (0: all)");
  sub->add_option("-r,--repetitions", o->reps, "Repetitions of each test");
  sub->add_flag("--json", o->json, "Print JSON");
  add_device_options(sub, o->device);
  sub->callback([o] {
    if (o->reps < 1) throw CliError("--repetitions must be >= 1");
    auto t0 = std::chrono::steady_clock::now();
    auto m = open_model(o->model);
    if (!m) throw CliError(m.error());
    double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const ModelDesc& d = m->desc();
    auto session = make_session_or_throw(*m, std::max<int64_t>(o->p, o->n) + 1, o->threads, KvType::f16, nullptr, o->device);
    std::mt19937 rng(1);
    std::uniform_int_distribution<int32_t> pick(0, int32_t(d.params.n_vocab - 1));
    struct Result {
      std::string test;
      double mean, sd;
    };
    std::vector<Result> results;
    auto run = [&](const std::string& name, int64_t n, bool batch) {
      std::vector<double> rates;
      for (int r = -1; r < o->reps; ++r) {
        std::vector<TokenId> toks(static_cast<size_t>(n));
        for (auto& t : toks) t = pick(rng);
        session->reset();
        auto s = std::chrono::steady_clock::now();
        std::vector<float> logits;  // the last token's logits are part of the work, as in llama-bench
        if (batch) {
          unwrap(session->eval(toks, &logits));
        } else {
          for (TokenId t : toks) unwrap(session->eval(std::span<const TokenId>(&t, 1), &logits));
        }
        double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count();
        if (r >= 0) rates.push_back(double(n) / sec);
      }
      double mean = 0, var = 0;
      for (double x : rates) mean += x;
      mean /= double(rates.size());
      for (double x : rates) var += (x - mean) * (x - mean);
      results.push_back({name, mean, rates.size() > 1 ? std::sqrt(var / double(rates.size() - 1)) : 0.0});
    };
    if (o->p > 0) run("pp" + std::to_string(o->p), o->p, true);
    if (o->n > 0) run("tg" + std::to_string(o->n), o->n, false);
    std::string type = weight_type(d);
    if (o->json) {
      nlohmann::json j;
      j["model"] = d.path.string();
      j["architecture"] = architecture_name(d.params.arch);
      j["type"] = type;
      j["size_bytes"] = d.file_size;
      j["n_params"] = d.n_params;
      j["threads"] = session->n_threads();
      j["backend"] = session->backend();
      if (!session->backend_note().empty()) j["backend_note"] = session->backend_note();
      j["load_s"] = load_s;
      j["results"] = nlohmann::json::array();
      for (auto& r : results) j["results"].push_back({{"test", r.test}, {"tokens_per_s", r.mean}, {"stddev", r.sd}});
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("| model | size | params | type | backend | threads | test | t/s |\n|---|---|---|---|---|---|---|---|\n");
    for (auto& r : results)
      std::printf("| %s %s | %.2f MiB | %s | %s | %s | %d | %s | %.2f ± %.2f |\n", architecture_name(d.params.arch),
                  d.name.c_str(), double(d.file_size) / (1 << 20), format_param_count(d.n_params).c_str(),
                  type.c_str(), session->backend().c_str(), session->n_threads(), r.test.c_str(), r.mean, r.sd);
  });
}

CommandRegistration reg(register_bench);

}  // namespace
}  // namespace hearth::cli
