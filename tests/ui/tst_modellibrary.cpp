/* Qt Test of the Models page (ModelLibraryPage) on a fresh project: importing the tiny real GGUF
 * model and a Hugging Face folder through the page's import function (the dialogs and drops end
 * there), a truncated file and a non-model file (an error in the page, nothing stored), a duplicate,
 * the lineage tree with an adapter a run produced, the fits-in-memory hint, rename, remove (files kept
 * or deleted), "Chat with it", and a drop onto the page.
 *
 * Non-obvious choice: the SHA-256 is checked against coreutils' sha256sum and the size against the
 * file system, not against the store's own hash function, so the expected values are independent.
 */
#include <QDropEvent>
#include <QFile>
#include <QLabel>
#include <QMimeData>
#include <QElapsedTimer>
#include <QProcess>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTreeWidget>
#include <QtTest>

#include "app-context.h"
#include "hearth/model-writer.h"
#include "hearth/model.h"
#include "model-library-page.h"
#include "model-table-model.h"
#include "settings.h"

using namespace hearth;
using namespace hearth::ui;

namespace {

const QString TINY = QStringLiteral(HEARTH_TESTDATA "/models/llama-2-tiny-random.gguf");

QString sha256sum(const QString& path) {
  QProcess p;
  p.start(QStringLiteral("sha256sum"), {path});
  if (!p.waitForFinished(60000)) return {};
  return QString::fromLatin1(p.readAllStandardOutput()).section(QLatin1Char(' '), 0, 0);
}

QString cell(ModelTableModel* t, int row, int column) { return t->data(t->index(row, column)).toString(); }

}  // namespace

class TestModelLibrary : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase();
  void init();
  void cleanup();
  void importsTheTinyGguf();
  void brokenFilesShowAnErrorAndAddNothing();
  void duplicateIsNotAddedTwice();
  void importsHuggingFaceFolder();
  void lineageShowsAdapterUnderItsBase();
  void fitHintUsesWeightsAndKvCache();
  void renameAndRemove();
  void removeRefusedWhileARunUsesTheModel();
  void chatWithItRequestsTheBaseVersion();
  void dropImports();
  void bigFileShowsProgressAndStaysResponsive();
  void cancelStopsTheImport();
  void closingThePageDuringAnImport();

 private:
  // Imports `path` through the page and waits for the result.
  bool importAndWait(const QString& path, store::Id* id = nullptr, QString* message = nullptr);

  // The tiny model followed by `mib` MiB of padding (GGUF readers ignore bytes after the last tensor),
  // so hashing takes long enough to watch.
  QString bigCopy(int mib);

  std::unique_ptr<QTemporaryDir> m_dir;
  std::unique_ptr<AppContext> m_ctx;
  std::unique_ptr<ModelLibraryPage> m_page;
};

void TestModelLibrary::initTestCase() {
  // Settings of this executable only (ctest runs the gui tests in parallel).
  QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, QStringLiteral(HEARTH_TEST_TMP "/settings"));
  setApplicationIdentity();
  QVERIFY2(QFileInfo::exists(TINY), qPrintable(TINY));
}

void TestModelLibrary::init() {
  m_dir = std::make_unique<QTemporaryDir>();
  QVERIFY(m_dir->isValid());
  m_ctx = std::make_unique<AppContext>(m_dir->filePath(QStringLiteral("p.hearth")));
  QVERIFY2(m_ctx->project(), qPrintable(m_ctx->lastError()));
  m_page = std::make_unique<ModelLibraryPage>(*m_ctx);
  m_page->resize(1100, 700);
}

void TestModelLibrary::cleanup() {
  m_page.reset();
  m_ctx.reset();
  m_dir.reset();
}

bool TestModelLibrary::importAndWait(const QString& path, store::Id* id, QString* message) {
  QSignalSpy spy(m_page.get(), &ModelLibraryPage::importFinished);
  m_page->importPath(path);
  if (!spy.wait(60000)) return false;
  const auto args = spy.takeFirst();
  if (id) *id = args.at(1).value<store::Id>();
  if (message) *message = args.at(2).toString();
  return args.at(0).toBool();
}

void TestModelLibrary::importsTheTinyGguf() {
  store::Id id = 0;
  QString message;
  QVERIFY2(importAndWait(TINY, &id, &message), qPrintable(QString(message).replace(QLatin1Char('\n'), QLatin1Char(' '))));
  QVERIFY(id > 0);
  QVERIFY(!m_page->isImporting());

  ModelTableModel* t = m_page->tableModel();
  QCOMPARE(t->rowCount(), 1);
  QCOMPARE(cell(t, 0, ModelTableModel::ARCHITECTURE), QStringLiteral("llama"));
  QCOMPARE(cell(t, 0, ModelTableModel::SIZE), formatBytes(QFileInfo(TINY).size()));
  const QString expectedHash = sha256sum(TINY);
  QCOMPARE(expectedHash.size(), 64);
  QVERIFY(expectedHash.startsWith(cell(t, 0, ModelTableModel::SHA256)));
  QCOMPARE(t->data(t->index(0, ModelTableModel::SHA256), ModelTableModel::SORT_ROLE).toString(), expectedHash);
  const QString quant = cell(t, 0, ModelTableModel::QUANTIZATION);
  QVERIFY2(quant.contains(QStringLiteral("F16")) && quant.contains(QStringLiteral("F32")), qPrintable(quant));

  // The engine's own description of the file, for the values with no outside reference.
  auto model = open_model(TINY.toStdString());
  QVERIFY(model.has_value());
  QCOMPARE(cell(t, 0, ModelTableModel::PARAMETERS), QString::fromStdString(format_param_count(model->desc().n_params)));
  QCOMPARE(cell(t, 0, ModelTableModel::CONTEXT), QLocale().toString(static_cast<qlonglong>(model->desc().params.n_ctx_train)));

  // Stored: the model and one base version with the same hash.
  auto models = m_ctx->project()->models();
  QVERIFY(models.has_value());
  QCOMPARE(models->size(), std::size_t(1));
  QCOMPARE(QString::fromStdString((*models)[0].sha256), expectedHash);
  QCOMPARE((*models)[0].sizeBytes, QFileInfo(TINY).size());
  QCOMPARE((*models)[0].architecture, std::string("llama"));
  auto versions = m_ctx->project()->modelVersions(id);
  QVERIFY(versions.has_value());
  QCOMPARE(versions->size(), std::size_t(1));
  QCOMPARE((*versions)[0].kind, std::string("base"));
  QCOMPARE(QString::fromStdString((*versions)[0].sha256), expectedHash);
  QCOMPARE(m_page->currentModelId(), id);
  QVERIFY(m_page->bannerText().contains(QStringLiteral("Imported")));
}

void TestModelLibrary::brokenFilesShowAnErrorAndAddNothing() {
  // A truncated copy: the header promises tensors past the end of the file.
  QFile in(TINY);
  QVERIFY(in.open(QIODevice::ReadOnly));
  const QByteArray bytes = in.readAll();
  const QString truncated = m_dir->filePath(QStringLiteral("truncated.gguf"));
  QFile out(truncated);
  QVERIFY(out.open(QIODevice::WriteOnly));
  out.write(bytes.left(bytes.size() / 2));
  out.close();
  QString message;
  QVERIFY(!importAndWait(truncated, nullptr, &message));
  qInfo("truncated file: %s", qPrintable(QString(message).replace(QLatin1Char('\n'), QLatin1Char(' '))));
  QVERIFY2(message.contains(QStringLiteral("truncated.gguf")), qPrintable(QString(message).replace(QLatin1Char('\n'), QLatin1Char(' '))));
  QVERIFY2(m_page->bannerText().contains(QStringLiteral("truncated.gguf")), qPrintable(m_page->bannerText()));

  // Not a model at all.
  const QString text = m_dir->filePath(QStringLiteral("notes.gguf"));
  QFile t(text);
  QVERIFY(t.open(QIODevice::WriteOnly));
  t.write("this is not a GGUF file\n");
  t.close();
  QVERIFY(!importAndWait(text, nullptr, &message));
  qInfo("not a model: %s", qPrintable(QString(message).replace(QLatin1Char('\n'), QLatin1Char(' '))));
  QVERIFY(m_page->bannerText().contains(QStringLiteral("notes.gguf")));

  // A missing path.
  QVERIFY(!importAndWait(m_dir->filePath(QStringLiteral("missing.gguf")), nullptr, &message));

  QCOMPARE(m_page->tableModel()->rowCount(), 0);
  auto models = m_ctx->project()->models();
  QVERIFY(models.has_value());
  QVERIFY(models->empty());
  // The page still works after the failures.
  QVERIFY(importAndWait(TINY));
  QCOMPARE(m_page->tableModel()->rowCount(), 1);
}

void TestModelLibrary::duplicateIsNotAddedTwice() {
  store::Id first = 0;
  QVERIFY(importAndWait(TINY, &first));
  const QString copy = m_dir->filePath(QStringLiteral("copy.gguf"));
  QVERIFY(QFile::copy(TINY, copy));
  store::Id second = 0;
  QString message;
  QVERIFY(!importAndWait(copy, &second, &message));
  QCOMPARE(second, first);
  QVERIFY2(message.contains(QStringLiteral("already")), qPrintable(QString(message).replace(QLatin1Char('\n'), QLatin1Char(' '))));
  QCOMPARE(m_page->tableModel()->rowCount(), 1);
}

void TestModelLibrary::importsHuggingFaceFolder() {
  auto weights = make_random_weights(tiny_params(Architecture::qwen2), 7);
  QVERIFY(weights.has_value());
  const QString folder = m_dir->filePath(QStringLiteral("tiny-qwen2"));
  HfWriteOptions options;
  auto written = write_hf_folder(*weights, folder.toStdString(), options);
  QVERIFY2(written.has_value(), written ? "" : written.error().to_string().c_str());
  store::Id id = 0;
  QString message;
  QVERIFY2(importAndWait(folder, &id, &message), qPrintable(QString(message).replace(QLatin1Char('\n'), QLatin1Char(' '))));
  ModelTableModel* t = m_page->tableModel();
  const int row = t->rowOf(id);
  QVERIFY(row >= 0);
  QCOMPARE(cell(t, row, ModelTableModel::ARCHITECTURE), QStringLiteral("qwen2"));
  auto model = m_ctx->project()->model(id);
  QVERIFY(model.has_value());
  QCOMPARE(model->format, std::string("safetensors"));
  // A folder's hash is that of its safetensors files in name order, as one stream.
  QDir dir(folder);
  QStringList shards = dir.entryList({QStringLiteral("*.safetensors")}, QDir::Files, QDir::Name);
  QVERIFY(!shards.isEmpty());
  QProcess p;
  QStringList files;
  for (const QString& s : shards) files << dir.filePath(s);
  p.start(QStringLiteral("sh"), QStringList{QStringLiteral("-c"), QStringLiteral("cat \"$@\" | sha256sum"), QStringLiteral("sh")} + files);
  QVERIFY(p.waitForFinished(60000));
  QCOMPARE(QString::fromStdString(model->sha256), QString::fromLatin1(p.readAllStandardOutput()).section(QLatin1Char(' '), 0, 0));
}

void TestModelLibrary::lineageShowsAdapterUnderItsBase() {
  store::Id id = 0;
  QVERIFY(importAndWait(TINY, &id));
  store::Project& project = *m_ctx->project();
  auto versions = project.modelVersions(id);
  QVERIFY(versions.has_value() && versions->size() == 1);
  const store::Id base = (*versions)[0].id;
  store::Run run;
  run.name = "lora-tiny";
  run.baseVersionId = base;
  auto runId = project.createRun(run);
  QVERIFY(runId.has_value());
  store::ModelVersion adapter;
  adapter.modelId = id;
  adapter.parentVersionId = base;
  adapter.producedByRunId = *runId;
  adapter.kind = "adapter";
  adapter.label = "lora step 30";
  adapter.path = m_dir->filePath(QStringLiteral("adapter.gguf")).toStdString();
  auto adapterId = project.addModelVersion(adapter);
  QVERIFY(adapterId.has_value());
  m_ctx->notifyModelsChanged();

  auto* tree = m_page->findChild<QTreeWidget*>(QStringLiteral("lineageTree"));
  QVERIFY(tree);
  QCOMPARE(tree->topLevelItemCount(), 1);
  QTreeWidgetItem* root = tree->topLevelItem(0);
  QCOMPARE(root->text(0), QStringLiteral("base"));
  QCOMPARE(root->childCount(), 1);
  QTreeWidgetItem* child = root->child(0);
  QCOMPARE(child->text(0), QStringLiteral("lora step 30"));
  QCOMPARE(child->text(1), QStringLiteral("adapter"));
  QVERIFY2(child->text(2).contains(QStringLiteral("lora-tiny")), qPrintable(child->text(2)));
}

void TestModelLibrary::fitHintUsesWeightsAndKvCache() {
  store::Id id = 0;
  QVERIFY(importAndWait(TINY, &id));
  auto model = open_model(TINY.toStdString());
  QVERIFY(model.has_value());
  const auto& p = model->desc().params;
  const std::int64_t ctx = 2048;
  m_page->setFitContext(static_cast<int>(ctx));
  const std::int64_t kv = 2 * p.n_layer * ctx * p.n_head_kv * p.head_dim * 2;  // K and V in F16
  const std::int64_t weights = QFileInfo(TINY).size();
  const QString text = m_page->fitText();
  QVERIFY2(text.contains(formatBytes(kv)), qPrintable(text));
  QVERIFY2(text.contains(formatBytes(weights + kv)), qPrintable(text));
  QVERIFY2(text.contains(QStringLiteral("fits in memory")), qPrintable(text));  // a few MB on any machine
  // A context no machine has memory for: a 2^21-token cache of a model with a huge shape.
  ModelFacts huge;
  huge.sizeBytes = 1;
  huge.nLayer = 1000;
  huge.nHeadKv = 1000;
  huge.headDim = 1000;
  QVERIFY(kvCacheBytes(huge, 1 << 21) > physicalMemoryBytes());
}

void TestModelLibrary::renameAndRemove() {
  const QString copy = m_dir->filePath(QStringLiteral("mine.gguf"));
  QVERIFY(QFile::copy(TINY, copy));
  store::Id id = 0;
  QVERIFY(importAndWait(copy, &id));
  QVERIFY(m_page->renameModel(id, QStringLiteral("Tiny Llama")));
  QCOMPARE(cell(m_page->tableModel(), m_page->tableModel()->rowOf(id), ModelTableModel::NAME), QStringLiteral("Tiny Llama"));
  QCOMPARE(m_ctx->project()->model(id)->name, std::string("Tiny Llama"));
  QVERIFY(!m_page->renameModel(id, QStringLiteral("   ")));
  QVERIFY(!m_page->bannerText().isEmpty());
  QCOMPARE(m_ctx->project()->model(id)->name, std::string("Tiny Llama"));

  // Remove, keeping the file.
  QVERIFY(m_page->removeModel(id, false));
  QCOMPARE(m_page->tableModel()->rowCount(), 0);
  QVERIFY(m_ctx->project()->models()->empty());
  QVERIFY(QFileInfo::exists(copy));

  // Import again and remove with the files.
  QVERIFY(importAndWait(copy, &id));
  QCOMPARE(m_page->tableModel()->rowCount(), 1);
  QVERIFY(m_page->removeModel(id, true));
  QVERIFY(!QFileInfo::exists(copy));
  QVERIFY(m_ctx->project()->models()->empty());
}

void TestModelLibrary::removeRefusedWhileARunUsesTheModel() {
  store::Id id = 0;
  QVERIFY(importAndWait(TINY, &id));
  store::Run run;
  run.name = "uses it";
  run.baseVersionId = m_ctx->project()->modelVersions(id)->at(0).id;
  QVERIFY(m_ctx->project()->createRun(run).has_value());
  QVERIFY(!m_page->removeModel(id, true));
  QVERIFY2(m_page->bannerText().contains(QStringLiteral("Could not remove")), qPrintable(m_page->bannerText()));
  QCOMPARE(m_ctx->project()->models()->size(), std::size_t(1));
  QCOMPARE(m_ctx->project()->modelVersions(id)->size(), std::size_t(1));
  QVERIFY(QFileInfo::exists(TINY));
  QCOMPARE(m_page->tableModel()->rowCount(), 1);
}

void TestModelLibrary::chatWithItRequestsTheBaseVersion() {
  store::Id id = 0;
  QVERIFY(importAndWait(TINY, &id));
  QSignalSpy chat(m_ctx.get(), &AppContext::chatWithRequested);
  auto* button = m_page->findChild<QPushButton*>(QStringLiteral("chatButton"));
  QVERIFY(button && button->isEnabled());
  button->click();
  QCOMPARE(chat.count(), 1);
  QCOMPARE(chat.at(0).at(0).value<store::Id>(), m_ctx->project()->modelVersions(id)->at(0).id);
}

void TestModelLibrary::dropImports() {
  QMimeData mime;
  mime.setUrls({QUrl::fromLocalFile(TINY)});
  QSignalSpy spy(m_page.get(), &ModelLibraryPage::importFinished);
  QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
  QCoreApplication::sendEvent(m_page.get(), &enter);
  QVERIFY(enter.isAccepted());
  QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
  QCoreApplication::sendEvent(m_page.get(), &drop);
  QVERIFY(spy.wait(60000));
  QVERIFY(spy.at(0).at(0).toBool());
  QCOMPARE(m_page->tableModel()->rowCount(), 1);
}

QString TestModelLibrary::bigCopy(int mib) {
  const QString path = m_dir->filePath(QStringLiteral("big.gguf"));
  QFile::remove(path);
  if (!QFile::copy(TINY, path)) return {};
  QFile f(path);
  if (!f.open(QIODevice::Append)) return {};
  const QByteArray chunk(1 << 20, '\0');
  for (int i = 0; i < mib; ++i) f.write(chunk);
  return path;
}

void TestModelLibrary::bigFileShowsProgressAndStaysResponsive() {
  const QString big = bigCopy(128);
  QVERIFY(!big.isEmpty());
  auto* bar = m_page->findChild<QProgressBar*>(QStringLiteral("importProgress"));
  QVERIFY(bar);
  QList<int> values;
  connect(bar, &QProgressBar::valueChanged, this, [&](int v) { values << v; });
  // The GUI thread must keep running its event loop while the worker hashes.
  int ticks = 0;
  QTimer timer;
  connect(&timer, &QTimer::timeout, this, [&] { ++ticks; });
  timer.start(10);
  QElapsedTimer clock;
  clock.start();
  QSignalSpy spy(m_page.get(), &ModelLibraryPage::importFinished);
  m_page->importPath(big);
  QVERIFY(m_page->isImporting());
  QVERIFY(!bar->parentWidget()->isHidden());
  QVERIFY(spy.wait(120000));
  const qint64 ms = clock.elapsed();
  QVERIFY2(spy.at(0).at(0).toBool(), qPrintable(spy.at(0).at(2).toString()));
  QVERIFY(bar->parentWidget()->isHidden());
  int between = 0;
  for (int v : values) between += v > 0 && v < 1000;
  qInfo("hashed 128 MiB in %lld ms: %lld progress steps, %d timer ticks", ms, static_cast<long long>(values.size()), ticks);
  QVERIFY2(between >= 3, "the progress bar should move through intermediate values");
  QVERIFY2(ticks >= ms / 10 / 4, "the GUI thread was blocked during the import");
  auto model = m_ctx->project()->model(spy.at(0).at(1).value<store::Id>());
  QVERIFY(model.has_value());
  QCOMPARE(QString::fromStdString(model->sha256), sha256sum(big));
}

void TestModelLibrary::cancelStopsTheImport() {
  const QString big = bigCopy(384);
  QVERIFY(!big.isEmpty());
  auto* bar = m_page->findChild<QProgressBar*>(QStringLiteral("importProgress"));
  QSignalSpy spy(m_page.get(), &ModelLibraryPage::importFinished);
  m_page->importPath(big);
  QTRY_VERIFY_WITH_TIMEOUT(bar->value() > 0, 30000);
  QPushButton* cancel = nullptr;
  for (auto* b : bar->parentWidget()->findChildren<QPushButton*>())
    if (b->text() == QStringLiteral("Cancel")) cancel = b;
  QVERIFY(cancel);
  cancel->click();
  QVERIFY(spy.wait(30000));
  QVERIFY(!spy.at(0).at(0).toBool());
  QVERIFY2(spy.at(0).at(2).toString().contains(QStringLiteral("cancelled")), qPrintable(spy.at(0).at(2).toString()));
  QVERIFY(m_ctx->project()->models()->empty());
  QCOMPARE(m_page->tableModel()->rowCount(), 0);
}

void TestModelLibrary::closingThePageDuringAnImport() {
  const QString big = bigCopy(384);
  QVERIFY(!big.isEmpty());
  auto* bar = m_page->findChild<QProgressBar*>(QStringLiteral("importProgress"));
  m_page->importPath(big);
  m_page->importPath(TINY);  // queued behind it; must not start after the page is gone
  QTRY_VERIFY_WITH_TIMEOUT(bar->value() > 0, 30000);
  QElapsedTimer clock;
  clock.start();
  m_page.reset();  // cancels the worker and waits for it
  QVERIFY2(clock.elapsed() < 5000, "closing should cancel the hashing, not wait for it to finish");
  QTest::qWait(100);
  QVERIFY(m_ctx->project()->models()->empty());
}

QTEST_MAIN(TestModelLibrary)
#include "tst_modellibrary.moc"
