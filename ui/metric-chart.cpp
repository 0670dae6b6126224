/* MetricChart: see metric-chart.h.
 *
 * Non-obvious choice: QCustomPlot still replots on each drag/zoom event (its own queued replot, cheap:
 * a few thousand points per graph); only the expensive part, reducing the full series for the new
 * range, waits for the ~30 Hz timer. Between two timer ticks the graphs show the previous reduction.
 */
#include "metric-chart.h"

#include <QEvent>
#include <QFile>
#include <QMouseEvent>
#include <QSvgGenerator>
#include <QTextStream>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <qcustomplot.h>

namespace hearth::ui {
namespace {

// A qualitative palette readable on light and dark backgrounds (Tableau 10).
const QColor SERIES_COLORS[] = {QColor(0x1f, 0x77, 0xb4), QColor(0xff, 0x7f, 0x0e), QColor(0x2c, 0xa0, 0x2c),
                                QColor(0xd6, 0x27, 0x28), QColor(0x94, 0x67, 0xbd), QColor(0x8c, 0x56, 0x4b),
                                QColor(0xe3, 0x77, 0xc2), QColor(0x7f, 0x7f, 0x7f), QColor(0xbc, 0xbd, 0x22),
                                QColor(0x17, 0xbe, 0xcf)};
constexpr int RAW_ALPHA = 70;
constexpr double HOVER_RADIUS_PX = 40;

QString csvField(const QString& s) {
  if (!s.contains(QLatin1Char(',')) && !s.contains(QLatin1Char('"')) && !s.contains(QLatin1Char('\n')) &&
      !s.contains(QLatin1Char('\r')))
    return s;
  QString q = s;
  q.replace(QLatin1String("\""), QLatin1String("\"\""));
  return QLatin1Char('"') + q + QLatin1Char('"');
}

double at(const std::vector<double>& v, std::size_t i) {
  return i < v.size() ? v[i] : std::numeric_limits<double>::quiet_NaN();
}

QString csvNumber(double v) {
  if (!std::isfinite(v)) return {};
  return QString::number(v, 'g', QLocale::FloatingPointShortest);
}

void setGraphData(QCPGraph* g, const Downsampled& d) {
  QVector<QCPGraphData> data(static_cast<qsizetype>(d.x.size()));
  for (std::size_t i = 0; i < d.x.size(); ++i) data[static_cast<qsizetype>(i)] = QCPGraphData(d.x[i], d.y[i]);
  g->data()->set(data, true);
}

}  // namespace

Downsampled downsampleMinMax(const double* x, const double* y, std::size_t n, double lo, double hi, int columns) {
  Downsampled out;
  if (n == 0) return out;
  columns = std::max(columns, 1);
  const std::size_t begin = static_cast<std::size_t>(std::lower_bound(x, x + n, lo) - x);
  const std::size_t end = static_cast<std::size_t>(std::upper_bound(x, x + n, hi) - x);
  auto push = [&](std::size_t i) {
    out.x.push_back(x[i]);
    out.y.push_back(y[i]);
  };
  const std::size_t first = begin > 0 ? begin - 1 : begin;
  const std::size_t last = end < n ? end + 1 : end;  // exclusive
  if (end - std::min(begin, end) <= static_cast<std::size_t>(columns) * 4 || !(hi > lo)) {
    out.x.reserve(last - first);
    out.y.reserve(last - first);
    for (std::size_t i = first; i < last; ++i) push(i);
    return out;
  }
  out.x.reserve(static_cast<std::size_t>(columns) * 4 + 2);
  out.y.reserve(static_cast<std::size_t>(columns) * 4 + 2);
  if (first < begin) push(first);
  const double scale = columns / (hi - lo);
  auto column = [&](double xv) { return std::min(static_cast<long>((xv - lo) * scale), static_cast<long>(columns) - 1); };
  std::size_t i = begin;
  while (i < end) {
    const long col = column(x[i]);
    // The column's end by binary search (column() is monotonic in x), then one tight min/max pass.
    const std::size_t j = static_cast<std::size_t>(
        std::partition_point(x + i, x + end, [&](double xv) { return column(xv) <= col; }) - x);
    std::size_t iMin = i, iMax = i;
    double vMin = y[i], vMax = y[i];
    for (std::size_t k = i + 1; k < j; ++k) {
      const double v = y[k];
      if (v < vMin) { vMin = v; iMin = k; }
      if (v > vMax) { vMax = v; iMax = k; }
    }
    // first, min, max, last in index order, without repeats
    const std::size_t picks[4] = {i, std::min(iMin, iMax), std::max(iMin, iMax), j - 1};
    std::size_t prev = SIZE_MAX;
    for (std::size_t p : picks) {
      if (p != prev) push(p);
      prev = p;
    }
    i = j;
  }
  if (last > end) push(end);
  return out;
}

std::vector<double> emaSmooth(const std::vector<double>& y, double alpha) {
  alpha = std::clamp(alpha, 0.0, MetricChart::MAX_SMOOTHING);
  if (alpha <= 0 || y.empty()) return y;
  std::vector<double> s(y.size());
  double acc = y[0];
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (std::isfinite(y[i])) acc = i == 0 ? y[i] : alpha * acc + (1 - alpha) * y[i];
    s[i] = acc;
  }
  return s;
}

MetricChart::MetricChart(QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("metricChart"));
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  m_plot = new QCustomPlot(this);
  m_plot->setObjectName(QStringLiteral("metricPlot"));
  m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  // Noisy curves with wide antialiased pens are costly to join segment by segment; fast polylines
  // draw the reduced curve as one path (bench-chart: the difference is seconds per redraw).
  m_plot->setPlottingHints(QCP::phCacheLabels | QCP::phFastPolylines);
  m_plot->setMinimumSize(240, 160);
  m_plot->legend->setVisible(true);
  m_plot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
  m_plot->setMouseTracking(true);
  m_plot->installEventFilter(this);
  layout->addWidget(m_plot);

  m_tracer = new QCPItemTracer(m_plot);
  m_tracer->setStyle(QCPItemTracer::tsCircle);
  m_tracer->setSize(9);
  m_tracer->setVisible(false);

  m_redrawTimer.setSingleShot(true);
  m_redrawTimer.setInterval(REDRAW_INTERVAL_MS);
  connect(&m_redrawTimer, &QTimer::timeout, this, [this] {
    if (m_needResample) resample();
    m_plot->replot();
  });
  auto rangeChanged = [this] {
    m_needResample = true;
    scheduleRedraw();
  };
  connect(m_plot->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, rangeChanged);
  connect(m_plot, &QCustomPlot::afterLayout, this, [this] {
    // A resize changes the number of pixel columns (afterLayout comes with every replot).
    if (std::max(m_plot->axisRect()->width(), 200) == m_columns) return;
    m_needResample = true;
    scheduleRedraw();
  });
  applyTheme();
  m_plot->xAxis->setLabel(xAxisLabel(m_axis));
}

MetricChart::~MetricChart() = default;

void MetricChart::applyTheme() {
  const QPalette pal = palette();
  m_plot->setBackground(pal.brush(QPalette::Base));
  m_plot->axisRect()->setBackground(pal.brush(QPalette::Base));
  for (QCPAxis* a : {m_plot->xAxis, m_plot->yAxis, m_plot->xAxis2, m_plot->yAxis2}) {
    a->setBasePen(QPen(pal.color(QPalette::Text)));
    a->setTickPen(QPen(pal.color(QPalette::Text)));
    a->setSubTickPen(QPen(pal.color(QPalette::Text)));
    a->setTickLabelColor(pal.color(QPalette::Text));
    a->setLabelColor(pal.color(QPalette::Text));
    QColor grid = pal.color(QPalette::Mid);
    grid.setAlpha(90);
    a->grid()->setPen(QPen(grid, 0, Qt::DotLine));
  }
  m_plot->legend->setBrush(pal.brush(QPalette::Base));
  m_plot->legend->setTextColor(pal.color(QPalette::Text));
  m_plot->legend->setBorderPen(QPen(pal.color(QPalette::Mid)));
  m_tracer->setPen(QPen(pal.color(QPalette::Text), 1.5));
  m_tracer->setBrush(Qt::NoBrush);
}

QColor MetricChart::seriesColor(int i) const {
  constexpr int n = sizeof(SERIES_COLORS) / sizeof(SERIES_COLORS[0]);
  return SERIES_COLORS[((i % n) + n) % n];
}

QCPGraph* MetricChart::mainGraph(int i) const {
  return i >= 0 && i < static_cast<int>(m_main.size()) ? m_main[static_cast<std::size_t>(i)] : nullptr;
}
QCPGraph* MetricChart::rawGraph(int i) const {
  return i >= 0 && i < static_cast<int>(m_raw.size()) ? m_raw[static_cast<std::size_t>(i)] : nullptr;
}

void MetricChart::setSeries(std::vector<SeriesData> series, const QString& metricName) {
  m_series = std::move(series);
  m_metric = metricName;
  m_plot->yAxis->setLabel(metricName);
  prepare();
  rebuildGraphs();
  fitToData();
  redrawNow();
}

void MetricChart::setXAxis(XAxis axis) {
  m_axis = axis;
  m_plot->xAxis->setLabel(xAxisLabel(axis));
  prepare();
  fitToData();
  redrawNow();
}

void MetricChart::setSmoothing(double alpha) {
  alpha = std::clamp(alpha, 0.0, MAX_SMOOTHING);
  if (alpha == m_alpha) return;
  m_alpha = alpha;
  for (std::size_t i = 0; i < m_prepared.size(); ++i) {
    const std::vector<double> s = emaSmooth(m_series[i].y, m_alpha);
    Prepared& p = m_prepared[i];
    for (std::size_t k = 0; k < p.index.size(); ++k) p.smooth[k] = s[p.index[k]];
  }
  redrawNow();
}

void MetricChart::prepare() {
  m_prepared.clear();
  m_prepared.resize(m_series.size());
  for (std::size_t i = 0; i < m_series.size(); ++i) {
    const SeriesData& s = m_series[i];
    const std::vector<double>& xs = s.x(m_axis);
    const std::vector<double> sm = emaSmooth(s.y, m_alpha);
    Prepared& p = m_prepared[i];
    const std::size_t n = std::min(xs.size(), s.y.size());
    p.index.reserve(n);
    for (std::size_t k = 0; k < n; ++k)
      if (std::isfinite(xs[k]) && std::isfinite(s.y[k])) p.index.push_back(k);
    // Stable sort by x only when needed (a resumed run's wall time may step back).
    auto byX = [&](std::size_t a, std::size_t b) { return xs[a] < xs[b]; };
    if (!std::is_sorted(p.index.begin(), p.index.end(), byX)) std::stable_sort(p.index.begin(), p.index.end(), byX);
    p.x.resize(p.index.size());
    p.y.resize(p.index.size());
    p.smooth.resize(p.index.size());
    for (std::size_t k = 0; k < p.index.size(); ++k) {
      p.x[k] = xs[p.index[k]];
      p.y[k] = s.y[p.index[k]];
      p.smooth[k] = sm[p.index[k]];
    }
  }
}

void MetricChart::rebuildGraphs() {
  m_plot->clearGraphs();
  m_main.clear();
  m_raw.clear();
  for (std::size_t i = 0; i < m_series.size(); ++i) {
    const QColor c = seriesColor(static_cast<int>(i));
    QCPGraph* raw = m_plot->addGraph();
    QColor faint = c;
    faint.setAlpha(RAW_ALPHA);
    raw->setPen(QPen(faint, 1));
    raw->removeFromLegend();
    QCPGraph* main = m_plot->addGraph();
    main->setPen(QPen(c, 2));
    main->setName(m_series[i].runName);
    m_raw.push_back(raw);
    m_main.push_back(main);
  }
}

void MetricChart::fitToData() {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const Prepared& p : m_prepared) {
    if (p.x.empty()) continue;
    xlo = std::min(xlo, p.x.front());
    xhi = std::max(xhi, p.x.back());
    for (std::size_t k = 0; k < p.y.size(); ++k) {
      ylo = std::min({ylo, p.y[k], p.smooth[k]});
      yhi = std::max({yhi, p.y[k], p.smooth[k]});
    }
  }
  if (!std::isfinite(xlo)) {
    xlo = 0;
    xhi = 1;
    ylo = 0;
    yhi = 1;
  }
  if (!(xhi > xlo)) {
    xlo -= 0.5;
    xhi += 0.5;
  }
  const double pad = yhi > ylo ? (yhi - ylo) * 0.05 : std::max(std::abs(ylo) * 0.05, 0.5);
  m_plot->xAxis->setRange(xlo, xhi);
  m_plot->yAxis->setRange(ylo - pad, yhi + pad);
  m_needResample = true;
}

void MetricChart::resample() {
  m_needResample = false;
  ++m_resamples;
  const QCPRange r = m_plot->xAxis->range();
  const int columns = std::max(m_plot->axisRect()->width(), 200);
  m_columns = columns;
  const bool smooth = m_alpha > 0;
  for (std::size_t i = 0; i < m_prepared.size() && i < m_main.size(); ++i) {
    const Prepared& p = m_prepared[i];
    setGraphData(m_main[i], downsampleMinMax(p.x.data(), smooth ? p.smooth.data() : p.y.data(), p.x.size(), r.lower,
                                             r.upper, columns));
    m_raw[i]->setVisible(smooth);
    if (smooth) setGraphData(m_raw[i], downsampleMinMax(p.x.data(), p.y.data(), p.x.size(), r.lower, r.upper, columns));
    else m_raw[i]->data()->clear();
    // A dense reduction (more than one point per pixel column) fills the envelope anyway; drawing it
    // without antialiasing is several times cheaper and looks the same. Sparse curves stay smooth.
    for (QCPGraph* g : {m_main[i], m_raw[i]}) {
      g->setAntialiased(g->dataCount() <= columns);
      g->setAdaptiveSampling(false);  // already reduced here
    }
  }
}

void MetricChart::redrawNow() {
  m_redrawTimer.stop();
  resample();
  m_plot->replot(QCustomPlot::rpImmediateRefresh);
  // The first replot after a resize lays the axis rect out anew: reduce again for its real width.
  if (std::max(m_plot->axisRect()->width(), 200) != m_columns) {
    resample();
    m_plot->replot(QCustomPlot::rpImmediateRefresh);
  }
  m_redrawTimer.stop();
}

void MetricChart::scheduleRedraw() {
  if (!m_redrawTimer.isActive()) m_redrawTimer.start();
}

QString MetricChart::hoverAt(const QPoint& pos) {
  const double px = pos.x(), py = pos.y();
  double bestD = HOVER_RADIUS_PX;
  int bestS = -1;
  std::size_t bestK = 0;
  const double x = m_plot->xAxis->pixelToCoord(px);
  for (std::size_t i = 0; i < m_prepared.size(); ++i) {
    const Prepared& p = m_prepared[i];
    if (p.x.empty()) continue;
    const std::vector<double>& ys = m_alpha > 0 ? p.smooth : p.y;
    const std::size_t k = static_cast<std::size_t>(std::lower_bound(p.x.begin(), p.x.end(), x) - p.x.begin());
    for (std::size_t c : {k > 0 ? k - 1 : k, std::min(k, p.x.size() - 1)}) {
      const double dx = m_plot->xAxis->coordToPixel(p.x[c]) - px;
      const double dy = m_plot->yAxis->coordToPixel(ys[c]) - py;
      const double d = std::hypot(dx, dy);
      if (d < bestD) {
        bestD = d;
        bestS = static_cast<int>(i);
        bestK = c;
      }
    }
  }
  if (bestS < 0) {
    m_tracer->setVisible(false);
    m_hoverText.clear();
  } else {
    const Prepared& p = m_prepared[static_cast<std::size_t>(bestS)];
    const double yv = m_alpha > 0 ? p.smooth[bestK] : p.y[bestK];
    m_tracer->position->setCoords(p.x[bestK], yv);
    m_tracer->setPen(QPen(seriesColor(bestS), 2));
    m_tracer->setVisible(true);
    m_hoverText = QStringLiteral("%1\n%2: %3\n%4: %5")
                      .arg(m_series[static_cast<std::size_t>(bestS)].runName, xAxisLabel(m_axis),
                           QString::number(p.x[bestK], 'g', 8), m_metric.isEmpty() ? tr("value") : m_metric,
                           QString::number(yv, 'g', 8));
    if (m_alpha > 0) m_hoverText += tr(" (raw %1)").arg(QString::number(p.y[bestK], 'g', 8));
  }
  scheduleRedraw();
  emit hovered(m_hoverText);
  return m_hoverText;
}

bool MetricChart::eventFilter(QObject* watched, QEvent* event) {
  if (watched == m_plot) {
    if (event->type() == QEvent::MouseMove) {
      auto* me = static_cast<QMouseEvent*>(event);
      const QString text = hoverAt(me->position().toPoint());
      if (text.isEmpty()) QToolTip::hideText();
      else QToolTip::showText(me->globalPosition().toPoint(), text, m_plot);
    } else if (event->type() == QEvent::Leave) {
      m_tracer->setVisible(false);
      m_hoverText.clear();
      scheduleRedraw();
    }
  }
  return QWidget::eventFilter(watched, event);
}

bool MetricChart::exportPng(const QString& path, int width, int height) {
  if (m_needResample) redrawNow();
  if (!m_plot->savePng(path, width, height)) {
    m_error = tr("Cannot write the PNG file '%1'.").arg(path);
    return false;
  }
  return true;
}

bool MetricChart::exportPdf(const QString& path, int width, int height) {
  if (m_needResample) redrawNow();
  if (!m_plot->savePdf(path, width, height)) {
    m_error = tr("Cannot write the PDF file '%1'.").arg(path);
    return false;
  }
  return true;
}

bool MetricChart::exportSvg(const QString& path, int width, int height) {
  if (m_needResample) redrawNow();
  if (width <= 0) width = m_plot->width();
  if (height <= 0) height = m_plot->height();
  QSvgGenerator gen;
  gen.setFileName(path);
  gen.setSize(QSize(width, height));
  gen.setViewBox(QRect(0, 0, width, height));
  gen.setTitle(m_metric);
  QCPPainter painter;
  if (!painter.begin(&gen)) {
    m_error = tr("Cannot write the SVG file '%1'.").arg(path);
    return false;
  }
  m_plot->toPainter(&painter, width, height);
  painter.end();
  QFileInfo fi(path);
  if (!fi.exists() || fi.size() == 0) {
    m_error = tr("Cannot write the SVG file '%1'.").arg(path);
    return false;
  }
  return true;
}

QString MetricChart::csvText() const {
  const QString metric = m_metric.isEmpty() ? QStringLiteral("value") : m_metric;
  QString out;
  QTextStream ts(&out);
  ts << "run,step,tokens_seen,elapsed_s,energy_j," << csvField(metric) << ',' << csvField(metric + "_smoothed")
     << '\n';
  const QCPRange r = m_plot->xAxis->range();
  for (std::size_t i = 0; i < m_prepared.size(); ++i) {
    const Prepared& p = m_prepared[i];
    const SeriesData& s = m_series[i];
    const QString name = csvField(s.runName);
    for (std::size_t k = 0; k < p.x.size(); ++k) {
      if (p.x[k] < r.lower || p.x[k] > r.upper) continue;
      const std::size_t j = p.index[k];
      ts << name << ',' << csvNumber(at(s.step, j)) << ',' << csvNumber(at(s.tokens, j)) << ','
         << csvNumber(at(s.elapsed, j)) << ',' << csvNumber(at(s.energy, j)) << ',' << csvNumber(p.y[k]) << ',' << csvNumber(p.smooth[k]) << '\n';
    }
  }
  return out;
}

bool MetricChart::exportCsv(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate)) {
    m_error = tr("Cannot write '%1': %2").arg(path, f.errorString());
    return false;
  }
  const QByteArray bytes = csvText().toUtf8();
  if (f.write(bytes) != bytes.size() || !f.flush()) {
    m_error = tr("Cannot write '%1': %2").arg(path, f.errorString());
    return false;
  }
  return true;
}

}  // namespace hearth::ui
