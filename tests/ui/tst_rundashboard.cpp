/* RunQueue and RunDashboard (ui/run-queue.h, ui/run-dashboard.h) with real `hearth-cli train` children:
 * the dashboard charts points while the run trains; Stop (SIGINT) leaves the run interrupted and
 * resumable; Resume continues the same run id past the stop; a second job waits for the first (one at a
 * time); a child that crashes shows the job failed with its last stderr lines, and the window lives on.
 *
 * Non-obvious choice: the crashing child is a shell script standing in for hearth-cli that writes to
 * stderr and kills itself with SIGSEGV, because no configuration makes the real trainer crash on purpose.
 */
#include <QDir>
#include <QFile>
#include <QPushButton>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include "app-context.h"
#include "hearth/trainer/config.h"
#include "metric-chart.h"
#include "run-dashboard.h"
#include "run-queue.h"

#ifndef HEARTH_CLI
#define HEARTH_CLI ""
#endif

using namespace hearth;
using namespace hearth::ui;

namespace {

constexpr int TIMEOUT_MS = 45000;

QString writeConfig(const QDir& dir, const QString& name, int64_t steps) {
  train::TrainConfig c;
  c.name = name.toStdString();
  c.model = HEARTH_TESTDATA "/models/llama-2-tiny-random.gguf";
  c.data.train = HEARTH_SOURCE_DIR "/resources/examples/tiny-instruct.jsonl";
  c.data.max_length = 64;
  c.data.validation_split = 0.1;
  c.training.steps = steps;
  c.training.batch_size = 2;
  c.training.lr = 1e-3;
  c.eval.every = 0;
  c.output.formats = {"peft"};
  const QString path = dir.filePath(name + QStringLiteral(".yaml"));
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly)) qFatal("cannot write %s", qPrintable(path));
  f.write(QByteArray::fromStdString(train::config_to_yaml(c)));
  return path;
}

}  // namespace

class TestRunDashboard : public QObject {
  Q_OBJECT
 private slots:
  void init();
  void cleanup();
  void stopIsResumableAndQueueRunsOneAtATime();
  void crashingChildFailsTheJob();

 private:
  std::unique_ptr<QTemporaryDir> m_dir;
  std::unique_ptr<AppContext> m_ctx;
};

void TestRunDashboard::init() {
  if (qEnvironmentVariableIsEmpty("HEARTH_CLI")) qputenv("HEARTH_CLI", HEARTH_CLI);
  QVERIFY2(!qEnvironmentVariableIsEmpty("HEARTH_CLI"), "HEARTH_CLI unknown");
  QDir().mkpath(QStringLiteral(HEARTH_TEST_TMP));
  m_dir = std::make_unique<QTemporaryDir>(QStringLiteral(HEARTH_TEST_TMP "/dash-XXXXXX"));
  QVERIFY(m_dir->isValid());
  if (qEnvironmentVariableIsSet("KEEP_TMP")) m_dir->setAutoRemove(false);
  m_ctx = std::make_unique<AppContext>(m_dir->filePath(QStringLiteral("dash.hearth")));
  QVERIFY2(m_ctx->project(), qPrintable(m_ctx->lastError()));
}

void TestRunDashboard::cleanup() {
  m_ctx.reset();
  m_dir.reset();
}

void TestRunDashboard::stopIsResumableAndQueueRunsOneAtATime() {
  RunQueue queue(*m_ctx);
  const QDir dir(m_dir->path());
  const int a = queue.enqueue(writeConfig(dir, QStringLiteral("long"), 100000), QStringLiteral("long"));
  const int b = queue.enqueue(writeConfig(dir, QStringLiteral("short"), 3), QStringLiteral("short"));
  RunDashboard dash(queue, a);
  dash.resize(1100, 650);
  dash.show();
  QCOMPARE(queue.job(b)->state, RunQueue::State::queued);  // waits for the first
  // Training: the dashboard's charts fill from the project while the child runs.
  QTRY_VERIFY_WITH_TIMEOUT(dash.pointCount("loss") >= 3, TIMEOUT_MS);
  QCOMPARE(queue.job(a)->state, RunQueue::State::running);
  QCOMPARE(queue.job(b)->state, RunQueue::State::queued);
  QVERIFY(queue.job(a)->runId != 0);
  QVERIFY(dash.lossChart()->seriesCount() >= 1);
  QTest::qWait(600);
  QVERIFY(!dash.statusText().isEmpty());
  QDir().mkpath(QStringLiteral(HEARTH_SCREENSHOTS));
  QVERIFY(dash.grab().save(QStringLiteral(HEARTH_SCREENSHOTS "/dashboard-running.png")));

  // Stop: SIGINT -> checkpoint -> interrupted, resumable.
  dash.findChild<QPushButton*>(QStringLiteral("stopButton"))->click();
  QTRY_VERIFY_WITH_TIMEOUT(queue.job(a)->isFinal(), TIMEOUT_MS);
  QCOMPARE(queue.job(a)->state, RunQueue::State::stopped);
  QCOMPARE(queue.job(a)->exitCode, 130);
  const store::Id runId = queue.job(a)->runId;
  auto run = m_ctx->project()->run(runId);
  QVERIFY(run);
  QCOMPARE(run->status, store::RunStatus::interrupted);
  dash.poll();
  const int stoppedAt = dash.pointCount("loss");
  QCOMPARE(int64_t(stoppedAt), queue.job(a)->step);  // every logged step is in the chart
  QVERIFY(dash.findChild<QPushButton*>(QStringLiteral("resumeButton"))->isEnabled());

  // The queued job ran next, to the end.
  QTRY_VERIFY_WITH_TIMEOUT(queue.job(b)->isFinal(), TIMEOUT_MS);
  QVERIFY2(queue.job(b)->state == RunQueue::State::finished, qPrintable(queue.job(b)->status));

  // Resume continues the same run id past the stop; Pause stops it again, resumable.
  dash.findChild<QPushButton*>(QStringLiteral("resumeButton"))->click();
  QTRY_VERIFY_WITH_TIMEOUT(queue.job(a)->state == RunQueue::State::running && queue.job(a)->step > stoppedAt + 1,
                           TIMEOUT_MS);
  QTRY_VERIFY2_WITH_TIMEOUT(dash.pointCount("loss") > stoppedAt,
                            qPrintable(queue.job(a)->status + "\n" + queue.job(a)->stderrTail.join('\n')), TIMEOUT_MS);
  QCOMPARE(queue.job(a)->runId, runId);
  dash.findChild<QPushButton*>(QStringLiteral("pauseButton"))->click();
  QTRY_VERIFY_WITH_TIMEOUT(queue.job(a)->isFinal() || queue.job(a)->state == RunQueue::State::paused, TIMEOUT_MS);
  QCOMPARE(queue.job(a)->state, RunQueue::State::paused);
  QCOMPARE(m_ctx->project()->run(runId)->status, store::RunStatus::interrupted);
}

void TestRunDashboard::crashingChildFailsTheJob() {
  const QString script = m_dir->filePath(QStringLiteral("crashing-cli.sh"));
  {
    QFile f(script);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("#!/bin/sh\necho 'loading model x' >&2\necho 'fatal: the trainer met a bad tensor' >&2\nkill -SEGV $$\n");
  }
  QFile::setPermissions(script, QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
  RunQueue queue(*m_ctx);
  queue.setCliPath(script);
  QSignalSpy finished(&queue, &RunQueue::jobFinished);
  const int id = queue.enqueue(m_dir->filePath(QStringLiteral("any.yaml")), QStringLiteral("crash"));
  RunDashboard dash(queue, id);
  QTRY_VERIFY_WITH_TIMEOUT(finished.count() == 1, TIMEOUT_MS);
  const RunQueue::Job* j = queue.job(id);
  QCOMPARE(j->state, RunQueue::State::failed);
  QVERIFY2(j->status.contains(QStringLiteral("crashed")), qPrintable(j->status));
  QVERIFY2(j->status.contains(QStringLiteral("bad tensor")), qPrintable(j->status));
  QVERIFY(dash.statusText().contains(QStringLiteral("bad tensor")));
  QVERIFY(!queue.busy());
}

QTEST_MAIN(TestRunDashboard)
#include "tst_rundashboard.moc"
