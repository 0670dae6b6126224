/* FineTunePage: "New fine-tune…" opens the FineTuneWizard; the runs it starts are queued in the page's
 * RunQueue (one child `hearth-cli train` at a time) and listed with their live RunDashboard. A finished
 * run's model version appears in the library (notifyModelsChanged) and the page offers "Chat with it" and
 * "Compare with base". A second tab keeps the command-line way: the example configurations shipped in
 * resources/examples/ and the exact `hearth-cli train` command for one of them.
 *
 * Non-obvious choice: the page owns the RunQueue, so runs live as long as the main window (and its
 * AppContext), not as long as a dashboard: switching pages or selecting another run leaves them running.
 *
 * Threading: GUI thread only.
 */
#pragma once

#include <QStringList>
#include <QWidget>
#include <map>
#include <optional>

#include "run-queue.h"

class QLabel;
class QListWidget;
class QPlainTextEdit;
class QPushButton;
class QStackedWidget;

namespace hearth::ui {

class AppContext;
class FineTuneWizard;
class RunDashboard;
class RunQueue;

class FineTunePage : public QWidget {
  Q_OBJECT
 public:
  explicit FineTunePage(AppContext& ctx, QWidget* parent = nullptr);

  // Folders searched for example configurations: $HEARTH_RESOURCES/examples, then resources/examples
  // in a parent of the program's folder (a build tree), then ../share/hearth/examples (installed).
  static QStringList exampleFolders();
  QStringList exampleFiles() const;
  // The command line for the selected example (empty when none).
  QString command() const;
  void copyCommand();

  RunQueue& queue() { return *m_queue; }
  // Opens the wizard (non-modal); on Start its run is queued and its dashboard shown. Returns it.
  FineTuneWizard* newFineTune();
  // The dashboard of a job (null when unknown).
  RunDashboard* dashboard(int jobId) const;
  int currentJob() const;
  void chatWithCurrent();
  void compareCurrentWithBase();

 private:
  void reload();
  void showSelected();
  void addJob(int jobId);
  void updateJob(int jobId);
  void updateActions();
  std::optional<store::Id> baseOf(const RunQueue::Job& j) const;

  AppContext& m_ctx;
  QLabel* m_where;
  QListWidget* m_examples;
  QPlainTextEdit* m_preview;
  QLabel* m_command;
  QString m_cli;
  RunQueue* m_queue;
  QListWidget* m_jobs;
  QStackedWidget* m_dashboards;
  std::map<int, RunDashboard*> m_dashboardOf;
  QPushButton *m_chat, *m_compare;
};

}  // namespace hearth::ui
