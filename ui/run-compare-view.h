/* RunCompareView: two or more runs side by side: any metric overlaid (MetricChart) with the x-axis
 * and EMA smoothing pickers, export buttons, the configuration keys that differ between the runs, and
 * a summary bar chart of final loss, tokens/s and energy (kWh) per run.
 *
 * Usage from the Runs page (the view reads the project file through its own connections):
 *   QWidget* w = createRunCompareView(ctx, {idA, idB}, parent);
 *
 * Non-obvious choice: the view never uses the AppContext's Project (GUI thread). Summaries and each
 * picked metric are read by run-data.h's async loaders on a pool thread with their own connection;
 * a result that arrives after the user picked another metric is dropped (generation counter).
 *
 * Threading: GUI thread; loading runs on QtConcurrent's pool.
 */
#pragma once

#include <QFutureWatcher>
#include <QList>
#include <QWidget>

#include "run-data.h"

class QComboBox;
class QSlider;
class QLabel;
class QTableWidget;
class QCustomPlot;
class QPushButton;

namespace hearth::ui {

class AppContext;
class MetricChart;

class RunCompareView : public QWidget {
  Q_OBJECT
 public:
  RunCompareView(const QString& projectPath, const QList<store::Id>& runIds, QWidget* parent = nullptr);
  ~RunCompareView() override;

  QList<store::Id> runIds() const { return m_ids; }
  bool isLoaded() const { return m_loaded; }  // summaries and the current metric's curves are in
  QString errorText() const;                  // empty when all went well

  // The pickers, as the user sets them.
  void setMetric(const QString& name);
  void setXAxis(XAxis axis);
  void setSmoothingPercent(int percent);  // 0..99 -> EMA 0..0.99

  MetricChart* chart() const { return m_chart; }
  QComboBox* metricPicker() const { return m_metricPicker; }
  QComboBox* xAxisPicker() const { return m_axisPicker; }
  QSlider* smoothingSlider() const { return m_smoothing; }
  QTableWidget* configDiffTable() const { return m_diff; }
  QCustomPlot* summaryPlot() const { return m_summary; }
  const std::vector<RunSummary>& summaries() const { return m_runs; }
  // The keys shown in the diff table, sorted.
  QStringList differingKeys() const;

 signals:
  void loaded();         // after the summaries and after each metric's curves arrive
  void loadFailed(const QString& error);

 private:
  void onRunsLoaded();
  void onSeriesLoaded();
  void requestMetric(const QString& metric);
  void fillDiff();
  void updateEmptyHint();  // says so when no run has points on the chosen axis
  void fillSummary();
  void exportChart(const QString& kind);
  void showError(const QString& text);

  QString m_path;
  QList<store::Id> m_ids;
  std::vector<RunSummary> m_runs;
  bool m_loaded = false;
  int m_generation = 0;
  QFutureWatcher<RunsLoadResult> m_runsWatcher;
  QFutureWatcher<SeriesLoadResult>* m_seriesWatcher = nullptr;

  QLabel* m_status;
  QComboBox* m_metricPicker;
  QComboBox* m_axisPicker;
  QSlider* m_smoothing;
  QLabel* m_smoothingLabel;
  MetricChart* m_chart;
  QTableWidget* m_diff;
  QCustomPlot* m_summary;
};

// The comparison of `runIds` for the project open in `ctx` (a new widget, owned by `parent`).
QWidget* createRunCompareView(AppContext& ctx, const QList<store::Id>& runIds, QWidget* parent);

}  // namespace hearth::ui
