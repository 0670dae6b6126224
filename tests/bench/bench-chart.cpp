/* bench-chart: time to redraw a MetricChart holding three runs of 1,000,000 points each, offscreen, at
 * 1280x800: the full redraw after a zoom (min/max reduction of every series for the new x range plus
 * QCustomPlot's replot), median of 20 redraws, for several views. A program that prints a table,
 * never a timed test (DESIGN.md).
 *
 * Non-obvious choice: each measured redraw zooms to a different window first (moving and resizing),
 * so no reduction is reused from the previous one; the timer is bypassed (redrawNow) so the figure is
 * the work itself, not the 33 ms throttle.
 *
 * Usage: bench-chart [points_per_run=1000000] [runs=3] [redraws=20]
 */
#include <QApplication>
#include <QElapsedTimer>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <qcustomplot.h>
#include <random>
#include <vector>

#include "metric-chart.h"

using namespace hearth::ui;

namespace {

std::vector<SeriesData> makeRuns(std::size_t n, int runs) {
  std::vector<SeriesData> out;
  for (int r = 0; r < runs; ++r) {
    std::mt19937 rng(static_cast<unsigned>(r + 1));
    std::normal_distribution<double> noise(0, 0.08);
    SeriesData s;
    s.runName = QStringLiteral("run %1").arg(r + 1);
    s.step.resize(n);
    s.tokens.resize(n);
    s.elapsed.resize(n);
    s.energy.resize(n);
    s.y.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double t = double(i) / double(n);
      s.step[i] = double(i + 1);
      s.tokens[i] = double(i + 1) * 2048;
      s.elapsed[i] = double(i + 1) * 0.35;
      s.energy[i] = double(i + 1) * 120.0;
      s.y[i] = 2.0 + r * 0.15 + 2.5 * std::exp(-4 * t) + noise(rng);
    }
    out.push_back(std::move(s));
  }
  return out;
}

struct Row {
  const char* view;
  double medianMs, minMs, maxMs;
  int pointsDrawn;
};

}  // namespace

int main(int argc, char** argv) {
  qputenv("QT_QPA_PLATFORM", "offscreen");
  QApplication app(argc, argv);
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 3;
  const int redraws = argc > 3 ? std::atoi(argv[3]) : 20;

  MetricChart chart;
  chart.resize(1280, 800);
  chart.show();
  QElapsedTimer load;
  load.start();
  chart.setSeries(makeRuns(n, runs), QStringLiteral("loss"));
  const double setMs = load.nsecsElapsed() / 1e6;
  app.processEvents();

  auto measure = [&](const char* name, double smoothing, auto zoom) {
    chart.setSmoothing(smoothing);
    chart.redrawNow();
    std::vector<double> ms;
    for (int k = 0; k < redraws; ++k) {
      zoom(k);
      QElapsedTimer t;
      t.start();
      chart.redrawNow();
      ms.push_back(t.nsecsElapsed() / 1e6);
    }
    std::vector<double> sorted = ms;
    std::sort(sorted.begin(), sorted.end());
    const double median = redraws % 2 ? sorted[redraws / 2] : 0.5 * (sorted[redraws / 2 - 1] + sorted[redraws / 2]);
    int points = 0;
    for (int i = 0; i < chart.seriesCount(); ++i)
      points += chart.mainGraph(i)->dataCount() + (chart.rawGraph(i)->visible() ? chart.rawGraph(i)->dataCount() : 0);
    return Row{name, median, sorted.front(), sorted.back(), points};
  };
  const double N = double(n);
  std::vector<Row> rows;
  rows.push_back(measure("full range (zoom out/in by 1%)", 0, [&](int k) {
    chart.plot()->xAxis->setRange(1 - N * 0.005 * (k % 2), N + N * 0.005 * (k % 2));
  }));
  rows.push_back(measure("zoomed to 10%, moving", 0, [&](int k) {
    const double lo = N * 0.04 * k;
    chart.plot()->xAxis->setRange(lo, lo + N * 0.1);
  }));
  rows.push_back(measure("zoomed to 0.1%, moving", 0, [&](int k) {
    const double lo = N * 0.03 * k;
    chart.plot()->xAxis->setRange(lo, lo + N * 0.001);
  }));
  {
    // The drawing alone: replot the current reduction, no new reduction.
    chart.setSmoothing(0);
    chart.plot()->xAxis->setRange(1, N);
    chart.redrawNow();
    std::vector<double> ms;
    for (int k = 0; k < redraws; ++k) {
      QElapsedTimer t;
      t.start();
      chart.plot()->replot(QCustomPlot::rpImmediateRefresh);
      ms.push_back(t.nsecsElapsed() / 1e6);
    }
    std::sort(ms.begin(), ms.end());
    int points = 0;
    for (int i = 0; i < chart.seriesCount(); ++i) points += chart.mainGraph(i)->dataCount();
    rows.push_back(Row{"full range, replot only", ms[ms.size() / 2], ms.front(), ms.back(), points});
  }
  rows.push_back(measure("full range, EMA 0.9 (+ raw)", 0.9, [&](int k) {
    chart.plot()->xAxis->setRange(1 - N * 0.005 * (k % 2), N + N * 0.005 * (k % 2));
  }));

  std::printf("bench-chart: %d runs x %zu points, 1280x800 offscreen, %d redraws per view (Qt %s)\n", runs, n,
              redraws, qVersion());
  std::printf("setSeries (prepare + fit + first redraw): %.1f ms\n\n", setMs);
  std::printf("| %-32s | %10s | %8s | %8s | %12s |\n", "view", "median ms", "min ms", "max ms", "points drawn");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(34, '-').c_str(), std::string(12, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str(), std::string(14, '-').c_str());
  for (const Row& r : rows)
    std::printf("| %-32s | %10.2f | %8.2f | %8.2f | %12d |\n", r.view, r.medianMs, r.minMs, r.maxMs, r.pointsDrawn);
  return 0;
}
