/* HardwareStatus: see status-bar.h.
 *
 * Non-obvious choice: memory is read from /proc/meminfo (MemAvailable, not MemFree), which is what a
 * model load can actually get without swapping.
 */
#include "status-bar.h"

#include <QFile>
#include <QFutureWatcher>
#include <QLabel>
#include <QStatusBar>
#include <QtConcurrent/QtConcurrentRun>

#include "app-context.h"
#include "hearth/backend.h"
#include "hearth/telemetry/sampler.h"
#include "model-inspect.h"

namespace hearth::ui {
namespace {

// MemAvailable from /proc/meminfo in bytes; -1 when unreadable.
std::int64_t availableMemory() {
  QFile f(QStringLiteral("/proc/meminfo"));
  if (!f.open(QIODevice::ReadOnly)) return -1;
  // procfs files report size 0, so read to the end instead of testing atEnd() first.
  const QByteArray all = f.readAll();
  for (const QByteArray& line : all.split('\n')) {
    if (line.startsWith("MemAvailable:")) {
      const QList<QByteArray> parts = line.simplified().split(' ');
      bool ok = false;
      const qint64 kb = parts.size() >= 2 ? parts[1].toLongLong(&ok) : 0;
      return ok ? kb * 1024 : -1;
    }
  }
  return -1;
}

QLabel* makeLabel(QStatusBar* bar, const char* name) {
  auto* label = new QLabel(bar);
  label->setObjectName(QString::fromLatin1(name));
  label->setTextInteractionFlags(Qt::TextSelectableByMouse);
  bar->addPermanentWidget(label);
  return label;
}

}  // namespace

HardwareStatus::HardwareStatus(AppContext& ctx, QStatusBar* bar) : QObject(bar), m_ctx(ctx) {
  m_cpu = makeLabel(bar, "cpuStatus");
  m_gpu = makeLabel(bar, "gpuStatus");
  m_memory = makeLabel(bar, "memoryStatus");
  m_power = makeLabel(bar, "powerStatus");
  m_cpu->setText(tr("CPU: …"));
  m_gpu->setText(tr("GPU: …"));

  auto* watcher = new QFutureWatcher<BackendInfo>(this);
  connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher] {
    watcher->deleteLater();
    if (watcher->future().resultCount() == 0) return;
    const BackendInfo info = watcher->result();
    m_cpu->setText(tr("CPU: %1, %n threads", nullptr, info.cpu_threads).arg(QString::fromStdString(info.cpu_name)));
    QStringList features;
    for (const auto& f : info.cpu_features) features << QString::fromStdString(f);
    m_cpu->setToolTip(tr("Features: %1").arg(features.join(QLatin1Char(' '))));
    if (info.gpus.empty()) {
      m_gpu->setText(tr("GPU: none"));
      m_gpu->setToolTip(info.cuda_compiled ? tr("CUDA: %1").arg(QString::fromStdString(info.cuda_status))
                                           : tr("This build has no CUDA backend; the CPU serves."));
    } else {
      QStringList names;
      for (const auto& g : info.gpus)
        names << QStringLiteral("%1 (%2)").arg(QString::fromStdString(g.name),
                                                formatBytes(static_cast<std::int64_t>(g.total_memory)));
      m_gpu->setText(tr("GPU: %1").arg(names.join(QStringLiteral(", "))));
      m_gpu->setToolTip(tr("CUDA driver %1, runtime %2").arg(info.cuda_driver_version).arg(info.cuda_runtime_version));
    }
    emit hardwareKnown();
  });
  watcher->setFuture(QtConcurrent::run([] {
    try {
      return query_backends();
    } catch (...) {
      return BackendInfo{};
    }
  }));

  connect(&m_timer, &QTimer::timeout, this, &HardwareStatus::refresh);
  m_timer.start(1000);
  refresh();
}

QString HardwareStatus::cpuText() const { return m_cpu->text(); }
QString HardwareStatus::gpuText() const { return m_gpu->text(); }
QString HardwareStatus::memoryText() const { return m_memory->text(); }
QString HardwareStatus::powerText() const { return m_power->text(); }

void HardwareStatus::refresh() {
  const std::int64_t total = physicalMemoryBytes();
  const std::int64_t available = availableMemory();
  if (total > 0 && available >= 0)
    m_memory->setText(tr("Memory: %1 free of %2").arg(formatBytes(available), formatBytes(total)));
  else if (total > 0)
    m_memory->setText(tr("Memory: %1").arg(formatBytes(total)));
  else
    m_memory->setText(tr("Memory: unknown"));

  telemetry::Sampler* sampler = m_ctx.sampler();
  if (!sampler) {
    m_power->setText(tr("Power: unavailable"));
    m_power->setToolTip(m_ctx.lastSamplerError());
    return;
  }
  const telemetry::Snapshot s = sampler->snapshot();
  bool anyWatts = false;
  QStringList lines;
  for (const auto& c : s.channels) {
    if (!c.last.watts) continue;
    anyWatts = true;
    lines << QStringLiteral("%1: %2 W (%3)")
                 .arg(QString::fromStdString(c.last.label))
                 .arg(*c.last.watts, 0, 'f', 1)
                 .arg(QString::fromLatin1(telemetry::sensorKindName(c.last.kind)));
  }
  for (const auto& u : s.unavailable) lines << QString::fromStdString(u);
  m_power->setToolTip(lines.join(QLatin1Char('\n')));
  if (!anyWatts) {
    m_power->setText(s.channels.empty() ? tr("Power: no sensor") : tr("Power: measuring…"));
    return;
  }
  QString text = tr("Power: %1 W").arg(s.totalWatts, 0, 'f', 1);
  if (s.anyEstimated) text += QLatin1Char(' ') + tr("(estimated)");
  m_power->setText(text);
}

}  // namespace hearth::ui
