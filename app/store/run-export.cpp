/* Export and import of one run: JSON (configuration, metadata, provenance, all metrics) and CSV
 * (metrics only, one point per line).
 *
 * Non-obvious choice: ids are meaningless outside their project, so the JSON export also carries the
 * provenance by content (base model version and dataset sha256, experiment name); import re-links by
 * those, and metric values are written with 17 significant digits so a round trip is bit-exact.
 */
#include <charconv>
#include <cstdio>
#include <sstream>

#include "hearth/store/project.h"
#include "hearth/store/record-json.h"
#include "project-impl.h"

namespace hearth::store {
namespace {

std::string formatDouble(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string csvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// Splits one CSV record (RFC 4180) starting at `pos`; advances `pos` past its line end.
bool csvRecord(const std::string& text, size_t& pos, std::vector<std::string>& fields, std::string& err) {
  fields.clear();
  std::string cur;
  bool quoted = false, inQuotes = false;
  while (pos < text.size()) {
    char c = text[pos++];
    if (inQuotes) {
      if (c == '"') {
        if (pos < text.size() && text[pos] == '"') {
          cur += '"';
          ++pos;
        } else {
          inQuotes = false;
        }
      } else {
        cur += c;
      }
    } else if (c == '"' && cur.empty() && !quoted) {
      inQuotes = quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(cur));
      cur.clear();
      quoted = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && pos < text.size() && text[pos] == '\n') ++pos;
      fields.push_back(std::move(cur));
      return true;
    } else {
      cur += c;
    }
  }
  if (inQuotes) {
    err = "a quoted field is not closed";
    return false;
  }
  fields.push_back(std::move(cur));
  return true;
}

template <class T>
bool parseNumber(const std::string& s, T& out) {
  const char* b = s.data();
  const char* e = s.data() + s.size();
  auto r = std::from_chars(b, e, out);
  return r.ec == std::errc() && r.ptr == e;
}

}  // namespace

Expected<std::string> Project::exportRunJson(Id runId) {
  HEARTH_TRY(Run r, run(runId));
  nlohmann::json j;
  j["format"] = "hearth-run";
  j["version"] = 1;
  j["run"] = toJson(r);
  nlohmann::json prov = nlohmann::json::object();
  if (r.baseVersionId) {
    HEARTH_TRY(ModelVersion v, modelVersion(*r.baseVersionId));
    HEARTH_TRY(Model m, model(v.modelId));
    prov["base_model_version"] = toJson(v);
    prov["base_model"] = toJson(m);
  }
  if (r.datasetId) {
    HEARTH_TRY(Dataset d, dataset(*r.datasetId));
    prov["dataset"] = toJson(d);
  }
  if (r.experimentId) {
    HEARTH_TRY(Statement st, m_impl->db.prepare("SELECT name FROM experiments WHERE id=?"));
    st.bind(1, *r.experimentId);
    HEARTH_TRY(bool row, st.step());
    if (row) prov["experiment"] = st.text(0);
  }
  j["provenance"] = prov;
  nlohmann::json metrics = nlohmann::json::object();
  HEARTH_TRY(std::vector<std::string> names, metricNames(runId));
  for (const auto& name : names) {
    HEARTH_TRY(std::vector<MetricPoint> pts, readMetric(runId, name));
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& p : pts) arr.push_back({p.step, p.value, p.wallTime, p.tokensSeen});
    metrics[name] = std::move(arr);
  }
  j["metrics_columns"] = {"step", "value", "wall_time", "tokens_seen"};
  j["metrics"] = std::move(metrics);
  return j.dump(2) + "\n";
}

Expected<std::string> Project::exportRunCsv(Id runId) {
  HEARTH_TRY(Run r, run(runId));
  (void)r;
  std::string out = "run_id,metric,step,value,wall_time,tokens_seen\n";
  HEARTH_TRY(std::vector<std::string> names, metricNames(runId));
  const std::string id = std::to_string(runId);
  for (const auto& name : names) {
    HEARTH_TRY(std::vector<MetricPoint> pts, readMetric(runId, name));
    const std::string quoted = csvField(name);
    for (const auto& p : pts) {
      out += id;
      out += ',';
      out += quoted;
      out += ',';
      out += std::to_string(p.step);
      out += ',';
      out += formatDouble(p.value);
      out += ',';
      out += formatDouble(p.wallTime);
      out += ',';
      out += std::to_string(p.tokensSeen);
      out += '\n';
    }
  }
  return out;
}

Expected<Id> Project::importRunJson(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  auto bad = [](const std::string& what) {
    return make_error(ErrorCode::format, "run export: " + what,
                      "expected a file written by `hearth-cli runs export RUN --format json`");
  };
  if (j.is_discarded()) return bad("not valid JSON");
  if (!j.is_object() || j.value("format", "") != "hearth-run") return bad("\"format\" is not \"hearth-run\"");
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int>() != 1)
    return bad("unsupported \"version\" (this build reads version 1)");
  if (!j.contains("run") || !j["run"].is_object()) return bad("no \"run\" object");
  const auto& jr = j["run"];
  try {
    Run r;
    r.name = jr.value("name", "");
    r.kind = jr.value("kind", "train");
    r.config = jr.contains("config") ? jr["config"].dump() : "{}";
    if (jr.contains("seed") && jr["seed"].is_number_integer()) r.seed = jr["seed"].get<std::int64_t>();
    r.hardware = jr.value("hardware", "");
    r.codeVersion = jr.value("code_version", "");
    auto status = parseRunStatus(jr.value("status", "finished"));
    if (!status) return bad("run status '" + jr.value("status", "") + "' is unknown");
    // A run imported as `running` has no live owner here.
    if (*status == RunStatus::running || *status == RunStatus::queued) status = RunStatus::interrupted;

    // Re-link provenance by content.
    const nlohmann::json prov = j.value("provenance", nlohmann::json::object());
    Database& db = m_impl->db;
    auto findBySha = [&](const char* table, const std::string& sha) -> Expected<std::optional<Id>> {
      if (sha.empty()) return std::optional<Id>();
      HEARTH_TRY(Statement st, db.prepare(std::string("SELECT id FROM ") + table + " WHERE sha256=? ORDER BY id LIMIT 1"));
      st.bind(1, sha);
      HEARTH_TRY(bool row, st.step());
      return row ? std::optional<Id>(st.int64(0)) : std::nullopt;
    };
    if (prov.contains("base_model_version") && prov["base_model_version"].is_object()) {
      HEARTH_TRY(r.baseVersionId, findBySha("model_versions", prov["base_model_version"].value("sha256", "")));
    }
    if (prov.contains("dataset") && prov["dataset"].is_object()) {
      HEARTH_TRY(r.datasetId, findBySha("datasets", prov["dataset"].value("sha256", "")));
    }
    if (prov.contains("experiment") && prov["experiment"].is_string()) {
      HEARTH_TRY(Statement st, db.prepare("SELECT id FROM experiments WHERE name=?"));
      st.bind(1, prov["experiment"].get<std::string>());
      HEARTH_TRY(bool row, st.step());
      if (row) r.experimentId = st.int64(0);
    }

    // Parse every metric point before writing anything, so a bad file stores nothing.
    std::vector<MetricRecord> points;
    if (j.contains("metrics")) {
      if (!j["metrics"].is_object()) return bad("\"metrics\" is not an object");
      for (const auto& [name, arr] : j["metrics"].items()) {
        if (!arr.is_array()) return bad("metric '" + name + "' is not an array");
        for (size_t i = 0; i < arr.size(); ++i) {
          const auto& p = arr[i];
          if (!p.is_array() || p.size() != 4 || !p[0].is_number_integer() || !p[1].is_number() ||
              !p[2].is_number() || !p[3].is_number_integer())
            return bad("metric '" + name + "' point " + std::to_string(i) +
                       " is not [step, value, wall_time, tokens_seen]");
          points.push_back({name, {p[0].get<std::int64_t>(), p[1].get<double>(), p[2].get<double>(),
                                   p[3].get<std::int64_t>()}});
        }
      }
    }

    HEARTH_TRY(Transaction tx, Transaction::begin(db));
    HEARTH_TRY(Statement st, db.prepare(
        "INSERT INTO runs(experiment_id, name, kind, config, seed, status, created_at, started_at, finished_at, "
        "hardware, code_version, base_version_id, dataset_id, final_metrics, best_metrics, energy_joules, error) "
        "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"));
    auto optText = [&](const char* key) -> std::optional<std::string> {
      if (jr.contains(key) && jr[key].is_string()) return jr[key].get<std::string>();
      return std::nullopt;
    };
    std::optional<double> energy;
    if (jr.contains("energy_joules") && jr["energy_joules"].is_number()) energy = jr["energy_joules"].get<double>();
    st.bind(1, r.experimentId).bind(2, r.name).bind(3, r.kind).bind(4, r.config).bind(5, r.seed);
    st.bind(6, runStatusName(*status)).bind(7, optText("created_at").value_or(detail::nowIso()));
    st.bind(8, optText("started_at")).bind(9, optText("finished_at")).bind(10, r.hardware);
    st.bind(11, r.codeVersion).bind(12, r.baseVersionId).bind(13, r.datasetId);
    st.bind(14, jr.contains("final_metrics") ? jr["final_metrics"].dump() : std::string("{}"));
    st.bind(15, jr.contains("best_metrics") ? jr["best_metrics"].dump() : std::string("{}"));
    st.bind(16, energy).bind(17, jr.value("error", ""));
    HEARTH_TRY_VOID(st.exec());
    Id id = db.lastInsertRowid();
    HEARTH_TRY(Run stored, run(id));
    nlohmann::json payload = toJson(stored);
    payload["imported_from"] = {{"id", jr.value("id", 0)}, {"points", points.size()}};
    HEARTH_TRY_VOID(m_impl->log("import", "run", id, payload.dump()));
    HEARTH_TRY_VOID(tx.commit());
    // Metrics in batches after the run exists; a failure here leaves the run with what was written.
    constexpr size_t BATCH = 50000;
    for (size_t i = 0; i < points.size(); i += BATCH) {
      std::vector<MetricRecord> batch(points.begin() + static_cast<std::ptrdiff_t>(i),
                                      points.begin() + static_cast<std::ptrdiff_t>(std::min(points.size(), i + BATCH)));
      HEARTH_TRY_VOID(appendMetrics(id, batch));
    }
    return id;
  } catch (const nlohmann::json::exception& e) {
    return bad(std::string("unexpected value: ") + e.what());
  }
}

Expected<std::int64_t> Project::importMetricsCsv(Id runId, const std::string& csv) {
  HEARTH_TRY(Run r, run(runId));
  (void)r;
  size_t pos = 0;
  std::vector<std::string> f;
  std::string err;
  auto bad = [&](size_t line, const std::string& what) {
    return make_error(ErrorCode::format, "metrics CSV line " + std::to_string(line) + ": " + what,
                      "expected the columns run_id,metric,step,value,wall_time,tokens_seen");
  };
  if (!csvRecord(csv, pos, f, err)) return bad(1, err);
  if (f != std::vector<std::string>{"run_id", "metric", "step", "value", "wall_time", "tokens_seen"})
    return bad(1, "the header is not run_id,metric,step,value,wall_time,tokens_seen");
  std::vector<MetricRecord> points;
  size_t line = 1;
  while (pos < csv.size()) {
    ++line;
    if (!csvRecord(csv, pos, f, err)) return bad(line, err);
    if (f.size() == 1 && f[0].empty()) continue;  // blank line
    if (f.size() != 6) return bad(line, std::to_string(f.size()) + " fields, expected 6");
    MetricRecord rec;
    rec.name = f[1];
    if (rec.name.empty()) return bad(line, "empty metric name");
    if (!parseNumber(f[2], rec.point.step)) return bad(line, "step '" + f[2] + "' is not an integer");
    if (!parseNumber(f[3], rec.point.value)) return bad(line, "value '" + f[3] + "' is not a number");
    if (!parseNumber(f[4], rec.point.wallTime)) return bad(line, "wall_time '" + f[4] + "' is not a number");
    if (!parseNumber(f[5], rec.point.tokensSeen)) return bad(line, "tokens_seen '" + f[5] + "' is not an integer");
    points.push_back(std::move(rec));
  }
  HEARTH_TRY_VOID(appendMetrics(runId, points));
  return static_cast<std::int64_t>(points.size());
}

}  // namespace hearth::store
