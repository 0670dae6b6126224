/* MainWindow: navigation list (Chat, Models, Compare, Prompts, Runs, Fine-tune) beside a stack of the
 * pages from pages.h, menus with the desktop shortcuts (Ctrl+N new chat, Ctrl+1..6 pages), and the
 * status bar with the hardware and live power.
 *
 * Non-obvious choice: when the project could not be opened the window still opens, showing the reason
 * and an "Open another project…" button instead of the pages, so a damaged or foreign file never
 * means a program that does not start.
 *
 * Threading: GUI thread only. The window does not own the AppContext (main() or the test does).
 */
#pragma once

#include <QMainWindow>

class QListWidget;
class QStackedWidget;
class QSplitter;

namespace hearth::ui {

class AppContext;
class HardwareStatus;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  enum Page { CHAT, MODELS, COMPARE, PROMPTS, RUNS, FINE_TUNE, PAGE_COUNT };

  explicit MainWindow(AppContext& ctx, QWidget* parent = nullptr);

  void showPage(int page);
  int currentPage() const;
  QWidget* page(int page) const;  // null when the project could not be opened
  HardwareStatus* hardwareStatus() const { return m_hardware; }
  static QString pageTitle(int page);

 signals:
  // File > New / Open project: main() opens it in a fresh window and closes this one.
  void openProjectRequested(const QString& path);

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  void buildMenus();
  void restoreLayout();
  void saveLayout();
  void chooseProject(bool create);

  AppContext& m_ctx;
  QSplitter* m_splitter = nullptr;
  QListWidget* m_nav = nullptr;
  QStackedWidget* m_stack = nullptr;
  QWidget* m_pages[PAGE_COUNT] = {};
  HardwareStatus* m_hardware = nullptr;
};

}  // namespace hearth::ui
