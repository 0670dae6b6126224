/* ChatMessageWidget: one message of the chat view: who said it, the text rendered as Markdown, the
 * reply's figures (tokens/s, joules per token, measured or estimated), and its actions: Copy, Edit and
 * resend (user), Regenerate (assistant), and ‹ n/m › to move between sibling branches.
 *
 * Non-obvious choice: the body is a QLabel with Qt::MarkdownText (Qt's own CommonMark via
 * QTextDocument), re-rendered on each streamed chunk; chunks arrive at most every ~30 ms, so the cost
 * stays small, and a QLabel sizes itself to its text inside the scrolling column.
 */
#pragma once

#include <QFrame>
#include <QString>

#include "hearth/store/records.h"

class QLabel;
class QPlainTextEdit;
class QPushButton;
class QToolButton;

namespace hearth::ui {

struct ChatMessageItem {
  store::Id id = 0;  // 0: the reply being streamed
  QString role;
  QString content;
  QString footer;    // "12.3 tok/s · 0.41 J/token (estimated)"
  int siblingIndex = 0, siblingCount = 1;  // 0-based position among messages with the same parent
  bool partial = false;
};

class ChatMessageWidget : public QFrame {
  Q_OBJECT
 public:
  explicit ChatMessageWidget(const ChatMessageItem& item, QWidget* parent = nullptr);
  const ChatMessageItem& item() const { return m_item; }
  void appendText(const QString& text);  // streaming
  QString text() const { return m_item.content; }
  void setBusy(bool busy);               // actions disabled while a reply is generated

 signals:
  void editSubmitted(hearth::store::Id id, const QString& newText);
  void regenerateRequested(hearth::store::Id id);
  void branchRequested(hearth::store::Id id, int delta);

 private:
  void startEdit();
  void finishEdit(bool send);
  ChatMessageItem m_item;
  QLabel* m_body = nullptr;
  QPlainTextEdit* m_editor = nullptr;
  QPushButton* m_sendEdit = nullptr;
  QPushButton* m_cancelEdit = nullptr;
  QToolButton* m_copy = nullptr;
  QToolButton* m_edit = nullptr;
  QToolButton* m_regenerate = nullptr;
  QToolButton* m_prev = nullptr;
  QToolButton* m_next = nullptr;
  QLabel* m_branch = nullptr;
};

}  // namespace hearth::ui
