/* ChatWorker: the object that loads a chat model and generates replies on a worker thread, and
 * ChatController, the GUI-thread object that owns that thread and talks to the worker.
 *
 * Non-obvious choices (docs/chat.md, "Threading"):
 * - Only value structs cross threads (ChatLoadRequest, ChatGenerateRequest, ChatModelInfo, ChatReplyDone,
 *   text chunks), through queued connections; never a blocking one.
 * - The worker writes each finished reply (or the partial one after Stop) through its OWN store::Project
 *   connection, opened on the worker thread the first time it writes; the GUI thread only writes the
 *   user's message when it is sent. So a reply is stored even when the page is gone by the time it ends.
 * - Stop cannot travel as a queued call (the worker's event loop is busy generating), so the controller
 *   writes the id of the last request to cancel into an atomic the worker's keep-going check reads; a
 *   later request has a larger id and is not cancelled by an earlier Stop.
 * - Text is batched on the worker: a chunk is emitted at most every CHUNK_MS milliseconds, so a fast
 *   model does not flood the GUI thread's event queue.
 */
#pragma once

#include <QObject>
#include <QString>
#include <QThread>
#include <atomic>
#include <memory>
#include <optional>

#include "hearth/session/chat-session.h"
#include "hearth/store/project.h"

namespace hearth::ui {

struct ChatLoadRequest {
  quint64 id = 0;
  session::ChatModelOptions options;
};

struct ChatGenerateRequest {
  quint64 id = 0;
  QString projectPath;                    // where the worker stores the reply; empty: not stored
  store::Id conversationId = 0;
  store::Id parentId = 0;                 // the user message replied to
  std::optional<store::Id> versionId;     // stored with the reply
  std::vector<session::ChatTurn> branch;  // root first, ending with the user's turn
  session::ChatSettings settings;
};

struct ChatModelInfo {
  quint64 id = 0;
  QString name, architecture, parameters, modelTemplate;
  bool fallbackTemplate = false;  // the model has no template: ChatML is used
  bool lora = false;
  double loadSeconds = 0;
};

struct ChatReplyDone {
  quint64 id = 0;
  store::Id messageId = 0;  // 0: not stored (see storeError)
  store::Id conversationId = 0;
  QString text;
  QString stop;             // stop_reason_name()
  bool partial = false;     // stopped by the user
  qint64 promptTokens = 0, completionTokens = 0;
  double tokensPerSecond = 0;
  bool hasEnergy = false;
  double joules = 0;
  bool estimated = true;
  QString backend;      // what computed it: "cpu" or e.g. "cuda:0 NVIDIA H200"
  QString backendNote;  // why the CPU served although a GPU was asked for; empty otherwise
  QString storeError;
};

class ChatWorker : public QObject {
  Q_OBJECT
 public:
  static constexpr int CHUNK_MS = 30;
  explicit ChatWorker(std::shared_ptr<std::atomic<quint64>> cancelUpTo);
  ~ChatWorker() override;

 public slots:
  void load(const hearth::ui::ChatLoadRequest& request);
  void generate(const hearth::ui::ChatGenerateRequest& request);

 signals:
  void loading(quint64 id, const QString& what);
  void loaded(const hearth::ui::ChatModelInfo& info);
  void loadFailed(quint64 id, const QString& error);
  void chunk(quint64 id, const QString& text);
  void replied(const hearth::ui::ChatReplyDone& done);
  void failed(quint64 id, const QString& error);

 private:
  bool keepGoing(quint64 id) const;
  std::unique_ptr<session::ChatSession> m_session;
  std::unique_ptr<store::Project> m_project;  // opened on this worker's thread
  QString m_projectPath;
  std::shared_ptr<std::atomic<quint64>> m_cancelUpTo;
};

// Owns one worker thread and its ChatWorker. Lives on the GUI thread; its signals arrive there.
class ChatController : public QObject {
  Q_OBJECT
 public:
  explicit ChatController(QObject* parent = nullptr);
  ~ChatController() override;  // stops generation, quits and waits for the thread

  quint64 load(const session::ChatModelOptions& options);
  quint64 generate(ChatGenerateRequest request);  // fills request.id
  void stop();                                    // cancels every request sent so far
  bool generating() const { return m_generating != 0; }
  bool loading() const { return m_loading != 0; }

 signals:
  void loadingModel(const QString& what);
  void modelLoaded(const hearth::ui::ChatModelInfo& info);
  void modelFailed(const QString& error);
  void chunk(quint64 id, const QString& text);
  void replied(const hearth::ui::ChatReplyDone& done);
  void failed(quint64 id, const QString& error);
  void busyChanged(bool busy);

  // To the worker (queued).
  void requestLoad(const hearth::ui::ChatLoadRequest& request);
  void requestGenerate(const hearth::ui::ChatGenerateRequest& request);

 private:
  QThread* m_thread = nullptr;
  std::shared_ptr<std::atomic<quint64>> m_cancelUpTo;
  quint64 m_nextId = 1;
  quint64 m_generating = 0;  // id of the reply in progress
  quint64 m_loading = 0;
};

}  // namespace hearth::ui

Q_DECLARE_METATYPE(hearth::ui::ChatLoadRequest)
Q_DECLARE_METATYPE(hearth::ui::ChatGenerateRequest)
Q_DECLARE_METATYPE(hearth::ui::ChatModelInfo)
Q_DECLARE_METATYPE(hearth::ui::ChatReplyDone)
