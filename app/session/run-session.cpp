/* A training run recorded in the project store, with its telemetry (run-session.h).
 *
 * Non-obvious choice: the trainer's callbacks never return errors, so a store failure inside one (disk
 * full while appending metrics) is kept and turned into a stop request: the trainer writes a checkpoint
 * and returns, and the run is then marked failed with the store's message, still resumable.
 */
#include "hearth/session/run-session.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "hearth/app/version.h"
#include "hearth/model.h"
#include "hearth/store/sha256.h"
#include "hearth/telemetry/hardware.h"
#include "hearth/telemetry/recorder.h"
#include "hearth/trainer/checkpoint.h"

namespace hearth::session {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

double wallNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string utcStamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

std::string safeName(std::string s) {
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '-';
  if (s.empty()) s = "run";
  return s;
}

// A file's sha256; for a folder (Hugging Face model, PEFT adapter) the sha256 of "<name> <sha256>\n"
// lines of its files in name order, so a folder has one stable identity.
Expected<std::string> pathSha256(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_directory(p, ec)) return store::sha256File(p.string());
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(p, ec))
    if (e.is_regular_file()) files.push_back(e.path());
  if (ec) return make_error(ErrorCode::io, "cannot list '" + p.string() + "': " + ec.message());
  std::sort(files.begin(), files.end());
  std::string lines;
  for (const auto& f : files) {
    HEARTH_TRY(std::string h, store::sha256File(f.string()));
    lines += f.filename().string() + " " + h + "\n";
  }
  return store::sha256Hex(lines);
}

int64_t pathSize(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_directory(p, ec)) {
    auto n = fs::file_size(p, ec);
    return ec ? 0 : int64_t(n);
  }
  int64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(p, ec))
    if (e.is_regular_file(ec)) total += int64_t(e.file_size(ec));
  return total;
}

std::optional<store::ModelVersion> findVersionBySha(store::Project& project, const std::string& sha) {
  auto models = project.models();
  if (!models) return std::nullopt;
  for (const auto& m : *models) {
    auto versions = project.modelVersions(m.id);
    if (!versions) continue;
    for (const auto& v : *versions)
      if (v.sha256 == sha) return v;
  }
  return std::nullopt;
}

// The base model's version in the project, imported (model + base version) when no version has its hash.
Expected<store::ModelVersion> importBase(store::Project& project, const fs::path& path) {
  HEARTH_TRY(Model m, open_model(path));  // first: its errors name what is wrong with the file
  HEARTH_TRY(std::string sha, pathSha256(path));
  if (auto v = findVersionBySha(project, sha)) return *v;
  const ModelDesc& d = m.desc();
  store::Model rec;
  rec.name = !d.name.empty() ? d.name : path.filename().string();
  rec.path = fs::absolute(path).string();
  rec.format = d.format == ModelFormat::gguf ? "gguf" : "safetensors";
  rec.sha256 = sha;
  rec.sizeBytes = pathSize(path);
  rec.architecture = architecture_name(d.params.arch);
  rec.parameters = d.n_params;
  std::set<std::string> types;
  for (const TensorRef* t : d.all_tensors()) types.insert(type_name(t->type));
  rec.tensorTypes = json(std::vector<std::string>(types.begin(), types.end())).dump();
  HEARTH_TRY(store::Id modelId, project.addModel(rec));
  store::ModelVersion v;
  v.modelId = modelId;
  v.kind = "base";
  v.label = rec.name;
  v.path = rec.path;
  v.sha256 = sha;
  HEARTH_TRY(store::Id vid, project.addModelVersion(v));
  return project.modelVersion(vid);
}

Expected<store::Id> recordDataset(store::Project& project, const train::TrainConfig& c, const train::Dataset& ds) {
  if (!ds.sha256.empty()) {
    if (auto all = project.datasets())
      for (const auto& d : *all)
        if (d.sha256 == ds.sha256) return d.id;
  }
  store::Dataset d;
  d.name = c.data.train.filename().string();
  d.path = fs::absolute(c.data.train).string();
  d.format = ds.format == train::DataFormat::text ? std::string("text")
                                                  : std::string("jsonl-") + train::data_format_name(ds.format);
  d.sha256 = ds.sha256;
  d.rows = ds.stats.rows;
  d.tokensTotal = ds.stats.tokens;
  d.tokensMin = ds.stats.min_len;
  d.tokensMax = ds.stats.max_len;
  return project.addDataset(d);
}

// The main file of an exported output, for its hash and path (a PEFT folder or a safetensors folder
// is registered by the folder).
struct Output {
  std::string kind;  // "adapter" or "merged"
  fs::path path;
};
std::optional<Output> pickOutput(const std::vector<train::ExportedFile>& files, bool adapter) {
  static const char* ADAPTER_ORDER[] = {"gguf-lora", "peft"};
  static const char* MERGED_ORDER[] = {"gguf-f16", "gguf-q8_0", "gguf-q4_k", "safetensors"};
  auto find = [&](const char* f) -> std::optional<Output> {
    for (const auto& e : files)
      if (e.format == f) return Output{adapter ? "adapter" : "merged", e.path};
    return std::nullopt;
  };
  if (adapter) {
    for (const char* f : ADAPTER_ORDER)
      if (auto o = find(f)) return o;
  } else {
    for (const char* f : MERGED_ORDER)
      if (auto o = find(f)) return o;
  }
  return std::nullopt;
}

Expected<store::Id> registerVersion(store::Project& project, store::Id modelId, std::optional<store::Id> parent,
                                    store::Id runId, const std::string& kind, const std::string& label,
                                    const fs::path& path) {
  HEARTH_TRY(std::string sha, pathSha256(path));
  store::ModelVersion v;
  v.modelId = modelId;
  v.parentVersionId = parent;
  v.producedByRunId = runId;
  v.kind = kind;
  v.label = label;
  v.path = fs::absolute(path).string();
  v.sha256 = sha;
  return project.addModelVersion(v);
}

json readSamples(const fs::path& file) {
  json out = json::array();
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

std::optional<int64_t> checkpointStep(const fs::path& ckpt) {
  std::string n = ckpt.filename().string();
  if (n.rfind("step-", 0) != 0) return std::nullopt;
  try {
    return std::stoll(n.substr(5));
  } catch (...) {
    return std::nullopt;
  }
}

}  // namespace

Expected<fs::path> runDirectory(store::Project& project, store::Id runId) {
  HEARTH_TRY(store::Run r, project.run(runId));
  auto j = json::parse(r.config, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("run_dir") || !j["run_dir"].is_string())
    return make_error(ErrorCode::format, "run " + std::to_string(runId) + " has no run folder in its configuration",
                      "only runs started by 'hearth-cli train' (or the fine-tune wizard) can be resumed");
  return fs::path(j["run_dir"].get<std::string>());
}

Expected<train::TrainConfig> storedRunConfig(store::Project& project, store::Id runId,
                                             const std::vector<std::string>& overrides) {
  HEARTH_TRY(store::Run r, project.run(runId));
  auto j = json::parse(r.config, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(ErrorCode::format, "run " + std::to_string(runId) + ": its configuration is not a JSON object");
  j.erase("run_dir");
  // JSON is YAML (flow style), so the config parser reads the stored text as it is.
  return train::parse_config_text(j.dump(), {}, overrides);
}

Expected<TrainRunResult> runTraining(store::Project& project, const train::TrainConfig& givenConfig,
                                     const TrainRunOptions& options) {
  // Absolute paths, so the stored configuration resumes from any working folder.
  train::TrainConfig config = givenConfig;
  for (fs::path* p : {&config.model, &config.data.train, &config.data.validation, &config.output.dir})
    if (!p->empty()) *p = fs::absolute(*p).lexically_normal();
  const bool resuming = options.resumeRunId.has_value();
  TrainRunResult out;
  std::optional<fs::path> resumeFrom;
  std::optional<store::Run> previous;

  if (resuming) {
    HEARTH_TRY(store::Run r, project.run(*options.resumeRunId));
    if (r.status != store::RunStatus::interrupted && r.status != store::RunStatus::failed)
      return make_error(ErrorCode::invalid_argument,
                        "run " + std::to_string(r.id) + " is " + store::runStatusName(r.status) +
                            "; only an interrupted or failed run can be resumed");
    HEARTH_TRY(fs::path dir, runDirectory(project, r.id));
    out.runDir = dir;
    resumeFrom = train::latest_checkpoint(dir / "checkpoints");
    if (!resumeFrom)
      return make_error(ErrorCode::not_found,
                        "run " + std::to_string(r.id) + " has no checkpoint in '" + (dir / "checkpoints").string() + "'",
                        "a run can only be resumed from a checkpoint (checkpoint.every)");
    previous = std::move(r);
    out.runId = previous->id;
  } else {
    fs::path root = options.runsRoot;
    if (root.empty()) root = fs::absolute(fs::path(project.path())).parent_path() / "runs";
    std::string base = utcStamp() + "-" + safeName(config.name.empty() ? "run" : config.name);
    fs::path dir = root / base;
    std::error_code ec;
    for (int i = 2; fs::exists(dir, ec); ++i) dir = root / (base + "-" + std::to_string(i));
    out.runDir = dir;
  }

  // The base model version (LoRA and full), imported by hash when the project lacks it.
  std::optional<store::ModelVersion> baseVersion;
  if (config.method != train::Method::pretrain) {
    HEARTH_TRY(store::ModelVersion v, importBase(project, config.model));
    baseVersion = v;
  }

  // Telemetry: a sampler for the whole run; the recorder starts when the run row exists. Its NVML
  // sensor (when there is a GPU) also names the GPUs in the run's hardware description.
  auto sensors = telemetry::makeDefaultSensors(options.telemetry);
  const telemetry::NvmlSensor* nvml = nullptr;
  for (const auto& sensor : sensors)
    if (auto* n = dynamic_cast<const telemetry::NvmlSensor*>(sensor.get()); n && n->available()) nvml = n;
  telemetry::HardwareInfo hw = telemetry::describeHardware(options.telemetry.root, nvml);
  HEARTH_TRY(auto sampler, telemetry::Sampler::create(std::move(sensors), options.telemetry.intervalMs));
  sampler->start();
  for (const auto& ch : sampler->snapshot().channels)
    hw.energySources.push_back(ch.last.source + " (" + telemetry::sensorKindName(ch.last.kind) + ")");
  std::optional<telemetry::RunRecorder> recorder;
  std::optional<telemetry::EnergyMeter> meter;  // for the energy offset of a resumed run
  double energyOffset = 0, secondsOffset = 0;

  std::optional<Error> storeError;
  store::Id runId = out.runId;
  bool runLive = false;  // the run row is `running` under this process
  const fs::path samplesFile = out.runDir / "samples.jsonl";

  auto keep = [&](Expected<void> r) {
    if (!r && !storeError) storeError = r.error();
  };

  train::TrainCallbacks cb;
  cb.on_message = options.observer.on_message;
  // Where this part of the run trains, on the run's hardware record (and in the audit log).
  cb.on_device = [&](const train::TrainDeviceInfo& d) {
    if (options.observer.on_device) options.observer.on_device(d);
    if (!runLive || storeError) return;
    json part = {{"from_step", resumeFrom ? checkpointStep(*resumeFrom).value_or(0) : int64_t(0)},
                 {"device", d.device},
                 {"description", d.description}};
    if (!d.note.empty()) part["note"] = d.note;
    if (d.memory_bytes > 0) part["memory_bytes"] = d.memory_bytes;
    keep(project.recordRunDevice(runId, part.dump(-1, ' ', false, json::error_handler_t::replace)));
  };
  cb.on_checkpoint = options.observer.on_checkpoint;
  cb.should_stop = [&] { return storeError.has_value() || (options.shouldStop && options.shouldStop()); };
  cb.on_data = [&](const train::Dataset& ds) {
    if (options.observer.on_data) options.observer.on_data(ds);
    if (storeError) return;
    if (resuming) {
      keep(project.resumeRun(runId));
      if (storeError) return;
      if (auto step = checkpointStep(*resumeFrom)) {
        if (auto pts = project.readMetric(runId, telemetry::METRIC_ENERGY_J, INT64_MIN, *step); pts && !pts->empty())
          energyOffset = pts->back().value;
        if (auto pts = project.readMetric(runId, "elapsed_s", INT64_MIN, *step); pts && !pts->empty())
          secondsOffset = pts->back().value;
      }
    } else {
      auto datasetId = recordDataset(project, config, ds);
      if (!datasetId) {
        storeError = datasetId.error();
        return;
      }
      json cfg = json::parse(train::config_to_json(config), nullptr, false);
      if (cfg.is_discarded() || !cfg.is_object()) cfg = json::object();
      cfg["run_dir"] = fs::absolute(out.runDir).string();
      store::Run r;
      r.name = config.name;
      r.kind = "train";
      r.config = cfg.dump();
      r.seed = static_cast<int64_t>(config.training.seed);
      r.codeVersion = std::string("hearth ") + app::version();
      if (baseVersion) r.baseVersionId = baseVersion->id;
      r.datasetId = *datasetId;
      telemetry::describeRun(r, hw);
      auto id = project.createRun(r);
      if (!id) {
        storeError = id.error();
        return;
      }
      runId = *id;
      keep(project.startRun(runId));
      if (storeError) return;
    }
    runLive = true;
    recorder.emplace(project, runId, *sampler, options.telemetry.gridGramsPerKWh);
    recorder->begin();
    if (energyOffset > 0) {
      meter.emplace(*sampler, options.telemetry.gridGramsPerKWh);
      meter->start();
    }
  };
  cb.on_step = [&](const train::StepMetrics& m) {
    if (options.observer.on_step) options.observer.on_step(m);
    if (!runLive || storeError) return;
    const double t = wallNow();
    auto pt = [&](const char* name, double v) {
      return store::MetricRecord{name, store::MetricPoint{m.step, v, t, m.tokens_seen}};
    };
    std::vector<store::MetricRecord> batch = {
        pt("loss", m.loss),          pt("lr", m.lr),
        pt("grad_norm", m.grad_norm), pt("tokens_per_s", m.tokens_per_s),
        pt("tokens_seen", double(m.tokens_seen)), pt("elapsed_s", m.elapsed_s),
        pt("epoch", m.epoch)};
    keep(project.appendMetrics(runId, batch));
    keep(recorder->record(m.step, m.tokens_seen));
    if (meter) {
      double j = energyOffset + meter->peek(m.tokens_seen).joules;
      keep(project.appendMetrics(runId, {pt(telemetry::METRIC_ENERGY_J, j)}));
    }
  };
  cb.on_eval = [&](const train::EvalResult& e) {
    if (options.observer.on_eval) options.observer.on_eval(e);
    if (!runLive || storeError) return;
    if (!std::isnan(e.val_loss))
      keep(project.appendMetrics(runId, {store::MetricRecord{"val_loss", store::MetricPoint{e.step, e.val_loss,
                                                                                           wallNow(), 0}}}));
    if (!e.samples.empty()) {
      std::ofstream f(samplesFile, std::ios::app);
      for (const auto& [prompt, text] : e.samples)
        f << json{{"step", e.step}, {"prompt", prompt}, {"output", text}}.dump() << "\n";
      if (!f) keep(make_error(ErrorCode::io, "cannot write '" + samplesFile.string() + "'"));
    }
  };

  auto result = train::run_training(config, out.runDir, cb, resumeFrom);

  telemetry::EnergyReport energy;
  if (recorder) energy = recorder->end(result ? result->tokens_seen : 0);
  sampler->stop();
  out.runId = runId;
  out.energy = energy;

  if (!result || storeError) {
    Error err = !result ? result.error() : *storeError;
    if (runLive) {
      auto f = project.failRun(runId, err.to_string());
      (void)f;  // the original error matters more than a second one from a failing store
    }
    return Unexpected{err};
  }
  out.train = *result;
  out.outcome = result->outcome;

  if (result->outcome == train::TrainOutcome::stopped) {
    std::string reason = "stopped at step " + std::to_string(result->steps) + "; resume with 'hearth-cli train --resume " +
                         std::to_string(runId) + "'";
    if (runLive) HEARTH_TRY_VOID(project.interruptRun(runId, reason));
    return out;
  }

  // Outputs as model versions with lineage.
  const bool lora = config.method == train::Method::lora;
  std::string label = config.output.name.empty() ? (config.name.empty() ? std::string("run") : config.name) +
                                                       "-" + std::to_string(runId)
                                                 : config.output.name;
  if (config.method == train::Method::pretrain) {
    if (auto o = pickOutput(result->outputs, false)) {
      HEARTH_TRY(std::string sha, pathSha256(o->path));
      store::Model m;
      m.name = label;
      m.path = fs::absolute(o->path).string();
      m.format = o->path.extension() == ".gguf" ? "gguf" : "safetensors";
      m.sha256 = sha;
      m.sizeBytes = pathSize(o->path);
      m.architecture = architecture_name(config.pretrain.arch);
      HEARTH_TRY(store::Id mid, project.addModel(m));
      HEARTH_TRY(store::Id vid, registerVersion(project, mid, std::nullopt, runId, "base", label, o->path));
      out.outputVersionId = vid;
    }
  } else {
    if (lora) {
      if (auto o = pickOutput(result->outputs, true)) {
        HEARTH_TRY(store::Id vid, registerVersion(project, baseVersion->modelId, baseVersion->id, runId, "adapter",
                                                  label, o->path));
        out.outputVersionId = vid;
      }
    }
    if (auto o = pickOutput(result->outputs, false)) {
      HEARTH_TRY(store::Id vid, registerVersion(project, baseVersion->modelId, baseVersion->id, runId, "merged",
                                                lora ? label + "-merged" : label, o->path));
      if (out.outputVersionId) out.mergedVersionId = vid;
      else out.outputVersionId = vid;
    }
  }

  json finalMetrics = {{"loss", result->final_loss},
                       {"steps", result->steps},
                       {"tokens_seen", result->tokens_seen},
                       {"elapsed_s", result->elapsed_s},
                       {"peak_memory_bytes", result->peak_memory_bytes},
                       {"dataset_sha256", result->dataset_sha256},
                       {"device", result->device},
                       {"device_description", result->device_description}};
  if (!result->device_note.empty()) finalMetrics["device_note"] = result->device_note;
  if (result->device_memory_bytes > 0) finalMetrics["device_memory_bytes"] = result->device_memory_bytes;
  if (result->final_val_loss) finalMetrics["val_loss"] = *result->final_val_loss;
  json outputs = json::array();
  for (const auto& f : result->outputs) outputs.push_back({{"format", f.format}, {"path", fs::absolute(f.path).string()}});
  finalMetrics["outputs"] = outputs;
  json samples = readSamples(samplesFile);
  if (!samples.empty()) finalMetrics["samples"] = samples;
  json best = json::object();
  if (result->best_val_loss) best["val_loss"] = *result->best_val_loss;

  telemetry::EnergyReport total = energy;
  if (energyOffset > 0 || secondsOffset > 0) {
    total.joules += energyOffset;
    total.seconds = std::max(total.seconds, 0.0) + secondsOffset;
    total.averageWatts = total.seconds > 0 ? total.joules / total.seconds : 0;
  }
  HEARTH_TRY_VOID(telemetry::finishRunWithEnergy(project, runId, total, finalMetrics.dump(), best.dump(),
                                                 out.outputVersionId));
  out.energy = total;
  return out;
}

}  // namespace hearth::session
