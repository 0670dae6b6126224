/* ChatMessageWidget: a message bubble with Markdown body, figures and actions.
 *
 * Non-obvious choice: the bubble's colours come from the palette (Base / AlternateBase / Mid), never
 * from fixed colours, so the view follows the system's light or dark theme.
 */
#include "chat-message-widget.h"

#include <QClipboard>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QToolButton>
#include <QVBoxLayout>

namespace hearth::ui {

ChatMessageWidget::ChatMessageWidget(const ChatMessageItem& item, QWidget* parent) : QFrame(parent), m_item(item) {
  setObjectName(QStringLiteral("chatMessage-%1").arg(item.id));
  setFrameShape(QFrame::StyledPanel);
  setAutoFillBackground(true);
  setBackgroundRole(item.role == QLatin1String("user") ? QPalette::AlternateBase : QPalette::Base);
  auto* col = new QVBoxLayout(this);
  col->setContentsMargins(10, 6, 10, 6);

  auto* head = new QHBoxLayout;
  auto* who = new QLabel(item.role == QLatin1String("user")        ? tr("<b>You</b>")
                         : item.role == QLatin1String("assistant") ? tr("<b>Assistant</b>")
                                                                   : QStringLiteral("<b>%1</b>").arg(item.role),
                         this);
  head->addWidget(who);
  head->addStretch(1);
  m_prev = new QToolButton(this);
  m_prev->setText(QStringLiteral("‹"));
  m_prev->setObjectName(QStringLiteral("branchPrev"));
  m_prev->setToolTip(tr("Previous branch"));
  m_branch = new QLabel(QStringLiteral("%1/%2").arg(item.siblingIndex + 1).arg(item.siblingCount), this);
  m_branch->setObjectName(QStringLiteral("branchLabel"));
  m_next = new QToolButton(this);
  m_next->setText(QStringLiteral("›"));
  m_next->setObjectName(QStringLiteral("branchNext"));
  m_next->setToolTip(tr("Next branch"));
  bool branches = item.siblingCount > 1;
  m_prev->setVisible(branches);
  m_branch->setVisible(branches);
  m_next->setVisible(branches);
  m_prev->setEnabled(item.siblingIndex > 0);
  m_next->setEnabled(item.siblingIndex + 1 < item.siblingCount);
  head->addWidget(m_prev);
  head->addWidget(m_branch);
  head->addWidget(m_next);
  col->addLayout(head);

  m_body = new QLabel(this);
  m_body->setObjectName(QStringLiteral("messageBody"));
  m_body->setTextFormat(Qt::MarkdownText);
  m_body->setWordWrap(true);
  m_body->setTextInteractionFlags(Qt::TextBrowserInteraction);
  m_body->setOpenExternalLinks(false);
  m_body->setText(item.content.isEmpty() && item.id == 0 ? QStringLiteral("…") : item.content);
  col->addWidget(m_body);

  m_editor = new QPlainTextEdit(this);
  m_editor->setObjectName(QStringLiteral("editEditor"));
  m_editor->setVisible(false);
  m_sendEdit = new QPushButton(tr("Send"), this);
  m_sendEdit->setObjectName(QStringLiteral("editSend"));
  m_cancelEdit = new QPushButton(tr("Cancel"), this);
  m_sendEdit->setVisible(false);
  m_cancelEdit->setVisible(false);
  col->addWidget(m_editor);
  auto* editRow = new QHBoxLayout;
  editRow->addStretch(1);
  editRow->addWidget(m_cancelEdit);
  editRow->addWidget(m_sendEdit);
  col->addLayout(editRow);

  auto* foot = new QHBoxLayout;
  QString footer = item.footer;
  if (item.partial) footer = footer.isEmpty() ? tr("stopped") : tr("stopped · %1").arg(footer);
  auto* figures = new QLabel(footer, this);
  figures->setObjectName(QStringLiteral("messageFooter"));
  figures->setForegroundRole(QPalette::PlaceholderText);
  foot->addWidget(figures);
  foot->addStretch(1);
  m_copy = new QToolButton(this);
  m_copy->setText(tr("Copy"));
  m_copy->setObjectName(QStringLiteral("copyButton"));
  m_edit = new QToolButton(this);
  m_edit->setText(tr("Edit"));
  m_edit->setObjectName(QStringLiteral("editButton"));
  m_edit->setVisible(item.role == QLatin1String("user") && item.id != 0);
  m_regenerate = new QToolButton(this);
  m_regenerate->setText(tr("Regenerate"));
  m_regenerate->setObjectName(QStringLiteral("regenerateButton"));
  m_regenerate->setVisible(item.role == QLatin1String("assistant") && item.id != 0);
  foot->addWidget(m_copy);
  foot->addWidget(m_edit);
  foot->addWidget(m_regenerate);
  col->addLayout(foot);

  connect(m_copy, &QToolButton::clicked, this,
          [this] { QGuiApplication::clipboard()->setText(m_item.content); });
  connect(m_edit, &QToolButton::clicked, this, &ChatMessageWidget::startEdit);
  connect(m_regenerate, &QToolButton::clicked, this, [this] { emit regenerateRequested(m_item.id); });
  connect(m_prev, &QToolButton::clicked, this, [this] { emit branchRequested(m_item.id, -1); });
  connect(m_next, &QToolButton::clicked, this, [this] { emit branchRequested(m_item.id, +1); });
  connect(m_sendEdit, &QPushButton::clicked, this, [this] { finishEdit(true); });
  connect(m_cancelEdit, &QPushButton::clicked, this, [this] { finishEdit(false); });
}

void ChatMessageWidget::appendText(const QString& text) {
  m_item.content += text;
  m_body->setText(m_item.content);
}

void ChatMessageWidget::setBusy(bool busy) {
  m_edit->setEnabled(!busy);
  m_regenerate->setEnabled(!busy);
  m_sendEdit->setEnabled(!busy);
  m_prev->setEnabled(!busy && m_item.siblingIndex > 0);
  m_next->setEnabled(!busy && m_item.siblingIndex + 1 < m_item.siblingCount);
}

void ChatMessageWidget::startEdit() {
  m_editor->setPlainText(m_item.content);
  m_body->setVisible(false);
  m_editor->setVisible(true);
  m_sendEdit->setVisible(true);
  m_cancelEdit->setVisible(true);
  m_editor->setFocus();
}

void ChatMessageWidget::finishEdit(bool send) {
  QString text = m_editor->toPlainText();
  m_body->setVisible(true);
  m_editor->setVisible(false);
  m_sendEdit->setVisible(false);
  m_cancelEdit->setVisible(false);
  if (send && !text.trimmed().isEmpty()) emit editSubmitted(m_item.id, text);
}

}  // namespace hearth::ui
