/* RunsPage: see runs-page.h.
 *
 * Non-obvious choice: the 5 s tick re-reads only while the page is visible, so a hidden page does not
 * keep querying the database; runsChanged refreshes it in any case.
 */
#include "runs-page.h"

#include <QHeaderView>
#include <QLabel>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QVBoxLayout>

#include "app-context.h"
#include "message-banner.h"
#include "pages.h"
#include "runs-table-model.h"

namespace hearth::ui {

RunsPage::RunsPage(AppContext& ctx, QWidget* parent) : QWidget(parent), m_ctx(ctx) {
  setObjectName(QStringLiteral("runsPage"));
  auto* layout = new QVBoxLayout(this);
  m_banner = new MessageBanner(this);
  layout->addWidget(m_banner);
  m_empty = new QLabel(tr("No runs yet. Fine-tuning runs started with <code>hearth-cli train CONFIG.yaml</code> "
                          "appear here while they train (see the Fine-tune page)."), this);
  m_empty->setWordWrap(true);
  m_empty->setForegroundRole(QPalette::PlaceholderText);
  layout->addWidget(m_empty);
  m_table = new RunsTableModel(this);
  m_proxy = new QSortFilterProxyModel(this);
  m_proxy->setSourceModel(m_table);
  m_proxy->setSortRole(RunsTableModel::SORT_ROLE);
  m_view = new QTableView(this);
  m_view->setObjectName(QStringLiteral("runsTable"));
  m_view->setModel(m_proxy);
  m_view->setSortingEnabled(true);
  m_view->sortByColumn(RunsTableModel::STARTED, Qt::DescendingOrder);
  m_view->setSelectionBehavior(QAbstractItemView::SelectRows);
  m_view->setEditTriggers(QAbstractItemView::NoEditTriggers);
  m_view->setAlternatingRowColors(true);
  m_view->verticalHeader()->hide();
  m_view->horizontalHeader()->setStretchLastSection(true);
  layout->addWidget(m_view, 1);

  connect(&m_ctx, &AppContext::runsChanged, this, &RunsPage::refresh);
  connect(&m_ctx, &AppContext::modelsChanged, this, &RunsPage::refresh);
  connect(&m_timer, &QTimer::timeout, this, [this] {
    if (isVisible()) refresh();
  });
  m_timer.start(REFRESH_MS);
  refresh();
  m_view->resizeColumnsToContents();
}

QString RunsPage::bannerText() const { return m_banner->text(); }

void RunsPage::refresh() {
  if (!m_ctx.project()) {
    m_banner->showMessage(MessageBanner::Kind::error, tr("No project is open: %1").arg(m_ctx.lastError()));
    return;
  }
  try {
    auto ok = m_table->reload(*m_ctx.project());
    if (!ok) {
      m_banner->showMessage(MessageBanner::Kind::error,
                            tr("Reading the runs failed: %1").arg(QString::fromStdString(ok.error().to_string())));
      return;
    }
    if (m_banner->kind() == MessageBanner::Kind::error) m_banner->clear();
  } catch (const std::exception& e) {
    m_banner->showMessage(MessageBanner::Kind::error, tr("Reading the runs failed: %1").arg(QString::fromUtf8(e.what())));
  }
  m_empty->setVisible(m_table->rowCount() == 0);
}

QWidget* createRunsPage(AppContext& ctx, QWidget* parent) { return new RunsPage(ctx, parent); }

}  // namespace hearth::ui
