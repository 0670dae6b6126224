/* Run data for the charts and the run comparison: the metrics of runs as plain vectors, with every
 * x-axis variant (step, tokens seen, wall time, energy) already placed at each point, and a run's
 * summary (final loss, tokens/s, energy) and flattened configuration.
 *
 * Non-obvious choice: the x variants are interpolated per point from the run's own `tokens_seen`,
 * `elapsed_s` and `energy_j` series (linear in step, clamped at the ends) rather than taken from the
 * point's own columns: `val_loss` points carry no tokens, and energy is logged as its own metric, so
 * only the series give every metric the same x for the same step.
 *
 * Threading: plain functions and value structs. The *Async functions open their own Project on a
 * QtConcurrent pool thread (DESIGN.md: one connection per thread; WAL lets the GUI's connection and
 * a training process write meanwhile) and hand back values; they never touch the caller's Project.
 */
#pragma once

#include <QFuture>
#include <QList>
#include <QString>
#include <QStringList>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hearth/error.h"
#include "hearth/store/project.h"

namespace hearth::ui {

enum class XAxis { step, tokens, elapsed, energy };
QString xAxisLabel(XAxis axis);     // "Step", "Tokens seen", "Wall time (s)", "Energy (J)"
const char* xAxisColumn(XAxis axis);  // CSV column: "step", "tokens_seen", "elapsed_s", "energy_j"

// One metric of one run. All vectors have y.size() elements; an x variant the run has no data for
// (no energy_j series, say) is NaN there, and the chart leaves such points out on that axis.
struct SeriesData {
  QString runName;
  store::Id runId = 0;
  std::vector<double> step;
  std::vector<double> tokens;   // tokens seen
  std::vector<double> elapsed;  // seconds of training (elapsed_s), else wall time since the first point
  std::vector<double> energy;   // joules (energy_j)
  std::vector<double> y;

  const std::vector<double>& x(XAxis axis) const;
  std::size_t size() const { return y.size(); }
};

// What the comparison shows of a run besides its curves.
struct RunSummary {
  store::Run run;
  QString displayName;               // the name, or "run N"
  std::vector<std::string> metrics;  // metric names stored for the run
  std::optional<double> finalLoss;       // finalMetrics.loss, else the last `loss` point
  std::optional<double> finalValLoss;    // finalMetrics.val_loss, else the last `val_loss` point
  std::optional<double> bestValLoss;     // bestMetrics.val_loss, else the lowest `val_loss` point
  std::optional<double> tokensPerSecond; // tokens seen / elapsed seconds (final metrics or last points)
  std::optional<double> energyJoules;    // the run's energy, else the last `energy_j` point
};

// Linear interpolation of (xs, ys) at `x` (xs ascending); clamped to the end values outside; NaN
// when xs is empty.
double interpolateAt(const std::vector<double>& xs, const std::vector<double>& ys, double x);

// Reads one metric of a run with its x variants. Errors: the store's (not_found for a missing run).
Expected<SeriesData> loadSeries(store::Project& project, store::Id runId, const std::string& metric);
// The run's summary from its record, final/best metrics and (where those lack a value) its series.
Expected<RunSummary> loadRunSummary(store::Project& project, store::Id runId);

// A JSON value flattened to dotted keys ("training.lr" -> "0.001"); arrays are leaves (compact JSON).
std::map<std::string, std::string> flattenJson(const nlohmann::json& value);
// Keys whose value differs between the configurations (present in some but not all counts), sorted.
// A configuration that is not valid JSON counts as an empty object.
std::vector<std::string> differingKeys(const std::vector<std::string>& configsJson);

struct RunsLoadResult {
  std::vector<RunSummary> runs;  // in the order asked for
  QStringList metricNames;       // union over the runs, sorted
  QString error;                 // empty on success
};
struct SeriesLoadResult {
  QString metric;
  std::vector<SeriesData> series;  // in the order asked for
  QString error;
};

// Opens `projectPath` on a pool thread (read only use; interrupted-run recovery off) and loads.
QFuture<RunsLoadResult> loadRunsAsync(const QString& projectPath, const QList<store::Id>& runIds);
QFuture<SeriesLoadResult> loadSeriesAsync(const QString& projectPath, const QList<store::Id>& runIds,
                                          const QString& metric);

}  // namespace hearth::ui
