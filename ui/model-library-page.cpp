/* ModelLibraryPage: see model-library-page.h.
 *
 * Non-obvious choice: the lineage tree starts at the selected model's versions that have no parent in
 * that model and follows children across models, so an adapter a run produced (parent -> child) shows
 * under the version it was trained from even when the trainer filed it under a model of its own.
 */
#include "model-library-page.h"

#include <QCheckBox>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QShowEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QLabel>
#include <QMenu>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QSplitter>
#include <QTableView>
#include <QTreeWidget>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>
#include <functional>
#include <map>

#include "app-context.h"
#include "gpu-memory-text.h"
#include "hearth/model.h"
#include "message-banner.h"
#include "model-table-model.h"
#include "pages.h"
#include "settings.h"

namespace hearth::ui {
namespace {

const Setting<int> FIT_CONTEXT{"models/fitContext", 4096};
const Setting<QString> LAST_IMPORT_DIR{"models/lastImportDir", QString()};

constexpr int VERSION_ID_ROLE = Qt::UserRole + 1;

QString versionTitle(const store::ModelVersion& v) {
  return v.label.empty() ? QObject::tr("version %1").arg(v.id) : QString::fromStdString(v.label);
}

// A model file or folder path from a drop: a local .gguf file or a folder with config.json.
bool importable(const QString& path) {
  QFileInfo info(path);
  if (info.isDir()) return QFileInfo::exists(QDir(path).filePath(QStringLiteral("config.json")));
  return info.isFile();
}

}  // namespace

ModelLibraryPage::ModelLibraryPage(AppContext& ctx, QWidget* parent) : QWidget(parent), m_ctx(ctx) {
  setObjectName(QStringLiteral("modelsPage"));
  setAcceptDrops(true);
  auto* layout = new QVBoxLayout(this);

  auto* toolbar = new QHBoxLayout;
  auto* importFile = new QPushButton(tr("Import GGUF file…"), this);
  importFile->setObjectName(QStringLiteral("importFileButton"));
  auto* importFolder = new QPushButton(tr("Import Hugging Face folder…"), this);
  importFolder->setObjectName(QStringLiteral("importFolderButton"));
  toolbar->addWidget(importFile);
  toolbar->addWidget(importFolder);
  toolbar->addStretch(1);
  auto* hint = new QLabel(tr("or drop a .gguf file or a model folder here"), this);
  hint->setForegroundRole(QPalette::PlaceholderText);
  toolbar->addWidget(hint);
  layout->addLayout(toolbar);

  m_banner = new MessageBanner(this);
  layout->addWidget(m_banner);

  m_progressBox = new QWidget(this);
  auto* progressLayout = new QHBoxLayout(m_progressBox);
  progressLayout->setContentsMargins(0, 0, 0, 0);
  m_progressText = new QLabel(m_progressBox);
  m_progress = new QProgressBar(m_progressBox);
  m_progress->setObjectName(QStringLiteral("importProgress"));
  m_progress->setRange(0, 1000);
  auto* cancel = new QPushButton(tr("Cancel"), m_progressBox);
  progressLayout->addWidget(m_progressText);
  progressLayout->addWidget(m_progress, 1);
  progressLayout->addWidget(cancel);
  m_progressBox->hide();
  layout->addWidget(m_progressBox);

  auto* splitter = new QSplitter(Qt::Horizontal, this);
  auto* left = new QWidget(splitter);
  auto* leftLayout = new QVBoxLayout(left);
  leftLayout->setContentsMargins(0, 0, 0, 0);
  m_empty = new QLabel(tr("No models yet. Import a GGUF file or a Hugging Face folder (config.json and "
                          "safetensors), or drop one onto this page."), left);
  m_empty->setWordWrap(true);
  m_empty->setAlignment(Qt::AlignCenter);
  m_empty->setForegroundRole(QPalette::PlaceholderText);
  leftLayout->addWidget(m_empty);
  m_table = new ModelTableModel(this);
  m_proxy = new QSortFilterProxyModel(this);
  m_proxy->setSourceModel(m_table);
  m_proxy->setSortRole(ModelTableModel::SORT_ROLE);
  m_view = new QTableView(left);
  m_view->setObjectName(QStringLiteral("modelsTable"));
  m_view->setModel(m_proxy);
  m_view->setSortingEnabled(true);
  m_view->sortByColumn(ModelTableModel::NAME, Qt::AscendingOrder);
  m_view->setSelectionBehavior(QAbstractItemView::SelectRows);
  m_view->setSelectionMode(QAbstractItemView::SingleSelection);
  m_view->setEditTriggers(QAbstractItemView::NoEditTriggers);
  m_view->verticalHeader()->hide();
  m_view->horizontalHeader()->setStretchLastSection(true);
  m_view->setAlternatingRowColors(true);
  leftLayout->addWidget(m_view, 1);
  splitter->addWidget(left);

  auto* right = new QWidget(splitter);
  auto* rightLayout = new QVBoxLayout(right);
  rightLayout->setContentsMargins(0, 0, 0, 0);
  m_details = new QLabel(right);
  m_details->setObjectName(QStringLiteral("modelDetails"));
  m_details->setWordWrap(true);
  m_details->setTextInteractionFlags(Qt::TextSelectableByMouse);
  rightLayout->addWidget(m_details);

  auto* lineageBox = new QGroupBox(tr("Versions (lineage)"), right);
  auto* lineageLayout = new QVBoxLayout(lineageBox);
  m_lineage = new QTreeWidget(lineageBox);
  m_lineage->setObjectName(QStringLiteral("lineageTree"));
  m_lineage->setHeaderLabels({tr("Version"), tr("Kind"), tr("Produced by"), tr("Created")});
  m_lineage->setRootIsDecorated(true);
  lineageLayout->addWidget(m_lineage);
  rightLayout->addWidget(lineageBox, 1);

  auto* fitBox = new QGroupBox(tr("Memory"), right);
  auto* fitLayout = new QFormLayout(fitBox);
  m_fitContext = new QSpinBox(fitBox);
  m_fitContext->setObjectName(QStringLiteral("fitContext"));
  m_fitContext->setRange(128, 1 << 21);
  m_fitContext->setSingleStep(1024);
  m_fitContext->setSuffix(tr(" tokens"));
  m_fitContext->setValue(FIT_CONTEXT.get());
  m_fit = new QLabel(fitBox);
  m_fit->setObjectName(QStringLiteral("fitHint"));
  m_fit->setWordWrap(true);
  fitLayout->addRow(tr("Context:"), m_fitContext);
  fitLayout->addRow(m_fit);
  m_gpuFit = new QLabel(fitBox);
  m_gpuFit->setObjectName(QStringLiteral("gpuFitHint"));
  m_gpuFit->setWordWrap(true);
  fitLayout->addRow(m_gpuFit);
  rightLayout->addWidget(fitBox);

  auto* actions = new QHBoxLayout;
  m_chat = new QPushButton(tr("Chat with it"), right);
  m_chat->setObjectName(QStringLiteral("chatButton"));
  m_compare = new QPushButton(tr("Compare with…"), right);
  m_compare->setObjectName(QStringLiteral("compareButton"));
  m_rename = new QPushButton(tr("Rename…"), right);
  m_rename->setObjectName(QStringLiteral("renameButton"));
  m_remove = new QPushButton(tr("Remove…"), right);
  m_remove->setObjectName(QStringLiteral("removeButton"));
  for (auto* b : {m_chat, m_compare, m_rename, m_remove}) actions->addWidget(b);
  rightLayout->addLayout(actions);
  splitter->addWidget(right);
  splitter->setStretchFactor(0, 3);
  splitter->setStretchFactor(1, 2);
  splitter->setSizes({640, 420});
  layout->addWidget(splitter, 1);

  connect(importFile, &QPushButton::clicked, this, &ModelLibraryPage::chooseFile);
  connect(importFolder, &QPushButton::clicked, this, &ModelLibraryPage::chooseFolder);
  connect(cancel, &QPushButton::clicked, this, [this] { m_importWatcher.cancel(); });
  connect(&m_importWatcher, &QFutureWatcherBase::progressValueChanged, m_progress, &QProgressBar::setValue);
  connect(&m_importWatcher, &QFutureWatcherBase::progressTextChanged, m_progressText, &QLabel::setText);
  connect(&m_importWatcher, &QFutureWatcherBase::finished, this, &ModelLibraryPage::finishImport);
  connect(m_view->selectionModel(), &QItemSelectionModel::currentRowChanged, this, &ModelLibraryPage::showSelection);
  connect(m_lineage, &QTreeWidget::currentItemChanged, this, [this] {
    m_chat->setEnabled(currentVersionId() != 0);
    m_compare->setEnabled(currentVersionId() != 0);
  });
  connect(m_fitContext, &QSpinBox::valueChanged, this, [this](int v) {
    FIT_CONTEXT.set(v);
    updateFit();
  });
  connect(m_chat, &QPushButton::clicked, this, [this] {
    if (store::Id v = currentVersionId()) m_ctx.requestChatWith(v);
  });
  connect(m_compare, &QPushButton::clicked, this, &ModelLibraryPage::showCompareMenu);
  connect(m_rename, &QPushButton::clicked, this, &ModelLibraryPage::askRename);
  connect(m_remove, &QPushButton::clicked, this, &ModelLibraryPage::askRemove);
  connect(&m_ctx, &AppContext::modelsChanged, this, &ModelLibraryPage::reload);
  connect(&m_ctx, &AppContext::runsChanged, this, &ModelLibraryPage::showSelection);  // new adapters

  connect(&m_backendWatcher, &QFutureWatcherBase::finished, this, [this] {
    if (m_backendsGiven || m_backendWatcher.future().resultCount() == 0) return;
    m_backends = m_backendWatcher.result();
    updateGpuFit();
  });
  m_backendWatcher.setFuture(QtConcurrent::run(queryBackendsOrReason));

  reload();
}

ModelLibraryPage::~ModelLibraryPage() {
  m_backendWatcher.disconnect(this);
  m_backendWatcher.waitForFinished();
  m_queue.clear();
  m_importWatcher.disconnect(this);
  m_importWatcher.cancel();
  m_importWatcher.waitForFinished();
}

QString ModelLibraryPage::bannerText() const { return m_banner->text(); }
QString ModelLibraryPage::fitText() const { return m_fit->text(); }
QString ModelLibraryPage::gpuFitText() const { return m_gpuFit->text(); }

void ModelLibraryPage::setBackendInfo(const BackendInfo& info) {
  m_backendsGiven = true;
  m_backends = info;
  updateGpuFit();
}
void ModelLibraryPage::setFitContext(int tokens) { m_fitContext->setValue(tokens); }

void ModelLibraryPage::showError(const QString& text) { m_banner->showMessage(MessageBanner::Kind::error, text); }

void ModelLibraryPage::reload() {
  store::Id keep = currentModelId();
  std::vector<store::Model> models;
  if (auto* project = m_ctx.project()) {
    auto list = project->models();
    if (!list) showError(tr("Reading the model library failed: %1").arg(QString::fromStdString(list.error().to_string())));
    else models = std::move(*list);
  } else {
    showError(tr("No project is open: %1").arg(m_ctx.lastError()));
  }
  m_table->setModels(std::move(models));
  m_empty->setVisible(m_table->rowCount() == 0);
  m_view->resizeColumnsToContents();
  if (keep && m_table->rowOf(keep) >= 0) selectModel(keep);
  else if (m_table->rowCount() > 0) m_view->selectRow(0);
  describeMissing();
  showSelection();
}

// Reads context length and KV shape of stored models on the pool (open_model, no hashing).
void ModelLibraryPage::describeMissing() {
  for (int row = 0; row < m_table->rowCount(); ++row) {
    const store::Model* m = m_table->modelAt(row);
    if (m_table->facts(m->id) || m_describing.contains(m->id)) continue;
    m_describing.insert(m->id);
    const store::Id id = m->id;
    auto* watcher = new QFutureWatcher<ModelFacts>(this);
    connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher, id] {
      m_describing.remove(id);
      if (watcher->future().resultCount() > 0) m_table->setFacts(id, watcher->result());
      watcher->deleteLater();
      if (id == currentModelId()) showSelection();
    });
    watcher->setFuture(QtConcurrent::run(describeModel, QString::fromStdString(m->path)));
  }
}

void ModelLibraryPage::importPath(const QString& path) {
  m_queue << QFileInfo(path).absoluteFilePath();
  if (!m_importing) startNextImport();
  else m_progressText->setText(tr("%1 (%2 more queued)").arg(m_progressText->text()).arg(m_queue.size()));
}

void ModelLibraryPage::startNextImport() {
  if (m_queue.isEmpty()) {
    m_importing = false;
    m_progressBox->hide();
    return;
  }
  m_importing = true;
  m_importingPath = m_queue.takeFirst();
  m_progress->setValue(0);
  m_progressText->setText(tr("Reading %1").arg(QFileInfo(m_importingPath).fileName()));
  m_progressBox->show();
  m_importWatcher.setFuture(QtConcurrent::run(inspectModel, m_importingPath));
}

void ModelLibraryPage::finishImport() {
  const QString path = m_importingPath;
  auto report = [&](bool ok, store::Id id, const QString& message) {
    if (ok) m_banner->showMessage(MessageBanner::Kind::info, message);
    else showError(message);
    emit importFinished(ok, id, message);
  };
  try {
    QFuture<ModelFacts> future = m_importWatcher.future();
    if (future.resultCount() == 0) {
      report(false, 0, tr("Importing %1 was cancelled.").arg(path));
    } else if (ModelFacts f = future.result(); !f.ok()) {
      report(false, 0, f.error == QLatin1String("cancelled")
                           ? tr("Importing %1 was cancelled.").arg(path)
                           : tr("Could not import %1:\n%2").arg(path, f.error));
    } else if (!m_ctx.project()) {
      report(false, 0, tr("No project is open: %1").arg(m_ctx.lastError()));
    } else {
      store::Project& project = *m_ctx.project();
      std::optional<store::Model> duplicate;
      if (auto models = project.models()) {
        for (const auto& m : *models)
          if (m.sha256 == f.sha256.toStdString()) duplicate = m;
      }
      if (duplicate) {
        report(false, duplicate->id, tr("%1 is already in the library as “%2” (same SHA-256).")
                                         .arg(path, QString::fromStdString(duplicate->name)));
      } else {
        store::Model m;
        m.name = f.name.toStdString();
        m.path = f.path.toStdString();
        m.format = f.format.toStdString();
        m.sha256 = f.sha256.toStdString();
        m.sizeBytes = f.sizeBytes;
        m.architecture = f.architecture.toStdString();
        m.parameters = f.parameters;
        QStringList quoted;
        for (const QString& t : f.tensorTypes) quoted << QStringLiteral("\"%1\"").arg(t);
        m.tensorTypes = QStringLiteral("[%1]").arg(quoted.join(QLatin1Char(','))).toStdString();
        auto id = project.addModel(m);
        if (!id) {
          report(false, 0, tr("Storing %1 failed: %2").arg(path, QString::fromStdString(id.error().to_string())));
        } else {
          store::ModelVersion v;
          v.modelId = *id;
          v.kind = "base";
          v.label = "base";
          v.path = m.path;
          v.sha256 = m.sha256;
          auto vid = project.addModelVersion(v);
          if (!vid) {
            (void)project.removeModel(*id);
            report(false, 0, tr("Storing %1 failed: %2").arg(path, QString::fromStdString(vid.error().to_string())));
          } else {
            m_table->setFacts(*id, f);
            m_ctx.notifyModelsChanged();
            selectModel(*id);
            m_ctx.showStatus(tr("Imported %1").arg(f.name));
            report(true, *id, tr("Imported “%1”: %2, %3 parameters, %4.")
                                  .arg(f.name, f.architecture,
                                       QString::fromStdString(format_param_count(f.parameters)),
                                       formatBytes(f.sizeBytes)));
          }
        }
      }
    }
  } catch (const std::exception& e) {
    report(false, 0, tr("Importing %1 failed: %2").arg(path, QString::fromUtf8(e.what())));
  }
  startNextImport();
}

void ModelLibraryPage::selectModel(store::Id modelId) {
  int row = m_table->rowOf(modelId);
  if (row < 0) return;
  QModelIndex index = m_proxy->mapFromSource(m_table->index(row, 0));
  m_view->selectionModel()->setCurrentIndex(index, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
}

store::Id ModelLibraryPage::currentModelId() const {
  QModelIndex index = m_view->selectionModel()->currentIndex();
  if (!index.isValid()) return 0;
  return m_proxy->data(index, ModelTableModel::ID_ROLE).toLongLong();
}

store::Id ModelLibraryPage::currentVersionId() const {
  QTreeWidgetItem* item = m_lineage->currentItem();
  return item ? item->data(0, VERSION_ID_ROLE).toLongLong() : 0;
}

void ModelLibraryPage::showSelection() {
  try {
    m_lineage->clear();
    const store::Id modelId = currentModelId();
    const int row = m_table->rowOf(modelId);
    const store::Model* m = m_table->modelAt(row);
    for (auto* b : {m_chat, m_compare, m_rename, m_remove}) b->setEnabled(m != nullptr);
    if (!m || !m_ctx.project()) {
      m_details->setText(tr("Select a model to see its versions."));
      updateFit();
      return;
    }
    store::Project& project = *m_ctx.project();
    m_details->setText(tr("<b>%1</b><br>%2<br>SHA-256 %3")
                           .arg(QString::fromStdString(m->name).toHtmlEscaped(),
                                QString::fromStdString(m->path).toHtmlEscaped(),
                                QString::fromStdString(m->sha256)));
    // Every version of every model, to follow children across models.
    std::map<store::Id, store::ModelVersion> versions;
    std::multimap<store::Id, store::Id> children;
    auto models = project.models();
    if (!models) throw std::runtime_error(models.error().to_string());
    for (const auto& model : *models) {
      auto vs = project.modelVersions(model.id);
      if (!vs) throw std::runtime_error(vs.error().to_string());
      for (auto& v : *vs) versions[v.id] = v;
    }
    for (const auto& [id, v] : versions)
      if (v.parentVersionId) children.emplace(*v.parentVersionId, id);

    std::function<void(QTreeWidgetItem*, const store::ModelVersion&, int)> add =
        [&](QTreeWidgetItem* item, const store::ModelVersion& v, int depth) {
          QString producedBy;
          if (v.producedByRunId) {
            auto run = project.run(*v.producedByRunId);
            producedBy = run ? tr("run %1 “%2”").arg(*v.producedByRunId).arg(QString::fromStdString(run->name))
                             : tr("run %1").arg(*v.producedByRunId);
          }
          QString title = versionTitle(v);
          if (v.modelId != modelId) {
            auto other = project.model(v.modelId);
            if (other) title += QStringLiteral(" (%1)").arg(QString::fromStdString(other->name));
          }
          item->setText(0, title);
          item->setText(1, QString::fromStdString(v.kind));
          item->setText(2, producedBy);
          item->setText(3, QString::fromStdString(v.createdAt));
          item->setToolTip(0, QString::fromStdString(v.path));
          item->setData(0, VERSION_ID_ROLE, QVariant::fromValue<qint64>(v.id));
          if (depth > 64) return;  // the store refuses cycles; this only bounds a damaged file
          auto [b, e] = children.equal_range(v.id);
          for (auto it = b; it != e; ++it) add(new QTreeWidgetItem(item), versions.at(it->second), depth + 1);
        };
    QTreeWidgetItem* first = nullptr;
    for (const auto& [id, v] : versions) {
      if (v.modelId != modelId) continue;
      const bool parentHere = v.parentVersionId && versions.count(*v.parentVersionId) &&
                              versions.at(*v.parentVersionId).modelId == modelId;
      if (parentHere) continue;
      auto* item = new QTreeWidgetItem(m_lineage);
      add(item, v, 0);
      if (!first) first = item;
    }
    m_lineage->expandAll();
    for (int c = 0; c < m_lineage->columnCount(); ++c) m_lineage->resizeColumnToContents(c);
    if (first) m_lineage->setCurrentItem(first);
    m_chat->setEnabled(first != nullptr);
    m_compare->setEnabled(first != nullptr);
  } catch (const std::exception& e) {
    showError(tr("Reading the versions failed: %1").arg(QString::fromUtf8(e.what())));
  }
  updateFit();
}

void ModelLibraryPage::updateFit() {
  updateGpuFit();
  const store::Id id = currentModelId();
  const ModelFacts* f = id ? m_table->facts(id) : nullptr;
  if (!id) {
    m_fit->setText(QString());
    return;
  }
  if (!f) {
    m_fit->setText(tr("Reading the model's shape…"));
    return;
  }
  if (!f->ok()) {
    m_fit->setText(tr("Cannot read the model file: %1").arg(f->error));
    return;
  }
  const std::int64_t ctx = m_fitContext->value();
  const std::int64_t weights = f->sizeBytes;
  const std::int64_t kv = kvCacheBytes(*f, ctx);
  const std::int64_t need = weights + kv;
  const std::int64_t ram = physicalMemoryBytes();
  QString verdict;
  if (ram <= 0) verdict = tr("physical memory unknown");
  else if (need <= ram * 8 / 10) verdict = tr("fits in memory");
  else if (need <= ram) verdict = tr("tight: fits, but little is left for other programs");
  else verdict = tr("does not fit in memory");
  QString text = tr("Needs %1 (weights %2 + KV cache %3 at %4 tokens) of %5 RAM: %6.")
                     .arg(formatBytes(need), formatBytes(weights), formatBytes(kv), QLocale().toString(ctx),
                          formatBytes(ram), verdict);
  if (f->contextLength > 0 && ctx > f->contextLength)
    text += QLatin1Char(' ') + tr("The model was trained for %1 tokens.").arg(QLocale().toString(f->contextLength));
  m_fit->setText(text);
}

void ModelLibraryPage::updateGpuFit() {
  const store::Id id = currentModelId();
  const ModelFacts* f = id ? m_table->facts(id) : nullptr;
  if (!f || !f->ok()) {
    m_gpuFit->setText(QString());
    return;
  }
  const std::int64_t ctx = m_fitContext->value();
  const GpuMemoryEstimate e = gpuEstimate(*f, ctx);
  if (!m_backends) {
    m_gpuFit->setText(tr("GPU memory at %1 context: %2 GiB — looking for GPUs…")
                          .arg(QLocale().toString(qlonglong(ctx)), gibNumber(e.total)));
    return;
  }
  m_gpuFit->setText(gpuInferenceText(e, ctx, *m_backends));
}

bool ModelLibraryPage::renameModel(store::Id modelId, const QString& name) {
  if (!m_ctx.project()) return false;
  const QString trimmed = name.trimmed();
  if (trimmed.isEmpty()) {
    showError(tr("A model needs a name."));
    return false;
  }
  auto ok = m_ctx.project()->renameModel(modelId, trimmed.toStdString());
  if (!ok) {
    showError(tr("Renaming failed: %1").arg(QString::fromStdString(ok.error().to_string())));
    return false;
  }
  m_ctx.notifyModelsChanged();
  return true;
}

bool ModelLibraryPage::removeModel(store::Id modelId, bool alsoDeleteFiles) {
  if (!m_ctx.project()) return false;
  store::Project& project = *m_ctx.project();
  auto model = project.model(modelId);
  if (!model) {
    showError(tr("Removing failed: %1").arg(QString::fromStdString(model.error().to_string())));
    return false;
  }
  QStringList paths{QString::fromStdString(model->path)};
  if (auto versions = project.modelVersions(modelId))
    for (const auto& v : *versions)
      if (!v.path.empty() && !paths.contains(QString::fromStdString(v.path))) paths << QString::fromStdString(v.path);
  auto ok = project.removeModelAndVersions(modelId);
  if (!ok) {
    showError(tr("Could not remove “%1”: %2\nDelete the runs and conversations that use it first.")
                  .arg(QString::fromStdString(model->name), QString::fromStdString(ok.error().to_string())));
    return false;
  }
  QStringList failed;
  if (alsoDeleteFiles) {
    for (const QString& p : paths) {
      QFileInfo info(p);
      if (!info.exists()) continue;
      bool removed = false;
      if (info.isDir()) {
        // Only a model folder (config.json inside) is removed, never an arbitrary directory.
        if (QFileInfo::exists(QDir(p).filePath(QStringLiteral("config.json")))) removed = QDir(p).removeRecursively();
      } else {
        removed = QFile::remove(p);
      }
      if (!removed) failed << p;
    }
  }
  m_table->forgetFacts(modelId);
  m_ctx.notifyModelsChanged();
  if (!failed.isEmpty())
    m_banner->showMessage(MessageBanner::Kind::warning,
                          tr("Removed “%1” from the library, but could not delete:\n%2")
                              .arg(QString::fromStdString(model->name), failed.join(QLatin1Char('\n'))));
  else
    m_ctx.showStatus(tr("Removed %1").arg(QString::fromStdString(model->name)));
  return true;
}

void ModelLibraryPage::chooseFile() {
  QString file = QFileDialog::getOpenFileName(this, tr("Import a GGUF model"), LAST_IMPORT_DIR.get(),
                                              tr("GGUF models (*.gguf);;All files (*)"));
  if (file.isEmpty()) return;
  LAST_IMPORT_DIR.set(QFileInfo(file).absolutePath());
  importPath(file);
}

void ModelLibraryPage::chooseFolder() {
  QString dir = QFileDialog::getExistingDirectory(this, tr("Import a Hugging Face model folder"), LAST_IMPORT_DIR.get());
  if (dir.isEmpty()) return;
  LAST_IMPORT_DIR.set(QFileInfo(dir).absolutePath());
  importPath(dir);
}

void ModelLibraryPage::askRename() {
  const store::Model* m = m_table->modelAt(m_table->rowOf(currentModelId()));
  if (!m) return;
  bool ok = false;
  QString name = QInputDialog::getText(this, tr("Rename model"), tr("New name:"), QLineEdit::Normal,
                                       QString::fromStdString(m->name), &ok);
  if (ok) renameModel(m->id, name);
}

void ModelLibraryPage::askRemove() {
  const store::Model* m = m_table->modelAt(m_table->rowOf(currentModelId()));
  if (!m) return;
  const store::Id id = m->id;
  QMessageBox box(QMessageBox::Question, tr("Remove model"),
                  tr("Remove “%1” and its versions from the library?").arg(QString::fromStdString(m->name)),
                  QMessageBox::Cancel, this);
  box.setInformativeText(tr("The files stay on disk unless you tick the box below."));
  auto* remove = box.addButton(tr("Remove"), QMessageBox::DestructiveRole);
  auto* files = new QCheckBox(tr("Also delete the model files (%1)").arg(QString::fromStdString(m->path)));
  box.setCheckBox(files);
  box.exec();
  if (box.clickedButton() == remove) removeModel(id, files->isChecked());
}

void ModelLibraryPage::showCompareMenu() {
  const store::Id current = currentVersionId();
  if (!current || !m_ctx.project()) return;
  QMenu menu(this);
  auto models = m_ctx.project()->models();
  if (!models) return;
  for (const auto& model : *models) {
    auto versions = m_ctx.project()->modelVersions(model.id);
    if (!versions) continue;
    for (const auto& v : *versions) {
      if (v.id == current) continue;
      QAction* a = menu.addAction(QStringLiteral("%1 — %2").arg(QString::fromStdString(model.name), versionTitle(v)));
      const store::Id other = v.id;
      connect(a, &QAction::triggered, this, [this, current, other] { m_ctx.requestCompare(current, other); });
    }
  }
  if (menu.isEmpty()) menu.addAction(tr("No other version to compare with"))->setEnabled(false);
  menu.exec(m_compare->mapToGlobal(QPoint(0, m_compare->height())));
}

void ModelLibraryPage::dragEnterEvent(QDragEnterEvent* event) {
  if (!event->mimeData()->hasUrls()) return;
  for (const QUrl& url : event->mimeData()->urls())
    if (!url.isLocalFile()) return;
  event->acceptProposedAction();
}

void ModelLibraryPage::dropEvent(QDropEvent* event) {
  bool any = false;
  for (const QUrl& url : event->mimeData()->urls()) {
    const QString path = url.toLocalFile();
    if (importable(path)) {
      importPath(path);
      any = true;
    } else {
      showError(tr("%1 is neither a model file nor a Hugging Face folder (config.json and safetensors).").arg(path));
    }
  }
  if (any) event->acceptProposedAction();
}

void ModelLibraryPage::showEvent(QShowEvent* event) {
  QWidget::showEvent(event);
  if (!event->spontaneous()) reload();
}

QWidget* createModelsPage(AppContext& ctx, QWidget* parent) { return new ModelLibraryPage(ctx, parent); }

}  // namespace hearth::ui
