/* `hearth-cli train`: fine-tune (LoRA or full) or pretrain as a YAML configuration says, recording the
 * run in a project.
 *
 *   hearth-cli train CONFIG.yaml [--project FILE] [--resume RUN_ID] [--set key=value ...] [--stop-after N]
 *                    [--device cpu|cuda|auto] [--gpu N] [--precision bf16|f32]
 *
 * --device, --gpu and --precision are short for --set training.device=... (and .gpu, .precision), applied
 * after the --set overrides. Where the run trains is said on stderr ("training on the GPU: ..." or
 * "training on the CPU: <why>") and on stdout (`device: cuda NVIDIA H200 (GPU 0), ...`, `device_note:`).
 *
 * Progress goes to stderr: a progress bar when stderr is a terminal, otherwise one line per log step.
 * stdout holds only the result: `run: ID`, `status: ...`, and `version: ID (kind) PATH` lines.
 * Non-obvious choice: Ctrl-C (SIGINT) only sets a flag that the training loop polls between
 * micro-batches, so the run stops with a checkpoint, stays resumable, and the command exits with 130
 * and a one-line hint how to resume; a second Ctrl-C kills the process at once.
 */
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "command.h"
#include "hearth/session/run-session.h"
#include "hearth/store/project.h"
#include "hearth/trainer/config.h"

namespace hearth::cli {
namespace {

namespace fs = std::filesystem;

volatile sig_atomic_t g_stop = 0;

void on_sigint(int) {
  g_stop = 1;
  ::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string duration(double s) {
  if (!(s >= 0) || !std::isfinite(s)) return "?";
  long t = long(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

struct TrainArgs {
  std::string config, project;
  std::optional<int64_t> resume;
  std::vector<std::string> overrides;
  std::optional<int64_t> stop_after;
  std::string device, precision;
  std::optional<int> gpu;
};

void run_train(const TrainArgs& a) {
  if (a.config.empty() && !a.resume) throw CliError("give a configuration file (or --resume RUN_ID)");
  const std::string project_path = a.project.empty() ? store::Project::defaultPath() : a.project;
  {
    std::error_code ec;
    fs::path parent = fs::absolute(project_path).parent_path();
    if (!parent.empty()) fs::create_directories(parent, ec);
  }
  store::OpenOptions oo;
  oo.create = true;
  store::Project project = unwrap(store::Project::open(project_path, oo));

  std::vector<std::string> overrides = a.overrides;
  if (!a.device.empty()) overrides.push_back("training.device=" + a.device);
  if (a.gpu) overrides.push_back("training.gpu=" + std::to_string(*a.gpu));
  if (!a.precision.empty()) overrides.push_back("training.precision=" + a.precision);
  train::TrainConfig config;
  if (!a.config.empty()) config = unwrap(train::parse_config_file(a.config, overrides));
  else config = unwrap(session::storedRunConfig(project, *a.resume, overrides));

  const bool tty = ::isatty(STDERR_FILENO) == 1;
  int64_t last_step = 0;
  bool bar_open = false;
  auto end_bar = [&] {
    if (bar_open) std::fputc('\n', stderr);
    bar_open = false;
  };

  session::TrainRunOptions opt;
  opt.resumeRunId = a.resume;
  opt.shouldStop = [&] { return g_stop != 0 || (a.stop_after && last_step >= *a.stop_after); };
  opt.observer.on_message = [&](const std::string& s) {
    end_bar();
    std::fprintf(stderr, "%s\n", s.c_str());
  };
  opt.observer.on_data = [&](const train::Dataset& d) {
    end_bar();
    for (const auto& i : d.issues)
      std::fprintf(stderr, "warning: %s:%lld: %s (skipped)\n", i.file.string().c_str(), (long long)i.line,
                   i.message.c_str());
    const auto& s = d.stats;
    std::fprintf(stderr,
                 "data: %s, %lld rows (%lld skipped), %lld train + %lld validation examples, %lld tokens "
                 "(%lld trained), length %lld..%lld (mean %.1f), %lld truncated\n",
                 train::data_format_name(d.format), (long long)s.rows, (long long)s.bad_rows,
                 (long long)s.train_examples, (long long)s.validation_examples, (long long)s.tokens,
                 (long long)s.trained_tokens, (long long)s.min_len, (long long)s.max_len, s.mean_len,
                 (long long)s.truncated);
  };
  opt.observer.on_step = [&](const train::StepMetrics& m) {
    last_step = m.step;
    double eta = m.step > 0 ? m.elapsed_s / double(m.step) * double(m.total_steps - m.step) : NAN;
    if (tty) {
      constexpr int W = 24;
      int filled = m.total_steps > 0 ? int(W * m.step / m.total_steps) : 0;
      std::string bar(size_t(filled), '#');
      bar.resize(W, '.');
      std::fprintf(stderr, "\r[%s] %lld/%lld loss %.4f lr %.2e %.0f tok/s ETA %s   ", bar.c_str(),
                   (long long)m.step, (long long)m.total_steps, m.loss, m.lr, m.tokens_per_s,
                   duration(eta).c_str());
      std::fflush(stderr);
      bar_open = true;
    } else {
      std::fprintf(stderr,
                   "step %lld/%lld loss %.6f lr %.4e grad_norm %.4f tok/s %.1f tokens %lld elapsed %.2fs\n",
                   (long long)m.step, (long long)m.total_steps, m.loss, m.lr, m.grad_norm, m.tokens_per_s,
                   (long long)m.tokens_seen, m.elapsed_s);
    }
  };
  opt.observer.on_eval = [&](const train::EvalResult& e) {
    end_bar();
    if (!std::isnan(e.val_loss))
      std::fprintf(stderr, "eval step %lld: val_loss %.6f (%lld tokens)\n", (long long)e.step, e.val_loss,
                   (long long)e.val_tokens);
    for (const auto& [p, t] : e.samples) std::fprintf(stderr, "  sample: %s -> %s\n", p.c_str(), t.c_str());
  };
  opt.observer.on_checkpoint = [&](const fs::path& p, int64_t step) {
    if (!tty) std::fprintf(stderr, "checkpoint step %lld: %s\n", (long long)step, p.string().c_str());
  };

  struct sigaction sa {}, old {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old);
  g_stop = 0;
  auto r = session::runTraining(project, config, opt);
  ::sigaction(SIGINT, &old, nullptr);
  end_bar();
  if (!r) throw CliError(r.error());

  std::cout << "run: " << r->runId << "\n";
  std::cout << "run_dir: " << r->runDir.string() << "\n";
  if (!r->train.device.empty()) std::cout << "device: " << r->train.device << " " << r->train.device_description << "\n";
  if (!r->train.device_note.empty()) std::cout << "device_note: " << r->train.device_note << "\n";
  if (r->outcome == train::TrainOutcome::stopped) {
    std::cout << "status: interrupted\n" << std::flush;
    std::string how = "hearth-cli train --resume " + std::to_string(r->runId);
    if (!a.project.empty()) how += " --project '" + a.project + "'";
    throw CliError("stopped at step " + std::to_string(r->train.steps) + " with a checkpoint; resume with: " + how,
                   130);
  }
  std::cout << "status: finished\n";
  std::cout << "steps: " << r->train.steps << "\n";
  std::cout << "loss: " << fmt("%.6f", r->train.final_loss) << "\n";
  if (r->train.final_val_loss) std::cout << "val_loss: " << fmt("%.6f", *r->train.final_val_loss) << "\n";
  if (r->energy.hasData)
    std::cout << "energy_j: " << fmt("%.1f", r->energy.joules) << " ("
              << telemetry::sensorKindName(r->energy.kind) << ")\n";
  auto print_version = [&](std::optional<store::Id> id) {
    if (!id) return;
    auto v = project.modelVersion(*id);
    if (!v) return;
    std::cout << "version: " << v->id << " (" << v->kind << ") " << v->path << "\n";
  };
  print_version(r->outputVersionId);
  print_version(r->mergedVersionId);
  for (const auto& f : r->train.outputs) std::cout << "output: " << f.format << " " << f.path.string() << "\n";
  std::cout << std::flush;
}

void register_train(CLI::App& app) {
  auto* sub = app.add_subcommand("train", "Fine-tune or pretrain a model as a YAML configuration says");
  auto a = std::make_shared<TrainArgs>();
  sub->add_option("config", a->config, "Configuration file (YAML; docs/training.md)");
  sub->add_option("--project", a->project, "Project file (default: " + store::Project::defaultPath() + ")");
  sub->add_option("--resume", a->resume, "Continue an interrupted run from its last checkpoint");
  sub->add_option("--set", a->overrides, "Override a configuration key: section.key=value (repeatable)")
      ->allow_extra_args(false);
  sub->add_option("--stop-after", a->stop_after,
                  "Stop (as Ctrl-C does: checkpoint, resumable) once this many steps are done");
  sub->add_option("--device", a->device,
                  "Where to train: cpu, cuda or auto (the GPU when one can serve, else the CPU); "
                  "short for --set training.device=...")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  sub->add_option("--gpu", a->gpu, "CUDA device index (short for --set training.gpu=N)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--precision", a->precision,
                  "GPU matrix products: bf16 (mixed precision) or f32 (short for --set training.precision=...)")
      ->check(CLI::IsMember({"bf16", "f32"}));
  sub->callback([a] { run_train(*a); });
}

CommandRegistration reg(register_train);

}  // namespace
}  // namespace hearth::cli
