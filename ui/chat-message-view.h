/* ChatMessageView: the scrolling column of ChatMessageWidgets for the branch on show, plus the reply
 * being streamed at its end.
 *
 * Non-obvious choice: the view is rebuilt from value items whenever the branch changes (the store is the
 * truth), and only the streaming bubble is updated in place; it keeps the scroll at the bottom while
 * text arrives unless the user scrolled up to read.
 */
#pragma once

#include <QScrollArea>
#include <QVector>

#include "chat-message-widget.h"

class QVBoxLayout;

namespace hearth::ui {

class ChatMessageView : public QScrollArea {
  Q_OBJECT
 public:
  explicit ChatMessageView(QWidget* parent = nullptr);

  void setMessages(const QVector<ChatMessageItem>& items);
  // Adds an empty assistant bubble that appendStreaming() fills; endStreaming() removes it (the stored
  // reply then comes with the next setMessages()).
  void beginStreaming();
  void appendStreaming(const QString& text);
  void endStreaming();
  QString streamingText() const;
  void setBusy(bool busy);

  int messageCount() const;  // stored messages on show (the streaming bubble not counted)
  QVector<ChatMessageWidget*> messageWidgets() const;

 signals:
  void editSubmitted(hearth::store::Id id, const QString& newText);
  void regenerateRequested(hearth::store::Id id);
  void branchRequested(hearth::store::Id id, int delta);

 private:
  void scrollToEndSoon();
  QWidget* m_column = nullptr;
  QVBoxLayout* m_layout = nullptr;
  QVector<ChatMessageWidget*> m_widgets;
  ChatMessageWidget* m_streaming = nullptr;
  bool m_busy = false;
};

}  // namespace hearth::ui
