/* MessageBanner: see message-banner.h.
 *
 * Non-obvious choice: the text is selectable, so a user can copy a long error (a file path and the
 * offset where it broke) into a bug report.
 */
#include "message-banner.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QStyle>
#include <QToolButton>

namespace hearth::ui {

MessageBanner::MessageBanner(QWidget* parent) : QFrame(parent) {
  setObjectName(QStringLiteral("messageBanner"));
  setFrameShape(QFrame::StyledPanel);
  setAutoFillBackground(true);
  setBackgroundRole(QPalette::AlternateBase);
  auto* layout = new QHBoxLayout(this);
  layout->setContentsMargins(8, 6, 4, 6);
  m_icon = new QLabel(this);
  m_text = new QLabel(this);
  m_text->setObjectName(QStringLiteral("messageBannerText"));
  m_text->setWordWrap(true);
  m_text->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_text->setTextFormat(Qt::PlainText);
  auto* close = new QToolButton(this);
  close->setAutoRaise(true);
  close->setIcon(style()->standardIcon(QStyle::SP_TitleBarCloseButton));
  close->setToolTip(tr("Dismiss"));
  connect(close, &QToolButton::clicked, this, &MessageBanner::clear);
  layout->addWidget(m_icon, 0, Qt::AlignTop);
  layout->addWidget(m_text, 1);
  layout->addWidget(close, 0, Qt::AlignTop);
  hide();
}

void MessageBanner::showMessage(Kind kind, const QString& text) {
  m_kind = kind;
  QStyle::StandardPixmap icon = kind == Kind::error     ? QStyle::SP_MessageBoxCritical
                                : kind == Kind::warning ? QStyle::SP_MessageBoxWarning
                                                        : QStyle::SP_MessageBoxInformation;
  const int size = style()->pixelMetric(QStyle::PM_SmallIconSize, nullptr, this);
  m_icon->setPixmap(style()->standardIcon(icon, nullptr, this).pixmap(QSize(size, size), devicePixelRatioF()));
  m_text->setText(text);
  show();
}

void MessageBanner::clear() {
  m_text->clear();
  hide();
}

QString MessageBanner::text() const { return isHidden() ? QString() : m_text->text(); }

}  // namespace hearth::ui
