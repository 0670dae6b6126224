/* RunQueue: see run-queue.h.
 *
 * Non-obvious choice: progress comes from the child's stderr lines (`step N/M ... elapsed Xs`, printed
 * one per log step because stderr is a pipe, not a terminal) for the status text and the progress bar;
 * the charts read the metrics from the project, which is the record that survives.
 */
#include "run-queue.h"

#include <signal.h>

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QRegularExpression>

#include "app-context.h"

namespace hearth::ui {

QString RunQueue::stateName(State s) {
  switch (s) {
    case State::queued: return tr("queued");
    case State::running: return tr("running");
    case State::stopping: return tr("stopping");
    case State::pausing: return tr("pausing");
    case State::paused: return tr("paused");
    case State::stopped: return tr("stopped");
    case State::finished: return tr("finished");
    case State::failed: return tr("failed");
  }
  return {};
}

QString RunQueue::findCli() {
  const QString env = qEnvironmentVariable("HEARTH_CLI");
  if (!env.isEmpty()) return env;
  const QDir dir(QCoreApplication::applicationDirPath());
  for (const QString& c : {dir.filePath(QStringLiteral("hearth-cli")), dir.filePath(QStringLiteral("../app/hearth-cli"))}) {
    QFileInfo info(c);
    if (info.isFile() && info.isExecutable()) return info.canonicalFilePath();
  }
  return QStringLiteral("hearth-cli");
}

RunQueue::RunQueue(AppContext& ctx, QObject* parent) : QObject(parent), m_ctx(ctx), m_cli(findCli()) {
  m_runIdTimer.setInterval(250);
  connect(&m_runIdTimer, &QTimer::timeout, this, &RunQueue::lookForRunId);
}

RunQueue::~RunQueue() {
  if (m_process) {
    m_process->disconnect(this);
    if (m_process->state() != QProcess::NotRunning) {
      ::kill(pid_t(m_process->processId()), SIGINT);
      if (!m_process->waitForFinished(30000)) m_process->kill();
      m_process->waitForFinished(2000);
    }
  }
}

RunQueue::Job* RunQueue::find(int jobId) {
  for (auto& j : m_jobs)
    if (j.id == jobId) return &j;
  return nullptr;
}

const RunQueue::Job* RunQueue::job(int jobId) const {
  for (const auto& j : m_jobs)
    if (j.id == jobId) return &j;
  return nullptr;
}

int RunQueue::enqueue(const QString& configPath, const QString& name, std::optional<store::Id> baseVersionId) {
  Job j;
  j.id = m_nextId++;
  j.name = name;
  j.configPath = configPath;
  j.baseVersionId = baseVersionId;
  j.status = tr("Waiting for the run before it");
  m_jobs.push_back(j);
  emit jobAdded(j.id);
  startNext();
  return j.id;
}

bool RunQueue::resume(int jobId) {
  Job* j = find(jobId);
  if (!j || j->runId == 0 || !(j->state == State::paused || j->state == State::stopped)) return false;
  j->resumeRunId = j->runId;
  j->state = State::queued;
  j->status = tr("Queued to resume");
  j->stderrTail.clear();
  emit jobChanged(jobId);
  startNext();
  return true;
}

void RunQueue::startNext() {
  if (m_process) return;
  Job* next = nullptr;
  for (auto& j : m_jobs)
    if (j.state == State::queued) {
      next = &j;
      break;
    }
  if (!next) return;
  QStringList args{QStringLiteral("train")};
  if (next->resumeRunId) args << QStringLiteral("--resume") << QString::number(*next->resumeRunId);
  else args << next->configPath;
  args << QStringLiteral("--project") << m_ctx.projectPath();
  m_current = next->id;
  next->state = State::running;
  next->status = tr("Starting…");
  next->exitCode = -1;
  m_outBuf.clear();
  m_errBuf.clear();
  m_stdoutLines.clear();
  m_process = new QProcess(this);
  m_process->setProgram(m_cli);
  m_process->setArguments(args);
  if (!m_ctx.projectPath().isEmpty()) m_process->setWorkingDirectory(QFileInfo(m_ctx.projectPath()).absolutePath());
  connect(m_process, &QProcess::readyReadStandardOutput, this, &RunQueue::onStdout);
  connect(m_process, &QProcess::readyReadStandardError, this, &RunQueue::onStderr);
  connect(m_process, &QProcess::finished, this, &RunQueue::onFinished);
  connect(m_process, &QProcess::errorOccurred, this, [this](QProcess::ProcessError e) {
    if (e != QProcess::FailedToStart) return;
    Job* j = find(m_current);
    QString msg = tr("Cannot start %1: %2").arg(m_cli, m_process->errorString());
    m_process->deleteLater();
    m_process = nullptr;
    m_runIdTimer.stop();
    if (j) {
      j->state = State::failed;
      j->status = msg;
      j->stderrTail << msg;
      emit jobChanged(j->id);
      emit jobFinished(j->id);
    }
    startNext();
  });
  m_process->start();
  m_runIdTimer.start();
  emit jobChanged(next->id);
}

void RunQueue::lookForRunId() {
  Job* j = find(m_current);
  if (!j || !m_process) return;
  if (j->runId != 0) {
    m_runIdTimer.stop();
    return;
  }
  if (j->resumeRunId) {
    j->runId = *j->resumeRunId;
    m_runIdTimer.stop();
    emit jobChanged(j->id);
    return;
  }
  store::Project* p = m_ctx.project();
  const qint64 pid = m_process->processId();
  if (!p || pid <= 0) return;
  auto runs = p->runs();
  if (!runs) return;
  for (const auto& r : *runs)
    if (r.ownerPid && *r.ownerPid == pid && r.status == store::RunStatus::running) {
      j->runId = r.id;
      if (!j->baseVersionId) j->baseVersionId = r.baseVersionId;
      m_runIdTimer.stop();
      m_ctx.notifyRunsChanged();
      emit jobChanged(j->id);
      return;
    }
}

void RunQueue::onStdout() {
  m_outBuf += m_process->readAllStandardOutput();
  int nl;
  while ((nl = m_outBuf.indexOf('\n')) >= 0) {
    const QString line = QString::fromUtf8(m_outBuf.left(nl)).trimmed();
    m_outBuf.remove(0, nl + 1);
    m_stdoutLines << line;
    Job* j = find(m_current);
    if (!j) continue;
    if (line.startsWith(QLatin1String("run: "))) j->runId = line.mid(5).toLongLong();
    static const QRegularExpression version(QStringLiteral("^version: (\\d+) \\((\\w+)\\)"));
    auto m = version.match(line);
    if (m.hasMatch()) {
      const store::Id id = m.captured(1).toLongLong();
      if (m.captured(2) == QLatin1String("merged")) j->mergedVersionId = id;
      else if (!j->outputVersionId) j->outputVersionId = id;
    }
  }
}

void RunQueue::onStderr() {
  m_errBuf += m_process->readAllStandardError();
  Job* j = find(m_current);
  int nl;
  bool changed = false;
  while ((nl = m_errBuf.indexOf('\n')) >= 0) {
    const QString line = QString::fromUtf8(m_errBuf.left(nl)).trimmed();
    m_errBuf.remove(0, nl + 1);
    if (!j || line.isEmpty()) continue;
    j->stderrTail << line;
    while (j->stderrTail.size() > 20) j->stderrTail.removeFirst();
    static const QRegularExpression step(QStringLiteral("^step (\\d+)/(\\d+) .*elapsed ([0-9.]+)s"));
    auto m = step.match(line);
    if (m.hasMatch()) {
      j->step = m.captured(1).toLongLong();
      j->totalSteps = m.captured(2).toLongLong();
      j->elapsedS = m.captured(3).toDouble();
    }
    // Where the run trains (trainer.h's choice of device), said once before the first step.
    if (line.startsWith(QLatin1String("training on the "))) j->trainingOn = line;
    if (j->state == State::running) j->status = line;
    changed = true;
  }
  if (changed && j) emit jobChanged(j->id);
}

void RunQueue::onFinished(int exitCode, QProcess::ExitStatus status) {
  onStdout();
  onStderr();
  Job* j = find(m_current);
  m_runIdTimer.stop();
  if (j && j->runId == 0) lookForRunId();
  m_process->deleteLater();
  m_process = nullptr;
  if (j) {
    j->exitCode = status == QProcess::NormalExit ? exitCode : -1;
    const QString tail = j->stderrTail.mid(std::max<qsizetype>(0, j->stderrTail.size() - 5)).join(QLatin1Char('\n'));
    if (status == QProcess::NormalExit && exitCode == 0) {
      j->state = State::finished;
      j->status = tr("Finished");
      m_ctx.notifyModelsChanged();
    } else if (status == QProcess::NormalExit && exitCode == 130) {
      j->state = j->state == State::pausing ? State::paused : State::stopped;
      j->status = j->state == State::paused ? tr("Paused at step %1 (checkpoint written)").arg(j->step)
                                            : tr("Stopped at step %1 (checkpoint written; resumable)").arg(j->step);
    } else {
      j->state = State::failed;
      j->status = status == QProcess::CrashExit ? tr("The training process crashed:\n%1").arg(tail)
                                                : tr("The training process failed (exit %1):\n%2").arg(exitCode).arg(tail);
      if (store::Project* p = m_ctx.project(); p && j->runId != 0) {
        auto r = p->run(j->runId);
        if (r && r->status == store::RunStatus::running) (void)p->failRun(j->runId, j->status.toStdString());
      }
    }
    m_ctx.notifyRunsChanged();
    emit jobChanged(j->id);
    emit jobFinished(j->id);
  }
  m_current = 0;
  startNext();
}

void RunQueue::interrupt(int jobId, State next) {
  Job* j = find(jobId);
  if (!j) return;
  if (j->state == State::queued) {
    j->state = State::stopped;
    j->status = tr("Removed from the queue");
    emit jobChanged(jobId);
    emit jobFinished(jobId);
    return;
  }
  if (j->state != State::running || jobId != m_current || !m_process) return;
  j->state = next;
  j->status = next == State::pausing ? tr("Pausing: writing a checkpoint…") : tr("Stopping: writing a checkpoint…");
  ::kill(pid_t(m_process->processId()), SIGINT);
  emit jobChanged(jobId);
}

void RunQueue::stop(int jobId) { interrupt(jobId, State::stopping); }
void RunQueue::pause(int jobId) { interrupt(jobId, State::pausing); }

}  // namespace hearth::ui
