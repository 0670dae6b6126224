/* The ordered schema migrations of a Hearth project file. Each entry moves the file up one version; the
 * SQL here is the single source of truth for the tables that docs/store.md describes.
 *
 * Non-obvious choice: metric points are not one row each. They are stored in chunks: one row per
 * (run, metric, run of consecutive steps) holding up to 4096 points as packed little-endian records
 * (step i64, value f64, wall_time f64, tokens_seen i64 = 32 bytes). A row per point costs SQLite about
 * 200 ns of CPU per row to read back, which makes a million-point chart load take most of a second;
 * chunks read at memory speed. The index (run_id, name_id, first_step) finds a step range's chunks.
 * Never edit a migration that has shipped: add a new one (and a fixture file under tests/app/fixtures).
 */
#include "hearth/store/schema.h"

#include <nlohmann/json.hpp>
#include <vector>

#include "event-log.h"

namespace hearth::store {
namespace {

struct Migration {
  int toVersion;
  const char* summary;
  const char* sql;
};

// Version 1: models and lineage, datasets, experiments, runs, metrics, and the append-only event log.
constexpr const char* V1_SQL = R"sql(
CREATE TABLE models(
  id            INTEGER PRIMARY KEY,
  name          TEXT NOT NULL,
  path          TEXT NOT NULL,
  format        TEXT NOT NULL,
  sha256        TEXT NOT NULL DEFAULT '',
  size_bytes    INTEGER NOT NULL DEFAULT 0,
  architecture  TEXT NOT NULL DEFAULT '',
  parameters    INTEGER NOT NULL DEFAULT 0,
  tensor_types  TEXT NOT NULL DEFAULT '[]',
  created_at    TEXT NOT NULL
);
CREATE TABLE model_versions(
  id                  INTEGER PRIMARY KEY,
  model_id            INTEGER NOT NULL REFERENCES models(id),
  parent_version_id   INTEGER REFERENCES model_versions(id),
  produced_by_run_id  INTEGER REFERENCES runs(id),
  kind                TEXT NOT NULL CHECK(kind IN ('base','adapter','merged')),
  label               TEXT NOT NULL DEFAULT '',
  path                TEXT NOT NULL DEFAULT '',
  sha256              TEXT NOT NULL DEFAULT '',
  created_at          TEXT NOT NULL
);
CREATE INDEX model_versions_model ON model_versions(model_id);
CREATE INDEX model_versions_parent ON model_versions(parent_version_id);
CREATE TABLE datasets(
  id            INTEGER PRIMARY KEY,
  name          TEXT NOT NULL,
  path          TEXT NOT NULL,
  format        TEXT NOT NULL,
  sha256        TEXT NOT NULL DEFAULT '',
  rows          INTEGER NOT NULL DEFAULT 0,
  tokens_total  INTEGER NOT NULL DEFAULT 0,
  tokens_min    INTEGER,
  tokens_max    INTEGER,
  created_at    TEXT NOT NULL
);
CREATE TABLE experiments(
  id           INTEGER PRIMARY KEY,
  name         TEXT NOT NULL UNIQUE,
  description  TEXT NOT NULL DEFAULT '',
  created_at   TEXT NOT NULL
);
CREATE TABLE runs(
  id                 INTEGER PRIMARY KEY,
  experiment_id      INTEGER REFERENCES experiments(id),
  name               TEXT NOT NULL DEFAULT '',
  kind               TEXT NOT NULL DEFAULT 'train',
  config             TEXT NOT NULL DEFAULT '{}',
  seed               INTEGER,
  status             TEXT NOT NULL DEFAULT 'queued'
                     CHECK(status IN ('queued','running','finished','failed','interrupted')),
  created_at         TEXT NOT NULL,
  started_at         TEXT,
  finished_at        TEXT,
  hardware           TEXT NOT NULL DEFAULT '',
  code_version       TEXT NOT NULL DEFAULT '',
  base_version_id    INTEGER REFERENCES model_versions(id),
  dataset_id         INTEGER REFERENCES datasets(id),
  output_version_id  INTEGER REFERENCES model_versions(id),
  final_metrics      TEXT NOT NULL DEFAULT '{}',
  best_metrics       TEXT NOT NULL DEFAULT '{}',
  energy_joules      REAL,
  owner_pid          INTEGER,
  owner_host         TEXT NOT NULL DEFAULT '',
  error              TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_status ON runs(status);
CREATE INDEX runs_experiment ON runs(experiment_id);
CREATE TABLE metric_names(
  id    INTEGER PRIMARY KEY,
  name  TEXT NOT NULL UNIQUE
);
CREATE TABLE metric_chunks(
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name_id     INTEGER NOT NULL REFERENCES metric_names(id),
  first_step  INTEGER NOT NULL,
  last_step   INTEGER NOT NULL,
  count       INTEGER NOT NULL CHECK(count > 0),
  data        BLOB NOT NULL CHECK(length(data) = count * 32)
);
CREATE INDEX metric_chunks_series ON metric_chunks(run_id, name_id, first_step);
CREATE TABLE events(
  id         INTEGER PRIMARY KEY,
  at         TEXT NOT NULL,
  actor      TEXT NOT NULL,
  action     TEXT NOT NULL,
  entity     TEXT NOT NULL,
  entity_id  INTEGER,
  payload    TEXT NOT NULL,
  prev_hash  TEXT NOT NULL,
  hash       TEXT NOT NULL
);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
)sql";

// Version 2: conversations and messages (edit branches through parent_id), the prompt library with
// tags and versions, and runs.owner_start so a reused pid is not mistaken for a run's live owner.
constexpr const char* V2_SQL = R"sql(
ALTER TABLE runs ADD COLUMN owner_start TEXT NOT NULL DEFAULT '';
CREATE TABLE conversations(
  id                INTEGER PRIMARY KEY,
  title             TEXT NOT NULL DEFAULT '',
  model_version_id  INTEGER REFERENCES model_versions(id),
  system_prompt     TEXT NOT NULL DEFAULT '',
  created_at        TEXT NOT NULL
);
CREATE TABLE messages(
  id                 INTEGER PRIMARY KEY,
  conversation_id    INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  parent_id          INTEGER REFERENCES messages(id),
  role               TEXT NOT NULL CHECK(role IN ('system','user','assistant','tool')),
  content            TEXT NOT NULL,
  model_version_id   INTEGER REFERENCES model_versions(id),
  system_prompt      TEXT NOT NULL DEFAULT '',
  sampling_params    TEXT NOT NULL DEFAULT '{}',
  prompt_tokens      INTEGER NOT NULL DEFAULT 0,
  completion_tokens  INTEGER NOT NULL DEFAULT 0,
  tokens_per_second  REAL,
  energy_joules      REAL,
  votes              INTEGER NOT NULL DEFAULT 0,
  created_at         TEXT NOT NULL
);
CREATE INDEX messages_conversation ON messages(conversation_id, id);
CREATE INDEX messages_parent ON messages(parent_id);
CREATE TABLE prompts(
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  created_at  TEXT NOT NULL
);
CREATE TABLE prompt_versions(
  prompt_id   INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
  version     INTEGER NOT NULL,
  text        TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  PRIMARY KEY(prompt_id, version)
) WITHOUT ROWID;
CREATE TABLE prompt_tags(
  prompt_id  INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
  tag        TEXT NOT NULL,
  PRIMARY KEY(prompt_id, tag)
) WITHOUT ROWID;
CREATE INDEX prompt_tags_tag ON prompt_tags(tag);
)sql";

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> list = {
      {1, "models, model versions, datasets, experiments, runs, metrics, event log", V1_SQL},
      {2, "conversations, messages, prompt library; runs.owner_start", V2_SQL},
  };
  return list;
}

}  // namespace

int latestSchemaVersion() { return migrations().back().toVersion; }

const char* schemaVersionSummary(int version) {
  if (version == 0) return "empty file";
  for (const auto& m : migrations())
    if (m.toVersion == version) return m.summary;
  return "unknown (newer than this build)";
}

Expected<void> migrate(Database& db, int fromVersion, int toVersion, const std::string& actor) {
  if (fromVersion < 0 || toVersion > latestSchemaVersion() || fromVersion > toVersion)
    return make_error(ErrorCode::internal, "project '" + db.path() + "': cannot migrate from schema v" +
                                               std::to_string(fromVersion) + " to v" + std::to_string(toVersion));
  for (const auto& m : migrations()) {
    if (m.toVersion <= fromVersion || m.toVersion > toVersion) continue;
    const std::string what = "migrating to schema v" + std::to_string(m.toVersion);
    auto tx = Transaction::begin(db);
    if (!tx) return Unexpected{tx.error()};
    // Re-read inside the write lock: another process may have migrated since we looked.
    HEARTH_TRY(std::int64_t current, db.queryInt("PRAGMA user_version"));
    if (current >= m.toVersion) continue;
    if (current != m.toVersion - 1)
      return make_error(ErrorCode::format, "project '" + db.path() + "': schema v" + std::to_string(current) +
                                               " found while " + what);
    auto r = db.exec(m.sql);
    if (!r) return Unexpected{Error{r.error().code, r.error().message + " (" + what + ")", r.error().hint}};
    if (m.toVersion == 1)
      HEARTH_TRY_VOID(db.exec("PRAGMA application_id = " + std::to_string(HEARTH_APPLICATION_ID)));
    HEARTH_TRY_VOID(db.exec("PRAGMA user_version = " + std::to_string(m.toVersion)));
    if (!actor.empty()) {
      nlohmann::json payload = {{"from", m.toVersion - 1}, {"to", m.toVersion}, {"summary", m.summary}};
      HEARTH_TRY_VOID(detail::appendEvent(db, actor, m.toVersion == 1 ? "create" : "migrate",
                                          m.toVersion == 1 ? "project" : "schema", std::nullopt,
                                          payload.dump()));
    }
    HEARTH_TRY_VOID(tx->commit());
  }
  return {};
}

}  // namespace hearth::store
