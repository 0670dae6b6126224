/* Project: runs (lifecycle and ownership) and their metrics (batched writes, range reads).
 *
 * Non-obvious choice: appendMetrics() logs no event per batch. The audit log records what a run was
 * (its configuration, data, base model, status changes, outcome); millions of metric points would
 * drown it, and the metrics themselves are tied to the run whose creation the chain already covers.
 */
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <cstddef>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "hearth/store/project.h"
#include "hearth/store/record-json.h"
#include "hearth/store/sha256.h"
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
  HEARTH_TRY(auto digest, metricsDigest(id));
  payload["metric_points"] = digest.first;
  payload["metrics_sha256"] = digest.second;
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
  HEARTH_TRY(auto digest, metricsDigest(id));
  payload["metric_points"] = digest.first;
  payload["metrics_sha256"] = digest.second;
  HEARTH_TRY_VOID(m_impl->log("update", "run", id, payload.dump()));
  return tx.commit();
}

Expected<void> Project::interruptRun(Id id, const std::string& reason) {
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Run r, run(id));
  if (r.status != RunStatus::running)
    return make_error(ErrorCode::invalid_argument, "run " + std::to_string(id) + " is " +
                                                       runStatusName(r.status) + ", not running; it cannot be interrupted");
  HEARTH_TRY(Statement st, db.prepare("UPDATE runs SET status='interrupted', finished_at=?, error=? WHERE id=?"));
  std::string now = detail::nowIso();
  st.bind(1, now).bind(2, reason).bind(3, id);
  HEARTH_TRY_VOID(st.exec());
  nlohmann::json payload = {{"status", "interrupted"}, {"finished_at", now}, {"reason", reason}};
  HEARTH_TRY(auto digest, metricsDigest(id));
  payload["metric_points"] = digest.first;
  payload["metrics_sha256"] = digest.second;
  HEARTH_TRY_VOID(m_impl->log("interrupt", "run", id, payload.dump()));
  return tx.commit();
}

Expected<void> Project::resumeRun(Id id) {
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Run r, run(id));
  if (r.status != RunStatus::interrupted && r.status != RunStatus::failed)
    return make_error(ErrorCode::invalid_argument, "run " + std::to_string(id) + " is " +
                                                       runStatusName(r.status) +
                                                       "; only an interrupted or failed run can be resumed");
  const long pid = static_cast<long>(::getpid());
  HEARTH_TRY(Statement st, db.prepare(
      "UPDATE runs SET status='running', finished_at=NULL, error='', owner_pid=?, owner_host=?, owner_start=? "
      "WHERE id=?"));
  st.bind(1, static_cast<std::int64_t>(pid)).bind(2, detail::hostName()).bind(3, detail::processStart(pid));
  st.bind(4, id);
  HEARTH_TRY_VOID(st.exec());
  nlohmann::json payload = {{"status", "running"}, {"resumed_from", runStatusName(r.status)},
                            {"owner_pid", pid}, {"owner_host", detail::hostName()}};
  HEARTH_TRY_VOID(m_impl->log("resume", "run", id, payload.dump()));
  return tx.commit();
}

Expected<void> Project::recordRunDevice(Id id, const std::string& deviceJson) {
  auto part = nlohmann::json::parse(deviceJson, nullptr, false);
  if (part.is_discarded() || !part.is_object())
    return make_error(ErrorCode::invalid_argument, "run " + std::to_string(id) + ": the device record is not a JSON object");
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Run r, run(id));
  // The hardware text is JSON from telemetry::describeRun; anything else (a run imported from elsewhere)
  // is kept under "text" rather than lost.
  auto hw = r.hardware.empty() ? nlohmann::json::object() : nlohmann::json::parse(r.hardware, nullptr, false);
  if (hw.is_discarded() || !hw.is_object()) hw = nlohmann::json{{"text", r.hardware}};
  if (!hw.contains("training_devices") || !hw["training_devices"].is_array())
    hw["training_devices"] = nlohmann::json::array();
  hw["training_devices"].push_back(part);
  const std::string text = hw.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  HEARTH_TRY(Statement st, db.prepare("UPDATE runs SET hardware=? WHERE id=?"));
  st.bind(1, text).bind(2, id);
  auto ok = st.exec();
  if (!ok) return Unexpected{m_impl->context(ok.error(), "recording the device of run " + std::to_string(id))};
  nlohmann::json payload = {{"training_device", part}};
  HEARTH_TRY_VOID(m_impl->log("update", "run", id, payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
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
//
// Chunk format: `count` records of 32 bytes, little-endian, in step order, no step twice within a
// chunk: step (i64), value (f64), wall_time (f64), tokens_seen (i64) -- exactly MetricPoint's layout.

namespace {

static_assert(sizeof(MetricPoint) == 32 && offsetof(MetricPoint, value) == 8 &&
                  offsetof(MetricPoint, wallTime) == 16 && offsetof(MetricPoint, tokensSeen) == 24,
              "MetricPoint must match the on-disk chunk record");
static_assert(std::endian::native == std::endian::little, "chunk records are little-endian");

constexpr size_t MAX_CHUNK_POINTS = 4096;  // a chunk never holds more
constexpr size_t MERGE_BELOW = 1024;       // a new batch extends the last chunk while it stays this small

// Sorts by step, keeping only the last-written point of a step.
void sortUnique(std::vector<MetricPoint>& pts) {
  std::stable_sort(pts.begin(), pts.end(), [](const MetricPoint& a, const MetricPoint& b) { return a.step < b.step; });
  size_t out = 0;
  for (size_t i = 0; i < pts.size(); ++i) {
    if (out > 0 && pts[out - 1].step == pts[i].step) pts[out - 1] = pts[i];
    else pts[out++] = pts[i];
  }
  pts.resize(out);
}

}  // namespace

Expected<Id> Project::Impl::metricNameId(const std::string& name, bool create) {
  auto it = metricNameIds.find(name);
  if (it != metricNameIds.end()) return it->second;
  HEARTH_TRY(Statement sel, db.prepare("SELECT id FROM metric_names WHERE name = ?"));
  sel.bind(1, name);
  HEARTH_TRY(bool row, sel.step());
  Id id = 0;
  if (row) {
    id = sel.int64(0);
  } else {
    if (!create) return Id{0};
    HEARTH_TRY(Statement add, db.prepare("INSERT INTO metric_names(name) VALUES(?)"));
    add.bind(1, name);
    HEARTH_TRY_VOID(add.exec());
    id = db.lastInsertRowid();
  }
  metricNameIds.emplace(name, id);
  return id;
}

Expected<void> Project::appendMetrics(Id runId, const std::vector<MetricRecord>& batch) {
  if (batch.empty()) return {};
  Impl& im = *m_impl;
  Database& db = im.db;
  auto fail = [&](Error e) -> Expected<void> {
    im.metricNameIds.clear();  // a rolled-back name insert must not stay cached
    return Unexpected{im.context(std::move(e), "appending " + std::to_string(batch.size()) +
                                                   " metric points to run " + std::to_string(runId))};
  };
  // Group by metric name, keeping first-appearance order of names.
  std::vector<std::pair<std::string, std::vector<MetricPoint>>> groups;
  std::unordered_map<std::string_view, size_t> groupOf;
  for (const MetricRecord& rec : batch) {
    if (rec.name.empty()) return fail(Error{ErrorCode::invalid_argument, "a metric point has an empty name", {}});
    auto [it, added] = groupOf.emplace(rec.name, groups.size());
    if (added) groups.push_back({rec.name, {}});
    groups[it->second].second.push_back(rec.point);
  }
  auto tx = Transaction::begin(db);
  if (!tx) return fail(tx.error());
  bool ended = false;
  {
    auto exists = db.prepare("SELECT status FROM runs WHERE id = ?");
    if (!exists) return fail(exists.error());
    exists->bind(1, runId);
    auto row = exists->step();
    if (!row) return fail(row.error());
    if (!*row) return fail(im.notFound("run", runId));
    const std::string status = exists->text(0);
    ended = status == "finished" || status == "failed" || status == "interrupted";
  }
  for (auto& [name, pts] : groups) {
    sortUnique(pts);
    auto nameId = im.metricNameId(name, true);
    if (!nameId) return fail(nameId.error());
    size_t next = 0;
    // Extend the series' newest chunk when it is small and the new points all come after it. Only
    // the newest: readers resolve a step logged twice by chunk id, so merged points must stay newest.
    // (max(id) comes from the covering index; selecting `data` in the same query would make SQLite
    // read every chunk's blob of the series into a sorter.)
    auto last = db.prepare(
        "SELECT id, last_step, count FROM metric_chunks WHERE id = "
        "(SELECT max(id) FROM metric_chunks WHERE run_id = ? AND name_id = ?)");
    if (!last) return fail(last.error());
    last->bind(1, runId).bind(2, *nameId);
    auto row = last->step();
    if (!row) return fail(row.error());
    if (*row && static_cast<size_t>(last->int64(2)) < MERGE_BELOW && last->int64(1) < pts.front().step) {
      const Id chunkId = last->int64(0);
      const size_t have = static_cast<size_t>(last->int64(2));
      const size_t take = std::min(pts.size(), MERGE_BELOW - have);
      auto blob = db.prepare("SELECT data FROM metric_chunks WHERE id = ?");
      if (!blob) return fail(blob.error());
      blob->bind(1, chunkId);
      auto blobRow = blob->step();
      if (!blobRow) return fail(blobRow.error());
      const void* old = *blobRow ? sqlite3_column_blob(blob->handle(), 0) : nullptr;
      const size_t oldBytes = *blobRow ? static_cast<size_t>(sqlite3_column_bytes(blob->handle(), 0)) : 0;
      if (oldBytes != have * sizeof(MetricPoint))
        return fail(Error{ErrorCode::format, "project '" + db.path() + "': metric chunk " + std::to_string(chunkId) +
                                                 " is damaged (size does not match its count)", {}});
      std::string data(static_cast<const char*>(old), oldBytes);
      data.append(reinterpret_cast<const char*>(pts.data()), take * sizeof(MetricPoint));
      auto up = db.prepare("UPDATE metric_chunks SET last_step = ?, count = ?, data = ? WHERE id = ?");
      if (!up) return fail(up.error());
      up->bind(1, pts[take - 1].step).bind(2, static_cast<std::int64_t>(have + take));
      sqlite3_bind_blob64(up->handle(), 3, data.data(), data.size(), SQLITE_STATIC);
      up->bind(4, chunkId);
      auto done = up->exec();
      if (!done) return fail(done.error());
      next = take;
    }
    if (next < pts.size()) {
      auto ins = db.prepare(
          "INSERT INTO metric_chunks(run_id, name_id, first_step, last_step, count, data) VALUES(?,?,?,?,?,?)");
      if (!ins) return fail(ins.error());
      while (next < pts.size()) {
        const size_t n = std::min(MAX_CHUNK_POINTS, pts.size() - next);
        ins->bind(1, runId).bind(2, *nameId).bind(3, pts[next].step).bind(4, pts[next + n - 1].step);
        ins->bind(5, static_cast<std::int64_t>(n));
        sqlite3_bind_blob64(ins->handle(), 6, pts.data() + next, n * sizeof(MetricPoint), SQLITE_STATIC);
        auto done = ins->exec();
        ins->reset();
        if (!done) return fail(done.error());
        next += n;
      }
    }
  }
  if (ended) {
    // The run's ended event recorded a digest of its metrics; record the new one in the same
    // transaction so verifyChain() can tell this legitimate change from an edit.
    auto digest = metricsDigest(runId);
    if (!digest) return fail(digest.error());
    nlohmann::json payload = {{"metrics_appended", batch.size()},
                              {"metric_points", digest->first},
                              {"metrics_sha256", digest->second}};
    auto logged = im.log("update", "run", runId, payload.dump());
    if (!logged) return fail(logged.error());
  }
  auto committed = tx->commit();
  if (!committed) return fail(committed.error());
  return {};
}

Expected<std::pair<std::int64_t, std::string>> Project::metricsDigest(Id runId) {
  HEARTH_TRY(std::vector<std::string> names, metricNames(runId));
  Sha256 h;
  std::int64_t points = 0;
  for (const auto& name : names) {  // metricNames() sorts by byte order (SQLite's BINARY collation)
    HEARTH_TRY(std::vector<MetricPoint> pts, readMetric(runId, name));
    h.update(std::to_string(name.size()) + ":" + name);
    h.update(pts.data(), pts.size() * sizeof(MetricPoint));
    points += static_cast<std::int64_t>(pts.size());
  }
  return std::pair<std::int64_t, std::string>(points, h.finishHex());
}

Expected<std::vector<MetricPoint>> Project::readMetric(Id runId, const std::string& name, std::int64_t fromStep,
                                                       std::int64_t toStep) {
  Impl& im = *m_impl;
  std::vector<MetricPoint> out;
  auto fail = [&](Error e) -> Expected<std::vector<MetricPoint>> {
    return Unexpected{im.context(std::move(e), "reading metric '" + name + "' of run " + std::to_string(runId))};
  };
  auto nameId = im.metricNameId(name, false);
  if (!nameId) return fail(nameId.error());
  if (*nameId == 0 || fromStep > toStep) return out;
  {
    // Size the vector once: growing it by doubling would copy a million points several times.
    auto n = im.db.prepare("SELECT coalesce(sum(count), 0) FROM metric_chunks "
                           "WHERE run_id = ? AND name_id = ? AND first_step <= ? AND last_step >= ?");
    if (!n) return fail(n.error());
    n->bind(1, runId).bind(2, *nameId).bind(3, toStep).bind(4, fromStep);
    auto row = n->step();
    if (!row) return fail(row.error());
    out.reserve(static_cast<size_t>(std::clamp<std::int64_t>(n->int64(0), 0, 1 << 26)));
  }
  // One statement, so one snapshot: a writer committing meanwhile is seen entirely or not at all.
  auto st = im.db.prepare(
      "SELECT id, first_step, last_step, count, data FROM metric_chunks "
      "WHERE run_id = ? AND name_id = ? AND first_step <= ? AND last_step >= ? ORDER BY first_step, id");
  if (!st) return fail(st.error());
  st->bind(1, runId).bind(2, *nameId).bind(3, toStep).bind(4, fromStep);
  bool ordered = true;
  std::vector<std::pair<Id, size_t>> segments;  // (chunk id, offset of its first point in `out`)
  std::int64_t prevLast = INT64_MIN;
  bool first = true;
  for (;;) {
    auto row = st->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    const size_t count = static_cast<size_t>(st->int64(3));
    // The blob may sit at any address inside a page buffer: copy bytes, never read it as MetricPoint.
    const void* data = sqlite3_column_blob(st->handle(), 4);
    const size_t bytes = static_cast<size_t>(sqlite3_column_bytes(st->handle(), 4));
    if (bytes != count * sizeof(MetricPoint) || (count && !data))
      return fail(Error{ErrorCode::format, "project '" + im.db.path() + "': metric chunk " +
                                               std::to_string(st->int64(0)) + " is damaged (size does not match its count)", {}});
    if (!first && st->int64(1) <= prevLast) ordered = false;  // overlapping chunks: a step re-logged
    first = false;
    segments.push_back({st->int64(0), out.size()});
    prevLast = std::max(prevLast, st->int64(2));
    const size_t base = out.size();
    out.resize(base + count);
    if (count) std::memcpy(out.data() + base, data, bytes);
    // Points inside a chunk are in step order: trim to the range with two binary searches.
    if (st->int64(2) > toStep) {
      auto e = std::upper_bound(out.begin() + static_cast<std::ptrdiff_t>(base), out.end(), toStep,
                                [](std::int64_t s, const MetricPoint& p) { return s < p.step; });
      out.erase(e, out.end());
    }
    if (st->int64(1) < fromStep) {
      auto b = std::lower_bound(out.begin() + static_cast<std::ptrdiff_t>(base), out.end(), fromStep,
                                [](const MetricPoint& p, std::int64_t s) { return p.step < s; });
      out.erase(out.begin() + static_cast<std::ptrdiff_t>(base), b);
    }
  }
  if (!ordered) {
    // A step was logged more than once: keep the point from the newest chunk (highest id).
    std::vector<std::pair<Id, MetricPoint>> tagged;
    tagged.reserve(out.size());
    for (size_t k = 0; k < segments.size(); ++k) {
      size_t end = k + 1 < segments.size() ? segments[k + 1].second : out.size();
      for (size_t i = segments[k].second; i < end; ++i) tagged.push_back({segments[k].first, out[i]});
    }
    std::sort(tagged.begin(), tagged.end(), [](const auto& a, const auto& b) {
      return a.second.step != b.second.step ? a.second.step < b.second.step : a.first < b.first;
    });
    out.clear();
    for (size_t i = 0; i < tagged.size(); ++i)
      if (i + 1 == tagged.size() || tagged[i + 1].second.step != tagged[i].second.step) out.push_back(tagged[i].second);
  }
  return out;
}

Expected<std::vector<std::string>> Project::metricNames(Id runId) {
  HEARTH_TRY(Statement st, m_impl->db.prepare(
      "SELECT n.name FROM metric_names n WHERE EXISTS (SELECT 1 FROM metric_chunks c WHERE c.run_id = ? "
      "AND c.name_id = n.id) ORDER BY n.name"));
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
  HEARTH_TRY(Statement st, m_impl->db.prepare("SELECT coalesce(sum(count), 0) FROM metric_chunks WHERE run_id = ?"));
  st.bind(1, runId);
  HEARTH_TRY(bool row, st.step());
  (void)row;
  return st.int64(0);
}

}  // namespace hearth::store
