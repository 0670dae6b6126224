/* Unit tests of the training configuration: defaults, every key of every section, error messages
 * (unknown key, wrong type, malformed YAML: file, dotted key and line), --set overrides, relative
 * paths, validation, and YAML/JSON output that reads back to the same configuration.
 *
 * Non-obvious choice: "the same configuration" is checked on config_to_json() text (every key with
 * its effective value) plus the raw bits of the floating-point fields, so a number printed with too
 * few digits fails even where JSON would round it back.
 */
#include <gtest/gtest.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "hearth/trainer/config.h"
#include "test-util.h"

using namespace hearth;
using namespace hearth::train;
namespace fs = std::filesystem;

namespace {

TrainConfig must_parse(const std::string& yaml, const fs::path& base = {}, const std::vector<std::string>& ov = {}) {
  auto c = parse_config_text(yaml, base, ov);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().to_string());
  return c ? *c : TrainConfig{};
}

Error must_fail(const std::string& yaml, const std::vector<std::string>& ov = {}) {
  auto c = parse_config_text(yaml, {}, ov);
  EXPECT_FALSE(c.has_value()) << "parsed:\n" << yaml;
  return c ? Error{} : c.error();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

const char* FULL = R"(name: my-run
model: /models/base.gguf
method: full
lora:
  rank: 4
  alpha: 8.5
  dropout: 0.05
  targets: [q, v]
pretrain:
  arch: qwen3
  n_layer: 2
  n_embd: 64
  n_head: 8
  n_head_kv: 2
  n_ff: 200
  n_ctx: 128
  vocab_size: 500
  tokenizer_type: bpe
data:
  train: /data/train.jsonl
  validation: /data/val.jsonl
  validation_split: 0.1
  format: sharegpt
  max_length: 256
  packing: true
  train_on_all: true
  skip_bad_lines: false
training:
  steps: 30
  epochs: 2.5
  batch_size: 3
  grad_accum: 2
  lr: 1.0e-3
  schedule: linear
  warmup_steps: 5
  min_lr_ratio: 0.1
  weight_decay: 0.01
  beta1: 0.8
  beta2: 0.95
  eps: 1.0e-6
  max_grad_norm: 0.5
  seed: 18446744073709551615
  threads: 2
  device: cuda
  gpu: 1
  precision: f32
  recompute: true
  log_every: 5
eval:
  every: 10
  max_batches: 4
  prompts: ["Hello", "What is 2+2?"]
  max_new_tokens: 16
checkpoint:
  every: 15
  keep: 3
output:
  dir: /out
  name: v2
  formats: [safetensors, gguf-q8_0]
)";

}  // namespace

TEST(Config, EmptyTextGivesTheDocumentedDefaults) {
  TrainConfig c = must_parse("");
  EXPECT_EQ(config_to_json(c), config_to_json(TrainConfig{}));
  EXPECT_EQ(c.method, Method::lora);
  EXPECT_EQ(c.lora.rank, 8);
  EXPECT_EQ(c.training.lr, 2e-4);
  EXPECT_EQ(c.training.schedule, ScheduleKind::cosine);
  EXPECT_EQ(c.checkpoint.keep, 2);
  EXPECT_EQ(c.output.formats, (std::vector<std::string>{"peft", "gguf-lora", "gguf-f16"}));
  // The GPU when there is one, in BF16 mixed precision, on device 0.
  EXPECT_EQ(c.training.device, "auto");
  EXPECT_EQ(c.training.gpu, 0);
  EXPECT_EQ(c.training.precision, "bf16");
  // Empty sections and comments are fine too.
  EXPECT_EQ(config_to_json(must_parse("# nothing\nlora:\ntraining:\n")), config_to_json(TrainConfig{}));
}

TEST(Config, EveryKeyOfEverySectionIsRead) {
  TrainConfig c = must_parse(FULL);
  EXPECT_EQ(c.name, "my-run");
  EXPECT_EQ(c.model, fs::path("/models/base.gguf"));
  EXPECT_EQ(c.method, Method::full);
  EXPECT_EQ(c.lora.rank, 4);
  EXPECT_EQ(c.lora.alpha, 8.5f);
  EXPECT_EQ(c.lora.dropout, 0.05f);
  EXPECT_EQ(c.lora.targets, (std::vector<std::string>{"q", "v"}));
  EXPECT_EQ(c.pretrain.arch, Architecture::qwen3);
  EXPECT_EQ(c.pretrain.n_layer, 2);
  EXPECT_EQ(c.pretrain.n_embd, 64);
  EXPECT_EQ(c.pretrain.n_head, 8);
  EXPECT_EQ(c.pretrain.n_head_kv, 2);
  EXPECT_EQ(c.pretrain.n_ff, 200);
  EXPECT_EQ(c.pretrain.n_ctx, 128);
  EXPECT_EQ(c.pretrain.vocab_size, 500);
  EXPECT_EQ(c.pretrain.tokenizer_type, "bpe");
  EXPECT_EQ(c.data.train, fs::path("/data/train.jsonl"));
  EXPECT_EQ(c.data.validation, fs::path("/data/val.jsonl"));
  EXPECT_EQ(c.data.validation_split, 0.1);
  EXPECT_EQ(c.data.format, DataFormat::sharegpt);
  EXPECT_EQ(c.data.max_length, 256);
  EXPECT_TRUE(c.data.packing);
  EXPECT_TRUE(c.data.train_on_all);
  EXPECT_FALSE(c.data.skip_bad_lines);
  EXPECT_EQ(c.training.steps, 30);
  EXPECT_EQ(c.training.epochs, 2.5);
  EXPECT_EQ(c.training.batch_size, 3);
  EXPECT_EQ(c.training.grad_accum, 2);
  EXPECT_EQ(c.training.lr, 1e-3);
  EXPECT_EQ(c.training.schedule, ScheduleKind::linear);
  EXPECT_EQ(c.training.warmup_steps, 5);
  EXPECT_EQ(c.training.min_lr_ratio, 0.1);
  EXPECT_EQ(c.training.weight_decay, 0.01);
  EXPECT_EQ(c.training.beta1, 0.8);
  EXPECT_EQ(c.training.beta2, 0.95);
  EXPECT_EQ(c.training.eps, 1e-6);
  EXPECT_EQ(c.training.max_grad_norm, 0.5);
  EXPECT_EQ(c.training.seed, UINT64_MAX);
  EXPECT_EQ(c.training.threads, 2);
  EXPECT_EQ(c.training.device, "cuda");
  EXPECT_EQ(c.training.gpu, 1);
  EXPECT_EQ(c.training.precision, "f32");
  EXPECT_TRUE(c.training.recompute);
  EXPECT_EQ(c.training.log_every, 5);
  EXPECT_EQ(c.eval.every, 10);
  EXPECT_EQ(c.eval.max_batches, 4);
  EXPECT_EQ(c.eval.prompts, (std::vector<std::string>{"Hello", "What is 2+2?"}));
  EXPECT_EQ(c.eval.max_new_tokens, 16);
  EXPECT_EQ(c.checkpoint.every, 15);
  EXPECT_EQ(c.checkpoint.keep, 3);
  EXPECT_EQ(c.output.dir, fs::path("/out"));
  EXPECT_EQ(c.output.name, "v2");
  EXPECT_EQ(c.output.formats, (std::vector<std::string>{"safetensors", "gguf-q8_0"}));
}

TEST(Config, FormatsDefaultToWhatTheMethodCanWrite) {
  EXPECT_EQ(must_parse("method: lora\n").output.formats, (std::vector<std::string>{"peft", "gguf-lora", "gguf-f16"}));
  EXPECT_EQ(must_parse("method: full\n").output.formats, (std::vector<std::string>{"safetensors", "gguf-f16"}));
  EXPECT_EQ(must_parse("", {}, {"method=pretrain"}).output.formats,
            (std::vector<std::string>{"safetensors", "gguf-f16"}));
  // Given explicitly, they are kept (and validation then names the problem).
  EXPECT_EQ(must_parse("method: full\noutput:\n  formats: [peft]\n").output.formats,
            (std::vector<std::string>{"peft"}));
}

TEST(Config, JsonHasEveryKeyWithItsEffectiveValue) {
  TrainConfig c = must_parse(FULL);
  auto j = nlohmann::json::parse(config_to_json(c));
  EXPECT_EQ(j["name"], "my-run");
  EXPECT_EQ(j["method"], "full");
  EXPECT_EQ(j["model"], "/models/base.gguf");
  EXPECT_EQ(j["lora"]["alpha"].get<double>(), 8.5);
  EXPECT_EQ(j["lora"]["dropout"].get<double>(), 0.05);  // shortest form of the float, not 0.0500000007
  EXPECT_EQ(j["pretrain"]["arch"], "qwen3");
  EXPECT_EQ(j["data"]["format"], "sharegpt");
  EXPECT_EQ(j["training"]["schedule"], "linear");
  EXPECT_EQ(j["training"]["seed"].get<uint64_t>(), UINT64_MAX);
  EXPECT_EQ(j["training"]["device"], "cuda");
  EXPECT_EQ(j["training"]["gpu"], 1);
  EXPECT_EQ(j["training"]["precision"], "f32");
  EXPECT_EQ(j["output"]["formats"], nlohmann::json({"safetensors", "gguf-q8_0"}));
  // Every key of the FULL example is in the JSON, and nothing else.
  size_t keys = 0;
  for (auto& [k, v] : j.items()) keys += v.is_object() ? v.size() : 1;
  size_t lines = 0;
  for (const char* p = FULL; *p; ++p) lines += *p == '\n';
  const size_t section_lines = 7;  // lora: pretrain: data: training: eval: checkpoint: output:
  EXPECT_EQ(keys, lines - section_lines);
}

TEST(Config, UnknownKeyNamesFileKeyAndLine) {
  auto dir = hearth::test::scratch("config-unknown");
  hearth::test::write_text(dir / "run.yaml", "name: x\ntraining:\n  steps: 3\n  lrr: 0.1\n");
  auto c = parse_config_file(dir / "run.yaml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::format);
  EXPECT_TRUE(contains(c.error().message, (dir / "run.yaml").string() + ":4:")) << c.error().message;
  EXPECT_TRUE(contains(c.error().message, "unknown key 'training.lrr'")) << c.error().message;
  EXPECT_TRUE(contains(c.error().hint, "training.lr")) << c.error().hint;

  Error top = must_fail("nme: x\n");
  EXPECT_TRUE(contains(top.message, ":1: unknown key 'nme'")) << top.message;
  EXPECT_TRUE(contains(top.hint, "'name'")) << top.hint;
  Error far = must_fail("data:\n  zzzzzzzz: 1\n");
  EXPECT_TRUE(contains(far.hint, "data.train")) << far.hint;  // lists the section's keys
}

TEST(Config, WrongTypesNameKeyLineAndExpectation) {
  struct Case {
    const char* yaml;
    const char* key;
    const char* line;
    const char* expected;
  };
  const Case cases[] = {
      {"training:\n  batch_size: four\n", "training.batch_size", ":2:", "expected an integer, got 'four'"},
      {"training:\n  lr: fast\n", "training.lr", ":2:", "expected a number"},
      {"training:\n  steps: 2.5\n", "training.steps", ":2:", "expected an integer"},
      {"training:\n  seed: -1\n", "training.seed", ":2:", "non-negative integer"},
      {"data:\n  packing: maybe\n", "data.packing", ":2:", "true or false"},
      {"lora:\n  targets: {q: 1}\n", "lora.targets", ":2:", "a list of strings"},
      {"eval:\n  prompts: [[a]]\n", "eval.prompts", ":2:", "a list of strings"},
      {"name: [a, b]\n", "name", ":1:", "expected a string"},
      {"\n\nmethod: sft\n", "method", ":3:", "unknown method 'sft'"},
      {"training:\n  schedule: step\n", "training.schedule", ":2:", "unknown schedule 'step'"},
      {"pretrain:\n  arch: gpt2\n", "pretrain.arch", ":2:", "unknown architecture 'gpt2'"},
      {"lora:\n  rank: 0\n", "lora.rank", ":2:", "must be >= 1"},
      {"lora:\n  dropout: 1\n", "lora.dropout", ":2:", "must be in [0, 1)"},
      {"output:\n  formats: [gguf-q5]\n", "output.formats", ":2:", "unknown entry 'gguf-q5'"},
  };
  for (const auto& k : cases) {
    Error e = must_fail(k.yaml);
    EXPECT_EQ(e.code, ErrorCode::format) << k.yaml;
    EXPECT_TRUE(contains(e.message, k.key)) << e.message;
    EXPECT_TRUE(contains(e.message, k.line)) << e.message;
    EXPECT_TRUE(contains(e.message, k.expected)) << e.message;
  }
  Error sec = must_fail("lora: 5\n");
  EXPECT_TRUE(contains(sec.message, "'lora' must be a section")) << sec.message;
  Error dup = must_fail("training:\n  lr: 1\n  lr: 2\n");
  EXPECT_TRUE(contains(dup.message, ":3: duplicate key 'training.lr'")) << dup.message;
  Error top = must_fail("- a\n- b\n");
  EXPECT_TRUE(contains(top.message, "expected a mapping")) << top.message;
}

TEST(Config, MalformedYamlNamesFileAndLine) {
  auto dir = hearth::test::scratch("config-malformed");
  hearth::test::write_text(dir / "bad.yaml", "name: x\ntraining:\n  lr: [1, 2\n  steps: 3\n");
  auto c = parse_config_file(dir / "bad.yaml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::format);
  EXPECT_TRUE(contains(c.error().message, (dir / "bad.yaml").string() + ":")) << c.error().message;
  EXPECT_TRUE(contains(c.error().message, "malformed YAML")) << c.error().message;
  auto missing = parse_config_file(dir / "nope.yaml");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
}

TEST(Config, RelativePathsResolveAgainstTheFileFolder) {
  auto dir = hearth::test::scratch("config-paths");
  fs::create_directories(dir / "cfg");
  hearth::test::write_text(dir / "cfg" / "run.yaml",
                           "model: ../models/m.gguf\ndata:\n  train: data/train.jsonl\n  validation: /abs/v.jsonl\n"
                           "output:\n  dir: out\n");
  auto c = parse_config_file(dir / "cfg" / "run.yaml");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->model, (dir / "models" / "m.gguf").lexically_normal());
  EXPECT_EQ(c->data.train, dir / "cfg" / "data" / "train.jsonl");
  EXPECT_EQ(c->data.validation, fs::path("/abs/v.jsonl"));
  EXPECT_EQ(c->output.dir, dir / "cfg" / "out");
  EXPECT_EQ(c->source, dir / "cfg" / "run.yaml");
  // From text, with a base folder; without one they stay as written.
  EXPECT_EQ(must_parse("model: m.gguf\n", "/base").model, fs::path("/base/m.gguf"));
  EXPECT_EQ(must_parse("model: m.gguf\n").model, fs::path("m.gguf"));
}

TEST(Config, OverridesApplyAfterTheFile) {
  TrainConfig c = must_parse(FULL, {},
                             {"training.lr=5e-5", "lora.targets=[q, k, gate]", "eval.prompts=[\"a, b\", c]",
                              "name=other", "training.recompute=false", "method = lora", "output.formats=[]",
                              "data.validation="});
  EXPECT_EQ(c.training.lr, 5e-5);
  EXPECT_EQ(c.lora.targets, (std::vector<std::string>{"q", "k", "gate"}));
  EXPECT_EQ(c.eval.prompts, (std::vector<std::string>{"a, b", "c"}));
  EXPECT_EQ(c.name, "other");
  EXPECT_FALSE(c.training.recompute);
  EXPECT_EQ(c.method, Method::lora);
  EXPECT_TRUE(c.output.formats.empty());
  EXPECT_TRUE(c.data.validation.empty());
  EXPECT_EQ(c.training.steps, 30);  // untouched keys keep the file's values
  // A relative path on the command line is relative to the current folder.
  TrainConfig r = must_parse("", "/elsewhere", {"data.train=x.jsonl"});
  EXPECT_EQ(r.data.train, fs::current_path() / "x.jsonl");

  Error unknown = must_fail("", {"training.lrr=1"});
  EXPECT_EQ(unknown.code, ErrorCode::invalid_argument);
  EXPECT_TRUE(contains(unknown.message, "--set training.lrr=1")) << unknown.message;
  EXPECT_TRUE(contains(unknown.message, "unknown key 'training.lrr'")) << unknown.message;
  Error type = must_fail("", {"training.batch_size=big"});
  EXPECT_TRUE(contains(type.message, "training.batch_size: expected an integer")) << type.message;
  Error noeq = must_fail("", {"training.lr"});
  EXPECT_TRUE(contains(noeq.message, "expected key=value")) << noeq.message;
  Error section = must_fail("", {"lora=3"});
  EXPECT_TRUE(contains(section.message, "is a section")) << section.message;
}

TEST(Config, DeviceKeysAcceptTheirNamesOnly) {
  TrainConfig c = must_parse("", {}, {"training.device=cpu", "training.gpu=3", "training.precision=f32"});
  EXPECT_EQ(c.training.device, "cpu");
  EXPECT_EQ(c.training.gpu, 3);
  EXPECT_EQ(c.training.precision, "f32");
  EXPECT_EQ(must_parse("training: {device: auto, precision: bf16}\n").training.device, "auto");

  Error dev = must_fail("training:\n  device: gpu\n");
  EXPECT_EQ(dev.code, ErrorCode::format);
  EXPECT_TRUE(contains(dev.message, "<yaml>:2: training.device must be one of cpu, cuda, auto (got 'gpu')"))
      << dev.message;
  Error upper = must_fail("", {"training.device=CUDA"});
  EXPECT_EQ(upper.code, ErrorCode::invalid_argument);
  EXPECT_TRUE(contains(upper.message, "training.device must be one of")) << upper.message;
  Error prec = must_fail("", {"training.precision=fp16"});
  EXPECT_TRUE(contains(prec.message, "training.precision must be one of bf16, f32 (got 'fp16')")) << prec.message;
  Error gpu = must_fail("", {"training.gpu=-1"});
  EXPECT_TRUE(contains(gpu.message, "training.gpu must be >= 0 (got -1)")) << gpu.message;
  Error gpu_type = must_fail("", {"training.gpu=first"});
  EXPECT_TRUE(contains(gpu_type.message, "training.gpu: expected an integer")) << gpu_type.message;

  // A config built in code is checked too.
  TrainConfig v;
  v.model = "/m.gguf";
  v.data.train = "/d.jsonl";
  v.training.device = "tpu";
  auto r = validate_config(v);
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error().message, "training.device must be one of cpu, cuda, auto (got 'tpu')"))
      << r.error().message;
  v.training.device = "cuda";
  v.training.precision = "f16";
  r = validate_config(v);
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error().message, "training.precision must be one of bf16, f32")) << r.error().message;

  // Written out and read back.
  v.training.precision = "f32";
  v.training.gpu = 2;
  TrainConfig back = must_parse(config_to_yaml(v));
  EXPECT_EQ(back.training.device, "cuda");
  EXPECT_EQ(back.training.gpu, 2);
  EXPECT_EQ(back.training.precision, "f32");
}

TEST(Config, YamlOutputReadsBackToTheSameConfig) {
  TrainConfig c = must_parse(FULL);
  c.name = "quotes \" and 'single', colon: yes # not a comment\nnew line \xC3\xA9";
  c.output.name = "yes";                   // would be a bool if written unquoted
  c.eval.prompts = {"", "[not a list]", "- dash", "null"};
  c.lora.targets = {"down"};
  c.lora.alpha = 0.3f;
  c.lora.dropout = 0.1f;
  c.training.lr = 3.0000000000000004e-4;   // needs 17 digits
  c.training.eps = 1e-300;
  c.training.min_lr_ratio = 1.0 / 3.0;
  c.model = "relative/model dir/m.gguf";
  c.output.formats = {};
  const std::string yaml = config_to_yaml(c);
  TrainConfig back = must_parse(yaml);
  EXPECT_EQ(config_to_json(back), config_to_json(c)) << yaml;
  EXPECT_EQ(back.name, c.name);
  EXPECT_EQ(back.eval.prompts, c.eval.prompts);
  EXPECT_EQ(back.output.name, "yes");
  EXPECT_EQ(std::memcmp(&back.training.lr, &c.training.lr, sizeof(double)), 0);
  EXPECT_EQ(std::memcmp(&back.training.min_lr_ratio, &c.training.min_lr_ratio, sizeof(double)), 0);
  EXPECT_EQ(back.lora.alpha, c.lora.alpha);
  EXPECT_EQ(back.training.seed, c.training.seed);
  // Defaults round-trip too.
  EXPECT_EQ(config_to_json(must_parse(config_to_yaml(TrainConfig{}))), config_to_json(TrainConfig{}));
}

TEST(Config, ValidationExplainsWhatIsWrong) {
  TrainConfig ok;
  ok.model = "/m.gguf";
  ok.data.train = "/d.jsonl";
  EXPECT_TRUE(validate_config(ok)) << validate_config(ok).error().to_string();

  auto expect_invalid = [&](TrainConfig c, const std::string& part) {
    auto r = validate_config(c);
    ASSERT_FALSE(r) << part;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
    EXPECT_TRUE(contains(r.error().message, part)) << r.error().message;
  };
  TrainConfig c = ok;
  c.lora.rank = 0;
  expect_invalid(c, "lora.rank must be >= 1");
  c = ok;
  c.lora.dropout = 1.0f;
  expect_invalid(c, "lora.dropout must be in [0, 1)");
  c = ok;
  c.lora.targets = {"q", "attn"};
  expect_invalid(c, "lora.targets has unknown entry 'attn'");
  c = ok;
  c.training.lr = 0;
  expect_invalid(c, "training.lr must be a number > 0");
  c = ok;
  c.training.batch_size = 0;
  expect_invalid(c, "training.batch_size must be >= 1");
  c = ok;
  c.training.min_lr_ratio = 1.5;
  expect_invalid(c, "training.min_lr_ratio must be in [0, 1]");
  c = ok;
  c.output.formats = {"gguf-f16", "gguf-f16"};
  expect_invalid(c, "output.formats names 'gguf-f16' twice");
  c = ok;
  c.output.formats = {"onnx"};
  expect_invalid(c, "output.formats has unknown entry 'onnx'");
  c = ok;
  c.method = Method::full;
  expect_invalid(c, "output.formats: 'peft' is for LoRA adapters, but method is full");
  c.output.formats = {"safetensors", "gguf-q4_k"};
  EXPECT_TRUE(validate_config(c));
  c = ok;
  c.model.clear();
  expect_invalid(c, "model is required for method lora");
  c = ok;
  c.data.train.clear();
  expect_invalid(c, "data.train is required");
  c = ok;
  c.method = Method::pretrain;
  c.model.clear();
  c.output.formats = {"gguf-f16"};
  EXPECT_TRUE(validate_config(c)) << validate_config(c).error().to_string();
  c.pretrain.n_head = 3;
  c.pretrain.n_head_kv = 3;
  expect_invalid(c, "pretrain.n_embd (128) must be a multiple of pretrain.n_head (3)");
  c.pretrain.n_head = 4;
  c.pretrain.n_head_kv = 3;
  expect_invalid(c, "pretrain.n_head (4) must be a multiple of pretrain.n_head_kv (3)");
  // The source file names the message when known.
  c = ok;
  c.source = "/x/run.yaml";
  c.training.grad_accum = 0;
  expect_invalid(c, "/x/run.yaml: training.grad_accum must be >= 1");
}
