/* store-make-fixture: writes a fixture project of one schema version for the migration tests.
 *   store-make-fixture OUT VERSION
 * The committed files tests/app/fixtures/vN.hearth were made with it, each by the build whose latest
 * schema was N. When a migration N+1 is added, keep vN.hearth as it is and add v(N+1).hearth.
 *
 * Non-obvious choice: the data is written with raw SQL for exactly the tables of VERSION (not through
 * Project, which always speaks the latest schema), and the file is left in rollback-journal mode, so
 * the fixture is one self-contained file and its bytes are what an old Hearth would have left behind.
 */
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../../app/store/event-log.h"
#include "hearth/store/database.h"
#include "hearth/store/records.h"
#include "hearth/store/schema.h"

using namespace hearth::store;

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "store-make-fixture: %s\n", what.c_str());
  std::exit(1);
}
void ok(hearth::Expected<void>&& r) {
  if (!r) die(r.error().to_string());
}
template <class T>
T ok(hearth::Expected<T>&& r) {
  if (!r) die(r.error().to_string());
  return std::move(*r);
}

void event(Database& db, const std::string& action, const std::string& entity, Id id, const nlohmann::json& p) {
  ok(detail::appendEvent(db, "fixture@hearth (store-make-fixture)", action, entity, id, p.dump()));
}

// Version 1 data: a model with a base and an adapter version, a dataset, an experiment, one finished
// run with 300 steps of "loss" and "lr" in two chunks each, one failed run without metrics.
void writeV1(Database& db) {
  ok(db.exec("BEGIN IMMEDIATE"));
  ok(db.exec(
      "INSERT INTO models(id, name, path, format, sha256, size_bytes, architecture, parameters, tensor_types, "
      "created_at) VALUES(1, 'tiny-llama', '/models/tiny.gguf', 'gguf', '" + std::string(64, 'a') +
      "', 123456, 'llama', 1000000, '[\"F16\",\"F32\"]', '2026-01-01T00:00:00.000Z')"));
  event(db, "create", "model", 1, {{"name", "tiny-llama"}});
  ok(db.exec("INSERT INTO model_versions(id, model_id, kind, label, path, sha256, created_at) VALUES(1, 1, 'base', "
             "'imported', '/models/tiny.gguf', '" + std::string(64, 'a') + "', '2026-01-01T00:00:01.000Z')"));
  event(db, "create", "model_version", 1, {{"kind", "base"}});
  ok(db.exec("INSERT INTO datasets(id, name, path, format, sha256, rows, tokens_total, tokens_min, tokens_max, "
             "created_at) VALUES(1, 'fortunes', '/data/fortunes.jsonl', 'jsonl-text', '" + std::string(64, 'b') +
             "', 1000, 50000, 3, 400, '2026-01-01T00:00:02.000Z')"));
  event(db, "create", "dataset", 1, {{"name", "fortunes"}});
  ok(db.exec("INSERT INTO experiments(id, name, description, created_at) VALUES(1, 'lr sweep', 'first sweep', "
             "'2026-01-01T00:00:03.000Z')"));
  event(db, "create", "experiment", 1, {{"name", "lr sweep"}});
  ok(db.exec("INSERT INTO runs(id, experiment_id, name, kind, config, seed, status, created_at, started_at, "
             "finished_at, hardware, code_version, base_version_id, dataset_id, final_metrics, best_metrics, "
             "energy_joules, owner_pid, owner_host) VALUES(1, 1, 'lr 2e-4', 'train', '{\"lr\":0.0002,\"rank\":8}', "
             "42, 'finished', '2026-01-01T00:01:00.000Z', '2026-01-01T00:01:01.000Z', '2026-01-01T00:02:00.000Z', "
             "'AMD EPYC 2 cores', '0.1.0', 1, 1, '{\"loss\":1.5}', '{\"loss\":1.25}', 3600.5, 4242, 'fixture-host')"));
  event(db, "create", "run", 1, {{"name", "lr 2e-4"}});
  ok(db.exec("INSERT INTO model_versions(id, model_id, parent_version_id, produced_by_run_id, kind, label, path, "
             "sha256, created_at) VALUES(2, 1, 1, 1, 'adapter', 'lora r8', '/models/tiny-lora.gguf', '" +
             std::string(64, 'c') + "', '2026-01-01T00:02:01.000Z')"));
  event(db, "create", "model_version", 2, {{"kind", "adapter"}});
  ok(db.exec("UPDATE runs SET output_version_id = 2 WHERE id = 1"));
  event(db, "update", "run", 1, {{"output_version_id", 2}});
  ok(db.exec("INSERT INTO runs(id, name, config, status, created_at, error) VALUES(2, 'broken', '{}', 'failed', "
             "'2026-01-01T00:03:00.000Z', 'out of memory')"));
  event(db, "create", "run", 2, {{"name", "broken"}});
  ok(db.exec("INSERT INTO metric_names(id, name) VALUES(1, 'loss'), (2, 'lr')"));
  // Points: loss(step) = 3 - step/100, lr(step) = 2e-4, wall = 1.7e9 + step, tokens = 512 * step.
  auto st = ok(db.prepare("INSERT INTO metric_chunks(run_id, name_id, first_step, last_step, count, data) "
                          "VALUES(1, ?, ?, ?, ?, ?)"));
  for (int nameId : {1, 2}) {
    for (int part = 0; part < 2; ++part) {
      std::vector<MetricPoint> pts;
      for (int s = part * 150; s < (part + 1) * 150; ++s)
        pts.push_back({s, nameId == 1 ? 3.0 - s / 100.0 : 2e-4, 1.7e9 + s, 512LL * s});
      st.bind(1, nameId).bind(2, pts.front().step).bind(3, pts.back().step).bind(4, std::int64_t(pts.size()));
      sqlite3_bind_blob(st.handle(), 5, pts.data(), int(pts.size() * sizeof(MetricPoint)), SQLITE_TRANSIENT);
      ok(st.exec());
      st.reset();
    }
  }
  ok(db.exec("COMMIT"));
}

// Version 2 data: a conversation with an edit branch and a vote, a prompt with two versions and tags.
void writeV2(Database& db) {
  ok(db.exec("BEGIN IMMEDIATE"));
  ok(db.exec("INSERT INTO conversations(id, title, model_version_id, system_prompt, created_at) VALUES(1, "
             "'hello', 2, 'be brief', '2026-01-02T00:00:00.000Z')"));
  event(db, "create", "conversation", 1, {{"title", "hello"}});
  ok(db.exec("INSERT INTO messages(id, conversation_id, parent_id, role, content, created_at) VALUES "
             "(1, 1, NULL, 'user', 'hi', '2026-01-02T00:00:01.000Z')"));
  ok(db.exec("INSERT INTO messages(id, conversation_id, parent_id, role, content, model_version_id, "
             "sampling_params, prompt_tokens, completion_tokens, tokens_per_second, energy_joules, votes, created_at) "
             "VALUES (2, 1, 1, 'assistant', 'hello!', 2, '{\"temperature\":0.7}', 5, 3, 41.5, 0.25, 1, "
             "'2026-01-02T00:00:02.000Z'), (3, 1, 1, 'assistant', 'hey', 2, '{\"temperature\":1.0}', 5, 2, 40.0, "
             "0.2, 0, '2026-01-02T00:00:03.000Z')"));
  for (int id : {1, 2, 3}) event(db, "create", "message", id, {{"conversation_id", 1}});
  ok(db.exec("INSERT INTO prompts(id, name, created_at) VALUES(1, 'summarise', '2026-01-02T00:01:00.000Z')"));
  ok(db.exec("INSERT INTO prompt_versions(prompt_id, version, text, created_at) VALUES "
             "(1, 1, 'Summarise:', '2026-01-02T00:01:00.000Z'), (1, 2, 'Summarise briefly:', "
             "'2026-01-02T00:02:00.000Z')"));
  ok(db.exec("INSERT INTO prompt_tags(prompt_id, tag) VALUES (1, 'writing'), (1, 'short')"));
  event(db, "create", "prompt", 1, {{"name", "summarise"}});
  event(db, "update", "prompt", 1, {{"version", 2}});
  ok(db.exec("COMMIT"));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) die("usage: store-make-fixture OUT VERSION");
  const std::string out = argv[1];
  const int version = std::atoi(argv[2]);
  if (version < 0 || version > latestSchemaVersion()) die("VERSION must be 0.." + std::to_string(latestSchemaVersion()));
  std::filesystem::remove(out);
  if (version == 0) {  // an empty file, as a crash right after creating it would leave
    std::FILE* f = std::fopen(out.c_str(), "wb");
    if (!f) die("cannot create " + out);
    std::fclose(f);
    return 0;
  }
  Database db = ok(Database::open(out, Database::OpenMode::readWriteCreate));
  ok(db.exec("PRAGMA journal_mode=DELETE; PRAGMA foreign_keys=ON;"));
  ok(migrate(db, 0, version, "fixture@hearth (store-make-fixture)"));
  writeV1(db);
  if (version >= 2) writeV2(db);
  ok(db.exec("VACUUM"));
  std::printf("wrote %s (schema v%d)\n", out.c_str(), version);
  return 0;
}
