/* ComparePage: side by side. One prompt goes to two model versions (say, a base and its fine-tune); the
 * answers stream next to each other; in blind mode the sides are assigned at random and the names are
 * hidden until the user picks the better answer, whose stored message gets the vote.
 *
 * Non-obvious choices (docs/chat.md, "Side by side"):
 * - Two workers, one per side, each on its own thread, so both answers stream at once and neither
 *   model is reloaded between comparisons.
 * - Each comparison is stored as a conversation: the prompt is one user message and both answers are
 *   its assistant children (siblings, each with its model version), so a comparison is also a branch
 *   the Chat page can open; the vote is Project::voteMessage(+1) on the chosen answer.
 */
#pragma once

#include <QWidget>
#include <optional>

#include "chat-worker.h"
#include "hearth/store/records.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

namespace hearth::ui {

class AppContext;
class ComparePane;

class ComparePage : public QWidget {
  Q_OBJECT
 public:
  ComparePage(AppContext& ctx, QWidget* parent = nullptr);
  ~ComparePage() override;

  bool setVersions(store::Id a, store::Id b);  // false when one is not listed
  void setBlind(bool on);
  void setMaxTokens(int n);
  void compare(const QString& prompt);
  void stop();
  // The user's pick: the left or the right answer is better. Stores the vote, reveals the names.
  void vote(bool left);

  bool bothDone() const { return m_done[0] && m_done[1]; }
  bool revealed() const { return m_revealed; }
  ComparePane* pane(bool left) const;
  // The stored answer shown on a side (0 until it is stored), and its model version.
  store::Id messageOnSide(bool left) const;
  store::Id versionOnSide(bool left) const;
  store::Id conversation() const { return m_conversationId; }
  QString errorText() const;

 signals:
  void answersDone();
  void voted(hearth::store::Id messageId);

 private:
  void refreshModels();
  void showError(const QString& text);
  void onReply(int model, const ChatReplyDone& done);
  void onFailed(int model, const QString& error);
  void updateTitles();
  void setRunning(bool running);
  int sideOf(int model) const { return (model == 0) == m_leftIsA ? 0 : 1; }  // 0 left, 1 right

  AppContext& m_ctx;
  ChatController* m_controllers[2] = {nullptr, nullptr};  // per model (A, B)
  store::Id m_loaded[2] = {0, 0};
  quint64 m_request[2] = {0, 0};
  bool m_done[2] = {true, true};
  store::Id m_message[2] = {0, 0};  // per model
  store::Id m_version[2] = {0, 0};  // per model, of the running comparison
  QString m_modelName[2];
  bool m_leftIsA = true;
  bool m_revealed = true;
  store::Id m_conversationId = 0;

  QComboBox* m_pick[2] = {nullptr, nullptr};
  QCheckBox* m_blind = nullptr;
  QSpinBox* m_maxTokens = nullptr;
  QPlainTextEdit* m_prompt = nullptr;
  QPushButton* m_go = nullptr;
  QPushButton* m_stop = nullptr;
  QPushButton* m_voteLeft = nullptr;
  QPushButton* m_voteRight = nullptr;
  QLabel* m_status = nullptr;
  QLabel* m_error = nullptr;
  ComparePane* m_panes[2] = {nullptr, nullptr};  // left, right
};

}  // namespace hearth::ui
