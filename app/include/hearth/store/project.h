/* Project: one Hearth project file (`.hearth`, SQLite) opened through one connection.
 *
 * What it guarantees (docs/store.md has the details):
 * - Opening never modifies a file that is not a Hearth project, nor one written by a newer Hearth: the
 *   file is first inspected through a read-only connection, and only a recognised file is opened for
 *   writing (WAL, foreign keys, synchronous=FULL, busy timeout) and migrated.
 * - Every create / update / delete goes through this class and appends an event to the hash-chained,
 *   append-only event log in the same transaction; verifyChain() walks the chain.
 * - appendMetrics() writes one batch in one transaction: after it returns success the batch survives a
 *   crash, a kill or a power cut; after a failure (disk full) nothing of the batch is stored.
 * - On open, runs left `running` by a process of this host that no longer exists become `interrupted`.
 *
 * Non-obvious choice: Project is a handle to a heap-allocated connection (pimpl), so it can be moved
 * (Expected<Project>) while its cached prepared statements keep pointing at a connection that stays put.
 *
 * Threading: one Project is one SQLite connection: use it from one thread at a time (the thread that
 * opened it). For a reader and a writer at once, open two Projects on the same file; WAL mode lets the
 * reader see every committed batch while the writer continues.
 */
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hearth/error.h"
#include "hearth/store/database.h"
#include "hearth/store/records.h"

namespace hearth::store {

struct OpenOptions {
  bool create = false;              // create the file when it does not exist (or is empty)
  bool recoverInterrupted = true;   // mark dead owners' running runs `interrupted` on open
  int busyTimeoutMs = 10000;        // how long a write waits for another writer
  std::string actor;                // recorded with each event; default "user@host (pid N)"
};

class Project {
 public:
  Project(Project&&) noexcept;
  Project& operator=(Project&&) noexcept;
  ~Project();

  // Opens an existing project (or creates one when options.create). Errors:
  //   not_found    the file does not exist (and create is false)
  //   format       the file is not SQLite, or is SQLite but not a Hearth project (application id)
  //   unsupported  the file was written by a newer Hearth (schema version above latestSchemaVersion())
  //   io           permissions, locks, disk full
  // In every error case the file is left byte for byte as it was.
  static Expected<Project> open(const std::string& path, const OpenOptions& options = {});
  // Creates a new project; fails (invalid_argument) when a non-empty file is already there.
  static Expected<Project> create(const std::string& path, const OpenOptions& options = {});

  // $XDG_DATA_HOME/hearth/default.hearth, or ~/.local/share/hearth/default.hearth.
  static std::string defaultPath();

  const std::string& path() const;
  int schemaVersion() const;
  // The underlying connection, for tests and tools (e.g. PRAGMA max_page_count, integrity_check).
  Database& database();

  Expected<ProjectInfo> info();
  // PRAGMA integrity_check: "ok" or the first problems SQLite reports.
  Expected<std::string> integrityCheck();
  // Copies the whole project to `destination` with the SQLite online backup API; safe while other
  // connections write. The copy is a complete project (it opens with Project::open).
  Expected<void> backupTo(const std::string& destination);

  // ---- models, versions, datasets, experiments ----
  Expected<Id> addModel(const Model& m);
  Expected<Model> model(Id id);
  Expected<std::vector<Model>> models();
  Expected<void> removeModel(Id id);  // fails while versions refer to it
  // Changes a model's display name (not its file). Errors: invalid_argument for an empty name.
  Expected<void> renameModel(Id id, const std::string& name);
  // Removes a model and all its versions in one transaction (newest version first). Fails, changing
  // nothing, while a run, conversation, message or another model's version refers to one of them.
  Expected<void> removeModelAndVersions(Id id);
  Expected<Id> addModelVersion(const ModelVersion& v);
  Expected<ModelVersion> modelVersion(Id id);
  // Every version of one model, in creation order (parents before their children).
  Expected<std::vector<ModelVersion>> modelVersions(Id modelId);
  // The version and its ancestors, newest first (this version, its parent, ..., the base).
  Expected<std::vector<ModelVersion>> lineage(Id versionId);
  Expected<Id> addDataset(const Dataset& d);
  Expected<Dataset> dataset(Id id);
  Expected<std::vector<Dataset>> datasets();
  Expected<Id> createExperiment(const std::string& name, const std::string& description = {});
  Expected<std::vector<Experiment>> experiments();

  // ---- runs ----
  // Stores a new run as `queued` (status and times in `r` are ignored); returns its id.
  Expected<Id> createRun(const Run& r);
  // queued -> running, owned by this process (pid, host, process start) from now on.
  Expected<void> startRun(Id id);
  // running -> finished, with its summary; the output version may be 0 (none).
  Expected<void> finishRun(Id id, const std::string& finalMetricsJson, const std::string& bestMetricsJson,
                           std::optional<double> energyJoules, std::optional<Id> outputVersionId);
  // -> failed, with the reason.
  Expected<void> failRun(Id id, const std::string& reason);
  // running -> interrupted, with the reason (a training run stopped on request, resumable later).
  // Records the metrics digest as the other ends do.
  Expected<void> interruptRun(Id id, const std::string& reason);
  // interrupted or failed -> running again, owned by this process (a resumed training run): the
  // finish time and error are cleared; metrics, config and links are kept. Other states: invalid_argument.
  Expected<void> resumeRun(Id id);
  Expected<Run> run(Id id);
  Expected<std::vector<Run>> runs();
  Expected<void> deleteRun(Id id);  // with its metrics
  // Marks `running` runs whose owner process (on this host) is gone as `interrupted`; returns their ids.
  Expected<std::vector<Id>> recoverInterruptedRuns();
  // Where (a part of) a run computed: `deviceJson`, a JSON object such as {"from_step": 0, "device":
  // "cuda", "description": "NVIDIA H200 (GPU 0), BF16 mixed precision", "note": ""}, is appended to the
  // array "training_devices" of the run's hardware JSON (a resumed run adds one entry per part), and
  // logged as an update of the run, so the audit chain says where a model version was trained.
  // Errors: not_found (no such run), invalid_argument (not a JSON object).
  Expected<void> recordRunDevice(Id id, const std::string& deviceJson);

  // ---- metrics ----
  // One batch, one transaction. A step logged twice for the same metric keeps the later value.
  Expected<void> appendMetrics(Id runId, const std::vector<MetricRecord>& batch);
  // Points of one metric of one run with fromStep <= step <= toStep, in step order.
  Expected<std::vector<MetricPoint>> readMetric(Id runId, const std::string& name,
                                                std::int64_t fromStep = INT64_MIN,
                                                std::int64_t toStep = INT64_MAX);
  Expected<std::vector<std::string>> metricNames(Id runId);
  // Points stored for the run (a step logged twice counts twice).
  Expected<std::int64_t> metricCount(Id runId);
  // sha256 over every metric point of the run as readMetric() returns them (names in byte order, each
  // name length-prefixed, then its 32-byte little-endian records), and the number of points. The events
  // that end a run (finished, failed, interrupted) record it, and verifyChain() checks it, so metrics
  // edited after a run ended are detected. Metrics appended to an ended run log a new digest.
  Expected<std::pair<std::int64_t, std::string>> metricsDigest(Id runId);

  // ---- conversations and messages ----
  Expected<Id> createConversation(const Conversation& c);
  Expected<Conversation> conversation(Id id);
  // Every conversation, newest first. A non-empty `search` keeps those whose title or any message
  // contains it (ASCII case-insensitive, as SQLite's LIKE; % and _ in it are matched literally).
  Expected<std::vector<Conversation>> conversations(const std::string& search = {});
  // Writes the conversation's title, model version and system prompt (a rename, a new model pick).
  // Errors: not_found when no conversation has c.id.
  Expected<void> updateConversation(const Conversation& c);
  // Removes the conversation with all its messages.
  Expected<void> deleteConversation(Id id);
  Expected<Id> addMessage(const Message& m);
  // Every message of the conversation (all branches), in creation order.
  Expected<std::vector<Message>> messages(Id conversationId);
  // Adds `delta` (+1 / -1) to a message's votes.
  Expected<void> voteMessage(Id messageId, int delta);

  // ---- prompt library ----
  Expected<Id> createPrompt(const std::string& name, const std::string& text,
                            const std::vector<std::string>& tags = {});
  // Stores `text` as the prompt's next version; returns the new version number.
  Expected<std::int64_t> editPrompt(Id promptId, const std::string& text);
  Expected<void> setPromptTags(Id promptId, const std::vector<std::string>& tags);
  Expected<Prompt> prompt(Id promptId);
  Expected<std::vector<PromptVersion>> promptVersions(Id promptId);
  Expected<std::vector<Prompt>> promptsWithTag(const std::string& tag);
  // Every prompt (latest version and tags), by name.
  Expected<std::vector<Prompt>> prompts();

  // ---- event log ----
  Expected<std::vector<Event>> events(Id fromId = 1, std::int64_t limit = -1);
  // Walks the whole chain: ids consecutive from 1, each prevHash equal to the previous hash, each hash
  // recomputed from content. Reports the first event where any of these fails. Then, for every ended
  // run, compares its metrics with the digest its latest run event recorded, and reports that event
  // when they differ.
  Expected<ChainReport> verifyChain();

  // ---- export / import (run-export.cpp) ----
  // {"format":"hearth-run","version":1,"run":{...},"metrics":{"loss":[[step,value,wall,tokens],...]}}
  Expected<std::string> exportRunJson(Id runId);
  // CSV: run_id,metric,step,value,wall_time,tokens_seen (one line per point, RFC 4180 quoting).
  Expected<std::string> exportRunCsv(Id runId);
  // Imports a run exported by exportRunJson as a new run (new id); references to models, datasets and
  // experiments are re-linked by sha256 / name when this project has them, else left empty.
  Expected<Id> importRunJson(const std::string& json);
  // Appends the points of a CSV export to an existing run (the run_id column is ignored).
  Expected<std::int64_t> importMetricsCsv(Id runId, const std::string& csv);

  struct Impl;

 private:
  explicit Project(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace hearth::store
