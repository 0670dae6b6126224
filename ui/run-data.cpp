/* Run data: see run-data.h.
 *
 * Non-obvious choice: the worker functions catch every exception and turn it into the result's error
 * string, because an exception thrown on a QtConcurrent thread would only surface (rethrown) in the
 * GUI thread's result() call, outside any handler.
 */
#include "run-data.h"

#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "hearth/telemetry/recorder.h"

namespace hearth::ui {
namespace {

constexpr double NaN = std::numeric_limits<double>::quiet_NaN();

struct XY {
  std::vector<double> x, y;
};

Expected<XY> readXY(store::Project& project, store::Id runId, const std::string& metric) {
  HEARTH_TRY(std::vector<store::MetricPoint> pts, project.readMetric(runId, metric));
  XY r;
  r.x.reserve(pts.size());
  r.y.reserve(pts.size());
  for (const auto& p : pts) {
    r.x.push_back(static_cast<double>(p.step));
    r.y.push_back(p.value);
  }
  return r;
}

std::optional<double> jsonNumber(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

nlohmann::json parseObject(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return nlohmann::json::object();
  return j;
}

void flattenInto(const nlohmann::json& v, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (v.is_object() && !v.empty()) {
    for (auto it = v.begin(); it != v.end(); ++it)
      flattenInto(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
    return;
  }
  out[prefix] = v.is_string() ? v.get<std::string>() : v.dump();
}

Expected<store::Project> openForReading(const QString& path) {
  store::OpenOptions o;
  o.recoverInterrupted = false;
  return store::Project::open(path.toStdString(), o);
}

}  // namespace

QString xAxisLabel(XAxis axis) {
  switch (axis) {
    case XAxis::step: return QObject::tr("Step");
    case XAxis::tokens: return QObject::tr("Tokens seen");
    case XAxis::elapsed: return QObject::tr("Wall time (s)");
    case XAxis::energy: return QObject::tr("Energy (J)");
  }
  return {};
}

const char* xAxisColumn(XAxis axis) {
  switch (axis) {
    case XAxis::step: return "step";
    case XAxis::tokens: return "tokens_seen";
    case XAxis::elapsed: return "elapsed_s";
    case XAxis::energy: return "energy_j";
  }
  return "x";
}

const std::vector<double>& SeriesData::x(XAxis axis) const {
  switch (axis) {
    case XAxis::tokens: return tokens;
    case XAxis::elapsed: return elapsed;
    case XAxis::energy: return energy;
    case XAxis::step: break;
  }
  return step;
}

double interpolateAt(const std::vector<double>& xs, const std::vector<double>& ys, double x) {
  const std::size_t n = std::min(xs.size(), ys.size());
  if (n == 0) return NaN;
  if (x <= xs[0]) return ys[0];
  if (x >= xs[n - 1]) return ys[n - 1];
  auto it = std::upper_bound(xs.begin(), xs.begin() + static_cast<std::ptrdiff_t>(n), x);
  const std::size_t hi = static_cast<std::size_t>(it - xs.begin());
  const std::size_t lo = hi - 1;
  const double dx = xs[hi] - xs[lo];
  if (dx <= 0) return ys[hi];
  const double t = (x - xs[lo]) / dx;
  return ys[lo] + t * (ys[hi] - ys[lo]);
}

Expected<SeriesData> loadSeries(store::Project& project, store::Id runId, const std::string& metric) {
  HEARTH_TRY(store::Run run, project.run(runId));
  HEARTH_TRY(std::vector<store::MetricPoint> pts, project.readMetric(runId, metric));
  SeriesData s;
  s.runId = runId;
  s.runName = run.name.empty() ? QObject::tr("run %1").arg(runId) : QString::fromStdString(run.name);
  const std::size_t n = pts.size();
  s.step.resize(n);
  s.tokens.resize(n);
  s.elapsed.resize(n);
  s.energy.resize(n);
  s.y.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    s.step[i] = static_cast<double>(pts[i].step);
    s.y[i] = pts[i].value;
  }
  auto fill = [&](const char* name, std::vector<double>& dst, auto fallback) -> Expected<void> {
    if (metric == name) {  // the metric is its own x variant
      dst = s.y;
      return {};
    }
    HEARTH_TRY(XY xy, readXY(project, runId, name));
    if (xy.x.empty()) {
      for (std::size_t i = 0; i < n; ++i) dst[i] = fallback(i);
      return {};
    }
    for (std::size_t i = 0; i < n; ++i) dst[i] = interpolateAt(xy.x, xy.y, s.step[i]);
    return {};
  };
  // Without a tokens_seen series, the points' own token counts; without elapsed_s, wall time since
  // the run's first point; without energy, nothing (NaN).
  const double wall0 = n > 0 ? pts[0].wallTime : 0;
  HEARTH_TRY_VOID(fill("tokens_seen", s.tokens, [&](std::size_t i) { return static_cast<double>(pts[i].tokensSeen); }));
  HEARTH_TRY_VOID(fill("elapsed_s", s.elapsed, [&](std::size_t i) { return pts[i].wallTime - wall0; }));
  HEARTH_TRY_VOID(fill(telemetry::METRIC_ENERGY_J, s.energy, [&](std::size_t) { return NaN; }));
  return s;
}

Expected<RunSummary> loadRunSummary(store::Project& project, store::Id runId) {
  RunSummary r;
  HEARTH_TRY(r.run, project.run(runId));
  HEARTH_TRY(r.metrics, project.metricNames(runId));
  r.displayName = r.run.name.empty() ? QObject::tr("run %1").arg(runId) : QString::fromStdString(r.run.name);
  const nlohmann::json fin = parseObject(r.run.finalMetrics);
  const nlohmann::json best = parseObject(r.run.bestMetrics);
  auto has = [&](const char* name) { return std::find(r.metrics.begin(), r.metrics.end(), name) != r.metrics.end(); };
  auto last = [&](const char* name) -> Expected<std::optional<double>> {
    if (!has(name)) return std::optional<double>{};
    HEARTH_TRY(XY xy, readXY(project, runId, name));
    if (xy.y.empty()) return std::optional<double>{};
    return std::optional<double>(xy.y.back());
  };
  r.finalLoss = jsonNumber(fin, "loss");
  if (!r.finalLoss) {
    HEARTH_TRY(r.finalLoss, last("loss"));
  }
  r.finalValLoss = jsonNumber(fin, "val_loss");
  if (!r.finalValLoss) {
    HEARTH_TRY(r.finalValLoss, last("val_loss"));
  }
  r.bestValLoss = jsonNumber(best, "val_loss");
  if (!r.bestValLoss && has("val_loss")) {
    HEARTH_TRY(XY xy, readXY(project, runId, "val_loss"));
    if (!xy.y.empty()) r.bestValLoss = *std::min_element(xy.y.begin(), xy.y.end());
  }
  std::optional<double> tokens = jsonNumber(fin, "tokens_seen"), seconds = jsonNumber(fin, "elapsed_s");
  if (!tokens || !seconds) {
    HEARTH_TRY(tokens, last("tokens_seen"));
    HEARTH_TRY(seconds, last("elapsed_s"));
  }
  if (tokens && seconds && *seconds > 0) r.tokensPerSecond = *tokens / *seconds;
  r.energyJoules = r.run.energyJoules;
  if (!r.energyJoules) {
    HEARTH_TRY(r.energyJoules, last(telemetry::METRIC_ENERGY_J));
  }
  return r;
}

std::map<std::string, std::string> flattenJson(const nlohmann::json& value) {
  std::map<std::string, std::string> out;
  if (value.is_object() && value.empty()) return out;
  flattenInto(value, {}, out);
  return out;
}

std::vector<std::string> differingKeys(const std::vector<std::string>& configsJson) {
  std::vector<std::map<std::string, std::string>> flat;
  std::set<std::string> keys;
  for (const auto& c : configsJson) {
    flat.push_back(flattenJson(parseObject(c)));
    for (const auto& [k, v] : flat.back()) keys.insert(k);
  }
  std::vector<std::string> out;
  for (const auto& k : keys) {
    std::optional<std::string> first;
    bool differs = false;
    for (std::size_t i = 0; i < flat.size() && !differs; ++i) {
      auto it = flat[i].find(k);
      std::optional<std::string> v = it == flat[i].end() ? std::nullopt : std::optional<std::string>(it->second);
      if (i == 0) first = v;
      else differs = v != first;
    }
    if (differs) out.push_back(k);
  }
  return out;
}

QFuture<RunsLoadResult> loadRunsAsync(const QString& projectPath, const QList<store::Id>& runIds) {
  return QtConcurrent::run([projectPath, runIds]() -> RunsLoadResult {
    RunsLoadResult out;
    try {
      auto project = openForReading(projectPath);
      if (!project) {
        out.error = QString::fromStdString(project.error().to_string());
        return out;
      }
      std::set<std::string> names;
      for (store::Id id : runIds) {
        auto s = loadRunSummary(*project, id);
        if (!s) {
          out.error = QObject::tr("Run %1: %2").arg(id).arg(QString::fromStdString(s.error().to_string()));
          return out;
        }
        names.insert(s->metrics.begin(), s->metrics.end());
        out.runs.push_back(std::move(*s));
      }
      for (const auto& n : names) out.metricNames << QString::fromStdString(n);
    } catch (const std::exception& e) {
      out.error = QString::fromUtf8(e.what());
    }
    return out;
  });
}

QFuture<SeriesLoadResult> loadSeriesAsync(const QString& projectPath, const QList<store::Id>& runIds,
                                          const QString& metric) {
  return QtConcurrent::run([projectPath, runIds, metric]() -> SeriesLoadResult {
    SeriesLoadResult out;
    out.metric = metric;
    try {
      auto project = openForReading(projectPath);
      if (!project) {
        out.error = QString::fromStdString(project.error().to_string());
        return out;
      }
      for (store::Id id : runIds) {
        auto s = loadSeries(*project, id, metric.toStdString());
        if (!s) {
          out.error = QObject::tr("Run %1: %2").arg(id).arg(QString::fromStdString(s.error().to_string()));
          return out;
        }
        out.series.push_back(std::move(*s));
      }
    } catch (const std::exception& e) {
      out.error = QString::fromUtf8(e.what());
    }
    return out;
  });
}

}  // namespace hearth::ui
