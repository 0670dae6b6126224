/* Project: runs (lifecycle and ownership) and their metrics (batched writes, range reads).
 *
 * Non-obvious choice: appendMetrics() logs no event per batch. The audit log records what a run was
 * (its configuration, data, base model, status changes, outcome); millions of metric points would
 * drown it, and the metrics themselves are tied to the run whose creation the chain already covers.
 */
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "hearth/store/project.h"
#include "hearth/store/record-json.h"
#include "project-impl.h"

namespace hearth::store {

const char* runStatusName(RunStatus s) {
  switch (s) {
    case RunStatus::queued: return "queued";
    case RunStatus::running: return "running";
    case RunStatus::finished: return "finished";
    case RunStatus::failed: return "failed";
    case RunStatus::interrupted: return "interrupted";
  }
  return "queued";
}

std::optional<RunStatus> parseRunStatus(std::string_view s) {
  for (RunStatus r : {RunStatus::queued, RunStatus::running, RunStatus::finished, RunStatus::failed,
                      RunStatus::interrupted})
    if (s == runStatusName(r)) return r;
  return std::nullopt;
}

namespace {

constexpr const char* RUN_COLUMNS =
    "id, experiment_id, name, kind, config, seed, status, created_at, started_at, finished_at, hardware, "
    "code_version, base_version_id, dataset_id, output_version_id, final_metrics, best_metrics, energy_joules, "
    "owner_pid, owner_host, owner_start, error";

Run readRun(const Statement& st) {
  Run r;
  r.id = st.int64(0);
  r.experimentId = st.optInt64(1);
  r.name = st.text(2);
  r.kind = st.text(3);
  r.config = st.text(4);
  r.seed = st.optInt64(5);
  r.status = parseRunStatus(st.text(6)).value_or(RunStatus::failed);
  r.createdAt = st.text(7);
  r.startedAt = st.optText(8);
  r.finishedAt = st.optText(9);
  r.hardware = st.text(10);
  r.codeVersion = st.text(11);
  r.baseVersionId = st.optInt64(12);
  r.datasetId = st.optInt64(13);
  r.outputVersionId = st.optInt64(14);
  r.finalMetrics = st.text(15);
  r.bestMetrics = st.text(16);
  r.energyJoules = st.optReal(17);
  r.ownerPid = st.optInt64(18);
  r.ownerHost = st.text(19);
  r.ownerStart = st.text(20);
  r.error = st.text(21);
  return r;
}

bool isJsonObject(const std::string& s) {
  auto j = nlohmann::json::parse(s, nullptr, false);
  return !j.is_discarded() && j.is_object();
}

}  // namespace

Expected<Id> Project::createRun(const Run& r) {
  if (!isJsonObject(r.config))
    return make_error(ErrorCode::invalid_argument, "run configuration is not a JSON object",
                      "pass the run's settings as a JSON object, e.g. {\"lr\": 2e-4}");
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Statement st, db.prepare(
      "INSERT INTO runs(experiment_id, name, kind, config, seed, status, created_at, hardware, code_version, "
      "base_version_id, dataset_id) VALUES(?,?,?,?,?,'queued',?,?,?,?,?)"));
  st.bind(1, r.experimentId).bind(2, r.name).bind(3, r.kind).bind(4, r.config).bind(5, r.seed);
  st.bind(6, detail::nowIso()).bind(7, r.hardware).bind(8, r.codeVersion).bind(9, r.baseVersionId);
  st.bind(10, r.datasetId);
  auto ok = st.exec();
  if (!ok) return Unexpected{m_impl->context(ok.error(), "creating a run")};
  Id id = db.lastInsertRowid();
  HEARTH_TRY(Run stored, run(id));
  HEARTH_TRY_VOID(m_impl->log("create", "run", id, toJson(stored).dump()));
  HEARTH_TRY_VOID(tx.commit());
  return id;
}

Expected<void> Project::startRun(Id id) {
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Run r, run(id));
  if (r.status != RunStatus::queued)
    return make_error(ErrorCode::invalid_argument, "run " + std::to_string(id) + " is " +
                                                       runStatusName(r.status) + ", not queued; it cannot start");
  const long pid = static_cast<long>(::getpid());
  HEARTH_TRY(Statement st, db.prepare(
      "UPDATE runs SET status='running', started_at=?, owner_pid=?, owner_host=?, owner_start=? WHERE id=?"));
  std::string now = detail::nowIso();
  st.bind(1, now).bind(2, static_cast<std::int64_t>(pid)).bind(3, detail::hostName());
  st.bind(4, detail::processStart(pid)).bind(5, id);
  HEARTH_TRY_VOID(st.exec());
  nlohmann::json payload = {{"status", "running"}, {"started_at", now}, {"owner_pid", pid},
                            {"owner_host", detail::hostName()}};
  HEARTH_TRY_VOID(m_impl->log("update", "run", id, payload.dump()));
  return tx.commit();
}

Expected<void> Project::finishRun(Id id, const std::string& finalMetricsJson, const std::string& bestMetricsJson,
                                  std::optional<double> energyJoules, std::optional<Id> outputVersionId) {
  if (!isJsonObject(finalMetricsJson) || !isJsonObject(bestMetricsJson))
    return make_error(ErrorCode::invalid_argument, "run " + std::to_string(id) +
                                                       ": final and best metrics must be JSON objects");
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Run r, run(id));
  if (r.status != RunStatus::running)
    return make_error(ErrorCode::invalid_argument, "run " + std::to_string(id) + " is " +
                                                       runStatusName(r.status) + ", not running; it cannot finish");
  HEARTH_TRY(Statement st, db.prepare(
      "UPDATE runs SET status='finished', finished_at=?, final_metrics=?, best_metrics=?, energy_joules=?, "
      "output_version_id=? WHERE id=?"));
  std::string now = detail::nowIso();
  st.bind(1, now).bind(2, finalMetricsJson).bind(3, bestMetricsJson).bind(4, energyJoules);
  st.bind(5, outputVersionId).bind(6, id);
  auto ok = st.exec();
  if (!ok) return Unexpected{m_impl->context(ok.error(), "finishing run " + std::to_string(id))};
  nlohmann::json payload = {{"status", "finished"},
                            {"finished_at", now},
                            {"final_metrics", embedJson(finalMetricsJson)},
                            {"best_metrics", embedJson(bestMetricsJson)},
                            {"energy_joules", energyJoules ? nlohmann::json(*energyJoules) : nlohmann::json()},
                            {"output_version_id", outputVersionId ? nlohmann::json(*outputVersionId) : nlohmann::json()}};
  HEARTH_TRY_VOID(m_impl->log("update", "run", id, payload.dump()));
  return tx.commit();
}

Expected<void> Project::failRun(Id id, const std::string& reason) {
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Run r, run(id));
  (void)r;
  HEARTH_TRY(Statement st, db.prepare("UPDATE runs SET status='failed', finished_at=?, error=? WHERE id=?"));
  std::string now = detail::nowIso();
  st.bind(1, now).bind(2, reason).bind(3, id);
  HEARTH_TRY_VOID(st.exec());
  nlohmann::json payload = {{"status", "failed"}, {"finished_at", now}, {"error", reason}};
  HEARTH_TRY_VOID(m_impl->log("update", "run", id, payload.dump()));
  return tx.commit();
}

Expected<Run> Project::run(Id id) {
  HEARTH_TRY(Statement st, m_impl->db.prepare(std::string("SELECT ") + RUN_COLUMNS + " FROM runs WHERE id = ?"));
  st.bind(1, id);
  HEARTH_TRY(bool row, st.step());
  if (!row) return Unexpected{m_impl->notFound("run", id)};
  return readRun(st);
}

Expected<std::vector<Run>> Project::runs() {
  HEARTH_TRY(Statement st, m_impl->db.prepare(std::string("SELECT ") + RUN_COLUMNS + " FROM runs ORDER BY id"));
  std::vector<Run> out;
  for (;;) {
    HEARTH_TRY(bool row, st.step());
    if (!row) break;
    out.push_back(readRun(st));
  }
  return out;
}

Expected<void> Project::deleteRun(Id id) {
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Run r, run(id));
  HEARTH_TRY(Statement st, db.prepare("DELETE FROM runs WHERE id = ?"));
  st.bind(1, id);
  auto ok = st.exec();
  if (!ok) return Unexpected{m_impl->context(ok.error(), "deleting run " + std::to_string(id) +
                                                             " (a model version may still refer to it)")};
  nlohmann::json payload = {{"name", r.name}, {"status", runStatusName(r.status)}};
  HEARTH_TRY_VOID(m_impl->log("delete", "run", id, payload.dump()));
  return tx.commit();
}

// ---- metrics -----------------------------------------------------------------------------------

Expected<void> Project::appendMetrics(Id runId, const std::vector<MetricRecord>& batch) {
  if (batch.empty()) return {};
  Impl& im = *m_impl;
  Database& db = im.db;
  auto fail = [&](Error e) -> Expected<void> {
    im.metricNameIds.clear();  // a rolled-back name insert must not stay cached
    if (im.insertMetric) im.insertMetric->reset();
    return Unexpected{im.context(std::move(e), "appending " + std::to_string(batch.size()) +
                                                   " metric points to run " + std::to_string(runId))};
  };
  auto tx = Transaction::begin(db);
  if (!tx) return fail(tx.error());
  if (!im.insertMetric) {
    auto st = db.prepare(
        "INSERT INTO metrics(run_id, name_id, step, value, wall_time, tokens_seen) VALUES(?,?,?,?,?,?) "
        "ON CONFLICT(run_id, name_id, step) DO UPDATE SET value=excluded.value, wall_time=excluded.wall_time, "
        "tokens_seen=excluded.tokens_seen");
    if (!st) return fail(st.error());
    im.insertMetric.emplace(std::move(*st));
  }
  Statement& ins = *im.insertMetric;
  const std::string* lastName = nullptr;
  Id lastNameId = 0;
  for (const MetricRecord& rec : batch) {
    if (!lastName || rec.name != *lastName) {
      auto it = im.metricNameIds.find(rec.name);
      if (it == im.metricNameIds.end()) {
        if (rec.name.empty())
          return fail(Error{ErrorCode::invalid_argument, "a metric point has an empty name", {}});
        auto sel = db.prepare("SELECT id FROM metric_names WHERE name = ?");
        if (!sel) return fail(sel.error());
        sel->bind(1, rec.name);
        auto row = sel->step();
        if (!row) return fail(row.error());
        Id nameId;
        if (*row) {
          nameId = sel->int64(0);
        } else {
          auto add = db.prepare("INSERT INTO metric_names(name) VALUES(?)");
          if (!add) return fail(add.error());
          add->bind(1, rec.name);
          auto done = add->exec();
          if (!done) return fail(done.error());
          nameId = db.lastInsertRowid();
        }
        it = im.metricNameIds.emplace(rec.name, nameId).first;
      }
      lastName = &it->first;
      lastNameId = it->second;
    }
    ins.bind(1, runId).bind(2, lastNameId).bind(3, rec.point.step).bind(4, rec.point.value);
    ins.bind(5, rec.point.wallTime).bind(6, rec.point.tokensSeen);
    auto done = ins.exec();
    ins.reset();
    if (!done) return fail(done.error());
  }
  auto committed = tx->commit();
  if (!committed) return fail(committed.error());
  return {};
}

Expected<std::vector<MetricPoint>> Project::readMetric(Id runId, const std::string& name, std::int64_t fromStep,
                                                       std::int64_t toStep) {
  Impl& im = *m_impl;
  if (!im.selectMetric) {
    HEARTH_TRY(Statement st, im.db.prepare(
        "SELECT m.step, m.value, m.wall_time, m.tokens_seen FROM metrics m "
        "WHERE m.run_id = ?1 AND m.name_id = (SELECT id FROM metric_names WHERE name = ?2) "
        "AND m.step BETWEEN ?3 AND ?4 ORDER BY m.step"));
    im.selectMetric.emplace(std::move(st));
  }
  Statement& st = *im.selectMetric;
  st.reset();
  st.bind(1, runId).bind(2, name).bind(3, fromStep).bind(4, toStep);
  std::vector<MetricPoint> out;
  sqlite3_stmt* h = st.handle();
  for (;;) {
    auto row = st.step();
    if (!row) {
      st.reset();
      return Unexpected{im.context(row.error(), "reading metric '" + name + "' of run " + std::to_string(runId))};
    }
    if (!*row) break;
    out.push_back(MetricPoint{st.int64(0), st.real(1), st.real(2), st.int64(3)});
  }
  (void)h;
  st.reset();
  return out;
}

Expected<std::vector<std::string>> Project::metricNames(Id runId) {
  HEARTH_TRY(Statement st, m_impl->db.prepare(
      "SELECT n.name FROM metric_names n WHERE EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = ? "
      "AND m.name_id = n.id) ORDER BY n.name"));
  st.bind(1, runId);
  std::vector<std::string> out;
  for (;;) {
    HEARTH_TRY(bool row, st.step());
    if (!row) break;
    out.push_back(st.text(0));
  }
  return out;
}

Expected<std::int64_t> Project::metricCount(Id runId) {
  HEARTH_TRY(Statement st, m_impl->db.prepare("SELECT count(*) FROM metrics WHERE run_id = ?"));
  st.bind(1, runId);
  HEARTH_TRY(bool row, st.step());
  (void)row;
  return st.int64(0);
}

}  // namespace hearth::store
