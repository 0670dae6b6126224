/* ChatMessageView: rebuilds its column from items; streams into one bubble.
 *
 * Non-obvious choice: "follow the end" is decided before new text is added (was the scroll bar at its
 * maximum?), and the scroll happens after layout in a zero-timer, when the new height is known.
 */
#include "chat-message-view.h"

#include <QScrollBar>
#include <QTimer>
#include <QVBoxLayout>

namespace hearth::ui {

ChatMessageView::ChatMessageView(QWidget* parent) : QScrollArea(parent) {
  setObjectName(QStringLiteral("chatMessageView"));
  setWidgetResizable(true);
  setFrameShape(QFrame::NoFrame);
  m_column = new QWidget(this);
  m_layout = new QVBoxLayout(m_column);
  m_layout->setContentsMargins(8, 8, 8, 8);
  m_layout->setSpacing(8);
  m_layout->addStretch(1);
  setWidget(m_column);
}

void ChatMessageView::setMessages(const QVector<ChatMessageItem>& items) {
  endStreaming();
  for (auto* w : m_widgets) {
    m_layout->removeWidget(w);
    w->deleteLater();
  }
  m_widgets.clear();
  for (const auto& item : items) {
    auto* w = new ChatMessageWidget(item, m_column);
    connect(w, &ChatMessageWidget::editSubmitted, this, &ChatMessageView::editSubmitted);
    connect(w, &ChatMessageWidget::regenerateRequested, this, &ChatMessageView::regenerateRequested);
    connect(w, &ChatMessageWidget::branchRequested, this, &ChatMessageView::branchRequested);
    w->setBusy(m_busy);
    m_layout->insertWidget(m_layout->count() - 1, w);
    m_widgets.push_back(w);
  }
  scrollToEndSoon();
}

void ChatMessageView::beginStreaming() {
  endStreaming();
  ChatMessageItem item;
  item.role = QStringLiteral("assistant");
  m_streaming = new ChatMessageWidget(item, m_column);
  m_streaming->setObjectName(QStringLiteral("chatMessageStreaming"));
  m_layout->insertWidget(m_layout->count() - 1, m_streaming);
  scrollToEndSoon();
}

void ChatMessageView::appendStreaming(const QString& text) {
  if (!m_streaming) return;
  auto* bar = verticalScrollBar();
  bool follow = bar->value() >= bar->maximum() - 4;
  m_streaming->appendText(text);
  if (follow) scrollToEndSoon();
}

void ChatMessageView::endStreaming() {
  if (!m_streaming) return;
  m_layout->removeWidget(m_streaming);
  m_streaming->deleteLater();
  m_streaming = nullptr;
}

QString ChatMessageView::streamingText() const { return m_streaming ? m_streaming->text() : QString(); }

void ChatMessageView::setBusy(bool busy) {
  m_busy = busy;
  for (auto* w : m_widgets) w->setBusy(busy);
}

int ChatMessageView::messageCount() const { return int(m_widgets.size()); }
QVector<ChatMessageWidget*> ChatMessageView::messageWidgets() const { return m_widgets; }

void ChatMessageView::scrollToEndSoon() {
  QTimer::singleShot(0, this, [this] { verticalScrollBar()->setValue(verticalScrollBar()->maximum()); });
}

}  // namespace hearth::ui
