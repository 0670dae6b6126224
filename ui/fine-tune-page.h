/* FineTunePage: until the fine-tune wizard exists, this page says how fine-tuning is done today:
 * `hearth-cli train CONFIG.yaml --project THIS_PROJECT`, lists the example configurations shipped in
 * resources/examples/, and copies the exact command for one of them.
 *
 * Non-obvious choice: no pretend wizard: the page only offers what works now, and the resulting run
 * shows up on the Runs page (and its adapter on the Models page) because it writes this project.
 *
 * Threading: GUI thread only.
 */
#pragma once

#include <QStringList>
#include <QWidget>

class QLabel;
class QListWidget;
class QPlainTextEdit;

namespace hearth::ui {

class AppContext;

class FineTunePage : public QWidget {
  Q_OBJECT
 public:
  explicit FineTunePage(AppContext& ctx, QWidget* parent = nullptr);

  // Folders searched for example configurations: $HEARTH_RESOURCES/examples, then resources/examples
  // in a parent of the program's folder (a build tree), then ../share/hearth/examples (installed).
  static QStringList exampleFolders();
  QStringList exampleFiles() const;
  // The command line for the selected example (empty when none).
  QString command() const;
  void copyCommand();

 private:
  void reload();
  void showSelected();

  AppContext& m_ctx;
  QLabel* m_where;
  QListWidget* m_examples;
  QPlainTextEdit* m_preview;
  QLabel* m_command;
  QString m_cli;
};

}  // namespace hearth::ui
