/* Qt test of the run comparison (ui/run-compare-view.h, run-data.h) and the runs table's figures
 * (ui/runs-table-model.h) over a real project: two runs with synthetic metrics and different configs.
 *
 * Non-obvious choice: the synthetic series are chosen so every expected number is known in closed
 * form here (tokens_seen = 512·step and 1024·step, energy_j logged at even steps as step², so the
 * interpolated energy at an odd step is step² + 1), independent of the code under test.
 */
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <qcustomplot.h>

#include "hearth/store/project.h"
#include "hearth/telemetry/energy.h"
#include "metric-chart.h"
#include "run-compare-view.h"
#include "runs-table-model.h"
#include "runs-page.h"
#include "app-context.h"
#include <QLineEdit>
#include <QPushButton>
#include <QTableView>
#include <QItemSelectionModel>

using namespace hearth;
using namespace hearth::ui;

namespace {

constexpr int STEPS = 20;
double lossA(int s) { return 3.0 - 0.1 * s + 0.05 * std::sin(s); }
double lossB(int s) { return 2.8 - 0.08 * s + 0.05 * std::cos(s); }

}  // namespace

class TestRunCompare : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase();
  void compareShowsBothCurvesAndDiff();
  void smoothingIsEma();
  void xAxisByTokensAndEnergy();
  void summaryAndCsv();
  void runsTableFigures();
  void unknownRunSaysSo();
  void screenshot();
  void axisWithoutDataSaysSo();
  void runsPageFiltersAndCompares();

 private:
  QTemporaryDir m_dir;
  QString m_path;
  store::Id m_a = 0, m_b = 0;
  const double m_energyA = 7.2e6, m_energyB = 3.6e6;
};

void TestRunCompare::initTestCase() {
  QVERIFY(m_dir.isValid());
  m_path = m_dir.filePath("p.hearth");
  auto project = store::Project::create(m_path.toStdString());
  QVERIFY(project);
  auto makeRun = [&](const char* name, const char* config, int tokensPerStep, double (*loss)(int), bool power,
                     double energy) -> store::Id {
    store::Run r;
    r.name = name;
    r.config = config;
    auto id = project->createRun(r);
    if (!id || !project->startRun(*id)) return 0;
    std::vector<store::MetricRecord> batch;
    for (int s = 1; s <= STEPS; ++s) {
      const std::int64_t tok = std::int64_t(s) * tokensPerStep;
      const double t = 1.7e9 + s;
      auto pt = [&](const char* m, double v, std::int64_t tokens) {
        batch.push_back({m, store::MetricPoint{s, v, t, tokens}});
      };
      pt("loss", loss(s), tok);
      pt("tokens_seen", double(tok), tok);
      pt("elapsed_s", 0.5 * s, tok);
      if (s % 2 == 0) pt("energy_j", double(s) * s, tok);
      if (s % 5 == 0) pt("val_loss", loss(s) + 0.2, 0);  // as the run session logs it: no tokens
      if (power) pt("power_w", 100 + s, tok);
    }
    if (!project->appendMetrics(*id, batch)) return 0;
    const std::string fin = "{\"loss\":" + std::to_string(loss(STEPS)) + ",\"tokens_seen\":" +
                            std::to_string(STEPS * tokensPerStep) + ",\"elapsed_s\":10,\"val_loss\":" +
                            std::to_string(loss(STEPS) + 0.2) + "}";
    const std::string best = "{\"val_loss\":" + std::to_string(loss(STEPS) + 0.2) + "}";
    if (!project->finishRun(*id, fin, best, energy, std::nullopt)) return 0;
    return *id;
  };
  m_a = makeRun("lora-a",
                R"({"method":"lora","name":"lora-a","training":{"lr":0.001,"steps":20,"seed":42},"lora":{"rank":8,"targets":["q","v"]}})",
                512, lossA, false, m_energyA);
  m_b = makeRun("lora-b",
                R"({"method":"lora","name":"lora-b","training":{"lr":0.0002,"steps":20,"seed":42},"lora":{"rank":16,"targets":["q","v"]},"data":{"packing":true}})",
                1024, lossB, true, m_energyB);
  QVERIFY(m_a > 0 && m_b > 0);
}

void TestRunCompare::compareShowsBothCurvesAndDiff() {
  RunCompareView view(m_path, {m_a, m_b});
  QTRY_VERIFY_WITH_TIMEOUT(view.isLoaded(), 10000);
  QVERIFY2(view.errorText().isEmpty(), qPrintable(view.errorText()));
  QStringList metrics;
  for (int i = 0; i < view.metricPicker()->count(); ++i) metrics << view.metricPicker()->itemText(i);
  QCOMPARE(metrics, QStringList({"elapsed_s", "energy_j", "loss", "power_w", "tokens_seen", "val_loss"}));
  QCOMPARE(view.metricPicker()->currentText(), QStringLiteral("loss"));
  MetricChart* chart = view.chart();
  QCOMPARE(chart->seriesCount(), 2);
  QCOMPARE(chart->mainGraph(0)->dataCount(), STEPS);
  QCOMPARE(chart->mainGraph(1)->dataCount(), STEPS);
  QCOMPARE(chart->mainGraph(0)->name(), QStringLiteral("lora-a"));
  for (int s = 1; s <= STEPS; ++s) {
    QCOMPARE(chart->shownY(0)[s - 1], lossA(s));
    QCOMPARE(chart->shownY(1)[s - 1], lossB(s));
  }
  // Exactly the keys that differ (name, lr, rank, and the key only run B has).
  QCOMPARE(view.differingKeys(), QStringList({"data.packing", "lora.rank", "name", "training.lr"}));
  QTableWidget* t = view.configDiffTable();
  QCOMPARE(t->item(0, 1)->text(), QStringLiteral("(absent)"));
  QCOMPARE(t->item(0, 2)->text(), QStringLiteral("true"));
  QCOMPARE(t->item(1, 1)->text(), QStringLiteral("8"));
  QCOMPARE(t->item(1, 2)->text(), QStringLiteral("16"));

  // Another metric: val_loss has 4 points per run.
  QSignalSpy spy(&view, &RunCompareView::loaded);
  view.setMetric("val_loss");
  QTRY_VERIFY(spy.count() >= 1 && view.isLoaded());
  QCOMPARE(chart->metricName(), QStringLiteral("val_loss"));
  QCOMPARE(chart->mainGraph(0)->dataCount(), 4);
}

void TestRunCompare::smoothingIsEma() {
  RunCompareView view(m_path, {m_a, m_b});
  QTRY_VERIFY_WITH_TIMEOUT(view.isLoaded(), 10000);
  view.setSmoothingPercent(60);
  QCOMPARE(view.chart()->smoothing(), 0.6);
  double s = lossA(1);
  for (int k = 1; k <= STEPS; ++k) {
    if (k > 1) s = 0.6 * s + 0.4 * lossA(k);
    QVERIFY2(std::abs(view.chart()->shownSmoothed(0)[k - 1] - s) < 1e-12, qPrintable(QString::number(k)));
  }
  // The graph shows the smoothed values (20 points: no reduction), the raw curve behind it.
  auto g = view.chart()->mainGraph(0)->data();
  QCOMPARE(std::abs((g->constEnd() - 1)->value - s) < 1e-12, true);
  QVERIFY(view.chart()->rawGraph(0)->visible());
  QCOMPARE((view.chart()->rawGraph(0)->data()->constEnd() - 1)->value, lossA(STEPS));
}

void TestRunCompare::xAxisByTokensAndEnergy() {
  RunCompareView view(m_path, {m_a, m_b});
  QTRY_VERIFY_WITH_TIMEOUT(view.isLoaded(), 10000);
  view.setXAxis(XAxis::tokens);
  for (int s = 1; s <= STEPS; ++s) {
    QCOMPARE(view.chart()->shownX(0)[s - 1], 512.0 * s);
    QCOMPARE(view.chart()->shownX(1)[s - 1], 1024.0 * s);
  }
  view.setXAxis(XAxis::energy);
  for (int s = 1; s <= STEPS; ++s) {
    const double e = s == 1 ? 4.0 : (s % 2 == 0 ? double(s) * s : double(s) * s + 1);
    QCOMPARE(view.chart()->shownX(0)[s - 1], e);
  }
  view.setXAxis(XAxis::elapsed);
  QCOMPARE(view.chart()->shownX(0)[9], 5.0);
  // val_loss points carry no tokens: the x comes from the tokens_seen series at their steps.
  view.setXAxis(XAxis::tokens);
  view.setMetric("val_loss");
  QTRY_VERIFY(view.isLoaded() && view.chart()->metricName() == QStringLiteral("val_loss"));
  QCOMPARE(view.chart()->shownX(0), (std::vector<double>{512.0 * 5, 512.0 * 10, 512.0 * 15, 512.0 * 20}));
  QCOMPARE(view.chart()->xAxis(), XAxis::tokens);
}

void TestRunCompare::summaryAndCsv() {
  RunCompareView view(m_path, {m_a, m_b});
  QTRY_VERIFY_WITH_TIMEOUT(view.isLoaded(), 10000);
  const auto& runs = view.summaries();
  QCOMPARE(int(runs.size()), 2);
  QVERIFY(std::abs(*runs[0].finalLoss - lossA(STEPS)) < 1e-6);
  QCOMPARE(*runs[0].tokensPerSecond, 512.0 * STEPS / 10);
  QCOMPARE(*runs[1].tokensPerSecond, 1024.0 * STEPS / 10);
  QCOMPARE(*runs[1].energyJoules, m_energyB);
  // The energy bars (kWh): 2 and 1.
  QList<QCPBars*> bars = view.summaryPlot()->findChildren<QCPBars*>();
  double kwhA = -1, kwhB = -1;
  for (QCPBars* b : bars) {
    if (b->objectName() == "summary-2-0" && b->dataCount() == 1) kwhA = b->data()->constBegin()->value;
    if (b->objectName() == "summary-2-1" && b->dataCount() == 1) kwhB = b->data()->constBegin()->value;
  }
  QCOMPARE(kwhA, 2.0);
  QCOMPARE(kwhB, 1.0);

  QTemporaryDir dir;
  const QString csv = dir.filePath("loss.csv");
  QVERIFY(view.chart()->exportCsv(csv));
  QFile f(csv);
  QVERIFY(f.open(QIODevice::ReadOnly));
  const QStringList lines = QString::fromUtf8(f.readAll()).split('\n', Qt::SkipEmptyParts);
  QCOMPARE(lines.size(), 1 + 2 * STEPS);
  QCOMPARE(lines[0], QStringLiteral("run,step,tokens_seen,elapsed_s,energy_j,loss,loss_smoothed"));
  for (int s = 1; s <= STEPS; ++s) {
    const QStringList cols = lines[s].split(',');
    QCOMPARE(cols.size(), 7);
    QCOMPARE(cols[0], QStringLiteral("lora-a"));
    QCOMPARE(cols[1].toDouble(), double(s));
    QCOMPARE(cols[2].toDouble(), 512.0 * s);
    QCOMPARE(cols[3].toDouble(), 0.5 * s);
    QCOMPARE(cols[5].toDouble(), lossA(s));  // shortest round-trip text
    QCOMPARE(lines[STEPS + s].split(',')[5].toDouble(), lossB(s));
  }
  for (const char* ext : {"png", "svg", "pdf"}) {
    const QString p = dir.filePath(QStringLiteral("loss.") + ext);
    const bool ok = QString(ext) == "png" ? view.chart()->exportPng(p) : QString(ext) == "svg" ? view.chart()->exportSvg(p)
                                                                                               : view.chart()->exportPdf(p);
    QVERIFY2(ok, ext);
    QVERIFY2(QFileInfo(p).size() > 0, ext);
  }
}

void TestRunCompare::runsTableFigures() {
  auto project = store::Project::open(m_path.toStdString());
  QVERIFY(project);
  RunsTableModel model;
  QVERIFY(model.reload(*project));
  QCOMPARE(model.rowCount(), 2);
  int a = -1;
  for (int r = 0; r < 2; ++r)
    if (model.data(model.index(r, RunsTableModel::NAME)).toString() == "lora-a") a = r;
  QVERIFY(a >= 0);
  auto cell = [&](int col, int role = Qt::DisplayRole) { return model.data(model.index(a, col), role); };
  QCOMPARE(cell(RunsTableModel::METHOD).toString(), QStringLiteral("lora"));
  QCOMPARE(cell(RunsTableModel::TOKENS_PER_S).toString(), QStringLiteral("1024.0"));
  QCOMPARE(cell(RunsTableModel::ENERGY).toString(), QStringLiteral("2.00000"));
  QCOMPARE(cell(RunsTableModel::CO2E, RunsTableModel::SORT_ROLE).toDouble(), 2.0 * telemetry::DEFAULT_GRID_G_PER_KWH);
  QVERIFY(std::abs(cell(RunsTableModel::BEST_VAL_LOSS, RunsTableModel::SORT_ROLE).toDouble() - (lossA(STEPS) + 0.2)) < 1e-6);
  QVERIFY(std::abs(cell(RunsTableModel::FINAL_VAL_LOSS, RunsTableModel::SORT_ROLE).toDouble() - (lossA(STEPS) + 0.2)) < 1e-6);
  QCOMPARE(model.headerData(RunsTableModel::CO2E, Qt::Horizontal).toString(), QStringLiteral("CO2e (g)"));
}

void TestRunCompare::unknownRunSaysSo() {
  RunCompareView view(m_path, {m_a, 9999});
  QSignalSpy failed(&view, &RunCompareView::loadFailed);
  QTRY_VERIFY_WITH_TIMEOUT(failed.count() == 1, 10000);
  QVERIFY2(view.errorText().contains("9999"), qPrintable(view.errorText()));
}

void TestRunCompare::screenshot() {
  RunCompareView view(m_path, {m_a, m_b});
  view.resize(1280, 800);
  view.show();
  QVERIFY(QTest::qWaitForWindowExposed(&view));
  QTRY_VERIFY_WITH_TIMEOUT(view.isLoaded(), 10000);
  view.setSmoothingPercent(60);
  QTest::qWait(100);
  QDir().mkpath(HEARTH_SCREENSHOTS);
  const QString file = QStringLiteral(HEARTH_SCREENSHOTS) + "/run-compare.png";
  QVERIFY(view.grab().save(file));
  QVERIFY(QFileInfo(file).size() > 0);
}

void TestRunCompare::axisWithoutDataSaysSo() {
  store::Id c = 0;
  {
    auto project = store::Project::open(m_path.toStdString());
    QVERIFY(project);
    store::Run r;
    r.name = "no-energy";
    auto id = project->createRun(r);
    QVERIFY(id);
    c = *id;
    QVERIFY(project->appendMetrics(c, {{"loss", store::MetricPoint{1, 2.0, 1.7e9, 10}},
                                       {"loss", store::MetricPoint{2, 1.5, 1.7e9 + 1, 20}}}));
  }
  RunCompareView view(m_path, {c});
  view.show();
  QTRY_VERIFY_WITH_TIMEOUT(view.isLoaded(), 10000);
  auto* status = view.findChild<QLabel*>("compareStatus");
  QVERIFY(status && status->isHidden());
  QCOMPARE(view.chart()->shownX(0), (std::vector<double>{1, 2}));
  view.setXAxis(XAxis::tokens);  // no tokens_seen series: the points' own token counts
  QCOMPARE(view.chart()->shownX(0), (std::vector<double>{10, 20}));
  view.setXAxis(XAxis::energy);
  QVERIFY(view.chart()->shownX(0).empty());
  QVERIFY(!status->isHidden());
  QVERIFY2(status->text().contains("energy"), qPrintable(status->text()));
}

// The Runs page end to end: the filter narrows the table, selecting both runs enables Compare, and
// Compare opens the comparison below the table with one curve per selected run.
void TestRunCompare::runsPageFiltersAndCompares() {
  AppContext ctx(m_path);
  QVERIFY2(ctx.project(), qPrintable(ctx.lastError()));
  RunsPage page(ctx);
  page.resize(1280, 900);
  page.show();
  QVERIFY(QTest::qWaitForWindowExposed(&page));
  auto* table = page.findChild<QTableView*>("runsTable");
  auto* filter = page.findChild<QLineEdit*>("runsFilter");
  auto* compare = page.findChild<QPushButton*>("compareRunsButton");
  QVERIFY(table && filter && compare);
  const int all = table->model()->rowCount();  // lora-a, lora-b and runs other cases added
  QVERIFY(all >= 2);
  QVERIFY(!compare->isEnabled());
  filter->setText("lora-b");
  QCOMPARE(table->model()->rowCount(), 1);
  filter->clear();
  QCOMPARE(table->model()->rowCount(), all);
  filter->setText("LORA-");  // case-insensitive, any column
  QCOMPARE(table->model()->rowCount(), 2);
  table->selectAll();
  QVERIFY(compare->isEnabled());
  QCOMPARE(page.selectedRunIds().size(), 2);
  QTest::mouseClick(compare, Qt::LeftButton);
  auto* view = qobject_cast<RunCompareView*>(page.compareView());
  QVERIFY(view);
  QTRY_VERIFY_WITH_TIMEOUT(view->isLoaded(), 10000);
  QCOMPARE(view->chart()->seriesCount(), 2);
  QDir().mkpath(HEARTH_SCREENSHOTS);
  QVERIFY(page.grab().save(QStringLiteral(HEARTH_SCREENSHOTS) + "/runs-page-compare.png"));
}

QTEST_MAIN(TestRunCompare)
#include "tst_runcompare.moc"
