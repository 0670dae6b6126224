/* A training run's configuration: what `hearth-cli train CONFIG.yaml` reads, what the fine-tune wizard
 * writes, and what the project store keeps verbatim (as JSON) with every run.
 *
 * Non-obvious choice: one flat struct with YAML sections mirroring it (model, method, lora, pretrain,
 * data, training, eval, checkpoint, output); `--set section.key=value` overrides use the same dotted
 * names, and to_json() writes every key with its effective value (defaults included), so a stored run
 * says exactly what it did. docs/training.md documents every key and default.
 *
 * Errors: parse_config() names the file, the line, the dotted key and what was expected (a `format`
 * error) for a malformed YAML, an unknown or repeated key, a wrong type or an out-of-range value;
 * relative paths in the file are resolved against the file's folder. A bad `--set` override is an
 * `invalid_argument` error quoting it; paths given there are relative to the current folder.
 * When output.formats is not given, a full or pretrain run gets {safetensors, gguf-f16} instead of
 * the adapter formats of the struct default.
 */
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "hearth/error.h"
#include "hearth/trainer/train-model.h"

namespace hearth::train {

enum class DataFormat { auto_detect, alpaca, sharegpt, messages, text };
const char* data_format_name(DataFormat f);  // "auto", "alpaca", "sharegpt", "messages", "text"
Expected<DataFormat> data_format_from_name(const std::string& s);

enum class ScheduleKind { constant, linear, cosine };
const char* schedule_name(ScheduleKind s);
Expected<ScheduleKind> schedule_from_name(const std::string& s);

// The names training.device and training.precision accept.
inline constexpr const char* TRAIN_DEVICE_NAMES[] = {"cpu", "cuda", "auto"};
inline constexpr const char* TRAIN_PRECISION_NAMES[] = {"bf16", "f32"};

struct PretrainShape {             // method: pretrain
  Architecture arch = Architecture::llama;
  int64_t n_layer = 4, n_embd = 128, n_head = 4, n_head_kv = 4, n_ff = 344, n_ctx = 256;
  int64_t vocab_size = 2000;       // SentencePiece vocabulary trained on the corpus
  std::string tokenizer_type = "bpe";  // SentencePiece model_type: bpe (exact in GGUF) or unigram
};

struct DataConfig {
  std::filesystem::path train;               // JSONL or .txt
  std::filesystem::path validation;          // optional separate file
  double validation_split = 0.0;             // fraction of train held out when no validation file
  DataFormat format = DataFormat::auto_detect;
  int64_t max_length = 512;                  // tokens per example; longer ones are truncated (counted)
  bool packing = false;                      // concatenate examples into full rows
  bool train_on_all = false;                 // loss on every token, not only assistant replies
  bool skip_bad_lines = true;                // false: a malformed line fails the run
};

struct TrainingConfig {
  int64_t steps = 0;          // optimizer steps; 0: derive from epochs
  double epochs = 1.0;
  int64_t batch_size = 4;     // rows per micro-batch
  int64_t grad_accum = 1;     // micro-batches per optimizer step
  double lr = 2e-4;
  ScheduleKind schedule = ScheduleKind::cosine;
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.0;  // cosine/linear decay floor, as a fraction of lr
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double max_grad_norm = 1.0;  // 0: no clipping
  uint64_t seed = 42;
  int threads = 0;             // 0: all hardware threads
  // Where the steps run (docs/training.md, "Training on a GPU"): "cpu", "cuda" or "auto". cuda and auto
  // both try GPU `gpu` and fall back to the CPU, with the reason, when it cannot serve.
  std::string device = "auto";
  int gpu = 0;                     // CUDA device index
  std::string precision = "bf16";  // GPU matrix products: "bf16" (mixed, F32 master weights) or "f32"
  bool recompute = false;
  int64_t log_every = 1;
};

struct EvalConfig {
  int64_t every = 0;                  // steps between validation losses; 0: only at the end
  int64_t max_batches = 0;            // 0: the whole validation set
  std::vector<std::string> prompts;   // sample generations at each evaluation (greedy)
  int64_t max_new_tokens = 32;
};

struct CheckpointConfig {
  int64_t every = 0;  // steps; 0: only at the end
  int64_t keep = 2;   // newest checkpoints kept
};

struct OutputConfig {
  std::filesystem::path dir;  // empty: <run folder>/output (run folder: <project folder>/runs/<UTC time>-<name>)
  std::string name;           // model version label; empty: the run name, else "<base name>-<method>"
  // Any of: peft, gguf-lora (LoRA only), safetensors (merged), gguf-f16, gguf-q8_0, gguf-q4_k.
  std::vector<std::string> formats = {"peft", "gguf-lora", "gguf-f16"};
};

struct TrainConfig {
  std::filesystem::path source;      // the YAML file (for error messages); may be empty
  std::string name;                  // run name
  std::filesystem::path model;       // base model (GGUF file or Hugging Face folder); none for pretrain
  LoraSettings lora;
  Method method = Method::lora;
  PretrainShape pretrain;
  DataConfig data;
  TrainingConfig training;
  EvalConfig eval;
  CheckpointConfig checkpoint;
  OutputConfig output;
};

// Reads a YAML file (then applies `overrides`, each "dotted.key=value").
Expected<TrainConfig> parse_config_file(const std::filesystem::path& path,
                                        const std::vector<std::string>& overrides = {});
Expected<TrainConfig> parse_config_text(const std::string& yaml, const std::filesystem::path& base_dir = {},
                                        const std::vector<std::string>& overrides = {});
// Checks cross-key consistency (a model unless pretrain; a dataset; sizes > 0 ...).
Expected<void> validate_config(const TrainConfig& c);
// Every key with its effective value, as a JSON object text (stored with the run) and back as YAML.
std::string config_to_json(const TrainConfig& c);
std::string config_to_yaml(const TrainConfig& c);

}  // namespace hearth::train
