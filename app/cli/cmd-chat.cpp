/* `hearth-cli chat -m MODEL [--system TEXT] [--lora ADAPTER] [--project FILE]`: a multi-turn conversation
 * in the terminal, rendered with the model's chat template. `/reset` starts over, `/exit` (or end of input)
 * quits. With --project every message is stored as it is sent, and every reply with its energy
 * (session::ChatRecorder; a /reset starts a new conversation there too).
 *
 * Non-obvious choice: Ctrl-C sets a flag that the generation's keep-going check reads, so it stops the
 * reply being written and returns to the prompt; the program itself ends only by /exit or end of input.
 * The whole conversation is re-rendered every turn (templates may change earlier text), and the
 * session's cache makes that cheap: only tokens after the common prefix are evaluated.
 */
#include <atomic>
#include <csignal>
#include <iostream>

#include "hearth/generate.h"
#include "hearth/session/chat-session.h"
#include "hearth/store/project.h"
#include "hearth/telemetry/sampler.h"
#include "infer-common.h"

namespace hearth::cli {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted.store(true); }

void register_chat(CLI::App& app) {
  auto* sub = app.add_subcommand("chat", "Chat with a model in the terminal (/reset, /exit; Ctrl-C stops a reply)");
  struct Opts {
    std::string model, system, lora, project;
    int64_t ctx = 4096, n = -1;
    std::optional<float> temp;
    uint64_t seed = 0;
    int threads = 0;
    DeviceOption device;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("-m,--model", o->model, "Model: a .gguf file or a Hugging Face folder")->required();
  sub->add_option("--system", o->system, "System message");
  sub->add_option("-c,--ctx", o->ctx, "Context length (default 4096, capped at the model's)");
  sub->add_option("-n,--n-predict", o->n, "Most tokens per reply (-1: no limit)");
  sub->add_option("--temp", o->temp, "Temperature (0: greedy)");
  sub->add_option("--seed", o->seed, "Random seed");
  sub->add_option("-t,--threads", o->threads, "Threads (0: all)");
  sub->add_option("--lora", o->lora, "LoRA adapter applied without merging: a PEFT folder or a GGUF adapter");
  sub->add_option("--project", o->project,
                  "Store the conversation and each reply, with its energy, in this project file (created when missing)");
  add_device_options(sub, o->device);
  sub->callback([o] {
    LoadedModel lm = load_model_or_throw(o->model);
    int64_t train = lm.model->desc().params.n_ctx_train;
    auto session = make_session_or_throw(*lm.model, train > 0 ? std::min(o->ctx, train) : o->ctx, o->threads,
                                         KvType::f16, load_lora_or_throw(o->lora, *lm.model), o->device);
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a Ctrl-C at the prompt interrupts the read
    sigaction(SIGINT, &sa, nullptr);

    auto fresh = [&] {
      nlohmann::ordered_json m = nlohmann::ordered_json::array();
      if (!o->system.empty()) m.push_back({{"role", "system"}, {"content", o->system}});
      return m;
    };
    nlohmann::ordered_json msgs = fresh();
    GenerateOptions g;
    g.max_tokens = o->n;
    if (o->temp) g.sampling.temperature = *o->temp;
    g.sampling.seed = o->seed;

    // --project: the store, a power sampler, and the conversation recorded as it happens.
    std::unique_ptr<store::Project> project;
    std::unique_ptr<telemetry::Sampler> sampler;
    std::optional<session::ChatRecorder> recorder;
    session::ChatSettings settings;
    settings.systemPrompt = o->system;
    settings.maxTokens = o->n;
    settings.nCtx = session->n_ctx();
    if (!o->project.empty()) {
      store::OpenOptions po;
      po.create = true;
      project = std::make_unique<store::Project>(unwrap(store::Project::open(o->project, po)));
      sampler = unwrap(telemetry::makeSampler(telemetry::TelemetryOptions{}));
      sampler->start();
      recorder.emplace(*project, unwrap(session::findModelVersionByPath(*project, o->model)));
    }
    std::fprintf(stderr, "%s — /reset to start over, /exit to quit, Ctrl-C stops a reply\n",
                 lm.model->desc().name.c_str());
    std::string line;
    for (;;) {
      std::cout << "> " << std::flush;
      g_interrupted.store(false);
      if (!std::getline(std::cin, line)) {
        if (g_interrupted.load() && !std::cin.eof()) {
          std::cin.clear();
          std::cout << "\n(type /exit to quit)\n";
          continue;
        }
        break;
      }
      if (line == "/exit") break;
      if (line == "/reset") {
        msgs = fresh();
        if (recorder) recorder->restart();
        session->reset();
        std::cout << "(conversation reset)\n";
        continue;
      }
      if (line.empty()) continue;
      msgs.push_back({{"role", "user"}, {"content", line}});
      auto prompt = chat_tokens_or_throw(lm, msgs);
      g.sampling.seed++;
      settings.sampling = g.sampling;
      if (recorder) unwrap(recorder->user(line, settings));
      std::optional<telemetry::EnergyMeter> meter;
      if (sampler) meter.emplace(*sampler).start();
      auto r = generate(*session, lm.tokenizer, prompt, g,
                        [](std::string_view s) {
                          std::cout << s << std::flush;
                          return true;
                        },
                        [] { return !g_interrupted.load(); });
      if (!r) {
        std::cout << "\n";
        std::fprintf(stderr, "error: %s\n", r.error().to_string().c_str());
        msgs.erase(msgs.size() - 1);
        if (recorder) recorder->userFailed();
        continue;
      }
      std::cout << "\n";
      if (r->stop == StopReason::cancelled) std::fprintf(stderr, "(stopped)\n");
      if (r->stop == StopReason::context_full)
        std::fprintf(stderr, "(context full: /reset to start a new conversation)\n");
      msgs.push_back({{"role", "assistant"}, {"content", r->text}});
      if (recorder) {
        session::ChatReply reply{r->text, r->stop, r->stats, meter->stop(r->stats.n_generated), session->backend(),
                                 session->backend_note()};
        unwrap(recorder->reply(reply, settings));
      }
    }
    signal(SIGINT, SIG_DFL);
    if (recorder)
      std::fprintf(stderr, "(stored %d conversation(s), %d repl%s, %.3g J, in %s)\n", recorder->conversations(),
                   recorder->replies(), recorder->replies() == 1 ? "y" : "ies", recorder->joules(),
                   project->path().c_str());
  });
}

CommandRegistration reg(register_chat);

}  // namespace
}  // namespace hearth::cli
