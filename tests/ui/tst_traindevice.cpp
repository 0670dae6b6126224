/* Where a fine-tuning run trains, in the desktop program (issue 6): the wizard's "Train on" choice (CPU /
 * GPU (CUDA) / Automatic) and GPU precision (BF16 mixed / F32) land in the run's configuration (the YAML
 * it saves, read back by the trainer's parser), and the run's dashboard says where the run trains, with
 * the reason when a GPU was asked for but the CPU served.
 *
 * Non-obvious choice: the dashboard run asks for GPU 99 through a real `hearth-cli train` child, so it
 * falls back on every machine; the expected line is built from the reason the run recorded in the
 * project (its hardware JSON), which the child's stderr line must match.
 */
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QTemporaryDir>
#include <QtTest>

#include "app-context.h"
#include "fine-tune-wizard.h"
#include "hearth/model.h"
#include "hearth/trainer/config.h"
#include "run-dashboard.h"
#include "run-queue.h"
#include "settings.h"
#include "ui-test-util.h"

#ifndef HEARTH_CLI
#define HEARTH_CLI ""
#endif

using namespace hearth;
using namespace hearth::ui;

namespace {

const QString TINY = QStringLiteral(HEARTH_TESTDATA "/models/llama-2-tiny-random.gguf");

void choose(QComboBox* box, const QString& data) {
  const int i = box->findData(data);
  QVERIFY2(i >= 0, qPrintable(data));
  box->setCurrentIndex(i);
}

}  // namespace

class TestTrainDevice : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase();
  void wizardChoiceLandsInTheConfig();
  void dashboardSaysWhereTheRunTrains();
};

void TestTrainDevice::initTestCase() {
  QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, QStringLiteral(HEARTH_TEST_TMP "/settings"));
  setApplicationIdentity();
  QVERIFY2(QFileInfo::exists(TINY), qPrintable(TINY));
}

void TestTrainDevice::wizardChoiceLandsInTheConfig() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  AppContext ctx(dir.filePath(QStringLiteral("w.hearth")));
  QVERIFY2(ctx.project(), qPrintable(ctx.lastError()));
  const store::Id version = hearth::test::importGguf(*ctx.project(), TINY.toStdString(), "tiny");
  auto m = open_model(TINY.toStdString());
  QVERIFY(m.has_value());
  FineTuneWizard w(ctx);
  w.setModel(version, TINY, QStringLiteral("tiny"), m->desc());
  w.setBackendInfo(BackendInfo{});
  WizardSettingsPage* page = w.settingsPage();
  QComboBox* on = page->trainOn();
  QComboBox* precision = page->precision();
  QVERIFY(on && precision);
  QCOMPARE(on->count(), 3);
  QCOMPARE(precision->count(), 2);

  // Defaults: the trainer's (automatic, BF16).
  QCOMPARE(on->currentData().toString(), QStringLiteral("auto"));
  QCOMPARE(precision->currentData().toString(), QStringLiteral("bf16"));
  QVERIFY(precision->isEnabled());
  train::TrainConfig c = w.buildConfig();
  QCOMPARE(QString::fromStdString(c.training.device), QStringLiteral("auto"));
  QCOMPARE(QString::fromStdString(c.training.precision), QStringLiteral("bf16"));

  // GPU in F32: in the config, and in the YAML the run is started from, as the trainer reads it.
  choose(on, QStringLiteral("cuda"));
  choose(precision, QStringLiteral("f32"));
  c = w.buildConfig();
  QCOMPARE(QString::fromStdString(c.training.device), QStringLiteral("cuda"));
  QCOMPARE(QString::fromStdString(c.training.precision), QStringLiteral("f32"));
  const QString yaml = dir.filePath(QStringLiteral("preset.yaml"));
  QString error;
  QVERIFY2(w.savePreset(yaml, &error), qPrintable(error));
  auto back = train::parse_config_file(yaml.toStdString());
  QVERIFY2(back.has_value(), back ? "" : back.error().to_string().c_str());
  QCOMPARE(QString::fromStdString(back->training.device), QStringLiteral("cuda"));
  QCOMPARE(QString::fromStdString(back->training.precision), QStringLiteral("f32"));
  QCOMPARE(back->training.gpu, 0);

  // CPU: the precision no longer applies (greyed out) but stays a valid value in the config.
  choose(on, QStringLiteral("cpu"));
  QVERIFY(!precision->isEnabled());
  c = w.buildConfig();
  QCOMPARE(QString::fromStdString(c.training.device), QStringLiteral("cpu"));
  QCOMPARE(QString::fromStdString(c.training.precision), QStringLiteral("f32"));
  choose(on, QStringLiteral("auto"));
  QVERIFY(precision->isEnabled());
}

void TestTrainDevice::dashboardSaysWhereTheRunTrains() {
  if (qEnvironmentVariableIsEmpty("HEARTH_CLI")) qputenv("HEARTH_CLI", HEARTH_CLI);
  QVERIFY2(!qEnvironmentVariableIsEmpty("HEARTH_CLI"), "HEARTH_CLI unknown");
  QDir().mkpath(QStringLiteral(HEARTH_TEST_TMP));
  QTemporaryDir dir(QStringLiteral(HEARTH_TEST_TMP "/dev-XXXXXX"));
  QVERIFY(dir.isValid());
  AppContext ctx(dir.filePath(QStringLiteral("d.hearth")));
  QVERIFY2(ctx.project(), qPrintable(ctx.lastError()));

  train::TrainConfig c;
  c.name = "where";
  c.model = TINY.toStdString();
  c.data.train = HEARTH_SOURCE_DIR "/resources/examples/tiny-instruct.jsonl";
  c.data.max_length = 64;
  c.training.steps = 3;
  c.training.batch_size = 2;
  c.training.lr = 1e-3;
  c.training.threads = 2;
  c.training.device = "cuda";
  c.training.gpu = 99;  // no machine has it: the CPU serves, with the reason
  c.output.formats = {"peft"};
  const QString path = dir.filePath(QStringLiteral("where.yaml"));
  {
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(QByteArray::fromStdString(train::config_to_yaml(c)));
  }
  RunQueue queue(ctx);
  const int job = queue.enqueue(path, QStringLiteral("where"));
  RunDashboard dash(queue, job);
  dash.resize(1000, 600);
  dash.show();
  QTRY_VERIFY_WITH_TIMEOUT(queue.job(job)->isFinal(), 45000);
  QVERIFY2(queue.job(job)->state == RunQueue::State::finished, qPrintable(queue.job(job)->status));
  dash.poll();

  auto run = ctx.project()->run(queue.job(job)->runId);
  QVERIFY(run.has_value());
  const QJsonObject hw = QJsonDocument::fromJson(QByteArray::fromStdString(run->hardware)).object();
  const QJsonObject part = hw.value(QStringLiteral("training_devices")).toArray().first().toObject();
  QCOMPARE(part.value(QStringLiteral("device")).toString(), QStringLiteral("cpu"));
  const QString note = part.value(QStringLiteral("note")).toString();
  QVERIFY(!note.isEmpty());
  QCOMPARE(dash.deviceText(), QStringLiteral("Training on the CPU: %1").arg(note));
  QVERIFY(dash.findChild<QLabel*>(QStringLiteral("trainingDevice"))->isVisible());
}

QTEST_MAIN(TestTrainDevice)
#include "tst_traindevice.moc"
