/* bench-train: training throughput and peak memory of a llama-shaped model on the CPU, LoRA and full
 * fine-tuning, Hearth against PyTorch (tests/bench/torch_train_bench.py) with the same shape, batch,
 * sequence length and thread count. Prints a table; a benchmark, never a timed test.
 *
 *   bench-train [--layers 12 --embd 768 --heads 12 --ff 2048 --vocab 32000 --batch 4 --seq 256]
 *               [--steps 3 --warmup 1 --threads 2 --rank 16] [--method lora|full|both] [--no-torch]
 *               [--python /usr/bin/python3]
 *
 * Non-obvious choice: every measured configuration runs in its own child process (fork, or exec for
 * PyTorch), and its peak RSS comes from wait4()'s rusage, so one run's memory never inflates another's
 * figure. The LoRA base is written first, by another child, as an F32 GGUF (PyTorch's frozen base is
 * F32 too); full fine-tuning starts from fresh random weights (create_from_scratch), which is the same
 * arithmetic and the same F32 master weights as fine-tuning a loaded model.
 */
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hearth/model-writer.h"
#include "hearth/model.h"
#include "hearth/trainer/optim.h"
#include "hearth/trainer/train-model.h"

namespace {

using namespace hearth;
using namespace hearth::train;
namespace fs = std::filesystem;

struct Args {
  std::map<std::string, int64_t> n = {{"layers", 12}, {"embd", 768}, {"heads", 12}, {"ff", 2048},
                                      {"vocab", 32000}, {"batch", 4}, {"seq", 256}, {"steps", 3},
                                      {"warmup", 1}, {"threads", 2}, {"rank", 16}, {"seed", 1}};
  std::string method = "both";
  bool torch = true;
  std::string python = HEARTH_PYTHON;
  std::string script = HEARTH_SOURCE_DIR "/tests/bench/torch_train_bench.py";
};

ModelParams shape(const Args& a) {
  ModelParams p;
  p.arch = Architecture::llama;
  p.n_layer = a.n.at("layers");
  p.n_embd = a.n.at("embd");
  p.n_head = p.n_head_kv = a.n.at("heads");
  p.head_dim = p.n_embd / p.n_head;
  p.n_ff = a.n.at("ff");
  p.n_vocab = a.n.at("vocab");
  p.n_ctx_train = std::max<int64_t>(a.n.at("seq"), 256);
  return p;
}

// Runs `fn` in a child; returns its stdout text and its peak RSS in MiB.
template <class Fn>
std::pair<std::string, double> in_child(Fn fn) {
  int fd[2];
  if (pipe(fd) != 0) return {"", 0};
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    std::string s = fn();
    ssize_t w = write(fd[1], s.data(), s.size());
    (void)w;
    close(fd[1]);
    _exit(0);
  }
  close(fd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd[0], buf, sizeof buf)) > 0) out.append(buf, size_t(n));
  close(fd[0]);
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  return {out, double(ru.ru_maxrss) / 1024.0};
}

std::string hearth_run(const Args& a, const std::string& method, const fs::path& base_file) {
  const ModelParams p = shape(a);
  ModelOptions mo;
  mo.n_threads = int(a.n.at("threads"));
  mo.seed = uint64_t(a.n.at("seed"));
  std::unique_ptr<TrainModel> model;
  std::unique_ptr<Model> base;
  if (method == "lora") {
    auto m = open_model(base_file);
    if (!m) return nlohmann::json{{"error", m.error().to_string()}}.dump();
    base = std::make_unique<Model>(std::move(*m));
    mo.method = Method::lora;
    mo.lora.rank = a.n.at("rank");
    mo.lora.alpha = float(2 * a.n.at("rank"));
    auto t = TrainModel::create(*base, mo);
    if (!t) return nlohmann::json{{"error", t.error().to_string()}}.dump();
    model = std::move(*t);
  } else {
    mo.method = Method::pretrain;
    auto t = TrainModel::create_from_scratch(p, mo);
    if (!t) return nlohmann::json{{"error", t.error().to_string()}}.dump();
    model = std::move(*t);
  }
  const int64_t B = a.n.at("batch"), T = a.n.at("seq");
  std::mt19937_64 rng(uint64_t(a.n.at("seed")));
  std::vector<int32_t> tokens(size_t(B * T)), targets(size_t(B * T));
  for (auto& t : tokens) t = int32_t(rng() % uint64_t(p.n_vocab));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) targets[size_t(b * T + t)] = t + 1 < T ? tokens[size_t(b * T + t + 1)] : -1;
  auto params = model->trainable();
  AdamW opt(params, AdamWSettings{});
  double total = 0, loss = 0;
  const int64_t warmup = a.n.at("warmup"), steps = a.n.at("steps");
  for (int64_t i = 0; i < warmup + steps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    model->zero_grad();
    auto r = model->forward_backward(tokens, targets, B, T);
    if (!r) return nlohmann::json{{"error", r.error().to_string()}}.dump();
    loss = r->loss;
    clip_grad_norm(params, 1.0);
    opt.step(1e-4);
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i >= warmup) total += dt;
  }
  const double step_s = total / double(steps);
  return nlohmann::json{{"method", method},
                        {"tokens_per_s", double(B * (T - 1)) / step_s},
                        {"step_s", step_s},
                        {"loss", loss},
                        {"trainable", model->n_trainable()},
                        {"model_bytes", model->memory_bytes()}}
      .dump();
}

std::string torch_cmd(const Args& a, const std::string& method) {
  std::string cmd = "'" + a.python + "' '" + a.script + "' --method " + method;
  for (const char* k : {"layers", "embd", "heads", "ff", "vocab", "batch", "seq", "steps", "warmup", "threads", "rank",
                        "seed"})
    cmd += std::string(" --") + k + " " + std::to_string(a.n.at(k));
  return cmd;
}

int usage() {
  std::fprintf(stderr,
               "usage: bench-train [--layers N --embd N --heads N --ff N --vocab N --batch N --seq N --steps N "
               "--warmup N --threads N --rank N] [--method lora|full|both] [--no-torch] [--python PATH]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--no-torch") {
      a.torch = false;
      continue;
    }
    if (i + 1 >= argc || k.rfind("--", 0) != 0) return usage();
    std::string v = argv[++i];
    if (k == "--method") a.method = v;
    else if (k == "--python") a.python = v;
    else if (a.n.count(k.substr(2))) a.n[k.substr(2)] = std::atoll(v.c_str());
    else return usage();
  }
  if (a.method != "lora" && a.method != "full" && a.method != "both") return usage();
  std::vector<std::string> methods;
  if (a.method != "full") methods.push_back("lora");
  if (a.method != "lora") methods.push_back("full");

  const ModelParams p = shape(a);
  fs::path base_file = fs::temp_directory_path() / ("bench-train-base-" + std::to_string(getpid()) + ".gguf");
  if (a.method != "full") {
    auto [out, rss] = in_child([&] {
      auto w = make_random_weights(p, uint64_t(a.n.at("seed")));
      if (!w) return w.error().to_string();
      auto ok = write_gguf_model(*w, base_file, GgufWriteOptions{});
      return ok ? std::string("ok") : ok.error().to_string();
    });
    (void)rss;
    if (out != "ok") {
      std::fprintf(stderr, "bench-train: writing the LoRA base failed: %s\n", out.c_str());
      return 1;
    }
  }

  struct Row {
    std::string method, impl;
    double tps = 0, step_s = 0, rss = 0, loss = 0;
    int64_t trainable = 0;
    std::string error;
  };
  std::vector<Row> rows;
  auto parse = [](const std::string& text, Row& r) {
    auto j = nlohmann::json::parse(text.substr(text.find('{') == std::string::npos ? 0 : text.find('{')), nullptr,
                                   false);
    if (j.is_discarded() || !j.is_object()) {
      r.error = text.empty() ? "no output" : text;
      return;
    }
    if (j.contains("error")) {
      r.error = j["error"].get<std::string>();
      return;
    }
    r.tps = j.value("tokens_per_s", 0.0);
    r.step_s = j.value("step_s", 0.0);
    r.loss = j.value("loss", 0.0);
    r.trainable = j.value("trainable", int64_t(0));
  };
  for (const std::string& m : methods) {
    std::fprintf(stderr, "hearth %s ...\n", m.c_str());
    Row h;
    h.method = m;
    h.impl = "hearth";
    auto [out, rss] = in_child([&] { return hearth_run(a, m, base_file); });
    parse(out, h);
    h.rss = rss;
    rows.push_back(h);
    if (a.torch) {
      std::fprintf(stderr, "pytorch %s ...\n", m.c_str());
      Row t;
      t.method = m;
      t.impl = "pytorch";
      std::string cmd = torch_cmd(a, m);
      auto [tout, trss] = in_child([&] {
        std::string s;
        FILE* f = popen(cmd.c_str(), "r");
        if (!f) return s;
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
        pclose(f);
        return s;
      });
      (void)trss;  // the python child is a grandchild: its own getrusage figure is used
      parse(tout, t);
      auto j = nlohmann::json::parse(tout.substr(tout.find('{') == std::string::npos ? 0 : tout.find('{')), nullptr,
                                     false);
      if (!j.is_discarded() && j.is_object()) t.rss = j.value("peak_rss_mib", 0.0);
      rows.push_back(t);
    }
  }
  std::error_code ec;
  fs::remove(base_file, ec);

  int64_t n_params = 0;
  {
    const int64_t d = p.n_embd, f = p.n_ff, v = p.n_vocab, hd = p.head_dim;
    n_params = p.n_layer * (d * p.n_head * hd * 2 + d * p.n_head_kv * hd * 2 + 3 * d * f + 2 * d) + 2 * v * d + d;
  }
  std::printf("bench-train: llama %lld layers, n_embd %lld, %lld heads, n_ff %lld, vocab %lld (%.1f M parameters)\n",
              (long long)p.n_layer, (long long)p.n_embd, (long long)p.n_head, (long long)p.n_ff,
              (long long)p.n_vocab, double(n_params) / 1e6);
  std::printf("batch %lld x seq %lld, LoRA r=%lld on q,k,v,o,gate,up,down, AdamW, %lld threads, %lld timed steps "
              "after %lld warm-up\n\n",
              (long long)a.n.at("batch"), (long long)a.n.at("seq"), (long long)a.n.at("rank"),
              (long long)a.n.at("threads"), (long long)a.n.at("steps"), (long long)a.n.at("warmup"));
  std::printf("| method | impl    | trainable   | tokens/s | s/step  | peak RSS MiB | loss    |\n");
  std::printf("|--------|---------|-------------|----------|---------|--------------|---------|\n");
  for (const Row& r : rows) {
    if (!r.error.empty()) {
      std::printf("| %-6s | %-7s | error: %s\n", r.method.c_str(), r.impl.c_str(), r.error.c_str());
      continue;
    }
    std::printf("| %-6s | %-7s | %11lld | %8.1f | %7.2f | %12.0f | %7.4f |\n", r.method.c_str(), r.impl.c_str(),
                (long long)r.trainable, r.tps, r.step_s, r.rss, r.loss);
  }
  std::printf("\n");
  for (const std::string& m : methods) {
    const Row *h = nullptr, *t = nullptr;
    for (const Row& r : rows)
      if (r.method == m && r.error.empty()) (r.impl == "hearth" ? h : t) = &r;
    if (h && t && t->tps > 0 && t->rss > 0)
      std::printf("%s: Hearth/PyTorch tokens/s %.2fx, peak memory %.2fx\n", m.c_str(), h->tps / t->tps,
                  h->rss / t->rss);
  }
  return 0;
}
