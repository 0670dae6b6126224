/* RunDashboard: see run-dashboard.h.
 *
 * Non-obvious choice: the run folder (for samples.jsonl) comes from the run's stored configuration
 * ("run_dir", written by the run session), so the dashboard needs nothing from the child but its run id.
 */
#include "run-dashboard.h"

#include <QFile>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QVBoxLayout>
#include <cmath>

#include "metric-chart.h"
#include "app-context.h"
#include "run-queue.h"

namespace hearth::ui {
namespace {

const char* const METRICS[] = {"loss", "val_loss", "tokens_per_s", "power_w", "energy_j", "lr", "grad_norm"};

QString durationText(double s) {
  if (!(s >= 0) || !std::isfinite(s)) return QStringLiteral("?");
  const long t = long(s + 0.5);
  if (t >= 3600) return QStringLiteral("%1 h %2 min").arg(t / 3600).arg((t / 60) % 60);
  if (t >= 60) return QStringLiteral("%1 min %2 s").arg(t / 60).arg(t % 60);
  return QStringLiteral("%1 s").arg(t);
}

}  // namespace

RunDashboard::RunDashboard(RunQueue& queue, int jobId, QWidget* parent)
    : QWidget(parent), m_queue(queue), m_jobId(jobId) {
  setObjectName(QStringLiteral("runDashboard"));
  auto* layout = new QVBoxLayout(this);
  auto* top = new QHBoxLayout;
  m_title = new QLabel(this);
  m_title->setObjectName(QStringLiteral("dashboardTitle"));
  m_pause = new QPushButton(tr("Pause"), this);
  m_pause->setObjectName(QStringLiteral("pauseButton"));
  m_resume = new QPushButton(tr("Resume"), this);
  m_resume->setObjectName(QStringLiteral("resumeButton"));
  m_stop = new QPushButton(tr("Stop"), this);
  m_stop->setObjectName(QStringLiteral("stopButton"));
  top->addWidget(m_title, 1);
  top->addWidget(m_pause);
  top->addWidget(m_resume);
  top->addWidget(m_stop);
  layout->addLayout(top);

  auto* prog = new QHBoxLayout;
  m_progress = new QProgressBar(this);
  m_progress->setObjectName(QStringLiteral("runProgress"));
  m_eta = new QLabel(this);
  m_eta->setObjectName(QStringLiteral("timeRemaining"));
  m_energy = new QLabel(this);
  m_energy->setObjectName(QStringLiteral("energyTotal"));
  prog->addWidget(m_progress, 1);
  prog->addWidget(m_eta);
  prog->addWidget(m_energy);
  layout->addLayout(prog);
  m_status = new QLabel(this);
  m_status->setObjectName(QStringLiteral("runStatus"));
  m_status->setWordWrap(true);
  m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(m_status);
  m_device = new QLabel(this);
  m_device->setObjectName(QStringLiteral("trainingDevice"));
  m_device->setWordWrap(true);
  m_device->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(m_device);

  auto* split = new QSplitter(Qt::Vertical, this);
  auto* charts = new QWidget(split);
  auto* grid = new QGridLayout(charts);
  grid->setContentsMargins(0, 0, 0, 0);
  auto make = [&](const char* name, int row, int col) {
    auto* c = new MetricChart(charts);
    c->setObjectName(QLatin1String(name));
    c->setMinimumSize(220, 150);
    grid->addWidget(c, row, col);
    return c;
  };
  m_loss = make("lossChart", 0, 0);
  m_speed = make("throughputChart", 0, 1);
  m_power = make("powerChart", 0, 2);
  m_lr = make("lrChart", 1, 0);
  m_grad = make("gradNormChart", 1, 1);
  m_samples = new QPlainTextEdit(charts);
  m_samples->setObjectName(QStringLiteral("sampleGenerations"));
  m_samples->setReadOnly(true);
  m_samples->setPlaceholderText(tr("Sample generations appear here at each evaluation (eval.prompts)."));
  grid->addWidget(m_samples, 1, 2);
  split->addWidget(charts);
  layout->addWidget(split, 1);

  connect(m_pause, &QPushButton::clicked, this, [this] { m_queue.pause(m_jobId); });
  connect(m_stop, &QPushButton::clicked, this, [this] { m_queue.stop(m_jobId); });
  connect(m_resume, &QPushButton::clicked, this, [this] { m_queue.resume(m_jobId); });
  connect(&m_queue, &RunQueue::jobChanged, this, [this](int id) {
    if (id == m_jobId) refreshJob();
  });
  connect(&m_queue, &RunQueue::jobFinished, this, [this](int id) {
    if (id == m_jobId) poll();  // the last points
  });
  m_timer.setInterval(POLL_MS);
  connect(&m_timer, &QTimer::timeout, this, &RunDashboard::poll);
  m_timer.start();
  refreshJob();
  poll();
}

RunDashboard::~RunDashboard() = default;

void RunDashboard::refreshJob() {
  const RunQueue::Job* j = m_queue.job(m_jobId);
  if (!j) return;
  m_title->setText(tr("<b>%1</b> — %2%3")
                       .arg(j->name.toHtmlEscaped(), RunQueue::stateName(j->state),
                            j->runId ? tr(" (run %1)").arg(j->runId) : QString()));
  m_status->setText(j->status);
  if (!j->trainingOn.isEmpty()) {
    QString t = j->trainingOn;
    t[0] = t[0].toUpper();
    m_device->setText(t);
  }
  using S = RunQueue::State;
  m_pause->setEnabled(j->state == S::running);
  m_stop->setEnabled(j->state == S::running || j->state == S::queued || j->state == S::pausing);
  m_resume->setEnabled((j->state == S::paused || j->state == S::stopped) && j->runId != 0);
  if (j->totalSteps > 0) {
    m_progress->setRange(0, int(j->totalSteps));
    m_progress->setValue(int(std::min(j->step, j->totalSteps)));
    const double eta = j->step > 0 ? j->elapsedS / double(j->step) * double(j->totalSteps - j->step) : NAN;
    m_eta->setText(j->state == S::finished ? tr("done") : tr("%1 left").arg(durationText(eta)));
  } else {
    m_progress->setRange(0, 0);
    if (j->isFinal() || j->state == S::paused) m_progress->setRange(0, 1);
  }
  if (j->runId != 0 && m_runId == 0) m_runId = j->runId;
}

void RunDashboard::poll() {
  refreshJob();
  if (m_runId == 0) return;
  store::Project* project = m_queue.context().project();
  if (!project) return;
  if (m_device->text().isEmpty()) readDeviceFromRecord();
  if (!m_runDirRead) {
    m_runDirRead = true;
    if (auto r = project->run(m_runId)) {
      const auto cfg = QJsonDocument::fromJson(QByteArray::fromStdString(r->config)).object();
      const QString dir = cfg.value(QStringLiteral("run_dir")).toString();
      if (!dir.isEmpty()) m_samplesFile = dir + QStringLiteral("/samples.jsonl");
    }
  }
  for (const char* name : METRICS) {
    SeriesData& s = m_data[name];
    const int64_t from = s.step.empty() ? INT64_MIN : int64_t(s.step.back()) + 1;
    auto pts = project->readMetric(m_runId, name, from);
    if (!pts || pts->empty()) continue;
    for (const auto& p : *pts) {
      if (m_firstWall == 0) m_firstWall = p.wallTime;
      s.step.push_back(double(p.step));
      s.tokens.push_back(p.tokensSeen > 0 ? double(p.tokensSeen) : NAN);
      s.elapsed.push_back(p.wallTime - m_firstWall);
      s.energy.push_back(NAN);
      s.y.push_back(p.value);
    }
    m_dirty = true;
  }
  if (!m_samplesFile.isEmpty()) {
    QFileInfo info(m_samplesFile);
    if (info.exists() && info.size() != m_samplesSize) {
      m_samplesSize = info.size();
      QFile f(m_samplesFile);
      if (f.open(QIODevice::ReadOnly)) {
        QString text;
        for (const QByteArray& line : f.readAll().split('\n')) {
          const auto o = QJsonDocument::fromJson(line).object();
          if (o.isEmpty()) continue;
          text += tr("step %1 · %2\n→ %3\n\n")
                      .arg(o.value(QStringLiteral("step")).toInteger())
                      .arg(o.value(QStringLiteral("prompt")).toString(), o.value(QStringLiteral("output")).toString());
        }
        m_samples->setPlainText(text);
      }
    }
  }
  if (m_dirty) redraw();
}

void RunDashboard::redraw() {
  m_dirty = false;
  auto named = [&](const char* metric, const QString& label) {
    SeriesData s = m_data[metric];
    s.runName = label;
    s.runId = m_runId;
    return s;
  };
  std::vector<SeriesData> loss;
  loss.push_back(named("loss", tr("training")));
  if (!m_data["val_loss"].y.empty()) loss.push_back(named("val_loss", tr("validation")));
  m_loss->setSeries(std::move(loss), tr("Loss"));
  m_speed->setSeries({named("tokens_per_s", tr("tokens/s"))}, tr("Throughput (tokens/s)"));
  m_power->setSeries({named("power_w", tr("W"))}, tr("Power (W)"));
  m_lr->setSeries({named("lr", tr("lr"))}, tr("Learning rate"));
  m_grad->setSeries({named("grad_norm", tr("grad norm"))}, tr("Gradient norm"));
  const auto& e = m_data["energy_j"].y;
  if (!e.empty()) m_energy->setText(tr("Energy: %1 J (%2 Wh)").arg(e.back(), 0, 'f', 0).arg(e.back() / 3600.0, 0, 'f', 3));
}

int RunDashboard::pointCount(const std::string& metric) const {
  auto it = m_data.find(metric);
  return it == m_data.end() ? 0 : int(it->second.y.size());
}

QString RunDashboard::samplesText() const { return m_samples->toPlainText(); }
QString RunDashboard::statusText() const { return m_status->text(); }
QString RunDashboard::deviceText() const { return m_device->text(); }

void RunDashboard::readDeviceFromRecord() {
  store::Project* project = m_queue.context().project();
  if (!project || m_runId == 0) return;
  auto run = project->run(m_runId);
  if (!run) return;
  const QJsonObject hw = QJsonDocument::fromJson(QByteArray::fromStdString(run->hardware)).object();
  const QJsonArray parts = hw.value(QStringLiteral("training_devices")).toArray();
  if (parts.isEmpty()) return;
  const QJsonObject d = parts.last().toObject();
  const QString note = d.value(QStringLiteral("note")).toString();
  const QString desc = d.value(QStringLiteral("description")).toString();
  if (d.value(QStringLiteral("device")).toString() == QLatin1String("cuda"))
    m_device->setText(tr("Training on the GPU: %1").arg(desc));
  else if (note.isEmpty())
    m_device->setText(tr("Training on the CPU (%1)").arg(desc));
  else
    m_device->setText(tr("Training on the CPU: %1").arg(note));
}

}  // namespace hearth::ui
