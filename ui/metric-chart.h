/* MetricChart: one metric of N runs overlaid in a QCustomPlot, with a selectable x-axis (step, tokens
 * seen, wall time, energy), EMA smoothing (the raw curve faint behind), zoom and pan with the mouse,
 * the values under the mouse (tracer and tooltip), and export as PNG, SVG, PDF and CSV.
 *
 * Non-obvious choice: the graphs never hold the full series. For the visible x range the chart keeps,
 * per pixel column, the first, lowest, highest and last point (in their original order), so a
 * million-point curve draws a few thousand points and its envelope (every spike) stays visible.
 * That reduction is redone after a zoom or pan, from a ~30 Hz timer rather than per mouse event.
 *
 * EMA: s_0 = y_0, s_i = a * s_(i-1) + (1 - a) * y_i, over the points in step order (a in [0, 0.99]).
 *
 * Threading: GUI thread only. The data is handed in as value structs (run-data.h).
 */
#pragma once

#include <QPointer>
#include <QString>
#include <QTimer>
#include <QWidget>
#include <vector>

#include "run-data.h"

class QCustomPlot;
class QCPGraph;
class QCPItemTracer;

namespace hearth::ui {

// Min/max-per-column reduction of (x, y) (x ascending) for the window [lo, hi] split into `columns`
// equal columns. Points inside the window keep, per column, the first, min, max and last point in
// their original order; the nearest point on each side outside the window is kept so lines run on to
// the edges. When the window holds no more than 4 * columns points they are all kept.
struct Downsampled {
  std::vector<double> x, y;
};
Downsampled downsampleMinMax(const double* x, const double* y, std::size_t n, double lo, double hi, int columns);

// EMA as above; alpha is clamped to [0, 0.99]. alpha 0 returns y unchanged.
std::vector<double> emaSmooth(const std::vector<double>& y, double alpha);

class MetricChart : public QWidget {
  Q_OBJECT
 public:
  static constexpr int REDRAW_INTERVAL_MS = 33;  // ~30 Hz
  static constexpr double MAX_SMOOTHING = 0.99;

  explicit MetricChart(QWidget* parent = nullptr);
  ~MetricChart() override;

  // Replaces the curves (one per run) and fits the axes to them.
  void setSeries(std::vector<SeriesData> series, const QString& metricName);
  void setXAxis(XAxis axis);    // refits the axes
  void setSmoothing(double alpha);  // keeps the view
  XAxis xAxis() const { return m_axis; }
  double smoothing() const { return m_alpha; }
  QString metricName() const { return m_metric; }

  int seriesCount() const { return static_cast<int>(m_prepared.size()); }
  const SeriesData& series(int i) const { return m_series.at(static_cast<std::size_t>(i)); }
  // The series on the current axis: x (points without that x left out), raw y and smoothed y.
  const std::vector<double>& shownX(int i) const { return m_prepared.at(static_cast<std::size_t>(i)).x; }
  const std::vector<double>& shownY(int i) const { return m_prepared.at(static_cast<std::size_t>(i)).y; }
  const std::vector<double>& shownSmoothed(int i) const { return m_prepared.at(static_cast<std::size_t>(i)).smooth; }
  // The graphs drawn: the smoothed (or, with no smoothing, the raw) curve, and the faint raw curve
  // (hidden when smoothing is 0). They hold the downsampled points.
  QCPGraph* mainGraph(int i) const;
  QCPGraph* rawGraph(int i) const;
  QColor seriesColor(int i) const;

  QCustomPlot* plot() const { return m_plot; }
  // Fits both axes to all the data.
  void fitToData();
  // Downsamples for the current view and replots now (the timer does this after zoom and pan).
  void redrawNow();
  // Number of downsampling passes done so far (tests check that the timer coalesces events).
  int resampleCount() const { return m_resamples; }

  // Hover: moves the tracer to the point nearest to the widget position `pos` of the plot, and
  // returns the text shown ("run\nx: …\ny: …"); empty when no point is near.
  QString hoverAt(const QPoint& pos);
  QString hoverText() const { return m_hoverText; }

  // Exports. Width/height 0: the widget's size. Return false (and set lastError()) on failure.
  bool exportPng(const QString& path, int width = 0, int height = 0);
  bool exportSvg(const QString& path, int width = 0, int height = 0);
  bool exportPdf(const QString& path, int width = 0, int height = 0);
  // CSV of the shown series within the visible x range at full resolution:
  // run,step,tokens_seen,elapsed_s,energy_j,<metric>,<metric>_smoothed (RFC 4180 quoting).
  QString csvText() const;
  bool exportCsv(const QString& path);
  QString lastError() const { return m_error; }

 signals:
  void hovered(const QString& text);

 protected:
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  struct Prepared {
    std::vector<double> x, y, smooth;
    std::vector<std::size_t> index;  // into the SeriesData vectors
  };
  void prepare();
  void rebuildGraphs();
  void resample();
  void scheduleRedraw();
  void applyTheme();

  QCustomPlot* m_plot;
  QCPItemTracer* m_tracer;
  QTimer m_redrawTimer;
  std::vector<SeriesData> m_series;
  std::vector<Prepared> m_prepared;
  std::vector<QCPGraph*> m_main, m_raw;
  QString m_metric;
  XAxis m_axis = XAxis::step;
  double m_alpha = 0;
  bool m_needResample = false;
  int m_resamples = 0;
  int m_columns = 0;
  QString m_hoverText;
  QString m_error;
};

}  // namespace hearth::ui
