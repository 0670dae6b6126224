/* RunCompareView: see run-compare-view.h.
 *
 * Non-obvious choice: the summary chart is one QCustomPlot with three axis rects (loss, tokens/s, kWh)
 * because the three figures have unrelated scales; each run is its own QCPBars so its bar has the
 * same colour as its curve.
 */
#include "run-compare-view.h"

#include <QComboBox>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSlider>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <functional>
#include <qcustomplot.h>

#include "app-context.h"
#include "metric-chart.h"

namespace hearth::ui {

RunCompareView::RunCompareView(const QString& projectPath, const QList<store::Id>& runIds, QWidget* parent)
    : QWidget(parent), m_path(projectPath), m_ids(runIds) {
  setObjectName(QStringLiteral("runCompareView"));
  auto* layout = new QVBoxLayout(this);

  auto* bar = new QHBoxLayout;
  bar->addWidget(new QLabel(tr("Metric:"), this));
  m_metricPicker = new QComboBox(this);
  m_metricPicker->setObjectName(QStringLiteral("metricPicker"));
  m_metricPicker->setMinimumContentsLength(12);
  bar->addWidget(m_metricPicker);
  bar->addWidget(new QLabel(tr("X-axis:"), this));
  m_axisPicker = new QComboBox(this);
  m_axisPicker->setObjectName(QStringLiteral("xAxisPicker"));
  for (XAxis a : {XAxis::step, XAxis::tokens, XAxis::elapsed, XAxis::energy})
    m_axisPicker->addItem(xAxisLabel(a), static_cast<int>(a));
  bar->addWidget(m_axisPicker);
  bar->addWidget(new QLabel(tr("Smoothing:"), this));
  m_smoothing = new QSlider(Qt::Horizontal, this);
  m_smoothing->setObjectName(QStringLiteral("smoothingSlider"));
  m_smoothing->setRange(0, 99);
  m_smoothing->setMaximumWidth(160);
  m_smoothing->setToolTip(tr("Exponential moving average of the curves; the raw curve stays faint behind."));
  bar->addWidget(m_smoothing);
  m_smoothingLabel = new QLabel(QStringLiteral("0.00"), this);
  bar->addWidget(m_smoothingLabel);
  bar->addStretch(1);
  for (const QString& kind : {QStringLiteral("PNG"), QStringLiteral("SVG"), QStringLiteral("PDF"), QStringLiteral("CSV")}) {
    auto* b = new QPushButton(tr("Export %1…").arg(kind), this);
    b->setObjectName(QStringLiteral("export") + kind);
    connect(b, &QPushButton::clicked, this, [this, kind] { exportChart(kind); });
    bar->addWidget(b);
  }
  layout->addLayout(bar);

  m_status = new QLabel(tr("Loading the runs…"), this);
  m_status->setObjectName(QStringLiteral("compareStatus"));
  m_status->setWordWrap(true);
  layout->addWidget(m_status);

  auto* split = new QSplitter(Qt::Vertical, this);
  m_chart = new MetricChart(split);
  split->addWidget(m_chart);
  auto* lower = new QSplitter(Qt::Horizontal, split);
  m_diff = new QTableWidget(lower);
  m_diff->setObjectName(QStringLiteral("configDiff"));
  m_diff->setEditTriggers(QAbstractItemView::NoEditTriggers);
  m_diff->verticalHeader()->hide();
  m_diff->horizontalHeader()->setStretchLastSection(true);
  m_diff->setAlternatingRowColors(true);
  lower->addWidget(m_diff);
  m_summary = new QCustomPlot(lower);
  m_summary->setObjectName(QStringLiteral("summaryPlot"));
  m_summary->setMinimumHeight(160);
  m_summary->setBackground(palette().brush(QPalette::Base));
  lower->addWidget(m_summary);
  lower->setStretchFactor(0, 1);
  lower->setStretchFactor(1, 1);
  lower->setSizes({500, 500});  // half each; the table's size hint would otherwise squeeze the bars
  split->addWidget(lower);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  layout->addWidget(split, 1);

  connect(m_metricPicker, &QComboBox::currentTextChanged, this, [this](const QString& m) {
    if (!m.isEmpty()) requestMetric(m);
  });
  connect(m_axisPicker, &QComboBox::currentIndexChanged, this, [this](int) {
    m_chart->setXAxis(static_cast<XAxis>(m_axisPicker->currentData().toInt()));
    updateEmptyHint();
  });
  connect(m_smoothing, &QSlider::valueChanged, this, [this](int v) {
    m_smoothingLabel->setText(QString::number(v / 100.0, 'f', 2));
    m_chart->setSmoothing(v / 100.0);
  });

  connect(&m_runsWatcher, &QFutureWatcher<RunsLoadResult>::finished, this, &RunCompareView::onRunsLoaded);
  m_runsWatcher.setFuture(loadRunsAsync(m_path, m_ids));
}

RunCompareView::~RunCompareView() = default;

QString RunCompareView::errorText() const {
  return m_status->property("error").toBool() ? m_status->text() : QString();
}

void RunCompareView::showError(const QString& text) {
  m_status->setText(text);
  m_status->setProperty("error", true);
  m_status->setVisible(true);
  emit loadFailed(text);
}

void RunCompareView::setMetric(const QString& name) { m_metricPicker->setCurrentText(name); }

void RunCompareView::setXAxis(XAxis axis) {
  const int i = m_axisPicker->findData(static_cast<int>(axis));
  if (i >= 0) m_axisPicker->setCurrentIndex(i);
}

void RunCompareView::setSmoothingPercent(int percent) { m_smoothing->setValue(percent); }

void RunCompareView::onRunsLoaded() {
  const RunsLoadResult r = m_runsWatcher.result();
  if (!r.error.isEmpty()) {
    showError(tr("Cannot read the runs: %1").arg(r.error));
    return;
  }
  m_runs = r.runs;
  fillDiff();
  fillSummary();
  if (r.metricNames.isEmpty()) {
    m_status->setText(tr("These runs have no metrics yet."));
    m_loaded = true;
    emit loaded();
    return;
  }
  const QSignalBlocker block(m_metricPicker);
  m_metricPicker->clear();
  m_metricPicker->addItems(r.metricNames);
  const int loss = m_metricPicker->findText(QStringLiteral("loss"));
  m_metricPicker->setCurrentIndex(loss >= 0 ? loss : 0);
  requestMetric(m_metricPicker->currentText());
}

void RunCompareView::requestMetric(const QString& metric) {
  const int generation = ++m_generation;
  m_loaded = false;
  m_status->setProperty("error", false);
  m_status->setText(tr("Loading %1…").arg(metric));
  m_status->setVisible(true);
  auto* watcher = new QFutureWatcher<SeriesLoadResult>(this);
  connect(watcher, &QFutureWatcher<SeriesLoadResult>::finished, this, [this, watcher, generation] {
    watcher->deleteLater();
    if (generation != m_generation) return;  // the user picked another metric meanwhile
    m_seriesWatcher = watcher;
    onSeriesLoaded();
    m_seriesWatcher = nullptr;
  });
  watcher->setFuture(loadSeriesAsync(m_path, m_ids, metric));
}

void RunCompareView::onSeriesLoaded() {
  SeriesLoadResult r = m_seriesWatcher->result();
  if (!r.error.isEmpty()) {
    showError(tr("Cannot read %1: %2").arg(r.metric, r.error));
    return;
  }
  m_chart->setSeries(std::move(r.series), r.metric);
  m_status->setVisible(false);
  m_loaded = true;
  updateEmptyHint();
  emit loaded();
}

void RunCompareView::updateEmptyHint() {
  if (errorText().size() > 0 || !m_loaded) return;
  bool any = false;
  for (int i = 0; i < m_chart->seriesCount(); ++i) any = any || !m_chart->shownX(i).empty();
  m_status->setVisible(!any);
  if (!any)
    m_status->setText(tr("None of these runs has %1 values against %2.")
                          .arg(m_chart->metricName(), xAxisLabel(m_chart->xAxis()).toLower()));
}

QStringList RunCompareView::differingKeys() const {
  QStringList keys;
  for (int row = 0; row < m_diff->rowCount(); ++row)
    if (auto* item = m_diff->item(row, 0)) keys << item->text();
  return keys;
}

void RunCompareView::fillDiff() {
  std::vector<std::string> configs;
  std::vector<std::map<std::string, std::string>> flat;
  for (const auto& r : m_runs) {
    configs.push_back(r.run.config);
    nlohmann::json j = nlohmann::json::parse(r.run.config, nullptr, false);
    flat.push_back(flattenJson(j.is_discarded() ? nlohmann::json::object() : j));
  }
  const std::vector<std::string> keys = hearth::ui::differingKeys(configs);
  m_diff->clear();
  m_diff->setColumnCount(static_cast<int>(m_runs.size()) + 1);
  QStringList headers{tr("Key")};
  for (const auto& r : m_runs) headers << r.displayName;
  m_diff->setHorizontalHeaderLabels(headers);
  m_diff->setRowCount(static_cast<int>(keys.size()));
  for (std::size_t k = 0; k < keys.size(); ++k) {
    m_diff->setItem(static_cast<int>(k), 0, new QTableWidgetItem(QString::fromStdString(keys[k])));
    for (std::size_t i = 0; i < flat.size(); ++i) {
      auto it = flat[i].find(keys[k]);
      auto* item = new QTableWidgetItem(it == flat[i].end() ? tr("(absent)") : QString::fromStdString(it->second));
      if (it == flat[i].end()) item->setForeground(palette().brush(QPalette::PlaceholderText));
      m_diff->setItem(static_cast<int>(k), static_cast<int>(i) + 1, item);
    }
  }
  if (keys.empty()) {
    m_diff->setRowCount(0);
    m_diff->setToolTip(tr("The runs' configurations are the same."));
  }
  m_diff->resizeColumnsToContents();
}

void RunCompareView::fillSummary() {
  m_summary->clearPlottables();
  m_summary->plotLayout()->clear();
  struct Figure {
    QString title;
    std::function<std::optional<double>(const RunSummary&)> value;
  };
  const std::vector<Figure> figures = {
      {tr("Final loss"), [](const RunSummary& r) { return r.finalLoss; }},
      {tr("Tokens/s"), [](const RunSummary& r) { return r.tokensPerSecond; }},
      {tr("Energy (kWh)"),
       [](const RunSummary& r) { return r.energyJoules ? std::optional<double>(*r.energyJoules / 3.6e6) : std::nullopt; }},
  };
  const QPalette pal = palette();
  QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
  for (std::size_t i = 0; i < m_runs.size(); ++i) ticker->addTick(static_cast<double>(i), m_runs[i].displayName);
  for (std::size_t f = 0; f < figures.size(); ++f) {
    auto* rect = new QCPAxisRect(m_summary);
    m_summary->plotLayout()->addElement(0, static_cast<int>(f), rect);
    rect->setBackground(pal.brush(QPalette::Base));
    QCPAxis* x = rect->axis(QCPAxis::atBottom);
    QCPAxis* y = rect->axis(QCPAxis::atLeft);
    x->setTicker(ticker);
    x->setTickLabelRotation(m_runs.size() > 1 ? 30 : 0);  // run names side by side would overlap
    x->setRange(-0.6, static_cast<double>(m_runs.size()) - 0.4);
    x->setSubTicks(false);
    x->grid()->setVisible(false);
    y->setLabel(figures[f].title);
    for (QCPAxis* a : {x, y}) {
      a->setBasePen(QPen(pal.color(QPalette::Text)));
      a->setTickPen(QPen(pal.color(QPalette::Text)));
      a->setSubTickPen(QPen(pal.color(QPalette::Text)));
      a->setTickLabelColor(pal.color(QPalette::Text));
      a->setLabelColor(pal.color(QPalette::Text));
    }
    double top = 0;
    for (std::size_t i = 0; i < m_runs.size(); ++i) {
      const std::optional<double> v = figures[f].value(m_runs[i]);
      auto* bars = new QCPBars(x, y);
      bars->setObjectName(QStringLiteral("summary-%1-%2").arg(f).arg(i));
      bars->setName(m_runs[i].displayName);
      bars->setWidth(0.6);
      const QColor c = m_chart->seriesColor(static_cast<int>(i));
      bars->setPen(QPen(c.darker(120)));
      bars->setBrush(c);
      if (v) {
        bars->addData(static_cast<double>(i), *v);
        top = std::max(top, *v);
      }
    }
    y->setRange(0, top > 0 ? top * 1.15 : 1);
  }
  m_summary->replot();
}

void RunCompareView::exportChart(const QString& kind) {
  const QString suffix = kind.toLower();
  const QString path = QFileDialog::getSaveFileName(this, tr("Export the chart as %1").arg(kind),
                                                    m_chart->metricName() + QLatin1Char('.') + suffix,
                                                    tr("%1 files (*.%2)").arg(kind, suffix));
  if (path.isEmpty()) return;
  bool ok = false;
  if (kind == QLatin1String("PNG")) ok = m_chart->exportPng(path);
  else if (kind == QLatin1String("SVG")) ok = m_chart->exportSvg(path);
  else if (kind == QLatin1String("PDF")) ok = m_chart->exportPdf(path);
  else ok = m_chart->exportCsv(path);
  if (!ok) {
    m_status->setText(m_chart->lastError());
    m_status->setProperty("error", true);
    m_status->setVisible(true);
  }
}

QWidget* createRunCompareView(AppContext& ctx, const QList<store::Id>& runIds, QWidget* parent) {
  return new RunCompareView(ctx.projectPath(), runIds, parent);
}

}  // namespace hearth::ui
