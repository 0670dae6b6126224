/* ComparePane: title, streamed Markdown body, figures.
 *
 * Non-obvious choice: the highlight of the chosen answer is the palette's Highlight colour as a frame,
 * not a fixed colour, so it reads in light and dark themes.
 */
#include "compare-pane.h"

#include <QLabel>
#include <QScrollArea>
#include <QScrollBar>
#include <QVBoxLayout>

namespace hearth::ui {

ComparePane::ComparePane(const QString& objectName, QWidget* parent) : QFrame(parent) {
  setObjectName(objectName);
  setFrameShape(QFrame::StyledPanel);
  auto* col = new QVBoxLayout(this);
  m_title = new QLabel(this);
  m_title->setObjectName(QStringLiteral("paneTitle"));
  m_title->setTextFormat(Qt::PlainText);
  QFont f = m_title->font();
  f.setBold(true);
  m_title->setFont(f);
  col->addWidget(m_title);
  m_scroll = new QScrollArea(this);
  m_scroll->setWidgetResizable(true);
  m_scroll->setFrameShape(QFrame::NoFrame);
  m_body = new QLabel(m_scroll);
  m_body->setObjectName(QStringLiteral("paneBody"));
  m_body->setTextFormat(Qt::MarkdownText);
  m_body->setWordWrap(true);
  m_body->setAlignment(Qt::AlignTop | Qt::AlignLeft);
  m_body->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_scroll->setWidget(m_body);
  col->addWidget(m_scroll, 1);
  m_footer = new QLabel(this);
  m_footer->setObjectName(QStringLiteral("paneFooter"));
  m_footer->setForegroundRole(QPalette::PlaceholderText);
  col->addWidget(m_footer);
}

void ComparePane::setTitle(const QString& title) { m_title->setText(title); }
QString ComparePane::title() const { return m_title->text(); }

void ComparePane::clear() {
  m_text.clear();
  m_body->clear();
  m_footer->clear();
  setHighlighted(false);
}

void ComparePane::append(const QString& text) {
  m_text += text;
  m_body->setText(m_text);
  m_scroll->verticalScrollBar()->setValue(m_scroll->verticalScrollBar()->maximum());
}

void ComparePane::setText(const QString& text) {
  m_text = text;
  m_body->setText(m_text);
}

void ComparePane::setFooter(const QString& footer) { m_footer->setText(footer); }

void ComparePane::setHighlighted(bool on) {
  setStyleSheet(on ? QStringLiteral("QFrame#%1 { border: 2px solid palette(highlight); }")
                         .arg(objectName())
                   : QString());
}

}  // namespace hearth::ui
