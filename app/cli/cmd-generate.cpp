/* `hearth-cli generate`: continue a prompt with a model on the CPU (or a GPU with --device cuda).
 *
 *   hearth-cli generate -m MODEL (-p TEXT | -f FILE) -n N [--temp T] [--top-k K] [--top-p P] [--min-p M]
 *                       [--repeat-penalty R] [--seed S] [--threads T] [--ctx N] [--chat]
 *                       [--lora ADAPTER] [--device cpu|cuda|auto] [--gpu N]
 *
 * stdout holds only the generated continuation (streamed, never the prompt); timings go to stderr.
 * Non-obvious choice: sampling defaults come from the model's generation_config.json where it has one
 * (as transformers does), else llama.cpp's defaults; explicit options override both.
 */
#include <iostream>

#include "hearth/generate.h"
#include "infer-common.h"

namespace hearth::cli {
namespace {

void register_generate(CLI::App& app) {
  auto* sub = app.add_subcommand("generate", "Generate a continuation of a prompt (stdout: the continuation only)");
  struct Opts {
    std::string model, prompt, file, lora;
    int64_t n = 128, ctx = 0;
    std::optional<float> temp, top_p, min_p, repeat_penalty;
    std::optional<int64_t> top_k;
    uint64_t seed = 0;
    int threads = 0;
    bool chat = false, kv_f32 = false;
    DeviceOption device;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("-m,--model", o->model, "Model: a .gguf file or a Hugging Face folder")->required();
  auto* p = sub->add_option("-p,--prompt", o->prompt, "Prompt text");
  auto* f = sub->add_option("-f,--file", o->file, "Read the prompt from a file");
  p->excludes(f);
  sub->add_option("-n,--n-predict", o->n, "Tokens to generate (-1: until end of text or context)");
  sub->add_option("--temp", o->temp, "Temperature (0: greedy)");
  sub->add_option("--top-k", o->top_k, "Top-k (0: off)");
  sub->add_option("--top-p", o->top_p, "Top-p (1: off)");
  sub->add_option("--min-p", o->min_p, "Min-p (0: off)");
  sub->add_option("--repeat-penalty", o->repeat_penalty, "Repetition penalty over the last 64 tokens (1: off)");
  sub->add_option("--seed", o->seed, "Random seed");
  sub->add_option("-t,--threads", o->threads, "Threads (0: all)");
  sub->add_option("-c,--ctx", o->ctx, "Context length (0: the model's)");
  sub->add_flag("--chat", o->chat, "Wrap the prompt as one user message with the model's chat template");
  sub->add_flag("--kv-f32", o->kv_f32, "Keep the KV cache in F32 instead of F16");
  sub->add_option("--lora", o->lora, "LoRA adapter applied without merging: a PEFT folder or a GGUF adapter");
  add_device_options(sub, o->device);
  sub->callback([o] {
    if (o->prompt.empty() && o->file.empty()) throw CliError("give a prompt with -p TEXT or -f FILE");
    std::string text = o->file.empty() ? o->prompt : read_file_or_throw(o->file);
    LoadedModel lm = load_model_or_throw(o->model);
    const ModelDesc& d = lm.model->desc();
    auto lora = load_lora_or_throw(o->lora, *lm.model);
    std::vector<TokenId> prompt;
    if (o->chat) {
      nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
      msgs.push_back({{"role", "user"}, {"content", text}});
      prompt = chat_tokens_or_throw(lm, msgs);
    } else {
      prompt = unwrap(lm.tokenizer.encode(text, true, false));
    }
    if (prompt.empty()) throw CliError("the prompt is empty after tokenization");
    auto session = make_session_or_throw(*lm.model, o->ctx, o->threads, o->kv_f32 ? KvType::f32 : KvType::f16, lora,
                                         o->device);
    GenerateOptions g;
    g.max_tokens = o->n;
    SamplingParams& sp = g.sampling;
    if (d.sampling.temperature) sp.temperature = *d.sampling.temperature;
    if (d.sampling.top_p) sp.top_p = *d.sampling.top_p;
    if (d.sampling.top_k) sp.top_k = *d.sampling.top_k;
    if (d.sampling.repetition_penalty) sp.repeat_penalty = *d.sampling.repetition_penalty;
    if (d.sampling.do_sample && !*d.sampling.do_sample) sp.temperature = 0;
    if (o->temp) sp.temperature = *o->temp;
    if (o->top_k) sp.top_k = *o->top_k;
    if (o->top_p) sp.top_p = *o->top_p;
    if (o->min_p) sp.min_p = *o->min_p;
    if (o->repeat_penalty) sp.repeat_penalty = *o->repeat_penalty;
    sp.seed = o->seed;
    auto r = generate(*session, lm.tokenizer, prompt, g, [](std::string_view s) {
      std::cout << s << std::flush;
      return true;
    });
    if (!r) throw CliError(r.error());
    std::cout << std::flush;
    const GenerateStats& st = r->stats;
    std::fprintf(stderr,
                 "\nload: %.2f s | prompt: %lld tokens, %.2f s (%.1f tok/s) | generated: %lld tokens, %.2f s "
                 "(%.1f tok/s) | stop: %s | threads: %d | backend: %s\n",
                 lm.load_s, (long long)st.n_prompt, st.prefill_s, st.prefill_tokens_per_s(),
                 (long long)st.n_generated, st.decode_s, st.decode_tokens_per_s(), stop_reason_name(r->stop),
                 session->n_threads(), session->backend().c_str());
  });
}

CommandRegistration reg(register_generate);

}  // namespace
}  // namespace hearth::cli
