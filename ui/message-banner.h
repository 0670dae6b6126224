/* MessageBanner: an inline strip at the top of a page that says what went wrong (or what happened),
 * with an icon from the style and a close button, instead of a modal box that blocks the window.
 *
 * Non-obvious choice: no colours of its own: the frame and the style's standard icons follow the
 * system palette, so it reads the same in light and dark themes.
 *
 * Threading: GUI thread only.
 */
#pragma once

#include <QFrame>

class QLabel;

namespace hearth::ui {

class MessageBanner : public QFrame {
  Q_OBJECT
 public:
  enum class Kind { info, warning, error };
  explicit MessageBanner(QWidget* parent = nullptr);

  void showMessage(Kind kind, const QString& text);
  void clear();  // hides it
  QString text() const;  // empty while hidden
  Kind kind() const { return m_kind; }

 private:
  QLabel* m_icon;
  QLabel* m_text;
  Kind m_kind = Kind::info;
};

}  // namespace hearth::ui
