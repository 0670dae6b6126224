/* Fine-tune wizard (ui/fine-tune-wizard.h) driven as a user would, under the offscreen platform: bad input
 * on every page shows a message in words and blocks Next; then the whole path: the tiny real model from
 * the library, resources/examples/tiny-instruct.jsonl, LoRA, 10 steps, Start -> a child `hearth-cli train`
 * runs -> the run is finished in the project, the dashboard's charts hold the points, and the new model
 * version is in the library ("Chat with it" asks the chat page for it). Screenshots of every page and the
 * dashboard go to HEARTH_SCREENSHOTS.
 *
 * Non-obvious choice: the child is the real hearth-cli (HEARTH_CLI, compiled in by tests/ui/wizard.cmake),
 * so the test covers the process boundary, the SIGINT-free finish and the version lines it prints.
 */
#include <QAbstractButton>
#include <QCheckBox>
#include <QDir>
#include <QFile>
#include <QLineEdit>
#include <QListWidget>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QTextEdit>
#include <QtTest>
#include <qcustomplot.h>

#include "app-context.h"
#include "fine-tune-page.h"
#include "fine-tune-wizard.h"
#include "hearth/trainer/config.h"
#include "metric-chart.h"
#include "run-dashboard.h"
#include "run-queue.h"

#ifndef HEARTH_CLI
#define HEARTH_CLI ""
#endif

#include "ui-test-util.h"

using namespace hearth;
using namespace hearth::ui;

namespace {

constexpr int TIMEOUT_MS = 45000;

QString tinyModel() { return QStringLiteral(HEARTH_TESTDATA "/models/llama-2-tiny-random.gguf"); }
QString tinyData() { return QStringLiteral(HEARTH_SOURCE_DIR "/resources/examples/tiny-instruct.jsonl"); }

store::Id importModel(store::Project& p, const QString& path) {
  return hearth::test::importGguf(p, path.toStdString(), "tiny", "v1");
}

void shot(QWidget* w, const QString& name) {
  QDir().mkpath(QStringLiteral(HEARTH_SCREENSHOTS));
  QVERIFY(w->grab().save(QStringLiteral(HEARTH_SCREENSHOTS "/%1.png").arg(name)));
}

QString writeFile(const QDir& dir, const QString& name, const QByteArray& bytes) {
  QFile f(dir.filePath(name));
  if (!f.open(QIODevice::WriteOnly)) qFatal("cannot write %s", qPrintable(f.fileName()));
  f.write(bytes);
  return f.fileName();
}

}  // namespace

class TestFineTuneWizard : public QObject {
  Q_OBJECT
 private slots:
  void init();
  void cleanup();
  void badInputBlocksEveryPage();
  void endToEndRunFinishesAndChartsHoldPoints();

 private:
  // Model page -> settings page with the tiny model and dataset; returns false on failure.
  void fillUpToSettings(FineTuneWizard& w);
  std::unique_ptr<QTemporaryDir> m_dir;
  std::unique_ptr<AppContext> m_ctx;
  store::Id m_base = 0;
};

void TestFineTuneWizard::init() {
  QVERIFY2(QString(HEARTH_CLI).size() > 0 || !qEnvironmentVariableIsEmpty("HEARTH_CLI"), "HEARTH_CLI unknown");
  if (qEnvironmentVariableIsEmpty("HEARTH_CLI")) qputenv("HEARTH_CLI", HEARTH_CLI);
  QDir().mkpath(QStringLiteral(HEARTH_TEST_TMP));
  m_dir = std::make_unique<QTemporaryDir>(QStringLiteral(HEARTH_TEST_TMP "/wizard-XXXXXX"));
  QVERIFY(m_dir->isValid());
  m_ctx = std::make_unique<AppContext>(m_dir->filePath(QStringLiteral("wizard.hearth")));
  QVERIFY2(m_ctx->project(), qPrintable(m_ctx->lastError()));
  m_base = importModel(*m_ctx->project(), tinyModel());
}

void TestFineTuneWizard::cleanup() {
  m_ctx.reset();
  m_dir.reset();
}

void TestFineTuneWizard::fillUpToSettings(FineTuneWizard& w) {
  w.restart();
  auto* list = w.modelPage()->list();
  QCOMPARE(list->count(), 1);
  list->setCurrentRow(0);
  QVERIFY2(w.modelPage()->isComplete(), qPrintable(w.modelPage()->message()));
  w.next();
  QCOMPARE(w.currentId(), int(FineTuneWizard::DataPage));
  w.dataPage()->setFile(tinyData());
  QTRY_VERIFY_WITH_TIMEOUT(!w.dataPage()->loading(), TIMEOUT_MS);
  QVERIFY2(w.dataPage()->isComplete(), qPrintable(w.dataPage()->message()));
  w.next();
  QCOMPARE(w.currentId(), int(FineTuneWizard::MethodPage));
  w.next();
  QCOMPARE(w.currentId(), int(FineTuneWizard::SettingsPage));
}

void TestFineTuneWizard::badInputBlocksEveryPage() {
  FineTuneWizard w(*m_ctx);
  w.show();
  QAbstractButton* next = w.button(QWizard::NextButton);
  // (1) no model chosen.
  QVERIFY(!w.modelPage()->isComplete());
  QVERIFY(!next->isEnabled());
  QVERIFY(w.modelPage()->message().contains(QStringLiteral("Choose")));
  shot(&w, QStringLiteral("wizard-1-model-none"));
  w.modelPage()->list()->setCurrentRow(0);
  QVERIFY(next->isEnabled());
  QVERIFY(w.modelDesc().has_value());
  shot(&w, QStringLiteral("wizard-1-model"));
  w.next();

  // (2) no file; a file with no usable line; a file with one malformed line among good ones.
  QVERIFY(!next->isEnabled());
  QVERIFY(!w.dataPage()->message().isEmpty());
  const QDir dir(m_dir->path());
  w.dataPage()->setFile(writeFile(dir, QStringLiteral("broken.jsonl"), "{\"instruction\": \"hi\"\nnot json at all\n"));
  QTRY_VERIFY_WITH_TIMEOUT(!w.dataPage()->loading(), TIMEOUT_MS);
  QVERIFY(!next->isEnabled());
  QVERIFY2(w.dataPage()->message().contains(QStringLiteral("cannot be used")), qPrintable(w.dataPage()->message()));
  QFile good(tinyData());
  QVERIFY(good.open(QIODevice::ReadOnly));
  QList<QByteArray> lines = good.readAll().split('\n');
  lines.insert(2, "{\"instruction\": 42, ");  // line 3 is malformed
  w.dataPage()->setFile(writeFile(dir, QStringLiteral("one-bad.jsonl"), lines.join('\n')));
  QTRY_VERIFY_WITH_TIMEOUT(!w.dataPage()->loading(), TIMEOUT_MS);
  QVERIFY(!next->isEnabled());
  QVERIFY2(w.dataPage()->message().contains(QStringLiteral("malformed")), qPrintable(w.dataPage()->message()));
  auto* issues = w.dataPage()->findChild<QPlainTextEdit*>(QStringLiteral("datasetIssues"));
  QVERIFY(issues && issues->toPlainText().contains(QStringLiteral("line 3")));
  shot(&w, QStringLiteral("wizard-2-dataset-malformed"));
  w.dataPage()->findChild<QCheckBox*>(QStringLiteral("skipBadLines"))->setChecked(true);
  QVERIFY(next->isEnabled());
  // The good file: format, statistics, histogram and a preview with trained and masked tokens.
  w.dataPage()->setFile(tinyData());
  QTRY_VERIFY_WITH_TIMEOUT(!w.dataPage()->loading(), TIMEOUT_MS);
  QVERIFY2(next->isEnabled(), qPrintable(w.dataPage()->message()));
  const train::Dataset* ds = w.dataPage()->dataset();
  QVERIFY(ds);
  QCOMPARE(ds->format, train::DataFormat::alpaca);
  QCOMPARE(ds->stats.rows, 200);
  QVERIFY(w.dataPage()->findChild<QLabel*>(QStringLiteral("datasetFormat"))->text().contains(QStringLiteral("alpaca")));
  const QString html = w.dataPage()->preview()->toHtml();
  QVERIFY(html.contains(QStringLiteral("background-color")));  // trained tokens
  QVERIFY(!w.dataPage()->preview()->toPlainText().trimmed().isEmpty());
  auto* hist = w.dataPage()->findChild<QCustomPlot*>(QStringLiteral("lengthHistogram"));
  QVERIFY(hist && hist->plottableCount() == 1);
  shot(&w, QStringLiteral("wizard-2-dataset"));
  w.next();

  // (3) LoRA without a target module.
  QCOMPARE(w.currentId(), int(FineTuneWizard::MethodPage));
  for (QCheckBox* c : w.methodPage()->targetBoxes()) c->setChecked(false);
  QVERIFY(!next->isEnabled());
  QVERIFY(w.methodPage()->message().contains(QStringLiteral("target module")));
  for (QCheckBox* c : w.methodPage()->targetBoxes()) c->setChecked(true);
  QVERIFY(next->isEnabled());
  w.methodPage()->applyPreset(0);
  QCOMPARE(w.buildConfig().lora.rank, 4);
  shot(&w, QStringLiteral("wizard-3-method"));
  w.next();

  // (4) lr 0, batch 0, and a run that would not fit in memory.
  QCOMPARE(w.currentId(), int(FineTuneWizard::SettingsPage));
  auto* s = w.settingsPage();
  QVERIFY2(next->isEnabled(), qPrintable(s->message()));
  s->lr()->setText(QStringLiteral("0"));
  QVERIFY(!next->isEnabled());
  QVERIFY(s->message().contains(QStringLiteral("learning rate")));
  s->lr()->setText(QStringLiteral("abc"));
  QVERIFY(s->message().contains(QStringLiteral("not a number")));
  s->lr()->setText(QStringLiteral("1e-3"));
  QVERIFY(next->isEnabled());
  s->batch()->setValue(0);
  QVERIFY(!next->isEnabled());
  QVERIFY(s->message().contains(QStringLiteral("batch size")));
  s->batch()->setValue(2);
  QVERIFY(next->isEnabled());
  QTRY_VERIFY_WITH_TIMEOUT(w.gemmFlops() > 0, TIMEOUT_MS);
  QTRY_VERIFY(s->estimateText().contains(QStringLiteral("GFLOP/s")));
  QVERIFY(s->estimateText().contains(QStringLiteral("Memory")));
  w.setAvailableMemory(4096);  // 4 KiB: nothing fits
  s->updateEstimate();
  QVERIFY(!next->isEnabled());
  QVERIFY2(s->message().contains(QStringLiteral("would not fit")), qPrintable(s->message()));
  shot(&w, QStringLiteral("wizard-4-settings-memory-warning"));
  s->startAnyway()->setChecked(true);
  QVERIFY(next->isEnabled());
  w.setAvailableMemory(0);
  s->updateEstimate();
  shot(&w, QStringLiteral("wizard-4-settings"));
  w.next();

  // (5) review: the YAML parses back to the same run; Save as preset writes it.
  QCOMPARE(w.currentId(), int(FineTuneWizard::ReviewPage));
  QVERIFY(w.button(QWizard::FinishButton)->isEnabled());
  const QString preset = m_dir->filePath(QStringLiteral("preset.yaml"));
  QVERIFY(w.savePreset(preset));
  auto parsed = train::parse_config_file(preset.toStdString());
  QVERIFY2(parsed, parsed ? "" : parsed.error().to_string().c_str());
  QCOMPARE(parsed->method, train::Method::lora);
  QCOMPARE(parsed->training.lr, 1e-3);
  QCOMPARE(parsed->training.batch_size, 2);
  QCOMPARE(parsed->lora.rank, 4);
  QCOMPARE(parsed->output.formats, (std::vector<std::string>{"peft", "gguf-lora", "gguf-f16"}));
  QVERIFY(w.reviewPage()->yaml().contains(QStringLiteral("gguf-lora")));
  w.reviewPage()->name()->clear();
  QVERIFY(!w.button(QWizard::FinishButton)->isEnabled());
  QVERIFY(w.reviewPage()->message().contains(QStringLiteral("name")));
  w.reviewPage()->name()->setText(QStringLiteral("my-run"));
  QVERIFY(w.button(QWizard::FinishButton)->isEnabled());
  shot(&w, QStringLiteral("wizard-5-review"));
  // Full fine-tuning exports the merged weights instead of an adapter.
  w.methodPage()->setLora(false);
  QCOMPARE(w.buildConfig().output.formats, (std::vector<std::string>{"safetensors", "gguf-f16"}));
}

void TestFineTuneWizard::endToEndRunFinishesAndChartsHoldPoints() {
  FineTunePage page(*m_ctx);
  page.resize(1100, 700);
  page.show();
  QSignalSpy models(m_ctx.get(), &AppContext::modelsChanged);
  QSignalSpy chat(m_ctx.get(), &AppContext::chatWithRequested);
  QSignalSpy compare(m_ctx.get(), &AppContext::compareRequested);
  FineTuneWizard* w = page.newFineTune();
  QVERIFY(w);
  fillUpToSettings(*w);
  auto* s = w->settingsPage();
  s->lr()->setText(QStringLiteral("1e-3"));
  s->steps()->setValue(10);
  s->batch()->setValue(2);
  s->findChild<QSpinBox*>(QStringLiteral("evalEvery"))->setValue(5);
  s->findChild<QLineEdit*>(QStringLiteral("samplePrompt"))->setText(QStringLiteral("Name the capital city."));
  w->dataPage()->findChild<QSpinBox*>(QStringLiteral("maxLength"))->setValue(64);
  QTRY_VERIFY_WITH_TIMEOUT(!w->dataPage()->loading(), TIMEOUT_MS);
  w->next();
  QCOMPARE(w->currentId(), int(FineTuneWizard::ReviewPage));
  w->reviewPage()->name()->setText(QStringLiteral("e2e"));
  QVERIFY2(w->button(QWizard::FinishButton)->isEnabled(), qPrintable(w->reviewPage()->message()));
  w->button(QWizard::FinishButton)->click();

  QCOMPARE(int(page.queue().jobs().size()), 1);
  const int job = page.queue().jobs().front().id;
  QVERIFY(QFileInfo(page.queue().jobs().front().configPath).isFile());
  RunDashboard* dash = page.dashboard(job);
  QVERIFY(dash);
  QTRY_VERIFY_WITH_TIMEOUT(page.queue().job(job)->isFinal(), TIMEOUT_MS);
  const RunQueue::Job* j = page.queue().job(job);
  QVERIFY2(j->state == RunQueue::State::finished, qPrintable(j->status + "\n" + j->stderrTail.join('\n')));
  QVERIFY(j->runId != 0);
  QVERIFY(j->outputVersionId.has_value());
  QVERIFY(j->mergedVersionId.has_value());  // gguf-f16 of a LoRA run: a merged model to chat with
  dash->poll();
  QCOMPARE(dash->pointCount("loss"), 10);
  QVERIFY(dash->pointCount("val_loss") >= 2);  // steps 5 and 10
  QVERIFY(dash->pointCount("tokens_per_s") >= 10);
  QVERIFY(dash->lossChart()->seriesCount() >= 2);
  QVERIFY(dash->lossChart()->mainGraph(0)->dataCount() > 0);
  QVERIFY(dash->samplesText().contains(QStringLiteral("Name the capital city.")));
  shot(&page, QStringLiteral("dashboard-finished"));

  // The run in the project, and its model version in the library.
  auto run = m_ctx->project()->run(j->runId);
  QVERIFY(run);
  QCOMPARE(run->status, store::RunStatus::finished);
  auto v = m_ctx->project()->modelVersion(*j->outputVersionId);
  QVERIFY(v);
  QCOMPARE(v->producedByRunId, std::optional<store::Id>(j->runId));
  QVERIFY(models.count() >= 1);
  auto* chatButton = page.findChild<QPushButton*>(QStringLiteral("chatWithRunButton"));
  QVERIFY(chatButton->isEnabled());
  chatButton->click();
  QCOMPARE(chat.count(), 1);
  QCOMPARE(chat.front().front().value<store::Id>(), *j->mergedVersionId);
  page.findChild<QPushButton*>(QStringLiteral("compareWithBaseButton"))->click();
  QCOMPARE(compare.count(), 1);
  QCOMPARE(compare.front().at(0).value<store::Id>(), *run->baseVersionId);
  QCOMPARE(compare.front().at(1).value<store::Id>(), *j->mergedVersionId);
  auto merged = m_ctx->project()->modelVersion(*j->mergedVersionId);
  QVERIFY(merged && QFileInfo::exists(QString::fromStdString(merged->path)));
}

QTEST_MAIN(TestFineTuneWizard)
#include "tst_finetunewizard.moc"
