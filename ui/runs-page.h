/* RunsPage: the Runs page: a sortable table of the project's runs (RunsTableModel), refreshed when a
 * page reports a change (AppContext::runsChanged) and every 5 s, because `hearth-cli train` in another
 * process writes runs this window is not told about.
 *
 * Non-obvious choice: the refresh re-reads through the window's own connection; WAL lets it see what
 * the training process committed without blocking it.
 *
 * Threading: GUI thread only.
 */
#pragma once

#include <QTimer>
#include <QWidget>

class QLabel;
class QSortFilterProxyModel;
class QTableView;

namespace hearth::ui {

class AppContext;
class MessageBanner;
class RunsTableModel;

class RunsPage : public QWidget {
  Q_OBJECT
 public:
  static constexpr int REFRESH_MS = 5000;
  explicit RunsPage(AppContext& ctx, QWidget* parent = nullptr);

  void refresh();
  RunsTableModel* tableModel() const { return m_table; }
  QString bannerText() const;

 private:
  AppContext& m_ctx;
  MessageBanner* m_banner;
  QLabel* m_empty;
  QTableView* m_view;
  RunsTableModel* m_table;
  QSortFilterProxyModel* m_proxy;
  QTimer m_timer;
};

}  // namespace hearth::ui
