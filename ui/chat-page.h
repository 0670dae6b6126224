/* ChatPage: the Chat view of the window: conversations (list, search, rename, new), the model picker,
 * the messages of the branch on show with streaming replies, the input, and the settings side panel.
 *
 * Non-obvious choices (docs/chat.md):
 * - The conversation is a tree in the store (an edit or a regeneration adds a sibling); the page keeps,
 *   per parent, which child is on show (default: the newest), and the view shows that one path.
 * - Saved as it happens: the user message is written (GUI thread, AppContext's connection) when sent;
 *   the reply is written by the worker on its own connection when it ends, partial after Stop.
 * - The model is loaded lazily (first send, or when the user picks one), not when the page is built.
 * - "Run on" (CPU / GPU / Automatic) applies at the next load: a changed choice reloads the model at the
 *   next send; after each reply a line says where it ran and, on a CPU fallback, why (docs/chat.md).
 */
#pragma once

#include <QHash>
#include <QWidget>
#include <vector>

#include "chat-worker.h"
#include "hearth/session/chat-session.h"
#include "hearth/store/records.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QListView;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QTimer;

namespace hearth::ui {

class AppContext;
class ChatConversationModel;
class ChatMessageView;
class ChatSettingsPanel;

class ChatPage : public QWidget {
  Q_OBJECT
 public:
  ChatPage(AppContext& ctx, QWidget* parent = nullptr);
  ~ChatPage() override;

  store::Id currentConversation() const { return m_conversationId; }
  // Shows a conversation (0: a new, not yet stored one).
  void openConversation(store::Id id);
  void newConversation();
  // Removes a conversation and its messages from the project (the list's Delete action asks first).
  bool deleteConversation(store::Id id);
  // Picks a model version for the conversation on show and loads it. False when it is not listed.
  bool selectModelVersion(store::Id versionId);
  // Sends `text` as the user's next message (what Send / Ctrl+Enter do with the input).
  void send(const QString& text);
  void stop();
  void regenerate(store::Id assistantId);
  void editAndResend(store::Id userMessageId, const QString& text);
  void switchBranch(store::Id messageId, int delta);

  bool isGenerating() const;
  QString errorText() const;
  ChatMessageView* messageView() const { return m_view; }
  ChatSettingsPanel* settingsPanel() const { return m_settings; }
  // The messages of the branch on show, root first.
  std::vector<store::Message> currentPath() const;

 signals:
  void replyFinished(hearth::store::Id messageId);
  void errorShown(const QString& text);

 private:
  void showError(const QString& text);
  void clearError();
  void refreshModels();
  void reloadConversations();
  void notifyOthers();  // AppContext::conversationsChanged for the other pages
  void reloadMessages();
  void render();
  bool ensureModel();
  void startReply(store::Id userMessageId);
  void setBusy(bool busy);
  void saveSystemPrompt();
  std::optional<store::Id> pickedVersion() const;
  InferenceOptions::Device runOnDevice() const;  // the "Run on" choice

  AppContext& m_ctx;
  ChatController* m_controller = nullptr;
  ChatConversationModel* m_conversations = nullptr;
  QListView* m_list = nullptr;
  QLineEdit* m_search = nullptr;
  QComboBox* m_modelPicker = nullptr;
  QLabel* m_modelStatus = nullptr;
  QComboBox* m_runOn = nullptr;  // CPU / GPU (CUDA) / Automatic, applied at the next model load
  QLabel* m_ranOn = nullptr;     // where the last reply ran, and why the CPU when a GPU was asked for
  QProgressBar* m_busyBar = nullptr;
  QLabel* m_error = nullptr;
  ChatMessageView* m_view = nullptr;
  QPlainTextEdit* m_input = nullptr;
  QPushButton* m_send = nullptr;
  QPushButton* m_stop = nullptr;
  ChatSettingsPanel* m_settings = nullptr;
  QTimer* m_saveTimer = nullptr;

  store::Id m_conversationId = 0;
  std::vector<store::Message> m_messages;       // every message of the conversation (all branches)
  QHash<store::Id, store::Id> m_selectedChild;  // parent id (0: root) -> child on show
  QHash<store::Id, session::ChatSettings> m_unsentSettings;  // per conversation, until a message stores them
  store::Id m_loadedVersion = 0;                // version loaded (or loading) on the worker
  InferenceOptions::Device m_loadedDevice = InferenceOptions::Device::cpu;  // its "Run on" choice
  quint64 m_replyRequest = 0;
  bool m_notifying = false;
};

}  // namespace hearth::ui
