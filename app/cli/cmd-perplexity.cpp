/* `hearth-cli perplexity -m MODEL -f TEXTFILE [--ctx N]`: perplexity as llama.cpp's perplexity tool
 * computes it. The text is tokenized once (with BOS when the model adds it) and cut into chunks of
 * n_ctx tokens; each chunk is evaluated from an empty cache with its first token replaced by BOS, and
 * only the second half of each chunk is scored (every scored token has at least n_ctx/2 of context).
 * Prints "[i]running-ppl" per chunk on stderr and, last on stdout, `perplexity: X`.
 */
#include <cmath>
#include <iostream>

#include "infer-common.h"

namespace hearth::cli {
namespace {

void register_perplexity(CLI::App& app) {
  auto* sub = app.add_subcommand("perplexity", "Perplexity of a model on a text file (as llama.cpp computes it)");
  struct Opts {
    std::string model, file;
    int64_t ctx = 512;
    int threads = 0;
    int64_t chunks = -1;
    DeviceOption device;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("-m,--model", o->model, "Model: a .gguf file or a Hugging Face folder")->required();
  sub->add_option("-f,--file", o->file, "Text file")->required();
  sub->add_option("-c,--ctx", o->ctx, "Tokens per chunk (default 512)");
  sub->add_option("-t,--threads", o->threads, "Threads (0: all)");
  sub->add_option("--chunks", o->chunks, "Score at most this many chunks (-1: all)");
  add_device_options(sub, o->device);
  sub->callback([o] {
    if (o->ctx < 4) throw CliError("--ctx must be at least 4");
    std::string text = read_file_or_throw(o->file);
    LoadedModel lm = load_model_or_throw(o->model);
    auto toks = unwrap(lm.tokenizer.encode(text, true, false));
    int64_t n_chunk = int64_t(toks.size()) / o->ctx;
    if (o->chunks >= 0) n_chunk = std::min(n_chunk, o->chunks);
    if (n_chunk < 1)
      throw CliError("'" + o->file + "' has " + std::to_string(toks.size()) + " tokens, fewer than one chunk of " +
                     std::to_string(o->ctx) + " (use a longer text or a smaller --ctx)");
    auto session = make_session_or_throw(*lm.model, o->ctx, o->threads, KvType::f16, nullptr, o->device);
    const int64_t V = session->n_vocab(), first = o->ctx / 2;
    double nll = 0;
    int64_t count = 0;
    std::vector<float> logits;
    for (int64_t c = 0; c < n_chunk; ++c) {
      std::vector<TokenId> batch(toks.begin() + c * o->ctx, toks.begin() + (c + 1) * o->ctx);
      if (lm.tokenizer.add_bos() && lm.tokenizer.bos_id()) batch[0] = *lm.tokenizer.bos_id();
      session->reset();
      unwrap(session->eval(batch, &logits, true));
      for (int64_t j = first; j < o->ctx - 1; ++j) {
        const float* row = logits.data() + j * V;
        double mx = row[0];
        for (int64_t v = 1; v < V; ++v) mx = std::max(mx, double(row[v]));
        double sum = 0;
        for (int64_t v = 0; v < V; ++v) sum += std::exp(double(row[v]) - mx);
        TokenId next = toks[size_t(c * o->ctx + j + 1)];
        nll += std::log(sum) + mx - double(row[next]);
        ++count;
      }
      std::fprintf(stderr, "[%lld]%.4f%s", (long long)(c + 1), std::exp(nll / double(count)),
                   c + 1 == n_chunk ? "\n" : ",");
    }
    double ppl = std::exp(nll / double(count));
    std::printf("chunks: %lld, ctx: %lld, scored tokens: %lld\nperplexity: %.4f\n", (long long)n_chunk,
                (long long)o->ctx, (long long)count, ppl);
  });
}

CommandRegistration reg(register_perplexity);

}  // namespace
}  // namespace hearth::cli
