/* What every page of the window shares: the open project (one SQLite connection, used on the GUI thread
 * only), the settings, and the signals that tell pages the project changed.
 *
 * Non-obvious choice: workers (generation, model loading) never touch this Project: they open their own
 * connection on their own thread when they must write (WAL lets both work), and send value structs back.
 * Pages call notify*() after they change the project so the other pages refresh.
 */
#pragma once

#include <QObject>
#include <QString>
#include <memory>

#include "hearth/store/project.h"

namespace hearth::telemetry {
class Sampler;
}

namespace hearth::ui {

class AppContext : public QObject {
  Q_OBJECT
 public:
  // Opens (creating when missing) the project at `path`. On failure project() is null and
  // lastError() says why; the window then shows that message instead of crashing.
  explicit AppContext(const QString& projectPath, QObject* parent = nullptr);
  ~AppContext() override;

  store::Project* project() { return m_project.get(); }
  QString projectPath() const { return m_path; }
  QString lastError() const { return m_error; }

  // Lets another page act: the Models page asks the Chat page to start a chat with a version, the
  // Compare page to compare two versions.
  void requestChatWith(store::Id versionId) { emit chatWithRequested(versionId); }
  void requestCompare(store::Id versionA, store::Id versionB) { emit compareRequested(versionA, versionB); }
  void notifyModelsChanged() { emit modelsChanged(); }
  void notifyConversationsChanged() { emit conversationsChanged(); }
  void notifyPromptsChanged() { emit promptsChanged(); }
  void notifyRunsChanged() { emit runsChanged(); }
  // A line for the status bar (errors are shown by the page that met them).
  void showStatus(const QString& text) { emit statusMessage(text); }
  // Inserts a prompt's text into the chat input (the prompt library's "Use" button).
  void insertPrompt(const QString& text, bool asSystemPrompt) { emit promptInsertRequested(text, asSystemPrompt); }
  // Ctrl+N: the chat page starts a new conversation (the window shows the chat page first).
  void requestNewChat() { emit newChatRequested(); }

  // The one power sampler of the window (started on first use, 1 Hz, its own thread; thread-safe).
  // Shared by the status bar and any energy meter (chat replies) so the machine is read once.
  // Null when telemetry could not be set up; lastSamplerError() then says why.
  telemetry::Sampler* sampler();
  QString lastSamplerError() const { return m_samplerError; }

 signals:
  void modelsChanged();
  void conversationsChanged();
  void promptsChanged();
  void runsChanged();
  void statusMessage(const QString& text);
  void chatWithRequested(store::Id versionId);
  void compareRequested(store::Id versionA, store::Id versionB);
  void promptInsertRequested(const QString& text, bool asSystemPrompt);
  void newChatRequested();

 private:
  QString m_path;
  QString m_error;
  std::unique_ptr<store::Project> m_project;
  std::unique_ptr<telemetry::Sampler> m_sampler;
  QString m_samplerError;
  bool m_samplerTried = false;
};

}  // namespace hearth::ui
