/* Qt Test of the main window on a fresh project: the six pages and their navigation, Ctrl+1..6 and
 * Ctrl+N, the remembered page and geometry, the status bar (hardware, memory, live power marked
 * estimated when it is), the Runs table from the store with sorting, the Fine-tune page's example
 * configurations, a file that is not a project (the window says so, the file is untouched), and
 * screenshots of the window on every page written to HEARTH_SCREENSHOTS as PNG.
 *
 * Non-obvious choice: the screenshots are taken after filling the project (an imported model, prompts,
 * finished and failed runs), so they show the pages as a user sees them, not empty states.
 */
#include <QAction>
#include <QDir>
#include <QFile>
#include <QImage>
#include <QLabel>
#include <QListWidget>
#include <QSettings>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QStandardPaths>
#include <QTableView>
#include <QTemporaryDir>
#include <QtTest>
#include <thread>

#include "app-context.h"
#include "fine-tune-page.h"
#include "hearth/backend.h"
#include "hearth/telemetry/sampler.h"
#include "main-window.h"
#include "model-inspect.h"
#include "model-library-page.h"
#include "prompt-library-page.h"
#include "runs-page.h"
#include "runs-table-model.h"
#include "settings.h"
#include "status-bar.h"

using namespace hearth;
using namespace hearth::ui;

namespace {

const QString TINY = QStringLiteral(HEARTH_TESTDATA "/models/llama-2-tiny-random.gguf");

// A finished run with a final loss and energy, and a failed one, written as the trainer would.
void addRuns(store::Project& project, std::optional<store::Id> baseVersion) {
  store::Run a;
  a.name = "lora-tiny";
  a.kind = "train";
  a.baseVersionId = baseVersion;
  auto ida = project.createRun(a);
  QVERIFY(ida.has_value());
  QVERIFY(project.startRun(*ida).has_value());
  QVERIFY(project.appendMetrics(*ida, {{"loss", {1, 2.5, 0, 64}}, {"loss", {2, 1.25, 0, 128}}}).has_value());
  QVERIFY(project.finishRun(*ida, R"({"loss": 1.25})", "{}", 7.2e6, std::nullopt).has_value());
  store::Run b;
  b.name = "full-tiny";
  b.kind = "train";
  auto idb = project.createRun(b);
  QVERIFY(idb.has_value());
  QVERIFY(project.startRun(*idb).has_value());
  QVERIFY(project.finishRun(*idb, R"({"loss": 0.5})", "{}", 3.6e6, std::nullopt).has_value());
  store::Run c;
  c.name = "broken";
  auto idc = project.createRun(c);
  QVERIFY(idc.has_value());
  QVERIFY(project.startRun(*idc).has_value());
  QVERIFY(project.failRun(*idc, "dataset line 3: expected a JSON object").has_value());
}

}  // namespace

class TestMainWindow : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase();
  void init();
  void cleanup();
  void pagesAndShortcuts();
  void remembersPageAndGeometry();
  void statusBarShowsHardwareAndPower();
  void runsTableFromTheStore();
  void fineTuneListsExamples();
  void notAProjectShowsTheReason();
  void screenshots();

 private:
  std::unique_ptr<QTemporaryDir> m_dir;
  std::unique_ptr<AppContext> m_ctx;
};

void TestMainWindow::initTestCase() {
  // Settings of this executable only (ctest runs the gui tests in parallel).
  QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, QStringLiteral(HEARTH_TEST_TMP "/settings"));
  setApplicationIdentity();
}

void TestMainWindow::init() {
  QSettings().clear();
  m_dir = std::make_unique<QTemporaryDir>();
  QVERIFY(m_dir->isValid());
  m_ctx = std::make_unique<AppContext>(m_dir->filePath(QStringLiteral("p.hearth")));
  QVERIFY2(m_ctx->project(), qPrintable(m_ctx->lastError()));
}

void TestMainWindow::cleanup() {
  m_ctx.reset();
  m_dir.reset();
}

void TestMainWindow::pagesAndShortcuts() {
  MainWindow w(*m_ctx);
  w.show();
  QApplication::setActiveWindow(&w);
  QVERIFY(QTest::qWaitForWindowActive(&w));
  auto* nav = w.findChild<QListWidget*>(QStringLiteral("navigation"));
  QVERIFY(nav);
  QCOMPARE(nav->count(), int(MainWindow::PAGE_COUNT));
  const QStringList titles{"Chat", "Models", "Compare", "Prompts", "Runs", "Fine-tune"};
  for (int p = 0; p < MainWindow::PAGE_COUNT; ++p) {
    QCOMPARE(nav->item(p)->text(), titles[p]);
    QVERIFY(w.page(p));
  }
  QVERIFY(qobject_cast<ModelLibraryPage*>(w.page(MainWindow::MODELS)));
  QVERIFY(qobject_cast<PromptLibraryPage*>(w.page(MainWindow::PROMPTS)));
  QVERIFY(qobject_cast<RunsPage*>(w.page(MainWindow::RUNS)));
  QVERIFY(qobject_cast<FineTunePage*>(w.page(MainWindow::FINE_TUNE)));

  // Ctrl+1..6, in an order that changes the page every time.
  for (int p : {5, 1, 3, 0, 4, 2}) {
    QTest::keyClick(&w, Qt::Key(Qt::Key_1 + p), Qt::ControlModifier);
    QCOMPARE(w.currentPage(), p);
    QCOMPARE(nav->currentRow(), p);
  }
  // Clicking the navigation list switches too.
  nav->setCurrentRow(MainWindow::PROMPTS);
  QCOMPARE(w.currentPage(), int(MainWindow::PROMPTS));

  // Ctrl+N asks the chat page for a new conversation and shows it.
  QSignalSpy newChat(m_ctx.get(), &AppContext::newChatRequested);
  QTest::keyClick(&w, Qt::Key_N, Qt::ControlModifier);
  QCOMPARE(newChat.count(), 1);
  QCOMPARE(w.currentPage(), int(MainWindow::CHAT));

  // Requests from pages bring their target page forward.
  w.showPage(MainWindow::MODELS);
  m_ctx->requestCompare(1, 2);
  QCOMPARE(w.currentPage(), int(MainWindow::COMPARE));
  m_ctx->insertPrompt(QStringLiteral("hello"), false);
  QCOMPARE(w.currentPage(), int(MainWindow::CHAT));
}

void TestMainWindow::remembersPageAndGeometry() {
  {
    MainWindow w(*m_ctx);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    w.resize(1000, 640);
    w.showPage(MainWindow::RUNS);
    w.close();
  }
  MainWindow again(*m_ctx);
  QCOMPARE(again.currentPage(), int(MainWindow::RUNS));
  QCOMPARE(again.size(), QSize(1000, 640));
}

void TestMainWindow::statusBarShowsHardwareAndPower() {
  MainWindow w(*m_ctx);
  w.show();
  HardwareStatus* hw = w.hardwareStatus();
  QVERIFY(hw);
  QTRY_VERIFY_WITH_TIMEOUT(!hw->cpuText().contains(QStringLiteral("…")), 10000);
  const BackendInfo info = query_backends();
  QVERIFY2(hw->cpuText().contains(QString::fromStdString(info.cpu_name)), qPrintable(hw->cpuText()));
  QVERIFY2(hw->cpuText().contains(QStringLiteral("%1 threads").arg(std::thread::hardware_concurrency())),
           qPrintable(hw->cpuText()));
  if (info.gpus.empty()) QCOMPARE(hw->gpuText(), QStringLiteral("GPU: none"));
  else QVERIFY(hw->gpuText().contains(QString::fromStdString(info.gpus[0].name)));
  QVERIFY2(hw->memoryText().contains(QStringLiteral("free of ") + formatBytes(physicalMemoryBytes())), qPrintable(hw->memoryText()));

  // Live power: the 1 Hz timer copies the sampler's snapshot; an estimate says so.
  telemetry::Sampler* sampler = m_ctx->sampler();
  QVERIFY2(sampler, qPrintable(m_ctx->lastSamplerError()));
  QTRY_VERIFY_WITH_TIMEOUT(hw->powerText().endsWith(QStringLiteral(" W")) ||
                               hw->powerText().endsWith(QStringLiteral("(estimated)")) ||
                               hw->powerText() == QStringLiteral("Power: no sensor"),
                           6000);
  const telemetry::Snapshot s = sampler->snapshot();
  qInfo("%s | %s | %s | %s", qPrintable(hw->cpuText()), qPrintable(hw->gpuText()), qPrintable(hw->memoryText()),
        qPrintable(hw->powerText()));
  if (hw->powerText() != QStringLiteral("Power: no sensor"))
    QCOMPARE(hw->powerText().endsWith(QStringLiteral("(estimated)")), s.anyEstimated);
}

void TestMainWindow::runsTableFromTheStore() {
  addRuns(*m_ctx->project(), std::nullopt);
  MainWindow w(*m_ctx);
  auto* page = qobject_cast<RunsPage*>(w.page(MainWindow::RUNS));
  QVERIFY(page);
  RunsTableModel* t = page->tableModel();
  QCOMPARE(t->rowCount(), 3);
  auto rowNamed = [&](const QString& name) {
    for (int r = 0; r < t->rowCount(); ++r)
      if (t->data(t->index(r, RunsTableModel::NAME)).toString() == name) return r;
    return -1;
  };
  const int a = rowNamed(QStringLiteral("lora-tiny"));
  QVERIFY(a >= 0);
  QCOMPARE(t->data(t->index(a, RunsTableModel::STATUS)).toString(), QStringLiteral("finished"));
  QCOMPARE(t->data(t->index(a, RunsTableModel::FINAL_LOSS)).toString(), QStringLiteral("1.2500"));
  QCOMPARE(t->data(t->index(a, RunsTableModel::ENERGY)).toString(), QStringLiteral("2.00000"));  // 7.2 MJ
  QVERIFY(!t->data(t->index(a, RunsTableModel::DURATION)).toString().contains(QStringLiteral("—")));
  const int c = rowNamed(QStringLiteral("broken"));
  QCOMPARE(t->data(t->index(c, RunsTableModel::STATUS)).toString(), QStringLiteral("failed"));
  QVERIFY(t->data(t->index(c, RunsTableModel::NAME), Qt::ToolTipRole).toString().contains(QStringLiteral("line 3")));

  // Sorting by final loss through the view's proxy: 0.5, 1.25, then the run without one.
  auto* view = page->findChild<QTableView*>(QStringLiteral("runsTable"));
  QVERIFY(view);
  view->sortByColumn(RunsTableModel::FINAL_LOSS, Qt::DescendingOrder);
  QAbstractItemModel* shown = view->model();
  QCOMPARE(shown->data(shown->index(0, RunsTableModel::NAME)).toString(), QStringLiteral("lora-tiny"));
  QCOMPARE(shown->data(shown->index(1, RunsTableModel::NAME)).toString(), QStringLiteral("full-tiny"));
  QCOMPARE(shown->data(shown->index(2, RunsTableModel::NAME)).toString(), QStringLiteral("broken"));

  // A run written by another connection (hearth-cli train in another process) appears on refresh.
  {
    auto other = store::Project::open(m_ctx->projectPath().toStdString());
    QVERIFY(other.has_value());
    store::Run d;
    d.name = "from-cli";
    QVERIFY(other->createRun(d).has_value());
  }
  m_ctx->notifyRunsChanged();
  QCOMPARE(t->rowCount(), 4);
  QVERIFY(rowNamed(QStringLiteral("from-cli")) >= 0);
}

void TestMainWindow::fineTuneListsExamples() {
  MainWindow w(*m_ctx);
  auto* page = qobject_cast<FineTunePage*>(w.page(MainWindow::FINE_TUNE));
  QVERIFY(page);
  QDir examples(QStringLiteral(HEARTH_SOURCE_DIR "/resources/examples"));
  const QStringList yaml = examples.entryList({QStringLiteral("*.yaml"), QStringLiteral("*.yml")}, QDir::Files, QDir::Name);
  QStringList listed;
  for (const QString& f : page->exampleFiles()) listed << QFileInfo(f).fileName();
  QCOMPARE(listed, yaml);
  if (!yaml.isEmpty()) {
    const QString cmd = page->command();
    QVERIFY2(cmd.contains(QStringLiteral(" train ")), qPrintable(cmd));
    QVERIFY2(cmd.contains(yaml.first()), qPrintable(cmd));
    QVERIFY2(cmd.endsWith(QStringLiteral("--project ") + m_ctx->projectPath()), qPrintable(cmd));
  }
}

void TestMainWindow::notAProjectShowsTheReason() {
  const QString path = m_dir->filePath(QStringLiteral("notes.txt"));
  const QByteArray content = "my notes, not a Hearth project\n";
  {
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(content);
  }
  AppContext bad(path);
  QVERIFY(!bad.project());
  QVERIFY(!bad.lastError().isEmpty());
  MainWindow w(bad);
  w.show();
  QVERIFY(w.findChild<QWidget*>(QStringLiteral("projectError")));
  QCOMPARE(w.page(MainWindow::CHAT), nullptr);
  QCOMPARE(w.currentPage(), -1);
  QTest::keyClick(&w, Qt::Key_2, Qt::ControlModifier);  // nothing to switch to; no crash
  QFile f(path);
  QVERIFY(f.open(QIODevice::ReadOnly));
  QCOMPARE(f.readAll(), content);
}

void TestMainWindow::screenshots() {
  MainWindow w(*m_ctx);
  w.resize(1280, 800);
  w.show();
  QVERIFY(QTest::qWaitForWindowExposed(&w));

  auto* models = qobject_cast<ModelLibraryPage*>(w.page(MainWindow::MODELS));
  QSignalSpy imported(models, &ModelLibraryPage::importFinished);
  models->importPath(TINY);
  QVERIFY(imported.wait(60000));
  QVERIFY(imported.at(0).at(0).toBool());
  const store::Id modelId = imported.at(0).at(1).value<store::Id>();
  const store::Id base = m_ctx->project()->modelVersions(modelId)->at(0).id;
  addRuns(*m_ctx->project(), base);
  QVERIFY(m_ctx->project()->createPrompt("Code reviewer", "Review the following code for bugs and style.", {"coding"}).has_value());
  QVERIFY(m_ctx->project()->createPrompt("Pirate", "You are a friendly pirate.", {"fun", "system"}).has_value());
  m_ctx->notifyPromptsChanged();
  m_ctx->notifyRunsChanged();
  models->selectModel(modelId);

  const QString dir = QStringLiteral(HEARTH_SCREENSHOTS);
  QVERIFY(QDir().mkpath(dir));
  const char* names[] = {"chat", "models", "compare", "prompts", "runs", "fine-tune"};
  for (int p = 0; p < MainWindow::PAGE_COUNT; ++p) {
    w.showPage(p);
    QTest::qWait(50);
    const QString file = QDir(dir).filePath(QStringLiteral("mainwindow-%1.png").arg(QString::fromLatin1(names[p])));
    QVERIFY(w.grab().save(file, "PNG"));
    QImage back(file);
    QVERIFY2(!back.isNull() && back.width() >= 1280 && back.height() >= 800, qPrintable(file));
    qInfo("screenshot %s", qPrintable(file));
  }
}

QTEST_MAIN(TestMainWindow)
#include "tst_mainwindow.moc"
