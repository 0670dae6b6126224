/* ModelLibraryPage: the Models page. Imports GGUF files and Hugging Face folders (dialog or drag and
 * drop) on a worker with progress, lists them (ModelTableModel), shows the selected model's lineage
 * of versions, a fits-in-memory hint at a chosen context (RAM, and the GPU estimate against each GPU
 * found, docs/gpu.md), and acts on it: chat, compare, rename,
 * remove.
 *
 * Non-obvious choice: imports are queued and run one at a time on QtConcurrent's pool; the result
 * (a ModelFacts value) is written to the store on the GUI thread, which owns the project's
 * connection. A broken file ends as a banner on the page and adds nothing.
 *
 * Threading: GUI thread only; the workers touch no widget and no Project.
 */
#pragma once

#include <QFutureWatcher>
#include <QSet>
#include <QStringList>
#include <QWidget>
#include <optional>

#include "hearth/backend.h"
#include "hearth/store/records.h"
#include "model-inspect.h"

class QLabel;
class QProgressBar;
class QPushButton;
class QSortFilterProxyModel;
class QSpinBox;
class QTableView;
class QTreeWidget;

namespace hearth::ui {

class AppContext;
class MessageBanner;
class ModelTableModel;

class ModelLibraryPage : public QWidget {
  Q_OBJECT
 public:
  explicit ModelLibraryPage(AppContext& ctx, QWidget* parent = nullptr);
  ~ModelLibraryPage() override;  // cancels a running import and waits for its worker

  // Queues a .gguf file or a Hugging Face folder for import (the dialogs and drops end here).
  void importPath(const QString& path);
  bool isImporting() const { return m_importing; }
  // Rename / remove (the buttons end here after their dialogs). Errors go to the banner; false then.
  bool renameModel(store::Id modelId, const QString& name);
  bool removeModel(store::Id modelId, bool alsoDeleteFiles);

  void selectModel(store::Id modelId);
  store::Id currentModelId() const;        // 0 when none is selected
  store::Id currentVersionId() const;      // the version picked in the lineage tree (default: the base)
  ModelTableModel* tableModel() const { return m_table; }
  QString bannerText() const;
  QString fitText() const;
  // "GPU memory at N context: … — fits on <GPU> (…)" or "… — no GPU found: <reason>"; empty with no selection.
  QString gpuFitText() const;
  void setFitContext(int tokens);
  // The GPUs the estimate is compared with: queried on a worker when the page is built; tests give
  // their own (which then wins over the worker's answer).
  void setBackendInfo(const BackendInfo& info);

 signals:
  // After each queued import: ok, and the model's new id (0 on failure) with a message for people.
  void importFinished(bool ok, store::Id modelId, const QString& message);

 protected:
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;
  // Re-reads the library when the page is shown: `hearth-cli train` in another process may have
  // added versions (adapters) this window was not told about.
  void showEvent(QShowEvent* event) override;

 private:
  void reload();
  void describeMissing();
  void startNextImport();
  void finishImport();
  void showSelection();
  void updateFit();
  void updateGpuFit();
  void chooseFile();
  void chooseFolder();
  void askRename();
  void askRemove();
  void showCompareMenu();
  void showError(const QString& text);

  AppContext& m_ctx;
  MessageBanner* m_banner;
  QLabel* m_empty;
  QTableView* m_view;
  ModelTableModel* m_table;
  QSortFilterProxyModel* m_proxy;
  QTreeWidget* m_lineage;
  QLabel* m_details;
  QSpinBox* m_fitContext;
  QLabel* m_fit;
  QLabel* m_gpuFit;
  QWidget* m_progressBox;
  QProgressBar* m_progress;
  QLabel* m_progressText;
  QPushButton* m_chat;
  QPushButton* m_compare;
  QPushButton* m_rename;
  QPushButton* m_remove;

  QStringList m_queue;
  QString m_importingPath;
  bool m_importing = false;
  QFutureWatcher<ModelFacts> m_importWatcher;
  QSet<store::Id> m_describing;  // models whose facts are being read
  std::optional<BackendInfo> m_backends;  // unknown until the worker (or a test) says
  bool m_backendsGiven = false;
  QFutureWatcher<BackendInfo> m_backendWatcher;
};

}  // namespace hearth::ui
