/* Qt test of MetricChart (ui/metric-chart.h): EMA numbers, x-axis variants, min/max-per-column
 * downsampling of a million points (every column's extremes kept), resampling after zoom coalesced by
 * the redraw timer, hover values, and PNG/SVG/PDF/CSV export.
 *
 * Non-obvious choice: the expected EMA values are written out by hand for alpha 0.5 (exact in binary),
 * and the downsampling is checked against a brute-force scan of each pixel column, not against the
 * chart's own arithmetic.
 */
#include <QApplication>
#include <QDir>
#include <QWheelEvent>
#include <QFile>
#include <QImage>
#include <QTemporaryDir>
#include <QtTest>
#include <qcustomplot.h>
#include <random>

#include "metric-chart.h"

using namespace hearth::ui;

namespace {

SeriesData makeSeries(const QString& name, const std::vector<double>& y, double tokensPerStep = 100) {
  SeriesData s;
  s.runName = name;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double step = static_cast<double>(i + 1);
    s.step.push_back(step);
    s.tokens.push_back(step * tokensPerStep);
    s.elapsed.push_back(step * 0.25);
    s.energy.push_back(step * step);
  }
  s.y = y;
  return s;
}

std::vector<double> graphValues(QCPGraph* g) {
  std::vector<double> v;
  for (auto it = g->data()->constBegin(); it != g->data()->constEnd(); ++it) v.push_back(it->value);
  return v;
}
std::vector<double> graphKeys(QCPGraph* g) {
  std::vector<double> v;
  for (auto it = g->data()->constBegin(); it != g->data()->constEnd(); ++it) v.push_back(it->key);
  return v;
}

std::vector<double> noisyCurve(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0, 0.05);
  std::vector<double> y(n);
  for (std::size_t i = 0; i < n; ++i) y[i] = 3.0 * std::exp(-double(i) / double(n) * 3) + noise(rng);
  // isolated spikes that a naive stride would miss
  for (std::size_t i = 777; i < n; i += 99991) y[i] = 10 + double(i % 7);
  return y;
}

}  // namespace

class TestMetricChart : public QObject {
  Q_OBJECT
 private slots:
  void emaMatchesFormula();
  void xAxisVariants();
  void downsampleKeepsEveryColumnsExtremes();
  void millionPointsDrawFewAndZoomResamples();
  void hoverShowsRunAndValues();
  void exportsFiles();
  void csvHoldsTheShownSeries();
};

void TestMetricChart::emaMatchesFormula() {
  // s0 = y0; s_i = 0.5 s_(i-1) + 0.5 y_i
  QCOMPARE(emaSmooth({1, 3, 2, 6, 4}, 0.5), (std::vector<double>{1, 2, 2, 4, 4}));
  QCOMPARE(emaSmooth({1, 3, 2}, 0), (std::vector<double>{1, 3, 2}));
  QCOMPARE(emaSmooth({2, 4}, 5.0), (std::vector<double>{2, 2 * 0.99 + 4 * 0.01}));  // clamped to 0.99

  MetricChart chart;
  chart.resize(600, 400);
  chart.setSeries({makeSeries("a", {1, 3, 2, 6, 4})}, "loss");
  QCOMPARE(graphValues(chart.mainGraph(0)), (std::vector<double>{1, 3, 2, 6, 4}));
  QVERIFY(!chart.rawGraph(0)->visible());
  chart.setSmoothing(0.5);
  QCOMPARE(graphValues(chart.mainGraph(0)), (std::vector<double>{1, 2, 2, 4, 4}));
  QVERIFY(chart.rawGraph(0)->visible());  // the raw curve faint behind
  QCOMPARE(graphValues(chart.rawGraph(0)), (std::vector<double>{1, 3, 2, 6, 4}));
  QVERIFY(chart.rawGraph(0)->pen().color().alpha() < chart.mainGraph(0)->pen().color().alpha());
  chart.setSmoothing(0);
  QCOMPARE(graphValues(chart.mainGraph(0)), (std::vector<double>{1, 3, 2, 6, 4}));
}

void TestMetricChart::xAxisVariants() {
  MetricChart chart;
  chart.resize(600, 400);
  SeriesData s = makeSeries("a", {5, 4, 3});
  s.energy = {std::nan(""), 10, 20};  // no energy known at the first point
  chart.setSeries({s}, "loss");
  QCOMPARE(graphKeys(chart.mainGraph(0)), (std::vector<double>{1, 2, 3}));
  chart.setXAxis(XAxis::tokens);
  QCOMPARE(graphKeys(chart.mainGraph(0)), (std::vector<double>{100, 200, 300}));
  QCOMPARE(chart.plot()->xAxis->label(), QStringLiteral("Tokens seen"));
  chart.setXAxis(XAxis::elapsed);
  QCOMPARE(graphKeys(chart.mainGraph(0)), (std::vector<double>{0.25, 0.5, 0.75}));
  chart.setXAxis(XAxis::energy);
  QCOMPARE(graphKeys(chart.mainGraph(0)), (std::vector<double>{10, 20}));
  QCOMPARE(graphValues(chart.mainGraph(0)), (std::vector<double>{4, 3}));
}

void TestMetricChart::downsampleKeepsEveryColumnsExtremes() {
  const std::size_t n = 1'000'000;
  std::vector<double> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = double(i);
  const std::vector<double> y = noisyCurve(n, 7);
  struct Window {
    double lo, hi;
    int columns;
  };
  for (Window w : {Window{0, double(n - 1), 800}, Window{250'000.5, 262'000, 300}, Window{10, 20'000, 1000}}) {
    const Downsampled d = downsampleMinMax(x.data(), y.data(), n, w.lo, w.hi, w.columns);
    QVERIFY(d.x.size() <= std::size_t(w.columns) * 4 + 2);
    QVERIFY(std::is_sorted(d.x.begin(), d.x.end()));
    // Brute force per column.
    std::vector<double> mn(w.columns, INFINITY), mx(w.columns, -INFINITY);
    for (std::size_t i = 0; i < n; ++i) {
      if (x[i] < w.lo || x[i] > w.hi) continue;
      const int c = std::min(int((x[i] - w.lo) * w.columns / (w.hi - w.lo)), w.columns - 1);
      mn[c] = std::min(mn[c], y[i]);
      mx[c] = std::max(mx[c], y[i]);
    }
    std::vector<double> gotMn(w.columns, INFINITY), gotMx(w.columns, -INFINITY);
    for (std::size_t k = 0; k < d.x.size(); ++k) {
      if (d.x[k] < w.lo || d.x[k] > w.hi) continue;
      const int c = std::min(int((d.x[k] - w.lo) * w.columns / (w.hi - w.lo)), w.columns - 1);
      QCOMPARE(d.y[k], y[std::size_t(d.x[k])]);  // points are real points
      gotMn[c] = std::min(gotMn[c], d.y[k]);
      gotMx[c] = std::max(gotMx[c], d.y[k]);
    }
    for (int c = 0; c < w.columns; ++c) {
      QCOMPARE(gotMn[c], mn[c]);
      QCOMPARE(gotMx[c], mx[c]);
    }
    // the line continues to the edges: a point on each side outside the window
    QVERIFY(w.lo == 0 || d.x.front() < w.lo);
    QVERIFY(w.hi == double(n - 1) || d.x.back() > w.hi);
  }
}

void TestMetricChart::millionPointsDrawFewAndZoomResamples() {
  const std::size_t n = 1'000'000;
  const std::vector<double> y = noisyCurve(n, 11);
  MetricChart chart;
  chart.resize(900, 500);
  chart.show();
  QVERIFY(QTest::qWaitForWindowExposed(&chart));
  chart.setSeries({makeSeries("big", y)}, "loss");
  QCPGraph* g = chart.mainGraph(0);
  const int columns = chart.plot()->axisRect()->width();
  QVERIFY2(g->dataCount() <= columns * 4 + 2, qPrintable(QString::number(g->dataCount())));
  QVERIFY(g->dataCount() > columns);
  const auto [mnIt, mxIt] = std::minmax_element(y.begin(), y.end());
  const std::vector<double> shown = graphValues(g);
  QCOMPARE(*std::min_element(shown.begin(), shown.end()), *mnIt);
  QCOMPARE(*std::max_element(shown.begin(), shown.end()), *mxIt);  // spikes survive

  // Many range changes in a row (a drag) -> one resample from the timer, then all points of the window.
  const int before = chart.resampleCount();
  for (int i = 0; i < 50; ++i) chart.plot()->xAxis->setRange(1000 + i, 2000 + i);
  QCOMPARE(chart.resampleCount(), before);
  QTRY_VERIFY(chart.resampleCount() > before);
  QTest::qWait(3 * MetricChart::REDRAW_INTERVAL_MS);
  QVERIFY(chart.resampleCount() <= before + 2);
  const std::vector<double> keys = graphKeys(g);
  QCOMPARE(keys.size(), std::size_t(1001 + 2));  // steps 1049..2049 plus one beyond each edge
  QCOMPARE(keys.front(), 1048.0);
  QCOMPARE(keys.back(), 2050.0);

  // The mouse wheel zooms (QCP::iRangeZoom) and the timer reduces again for the new range.
  const QCPRange wide = chart.plot()->xAxis->range();
  const int beforeWheel = chart.resampleCount();
  const QPointF mid = chart.plot()->axisRect()->center();
  QWheelEvent wheel(mid, chart.plot()->mapToGlobal(mid), QPoint(), QPoint(0, 120), Qt::NoButton, Qt::NoModifier,
                    Qt::NoScrollPhase, false);
  QApplication::sendEvent(chart.plot(), &wheel);
  QVERIFY(chart.plot()->xAxis->range().size() < wide.size());
  QTRY_VERIFY(chart.resampleCount() > beforeWheel);

  // What a million noisy points look like after the reduction, smoothed, with the raw envelope behind.
  chart.fitToData();
  chart.setSmoothing(0.95);
  chart.redrawNow();
  QDir().mkpath(HEARTH_SCREENSHOTS);
  QVERIFY(chart.grab().save(QStringLiteral(HEARTH_SCREENSHOTS) + "/metric-chart-million.png"));
}

void TestMetricChart::hoverShowsRunAndValues() {
  MetricChart chart;
  chart.resize(700, 450);
  chart.show();
  QVERIFY(QTest::qWaitForWindowExposed(&chart));
  chart.setSeries({makeSeries("alpha", {4, 3, 2.5, 2}), makeSeries("beta", {1, 1.5, 1.25, 1})}, "loss");
  QCustomPlot* p = chart.plot();
  const QPoint at(int(p->xAxis->coordToPixel(3)), int(p->yAxis->coordToPixel(2.5)) + 2);
  QTest::mouseMove(p, at);
  QTRY_VERIFY(chart.hoverText().startsWith(QStringLiteral("alpha")));
  QVERIFY(chart.hoverText().contains(QStringLiteral("Step: 3")));
  QVERIFY(chart.hoverText().contains(QStringLiteral("loss: 2.5")));
  const QString beta = chart.hoverAt(QPoint(int(p->xAxis->coordToPixel(2)), int(p->yAxis->coordToPixel(1.5))));
  QVERIFY2(beta.startsWith(QStringLiteral("beta")) && beta.contains(QStringLiteral("loss: 1.5")), qPrintable(beta));
  // far from every curve: nothing
  QVERIFY(chart.hoverAt(QPoint(int(p->xAxis->coordToPixel(1)), int(p->yAxis->coordToPixel(2.5)))).isEmpty());
}

void TestMetricChart::exportsFiles() {
  QTemporaryDir dir;
  MetricChart chart;
  chart.resize(640, 400);
  chart.setSeries({makeSeries("a", noisyCurve(5000, 1)), makeSeries("b", noisyCurve(5000, 2))}, "loss");
  chart.setSmoothing(0.8);
  const QString png = dir.filePath("c.png"), svg = dir.filePath("c.svg"), pdf = dir.filePath("c.pdf");
  QVERIFY(chart.exportPng(png, 800, 500));
  QVERIFY(chart.exportSvg(svg, 800, 500));
  QVERIFY(chart.exportPdf(pdf, 800, 500));
  QImage img(png);
  QCOMPARE(img.size(), QSize(800, 500));
  QFile s(svg), d(pdf);
  QVERIFY(s.open(QIODevice::ReadOnly) && d.open(QIODevice::ReadOnly));
  const QByteArray svgBytes = s.readAll(), pdfBytes = d.readAll();
  QVERIFY(svgBytes.contains("<svg"));
  QVERIFY(svgBytes.count("<polyline") + svgBytes.count("<path") >= 4);  // two curves, their faint raw curves
  QVERIFY(pdfBytes.startsWith("%PDF") && pdfBytes.size() > 1000);
  QVERIFY(!chart.exportPng(dir.filePath("missing-folder/c.png")));
  QVERIFY(!chart.lastError().isEmpty());
}

void TestMetricChart::csvHoldsTheShownSeries() {
  MetricChart chart;
  chart.resize(640, 400);
  chart.setSeries({makeSeries("run, \"one\"", {4, 2, 1}), makeSeries("two", {3, 1}, 50)}, "loss");
  chart.setSmoothing(0.5);
  QString expected = "run,step,tokens_seen,elapsed_s,energy_j,loss,loss_smoothed\n"
                     "\"run, \"\"one\"\"\",1,100,0.25,1,4,4\n"
                     "\"run, \"\"one\"\"\",2,200,0.5,4,2,3\n"
                     "\"run, \"\"one\"\"\",3,300,0.75,9,1,2\n"
                     "two,1,50,0.25,1,3,3\n"
                     "two,2,100,0.5,4,1,2\n";
  QCOMPARE(chart.csvText(), expected);
  // Zoomed to steps 2..3: only those points.
  chart.plot()->xAxis->setRange(1.5, 3.5);
  QCOMPARE(chart.csvText(), QString("run,step,tokens_seen,elapsed_s,energy_j,loss,loss_smoothed\n"
                                    "\"run, \"\"one\"\"\",2,200,0.5,4,2,3\n"
                                    "\"run, \"\"one\"\"\",3,300,0.75,9,1,2\n"
                                    "two,2,100,0.5,4,1,2\n"));
  QTemporaryDir dir;
  QVERIFY(chart.exportCsv(dir.filePath("c.csv")));
  QFile f(dir.filePath("c.csv"));
  QVERIFY(f.open(QIODevice::ReadOnly));
  QCOMPARE(QString::fromUtf8(f.readAll()), chart.csvText());
}

QTEST_MAIN(TestMetricChart)
#include "tst_metricchart.moc"
