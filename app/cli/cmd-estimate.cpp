/* `hearth-cli estimate -m MODEL [--ctx N] [--batch N] [--train CONFIG.yaml] [--json]`: the GPU memory a
 * model needs for inference (and, with --train, for that fine-tuning run), part by part, and whether it
 * fits on each GPU found (docs/gpu.md, "GPU memory estimate").
 *
 * Non-obvious choice: "fits" compares with the card's TOTAL memory, not what is free right now: the
 * estimate already carries the CUDA context allowance, and free memory changes from second to second
 * (the desktop program and the runner check free memory themselves when they allocate).
 */
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "command.h"
#include "hearth/backend.h"
#include "hearth/gpu-estimate.h"
#include "hearth/model.h"
#include "hearth/trainer/config.h"
#include "hearth/trainer/estimate.h"
#include "hearth/trainer/train-model.h"

namespace hearth::cli {
namespace {

constexpr int64_t DEFAULT_CTX_WHEN_UNKNOWN = 2048;  // as estimate_gpu_inference() when the file says nothing

struct EstimateArgs {
  std::string model, train_config;
  int64_t ctx = 0;
  int64_t batch = 512;
  bool json = false;
};

std::string gib(uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", double(n) / double(1ull << 30));
  return buf;
}

void print_row(const char* name, uint64_t bytes, const char* note = "") {
  std::printf("  %-14s %12s%s%s\n", name, gib(bytes).c_str(), *note ? "  " : "", note);
}

void run_estimate(const EstimateArgs& a) {
  std::optional<train::TrainConfig> config;
  if (!a.train_config.empty()) config = unwrap(train::parse_config_file(a.train_config));
  std::string model_path = a.model;
  if (model_path.empty() && config) model_path = config->model.string();
  if (model_path.empty()) throw CliError("estimate: give a model (-m MODEL, or a --train configuration naming one)");
  if (a.ctx < 0) throw CliError("estimate: --ctx must be 0 (the model's training context) or positive");
  if (a.batch < 1) throw CliError("estimate: --batch must be at least 1");

  const Model m = unwrap(open_model(model_path));
  const ModelDesc& d = m.desc();
  const int64_t ctx = a.ctx > 0 ? a.ctx : (d.params.n_ctx_train > 0 ? d.params.n_ctx_train : DEFAULT_CTX_WHEN_UNKNOWN);
  const int64_t batch = std::min(a.batch, ctx);
  const GpuMemoryEstimate inf = estimate_gpu_inference(d, ctx, batch);
  std::optional<train::MemoryEstimate> tr;
  uint64_t tr_least = 0;  // the total with attention recomputed (the trainer's choice when tr does not fit)
  if (config) {
    tr = train::estimate_gpu_training_memory(d.params, d.n_params, d.file_size, *config);
    train::TrainConfig rc = *config;
    rc.training.recompute = true;
    tr_least = train::estimate_gpu_training_memory(d.params, d.n_params, d.file_size, rc).total;
  }
  // "fits", "fits by recomputing attention" or "does not fit" on a GPU of `mem` bytes.
  auto training_verdict = [&](uint64_t mem) -> std::string {
    if (tr->total <= mem) return "fits";
    return tr_least <= mem ? "fits by recomputing attention" : "does not fit";
  };
  const BackendInfo b = query_backends();

  if (a.json) {
    nlohmann::json j;
    j["model"] = model_path;
    j["n_ctx"] = ctx;
    j["n_batch"] = batch;
    j["inference"] = nlohmann::json{{"weights", inf.weights}, {"kv_cache", inf.kv_cache},
                                    {"activations", inf.activations}, {"dequant", inf.dequant},
                                    {"overhead", inf.overhead}, {"total", inf.total}};
    if (tr)
      j["training"] = nlohmann::json{{"method", train::method_name(config->method)},
                       {"batch_size", config->training.batch_size},
                       {"max_length", config->data.max_length},
                       {"trainable_params", tr->trainable_params},
                       {"base_weights", tr->base_weights},
                       {"parameters", tr->parameters},
                       {"gradients", tr->gradients},
                       {"optimizer", tr->optimizer},
                       {"activations", tr->activations},
                       {"overhead", tr->overhead},
                       {"total", tr->total},
                       {"total_recomputing_attention", tr_least}};
    j["cuda_compiled"] = b.cuda_compiled;
    j["cuda_status"] = b.cuda_status;
    j["gpus"] = nlohmann::json::array();
    for (const GpuInfo& g : b.gpus) {
      nlohmann::json gj = nlohmann::json{{"index", g.index}, {"name", g.name}, {"memory_bytes", g.total_memory},
                           {"fits_inference", inf.total <= g.total_memory}};
      if (tr) {
        gj["fits_training"] = tr->total <= g.total_memory;
        gj["fits_training_recomputing_attention"] = tr_least <= g.total_memory;
      }
      j["gpus"].push_back(gj);
    }
    std::cout << j.dump(2) << "\n";
    return;
  }

  std::printf("model: %s (%s parameters)\n", d.name.empty() ? model_path.c_str() : d.name.c_str(),
              format_param_count(d.n_params).c_str());
  std::printf("GPU inference at %lld context, chunks of %lld tokens:\n", (long long)ctx, (long long)batch);
  print_row("weights", inf.weights);
  print_row("kv cache", inf.kv_cache, "F16");
  print_row("activations", inf.activations);
  print_row("dequant", inf.dequant, inf.dequant ? "BF16 copy of the largest quantized matrix" : "");
  print_row("overhead", inf.overhead, "allowance: CUDA context + cuBLAS workspace");
  print_row("total", inf.total);
  if (tr) {
    std::printf("GPU training (%s, batch %lld x %lld tokens, %s trainable):\n", train::method_name(config->method),
                (long long)config->training.batch_size, (long long)config->data.max_length,
                format_param_count(tr->trainable_params).c_str());
    const bool bf16 = config->training.precision != "f32", lora = config->method == train::Method::lora;
    print_row("base weights", tr->base_weights,
              lora ? (bf16 ? "as stored, + BF16 classifier" : "dequantized to F32") : (bf16 ? "BF16 copies" : ""));
    print_row("parameters", tr->parameters, lora && bf16 ? "F32, + BF16 copies" : "F32");
    print_row("gradients", tr->gradients, "F32");
    print_row("optimizer", tr->optimizer, "AdamW, 2 x F32");
    print_row("activations", tr->activations,
              config->training.recompute ? "F32, attention of one layer (recomputed)" : "F32, every layer");
    print_row("overhead", tr->overhead, "allowance");
    print_row("total", tr->total);
    if (tr_least < tr->total) print_row("least", tr_least, "recomputing attention in backward");
  }
  if (b.gpus.empty()) {
    std::printf("no GPU: %s\n", b.cuda_status.c_str());
    return;
  }
  for (const GpuInfo& g : b.gpus) {
    std::printf("gpu %d: %s (%s): inference %s", g.index, g.name.c_str(), gib(g.total_memory).c_str(),
                inf.total <= g.total_memory ? "fits" : "does not fit");
    if (tr) std::printf(", training %s", training_verdict(g.total_memory).c_str());
    std::printf("\n");
  }
}

void register_estimate(CLI::App& app) {
  auto* sub = app.add_subcommand("estimate", "GPU memory a model needs for inference (and a training run)");
  auto a = std::make_shared<EstimateArgs>();
  sub->add_option("-m,--model", a->model, "Model file (.gguf) or Hugging Face folder");
  sub->add_option("--ctx", a->ctx, "Context positions (default: the model's training context)");
  sub->add_option("--batch", a->batch, "Tokens per prompt chunk (default 512)");
  sub->add_option("--train", a->train_config, "Training configuration (YAML) to estimate as well");
  sub->add_flag("--json", a->json, "Print JSON (bytes)");
  sub->callback([a] { run_estimate(*a); });
}

CommandRegistration reg(register_estimate);

}  // namespace
}  // namespace hearth::cli
