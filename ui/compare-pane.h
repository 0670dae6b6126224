/* ComparePane: one side of the side-by-side view: a title (the model, or "Answer A" while blind), the
 * answer rendered as Markdown as it streams, and its figures.
 *
 * Non-obvious choice: the pane knows nothing of models or votes; the page decides what the title says,
 * so blind mode cannot leak a name through the pane.
 */
#pragma once

#include <QFrame>

class QLabel;
class QScrollArea;

namespace hearth::ui {

class ComparePane : public QFrame {
  Q_OBJECT
 public:
  explicit ComparePane(const QString& objectName, QWidget* parent = nullptr);
  void setTitle(const QString& title);
  QString title() const;
  void clear();
  void append(const QString& text);
  void setText(const QString& text);
  QString text() const { return m_text; }
  void setFooter(const QString& footer);
  void setHighlighted(bool on);

 private:
  QLabel* m_title = nullptr;
  QLabel* m_body = nullptr;
  QLabel* m_footer = nullptr;
  QScrollArea* m_scroll = nullptr;
  QString m_text;
};

}  // namespace hearth::ui
