/* The training loop (trainer.h): model and data in, optimizer steps with logging, evaluation, sample
 * generations and checkpoints, then the exported model.
 *
 * Non-obvious choices:
 * - A stop request between micro-batches rewinds the data iterator and the dropout counter to where the
 *   current optimizer step began before writing the checkpoint, so the checkpoint describes the last
 *   completed step exactly and a resume repeats the interrupted step bit for bit.
 * - Pretraining keeps the SentencePiece tokenizer it trained as a vocabulary-only GGUF in
 *   `run_dir`/tokenizer/vocab.gguf; a resumed pretraining run reads it back instead of training a new one,
 *   so the token ids of the data cannot change under a checkpoint.
 * - Sample generations use the engine's own forward pass: the current weights are written as an F32
 *   GGUF into the run folder, generated from greedily, and removed. It costs a file write per evaluation
 *   and only happens when the configuration lists prompts.
 * - On a GPU (device-trainer.h) the loop is the same loop: the same batches, gradient scale and dropout
 *   seeds, with the step's three calls (forward_backward, clipping, AdamW) made on the device. The host
 *   TrainModel and AdamW stay the run's record: the optimizer's step count advances with every device
 *   step, and weights and moments are downloaded only when the host needs them (checkpoint, sample
 *   generations, export). Failing to set up the GPU is never an error: the CPU trains, and says why.
 */
#include "hearth/trainer/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <thread>

#include <nlohmann/json.hpp>

#include "hearth/chat-template.h"
#include "hearth/generate.h"
#include "hearth/gguf.h"
#include "hearth/inference.h"
#include "hearth/model-writer.h"
#include "hearth/model.h"
#include "hearth/tokenizer.h"
#include "hearth/trainer/checkpoint.h"
#include "hearth/trainer/optim.h"
#include "hearth/trainer/train-model.h"

#include "device-trainer.h"

namespace hearth::train {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

void say(const TrainCallbacks& cb, const std::string& s) {
  if (cb.on_message) cb.on_message(s);
}

// A vocabulary-only GGUF holding the tokenizer (pretraining): the engine's Tokenizer reads it, and a
// resumed run reads the same ids back.
Expected<void> write_vocab_gguf(const TokenizerData& t, const fs::path& path) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", t.model);
  w.set_string_array("tokenizer.ggml.tokens", t.tokens);
  if (!t.scores.empty()) w.set_f32_array("tokenizer.ggml.scores", t.scores);
  if (!t.token_types.empty()) w.set_i32_array("tokenizer.ggml.token_type", t.token_types);
  if (t.bos_id) w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(*t.bos_id));
  if (t.eos_id) w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(*t.eos_id));
  if (t.unk_id) w.set_u32("tokenizer.ggml.unknown_token_id", uint32_t(*t.unk_id));
  if (t.pad_id) w.set_u32("tokenizer.ggml.padding_token_id", uint32_t(*t.pad_id));
  if (t.add_bos) w.set_bool("tokenizer.ggml.add_bos_token", *t.add_bos);
  if (t.add_eos) w.set_bool("tokenizer.ggml.add_eos_token", *t.add_eos);
  return w.write(path);
}

Expected<TokenizerData> read_vocab_gguf(const fs::path& path) {
  HEARTH_TRY(GgufFile f, GgufFile::open(path));
  TokenizerData t;
  t.model = f.get_string("tokenizer.ggml.model").value_or("llama");
  auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (!tokens || tokens->empty())
    return make_error(ErrorCode::format, "'" + path.string() + "' holds no tokenizer.ggml.tokens");
  t.tokens = std::move(*tokens);
  if (auto s = f.get_float_array("tokenizer.ggml.scores")) t.scores = std::move(*s);
  if (auto ty = f.get_int_array("tokenizer.ggml.token_type"))
    for (int64_t v : *ty) t.token_types.push_back(int32_t(v));
  t.bos_id = f.get_int("tokenizer.ggml.bos_token_id");
  t.eos_id = f.get_int("tokenizer.ggml.eos_token_id");
  t.unk_id = f.get_int("tokenizer.ggml.unknown_token_id");
  t.pad_id = f.get_int("tokenizer.ggml.padding_token_id");
  t.add_bos = f.get_bool("tokenizer.ggml.add_bos_token");
  t.add_eos = f.get_bool("tokenizer.ggml.add_eos_token");
  return t;
}

ModelParams pretrain_params(const PretrainShape& s, int64_t n_vocab) {
  ModelParams p;
  p.arch = s.arch;
  p.n_layer = s.n_layer;
  p.n_embd = s.n_embd;
  p.n_head = s.n_head;
  p.n_head_kv = s.n_head_kv;
  p.head_dim = s.n_head > 0 ? s.n_embd / s.n_head : 0;
  p.n_ff = s.n_ff;
  p.n_vocab = n_vocab;
  p.n_ctx_train = s.n_ctx;
  p.has_qkv_bias = s.arch == Architecture::qwen2;
  p.has_qk_norm = s.arch == Architecture::qwen3;
  return p;
}

// Everything run_training() sets up before the first step.
struct Setup {
  std::unique_ptr<Model> base;         // lora / full
  std::optional<Tokenizer> tokenizer;
  std::optional<ChatTemplate> tmpl;
  std::optional<TokenizerData> tdata;  // pretrain: the trained vocabulary
  fs::path spm_model;                  // pretrain: the SentencePiece model file
};

Expected<void> prepare_tokenizer(const TrainConfig& c, const fs::path& run_dir, bool resuming, Setup& s,
                                 const TrainCallbacks& cb) {
  if (c.method != Method::pretrain) {
    say(cb, "loading model " + c.model.string());
    HEARTH_TRY(Model m, open_model(c.model));
    s.base = std::make_unique<Model>(std::move(m));
    HEARTH_TRY(Tokenizer t, load_tokenizer(c.model));
    s.tokenizer = std::move(t);
    const auto& ct = s.base->desc().tokenizer.chat_template;
    // No template in the base: data.h's ChatML fallback (with EOS after each reply), the same one the chat
    // session uses, so a model fine-tuned here is later prompted exactly as it was trained.
    HEARTH_TRY(ChatTemplate tp, ChatTemplate::parse(ct ? *ct : std::string(fallback_chat_template())));
    s.tmpl = std::move(tp);
    return {};
  }
  const fs::path dir = run_dir / "tokenizer";
  const fs::path vocab = dir / "vocab.gguf";
  s.spm_model = dir / "tokenizer.model";
  std::error_code ec;
  if (!(resuming && fs::exists(vocab, ec) && fs::exists(s.spm_model, ec))) {
    fs::create_directories(dir, ec);
    if (ec) return make_error(ErrorCode::io, "cannot create '" + dir.string() + "': " + ec.message());
    say(cb, "training a " + std::to_string(c.pretrain.vocab_size) + "-piece " + c.pretrain.tokenizer_type +
                " tokenizer on " + c.data.train.string());
    std::vector<fs::path> corpus = {c.data.train};
    HEARTH_TRY(TokenizerData td, train_sentencepiece(corpus, dir / "tokenizer", c.pretrain.vocab_size,
                                                     c.pretrain.tokenizer_type, c.training.seed));
    if (!td.add_bos && td.bos_id) td.add_bos = true;
    HEARTH_TRY_VOID(write_vocab_gguf(td, vocab));
  }
  HEARTH_TRY(TokenizerData td, read_vocab_gguf(vocab));
  s.tdata = std::move(td);
  HEARTH_TRY(GgufFile f, GgufFile::open(vocab));
  HEARTH_TRY(Tokenizer t, Tokenizer::from_gguf(f));
  s.tokenizer = std::move(t);
  return {};
}

// Token-weighted mean loss over (at most max_batches batches of) the validation set, on the device when
// `dev` is given.
Expected<std::pair<double, int64_t>> validation_loss(TrainModel& model, DeviceTrainer* dev, const Dataset& ds,
                                                     const TrainConfig& c, int32_t pad_id) {
  if (ds.validation.empty()) return std::pair{std::numeric_limits<double>::quiet_NaN(), int64_t(0)};
  BatchIterator it(ds.validation, c.training.batch_size, c.data.max_length, c.data.packing, pad_id,
                   c.training.seed);
  int64_t n = std::max<int64_t>(1, it.batches_per_epoch());
  if (c.eval.max_batches > 0) n = std::min(n, c.eval.max_batches);
  double sum = 0;
  int64_t tokens = 0;
  for (int64_t i = 0; i < n; ++i) {
    Batch b = it.next();
    if (b.n_targets == 0) continue;
    HEARTH_TRY(LossResult r, dev ? dev->evaluate(b.tokens, b.targets, b.B, b.T)
                                 : model.evaluate(b.tokens, b.targets, b.B, b.T));
    sum += r.loss * double(r.n_tokens);
    tokens += r.n_tokens;
  }
  if (tokens == 0) return std::pair{std::numeric_limits<double>::quiet_NaN(), int64_t(0)};
  return std::pair{sum / double(tokens), tokens};
}

// Greedy continuations of the configured prompts with the model's current weights.
Expected<std::vector<std::pair<std::string, std::string>>> sample_generations(const TrainModel& model,
                                                                              const TrainConfig& c,
                                                                              const Setup& s, bool chat,
                                                                              const fs::path& run_dir) {
  std::vector<std::pair<std::string, std::string>> out;
  if (c.eval.prompts.empty()) return out;
  HEARTH_TRY(ModelWeights w, model.merged_weights());
  const fs::path tmp = run_dir / "eval-model.tmp.gguf";
  GgufWriteOptions wo;
  wo.type = GgmlType::F32;
  if (s.base && s.base->gguf()) wo.tokenizer_source = s.base->gguf();
  else if (s.tdata) wo.tokenizer = *s.tdata;
  HEARTH_TRY_VOID(write_gguf_model(w, tmp, wo));
  struct Remove {
    fs::path p;
    ~Remove() {
      std::error_code ec;
      fs::remove(p, ec);
    }
  } remove{tmp};
  HEARTH_TRY(Model m, open_model(tmp));
  InferenceOptions io;
  io.n_threads = c.training.threads;
  io.kv_type = KvType::f32;
  io.quantized_activations = false;
  const Tokenizer& tok = *s.tokenizer;
  for (const std::string& prompt : c.eval.prompts) {
    std::vector<TokenId> ids;
    if (chat && s.tmpl) {
      nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
      msgs.push_back({{"role", "user"}, {"content", prompt}});
      ChatTemplateOptions o;
      o.add_generation_prompt = true;
      if (auto b = tok.bos_id()) o.bos_token = tok.token_text(*b);
      if (auto e = tok.eos_id()) o.eos_token = tok.token_text(*e);
      HEARTH_TRY(std::string text, s.tmpl->render(msgs, o));
      bool has_bos = !o.bos_token.empty() && text.rfind(o.bos_token, 0) == 0;
      HEARTH_TRY(auto enc, tok.encode(text, false, true));
      ids = std::move(enc);
      if (tok.add_bos() && !has_bos && tok.bos_id()) ids.insert(ids.begin(), *tok.bos_id());
    } else {
      HEARTH_TRY(auto enc, tok.encode(prompt, tok.bos_id().has_value(), false));
      ids = std::move(enc);
    }
    if (ids.empty()) {
      out.emplace_back(prompt, "");
      continue;
    }
    io.n_ctx = std::min<int64_t>(m.desc().params.n_ctx_train > 0 ? m.desc().params.n_ctx_train : 2048,
                                 int64_t(ids.size()) + c.eval.max_new_tokens + 1);
    HEARTH_TRY(auto session, InferenceSession::create(m, io));
    GenerateOptions g;
    g.max_tokens = c.eval.max_new_tokens;
    g.sampling.temperature = 0;
    HEARTH_TRY(GenerateResult r, generate(*session, tok, ids, g));
    out.emplace_back(prompt, r.text);
  }
  return out;
}

// "CPU, N threads" (training.threads, or what OpenMP will use when 0).
std::string cpu_description(const TrainConfig& c) {
  const int n = c.training.threads > 0 ? c.training.threads
                                       : int(std::max(1u, std::thread::hardware_concurrency()));
  return "CPU, " + std::to_string(n) + (n == 1 ? " thread" : " threads");
}

std::string gib_text(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / double(1ull << 30));
  return buf;
}

// The backend for this run: a DeviceTrainer in `dev` when training.device asks for a GPU and one can
// serve, else the CPU with the reason in `note`. Never an error.
TrainDeviceInfo choose_device(const TrainConfig& c, TrainModel& model, std::unique_ptr<DeviceTrainer>& dev,
                              const TrainCallbacks& cb) {
  TrainDeviceInfo info;
  if (c.training.device != "cpu") {
    std::string why = cuda_training_unavailable(c.training.gpu);
    if (why.empty()) {
      DeviceTrainOptions o;
      o.gpu_index = c.training.gpu;
      o.precision = c.training.precision == "f32" ? TrainPrecision::f32 : TrainPrecision::bf16;
      o.recompute_attention = c.training.recompute;
      say(cb, "setting up GPU " + std::to_string(c.training.gpu) + " for training (" + precision_name(o.precision) +
                  ")");
      try {
        auto d = DeviceTrainer::create(model, o, c.training.batch_size, c.data.max_length);
        if (d) dev = std::move(*d);
        else why = d.error().message;
      } catch (const std::exception& e) {  // the API promises none; a host allocation may still throw
        why = std::string("the GPU could not be set up: ") + e.what();
      }
      if (!dev && why.empty()) why = "the GPU could not be set up";
    }
    if (dev) {
      info.device = "cuda";
      info.description = dev->description();
      info.memory_bytes = dev->device_bytes();
      say(cb, "training on the GPU: " + info.description + " (" + gib_text(info.memory_bytes) + " of GPU memory)");
    } else {
      info.note = why;
    }
  }
  if (!dev) {
    info.device = "cpu";
    info.description = cpu_description(c);
    say(cb, info.note.empty() ? "training on the CPU (" + info.description + ")"
                              : "training on the CPU: " + info.note);
  }
  if (cb.on_device) cb.on_device(info);
  return info;
}

// training.device, training.gpu and training.precision say where and how precisely the steps run, not
// what they compute, so a run may resume elsewhere (a GPU checkpoint on the CPU, or the reverse); they
// are left out of the resume comparison (checkpoints written before these keys existed lack them).
std::string without_device_keys(const std::string& config_json) {
  auto j = nlohmann::json::parse(config_json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return config_json;
  if (auto t = j.find("training"); t != j.end() && t->is_object())
    for (const char* k : {"device", "gpu", "precision"}) t->erase(k);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

Expected<TrainResult> run_training(const TrainConfig& config, const fs::path& run_dir,
                                   const TrainCallbacks& cb, const std::optional<fs::path>& resume_from) {
  HEARTH_TRY_VOID(validate_config(config));
  const TrainConfig& c = config;
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) return make_error(ErrorCode::io, "cannot create the run folder '" + run_dir.string() + "': " + ec.message());

  Setup s;
  HEARTH_TRY_VOID(prepare_tokenizer(c, run_dir, resume_from.has_value(), s, cb));
  const Tokenizer& tok = *s.tokenizer;

  say(cb, "loading data " + c.data.train.string());
  const ChatTemplate* tmpl = s.tmpl ? &*s.tmpl : nullptr;
  HEARTH_TRY(Dataset ds, load_dataset(c.data, tok, tmpl, c.training.seed));
  if (cb.on_data) cb.on_data(ds);
  if (ds.train.empty())
    return make_error(ErrorCode::format, "'" + c.data.train.string() + "' gave no training example",
                      "check the file's format and data.max_length");
  const bool chat_data = ds.format != DataFormat::text;

  ModelOptions mo;
  mo.method = c.method;
  mo.lora = c.lora;
  mo.recompute = c.training.recompute;
  mo.n_threads = c.training.threads;
  mo.seed = c.training.seed;
  std::unique_ptr<TrainModel> model;
  if (c.method == Method::pretrain) {
    ModelParams p = pretrain_params(c.pretrain, int64_t(s.tdata->tokens.size()));
    if (c.data.max_length > p.n_ctx_train)
      return make_error(ErrorCode::invalid_argument,
                        "data.max_length (" + std::to_string(c.data.max_length) + ") exceeds pretrain.n_ctx (" +
                            std::to_string(p.n_ctx_train) + ")",
                        "lower data.max_length or raise pretrain.n_ctx");
    HEARTH_TRY(auto m, TrainModel::create_from_scratch(p, mo));
    model = std::move(m);
  } else {
    HEARTH_TRY(auto m, TrainModel::create(*s.base, mo));
    model = std::move(m);
  }
  say(cb, std::string(method_name(c.method)) + ": " + std::to_string(model->n_trainable()) +
              " trainable values, " + std::to_string(ds.train.size()) + " training examples");

  std::vector<Param*> params = model->trainable();
  std::vector<const Param*> cparams(params.begin(), params.end());
  AdamWSettings as;
  as.beta1 = c.training.beta1;
  as.beta2 = c.training.beta2;
  as.eps = c.training.eps;
  as.weight_decay = c.training.weight_decay;
  AdamW opt(params, as);

  // The backend, before the first step (and before a checkpoint is loaded, which is then uploaded).
  std::unique_ptr<DeviceTrainer> dev;
  const TrainDeviceInfo where = choose_device(c, *model, dev, cb);
  // Whether the host's weights (and moments) are those of the device at step host_step: downloads are
  // made only when the host needs them, at most once per step.
  int64_t host_step = -1;
  bool host_moments = false;
  auto sync_host = [&](int64_t step, bool moments) -> Expected<void> {
    if (!dev || (host_step == step && (host_moments || !moments))) return {};
    HEARTH_TRY_VOID(moments ? dev->download(*model, &opt.m(), &opt.v()) : dev->download(*model));
    host_step = step;
    host_moments = moments;
    return {};
  };

  const int32_t pad_id = tok.pad_id() ? *tok.pad_id() : (tok.eos_id() ? *tok.eos_id() : 0);
  BatchIterator it(ds.train, c.training.batch_size, c.data.max_length, c.data.packing, pad_id, c.training.seed);
  const int64_t accum = std::max<int64_t>(1, c.training.grad_accum);
  const int64_t bpe = std::max<int64_t>(1, it.batches_per_epoch());
  int64_t total = c.training.steps;
  if (total <= 0) total = std::max<int64_t>(1, int64_t(std::ceil(c.training.epochs * double(bpe) / double(accum))));

  const fs::path ckpt_dir = run_dir / "checkpoints";
  TrainState st;
  st.config_json = config_to_json(c);
  if (resume_from) {
    say(cb, "resuming from " + resume_from->string());
    HEARTH_TRY(TrainState loaded, load_checkpoint(*resume_from, params, opt));
    if (!loaded.config_json.empty())
      HEARTH_TRY_VOID(check_resume_config(without_device_keys(loaded.config_json),
                                          without_device_keys(config_to_json(c))));
    st = std::move(loaded);
    st.config_json = config_to_json(c);
    it.seek(st.data);
    if (dev) {
      HEARTH_TRY_VOID(dev->upload(*model, opt.m(), opt.v()));
      host_step = st.step;
      host_moments = true;
    }
  }

  TrainResult res;
  res.dataset_sha256 = ds.sha256;
  res.data_stats = ds.stats;
  res.device = where.device;
  res.device_description = where.description;
  res.device_note = where.note;
  res.device_memory_bytes = where.memory_bytes;
  std::optional<double> best_val = st.best_val_loss != 0 ? std::optional<double>(st.best_val_loss) : std::nullopt;

  auto save = [&]() -> Expected<void> {
    HEARTH_TRY_VOID(sync_host(st.step, true));
    st.data = it.position();
    st.best_val_loss = best_val.value_or(0);
    HEARTH_TRY(fs::path p, save_checkpoint(ckpt_dir, st, cparams, opt, std::max<int64_t>(1, c.checkpoint.keep)));
    res.checkpoint = p;
    if (cb.on_checkpoint) cb.on_checkpoint(p, st.step);
    return {};
  };
  auto evaluate_now = [&]() -> Expected<EvalResult> {
    EvalResult e;
    e.step = st.step;
    HEARTH_TRY(auto vl, validation_loss(*model, dev.get(), ds, c, pad_id));
    e.val_loss = vl.first;
    e.val_tokens = vl.second;
    if (!std::isnan(e.val_loss)) {
      if (!best_val || e.val_loss < *best_val) best_val = e.val_loss;
      res.final_val_loss = e.val_loss;
    }
    if (!c.eval.prompts.empty()) HEARTH_TRY_VOID(sync_host(st.step, false));
    HEARTH_TRY(auto samples, sample_generations(*model, c, s, chat_data && c.method != Method::pretrain, run_dir));
    e.samples = std::move(samples);
    if (cb.on_eval) cb.on_eval(e);
    return e;
  };
  auto stop_requested = [&] { return cb.should_stop && cb.should_stop(); };

  say(cb, "training " + std::to_string(total) + " steps");
  int64_t last_eval_step = -1;
  // A baseline before the first step, so a run's validation curve starts where the model started.
  if (!resume_from && c.eval.every > 0 && !stop_requested()) {
    HEARTH_TRY(EvalResult e, evaluate_now());
    (void)e;
    last_eval_step = 0;
  }
  double last_loss = 0;
  while (st.step < total) {
    if (stop_requested()) {
      HEARTH_TRY_VOID(save());
      res.outcome = TrainOutcome::stopped;
      break;
    }
    const auto t0 = Clock::now();
    const BatchIterator::Position pos0 = it.position();
    const uint64_t dropout0 = st.dropout_counter;
    if (dev) HEARTH_TRY_VOID(dev->zero_grad());
    else model->zero_grad();
    double loss_sum = 0;
    int64_t step_tokens = 0;
    bool stopped = false;
    for (int64_t a = 0; a < accum; ++a) {
      if (a > 0 && stop_requested()) {
        stopped = true;
        break;
      }
      Batch b = it.next();
      const uint64_t dropout_seed = st.dropout_counter++;
      HEARTH_TRY(LossResult r, dev ? dev->forward_backward(b.tokens, b.targets, b.B, b.T, 1.0f / float(accum),
                                                           dropout_seed)
                                   : model->forward_backward(b.tokens, b.targets, b.B, b.T, 1.0f / float(accum),
                                                             dropout_seed));
      loss_sum += r.loss;
      step_tokens += r.n_tokens;
    }
    if (stopped) {
      it.seek(pos0);
      st.dropout_counter = dropout0;
      HEARTH_TRY_VOID(save());
      res.outcome = TrainOutcome::stopped;
      break;
    }
    double grad_norm = 0;
    if (dev) {
      HEARTH_TRY(double n, dev->clip_grad_norm(c.training.max_grad_norm));
      grad_norm = n;
    } else {
      grad_norm = clip_grad_norm(params, c.training.max_grad_norm);
    }
    // A NaN or infinite loss/gradient would poison every weight through AdamW's moments: stop before
    // the update, so the newest checkpoint and the weights stay usable.
    if (!std::isfinite(grad_norm) || !std::isfinite(loss_sum))
      return make_error(ErrorCode::out_of_range,
                        "step " + std::to_string(st.step + 1) + ": the " +
                            (std::isfinite(loss_sum) ? "gradient norm" : "loss") +
                            " is not finite (NaN or infinity); the weights were not updated",
                        "lower training.lr (or raise training.warmup_steps) and resume from the last checkpoint");
    const double lr = learning_rate(c.training.schedule, c.training.lr, st.step, total, c.training.warmup_steps,
                                    c.training.min_lr_ratio);
    if (dev) {
      // The host optimizer keeps the step count (checkpoints store it; the bias corrections use it).
      const int64_t t = opt.steps_taken() + 1;
      HEARTH_TRY_VOID(dev->adamw_step(lr, as, t));
      opt.set_steps_taken(t);
    } else {
      opt.step(lr);
    }
    ++st.step;
    st.tokens_seen += step_tokens;
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    st.elapsed_s += dt;
    last_loss = loss_sum / double(accum);
    res.peak_memory_bytes = std::max(res.peak_memory_bytes, model->memory_bytes());

    const bool last = st.step == total;
    if (cb.on_step && (last || c.training.log_every <= 1 || st.step % c.training.log_every == 0)) {
      StepMetrics m;
      m.step = st.step;
      m.total_steps = total;
      m.loss = last_loss;
      m.lr = lr;
      m.grad_norm = grad_norm;
      m.tokens_per_s = dt > 0 ? double(step_tokens) / dt : 0;
      m.tokens_seen = st.tokens_seen;
      m.elapsed_s = st.elapsed_s;
      m.epoch = double(st.step * accum) / double(bpe);
      cb.on_step(m);
    }
    if (!last && c.eval.every > 0 && st.step % c.eval.every == 0) {
      HEARTH_TRY(EvalResult e, evaluate_now());
      (void)e;
      last_eval_step = st.step;
    }
    if (!last && c.checkpoint.every > 0 && st.step % c.checkpoint.every == 0) HEARTH_TRY_VOID(save());
  }

  res.steps = st.step;
  res.tokens_seen = st.tokens_seen;
  res.elapsed_s = st.elapsed_s;
  res.final_loss = last_loss;
  if (res.outcome == TrainOutcome::stopped) {
    res.best_val_loss = best_val;
    return res;
  }

  if (last_eval_step != st.step) {
    say(cb, "evaluating");
    HEARTH_TRY(EvalResult e, evaluate_now());
    (void)e;
  }
  HEARTH_TRY_VOID(save());
  res.best_val_loss = best_val;

  // validate_config() already refused adapter formats for full and pretraining runs.
  std::vector<std::string> formats = c.output.formats;
  if (formats.empty()) formats.push_back("gguf-f16");
  const fs::path out_dir = c.output.dir.empty() ? run_dir / "output" : c.output.dir;
  std::string name = c.output.name.empty() ? c.name : c.output.name;
  if (name.empty()) {
    std::string base_name = s.base ? s.base->desc().name : std::string("pretrained");
    if (base_name.empty()) base_name = "model";
    for (char& ch : base_name)
      if (ch == ' ' || ch == '/') ch = '-';
    name = base_name + "-" + method_name(c.method);
  }
  HEARTH_TRY_VOID(sync_host(st.step, false));
  say(cb, "exporting to " + out_dir.string());
  HEARTH_TRY(auto outputs, export_model(*model, s.base.get(), s.tdata ? &*s.tdata : nullptr, s.spm_model, formats,
                                        out_dir, name));
  res.outputs = std::move(outputs);
  return res;
}

}  // namespace hearth::train
