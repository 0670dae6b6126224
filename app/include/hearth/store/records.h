/* The rows of the project store as plain value structs: models and their versions, datasets,
 * experiments, runs and their metrics, conversations and messages, prompts, and events.
 *
 * Non-obvious choice: free-form parts (a run's configuration, sampling parameters, metric summaries,
 * hardware) are JSON text, not extra tables: they change shape with every trainer option, and the
 * store's job is to keep them verbatim and export them, not to query inside them.
 *
 * Threading: plain values; safe to copy between threads (DESIGN.md: only value structs cross threads).
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::store {

using Id = std::int64_t;

struct Model {
  Id id = 0;
  std::string name;
  std::string path;          // the imported file
  std::string format;        // "gguf", "safetensors", ...
  std::string sha256;        // of the file, 64 hex digits
  std::int64_t sizeBytes = 0;
  std::string architecture;  // "llama", ...
  std::int64_t parameters = 0;
  std::string tensorTypes = "[]";  // JSON array of type names
  std::string createdAt;     // ISO 8601 UTC, set by the store
};

// A version of a model: the imported base, or the adapter / merged model a run produced from a
// parent version. Lineage: parentVersionId -> producedByRunId -> this version.
struct ModelVersion {
  Id id = 0;
  Id modelId = 0;
  std::optional<Id> parentVersionId;
  std::optional<Id> producedByRunId;
  std::string kind = "base";  // "base", "adapter" or "merged"
  std::string label;
  std::string path;
  std::string sha256;
  std::string createdAt;
};

struct Dataset {
  Id id = 0;
  std::string name;
  std::string path;
  std::string format;  // "jsonl-chat", "jsonl-text", ...
  std::string sha256;
  std::int64_t rows = 0;
  std::int64_t tokensTotal = 0;
  std::optional<std::int64_t> tokensMin;
  std::optional<std::int64_t> tokensMax;
  std::string createdAt;
};

struct Experiment {
  Id id = 0;
  std::string name;
  std::string description;
  std::string createdAt;
};

enum class RunStatus { queued, running, finished, failed, interrupted };
const char* runStatusName(RunStatus s);
std::optional<RunStatus> parseRunStatus(std::string_view s);

struct Run {
  Id id = 0;
  std::optional<Id> experimentId;
  std::string name;
  std::string kind = "train";     // "train", "eval", ...
  std::string config = "{}";      // JSON object: every setting of the run, verbatim
  std::optional<std::int64_t> seed;
  RunStatus status = RunStatus::queued;
  std::string createdAt;
  std::optional<std::string> startedAt;
  std::optional<std::string> finishedAt;
  std::string hardware;           // e.g. "NVIDIA H100 80GB; AMD EPYC 2 cores"
  std::string codeVersion;        // Hearth version (and git revision when known)
  std::optional<Id> baseVersionId;
  std::optional<Id> datasetId;
  std::optional<Id> outputVersionId;
  std::string finalMetrics = "{}";  // JSON object name -> value
  std::string bestMetrics = "{}";   // JSON object name -> value
  std::optional<double> energyJoules;
  std::optional<std::int64_t> ownerPid;  // the process writing the run while it is `running`
  std::string ownerHost;
  std::string ownerStart;  // "<boot id>:<process start ticks>", guards against pid reuse
  std::string error;       // why it failed or was interrupted
};

struct MetricPoint {
  std::int64_t step = 0;
  double value = 0;
  double wallTime = 0;  // seconds since the Unix epoch
  std::int64_t tokensSeen = 0;
};

struct MetricRecord {
  std::string name;  // "loss", "lr", "grad_norm", ...
  MetricPoint point;
};

struct Conversation {
  Id id = 0;
  std::string title;
  std::optional<Id> modelVersionId;
  std::string systemPrompt;
  std::string createdAt;
};

// One chat message. Editing a message makes a sibling with the same parent: the conversation is a
// tree and each path from the root is one branch.
struct Message {
  Id id = 0;
  Id conversationId = 0;
  std::optional<Id> parentId;
  std::string role;  // "system", "user", "assistant"
  std::string content;
  std::optional<Id> modelVersionId;
  std::string systemPrompt;
  std::string samplingParams = "{}";  // JSON: temperature, top_p, seed, ...
  std::int64_t promptTokens = 0;
  std::int64_t completionTokens = 0;
  std::optional<double> tokensPerSecond;
  std::optional<double> energyJoules;
  std::int64_t votes = 0;  // net votes from side-by-side comparisons
  std::string createdAt;
};

struct Prompt {
  Id id = 0;
  std::string name;
  std::vector<std::string> tags;
  std::int64_t latestVersion = 0;
  std::string text;  // of the latest version
  std::string createdAt;
};

struct PromptVersion {
  Id promptId = 0;
  std::int64_t version = 0;
  std::string text;
  std::string createdAt;
};

// One entry of the append-only audit log. `hash` = sha256 over prevHash and every other field.
struct Event {
  Id id = 0;
  std::string at;
  std::string actor;   // "user@host (program pid)"
  std::string action;  // "create", "update", "delete", "migrate", "interrupt", ...
  std::string entity;  // "run", "model", ...
  std::optional<Id> entityId;
  std::string payload = "{}";  // JSON: the values written
  std::string prevHash;
  std::string hash;
};

struct ChainReport {
  bool ok = true;
  std::int64_t events = 0;             // events walked
  std::optional<Id> firstBrokenEvent;  // set when !ok
  std::string reason;                  // what is wrong with it
  std::string headHash;                // hash of the last event (record it to detect truncation later)
};

struct ProjectInfo {
  std::string path;
  int schemaVersion = 0;
  std::int64_t sizeBytes = 0;
  std::int64_t models = 0, modelVersions = 0, datasets = 0, experiments = 0, runs = 0, metricPoints = 0,
               conversations = 0, messages = 0, prompts = 0, events = 0;
};

}  // namespace hearth::store
