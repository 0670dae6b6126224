/* RunsPage: see runs-page.h.
 *
 * Non-obvious choice: the 5 s tick re-reads only while the page is visible, so a hidden page does not
 * keep querying the database; runsChanged refreshes it in any case.
 */
#include "runs-page.h"

#include <algorithm>

#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>

#include "app-context.h"
#include "message-banner.h"
#include "pages.h"
#include "run-compare-view.h"
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
  m_proxy->setFilterCaseSensitivity(Qt::CaseInsensitive);
  m_proxy->setFilterKeyColumn(-1);  // any column: status, name, base model, dataset, method
  auto* bar = new QHBoxLayout;
  m_filter = new QLineEdit(this);
  m_filter->setObjectName(QStringLiteral("runsFilter"));
  m_filter->setPlaceholderText(tr("Filter runs (status, name, model, dataset, method)"));
  m_filter->setClearButtonEnabled(true);
  connect(m_filter, &QLineEdit::textChanged, m_proxy, &QSortFilterProxyModel::setFilterFixedString);
  bar->addWidget(m_filter, 1);
  m_compareButton = new QPushButton(tr("Compare selected"), this);
  m_compareButton->setObjectName(QStringLiteral("compareRunsButton"));
  m_compareButton->setToolTip(tr("Overlay the curves, diff the configurations and sum up loss, speed and energy "
                                 "of the selected runs"));
  m_compareButton->setEnabled(false);
  bar->addWidget(m_compareButton);
  layout->addLayout(bar);
  m_view = new QTableView(this);
  m_view->setObjectName(QStringLiteral("runsTable"));
  m_view->setModel(m_proxy);
  m_view->setSortingEnabled(true);
  m_view->sortByColumn(RunsTableModel::STARTED, Qt::DescendingOrder);
  m_view->setSelectionBehavior(QAbstractItemView::SelectRows);
  m_view->setSelectionMode(QAbstractItemView::ExtendedSelection);
  m_view->setEditTriggers(QAbstractItemView::NoEditTriggers);
  m_view->setAlternatingRowColors(true);
  m_view->verticalHeader()->hide();
  m_view->horizontalHeader()->setStretchLastSection(true);
  m_splitter = new QSplitter(Qt::Vertical, this);
  m_splitter->addWidget(m_view);
  layout->addWidget(m_splitter, 1);
  connect(m_view->selectionModel(), &QItemSelectionModel::selectionChanged, this,
          [this] { m_compareButton->setEnabled(!selectedRunIds().isEmpty()); });
  connect(m_compareButton, &QPushButton::clicked, this, [this] { compareRuns(selectedRunIds()); });
  connect(m_view, &QTableView::doubleClicked, this, [this](const QModelIndex& index) {
    compareRuns({m_proxy->data(index.siblingAtColumn(0), RunsTableModel::ID_ROLE).toLongLong()});
  });

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

QList<long long> RunsPage::selectedRunIds() const {
  QList<long long> ids;
  QModelIndexList rows = m_view->selectionModel()->selectedRows();
  std::sort(rows.begin(), rows.end(), [](const QModelIndex& a, const QModelIndex& b) { return a.row() < b.row(); });
  for (const QModelIndex& r : rows) ids.append(m_proxy->data(r, RunsTableModel::ID_ROLE).toLongLong());
  return ids;
}

QWidget* RunsPage::compareRuns(const QList<long long>& runIds) {
  if (runIds.isEmpty()) return nullptr;
  if (m_compare) m_compare->deleteLater();
  QList<store::Id> ids;
  for (long long id : runIds) ids.append(store::Id(id));
  m_compare = createRunCompareView(m_ctx, ids, m_splitter);
  m_compare->setObjectName(QStringLiteral("runCompareView"));
  m_splitter->addWidget(m_compare);
  m_splitter->setSizes({1, 2});
  return m_compare;
}

QWidget* createRunsPage(AppContext& ctx, QWidget* parent) { return new RunsPage(ctx, parent); }

}  // namespace hearth::ui
