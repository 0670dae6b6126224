/* RunsPage: the Runs page: a sortable, filterable table of the project's runs (RunsTableModel),
 * refreshed when a page reports a change (AppContext::runsChanged) and every 5 s, because `hearth-cli
 * train` in another process writes runs this window is not told about. Selecting runs and pressing
 * Compare opens the comparison view (run-compare-view.h) below the table.
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
class QLineEdit;
class QPushButton;
class QSortFilterProxyModel;
class QSplitter;
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
  // Ids of the selected runs, in table order.
  QList<long long> selectedRunIds() const;
  // Opens the comparison of `runIds` below the table (replacing an earlier one); returns the view.
  QWidget* compareRuns(const QList<long long>& runIds);
  QWidget* compareView() const { return m_compare; }

 private:
  AppContext& m_ctx;
  MessageBanner* m_banner;
  QLabel* m_empty;
  QTableView* m_view;
  RunsTableModel* m_table;
  QSortFilterProxyModel* m_proxy;
  QLineEdit* m_filter;
  QPushButton* m_compareButton;
  QSplitter* m_splitter;
  QWidget* m_compare = nullptr;
  QTimer m_timer;
};

}  // namespace hearth::ui
