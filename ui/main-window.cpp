/* MainWindow: see main-window.h.
 *
 * Non-obvious choice: the navigation icons come from the desktop's icon theme with the style's
 * standard pixmaps as fallbacks, so they follow the system look (and its light or dark variant)
 * without shipping coloured artwork.
 */
#include "main-window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QKeySequence>
#include <QLabel>
#include <QListWidget>
#include <QMenuBar>
#include <QMessageBox>
#include <QPushButton>
#include <QSplitter>
#include <QStackedWidget>
#include <QStatusBar>
#include <QStyle>
#include <QVBoxLayout>

#include "app-context.h"
#include "hearth/store/project.h"
#include "pages.h"
#include "settings.h"
#include "status-bar.h"

namespace hearth::ui {
namespace {

const Setting<QByteArray> WINDOW_GEOMETRY{"window/geometry", QByteArray()};
const Setting<QByteArray> WINDOW_STATE{"window/state", QByteArray()};
const Setting<QByteArray> SPLITTER_STATE{"window/splitter", QByteArray()};
const Setting<int> CURRENT_PAGE{"window/page", MainWindow::CHAT};

QIcon pageIcon(QStyle* style, int page) {
  switch (page) {
    case MainWindow::CHAT: return QIcon::fromTheme(QStringLiteral("mail-message-new"), style->standardIcon(QStyle::SP_MessageBoxQuestion));
    case MainWindow::MODELS: return QIcon::fromTheme(QStringLiteral("drive-harddisk"), style->standardIcon(QStyle::SP_DriveHDIcon));
    case MainWindow::COMPARE: return QIcon::fromTheme(QStringLiteral("view-split-left-right"), style->standardIcon(QStyle::SP_FileDialogDetailedView));
    case MainWindow::PROMPTS: return QIcon::fromTheme(QStringLiteral("accessories-text-editor"), style->standardIcon(QStyle::SP_FileIcon));
    case MainWindow::RUNS: return QIcon::fromTheme(QStringLiteral("view-list-details"), style->standardIcon(QStyle::SP_FileDialogListView));
    case MainWindow::FINE_TUNE: return QIcon::fromTheme(QStringLiteral("system-run"), style->standardIcon(QStyle::SP_MediaPlay));
    default: return {};
  }
}

}  // namespace

QString MainWindow::pageTitle(int page) {
  switch (page) {
    case CHAT: return tr("Chat");
    case MODELS: return tr("Models");
    case COMPARE: return tr("Compare");
    case PROMPTS: return tr("Prompts");
    case RUNS: return tr("Runs");
    case FINE_TUNE: return tr("Fine-tune");
    default: return {};
  }
}

MainWindow::MainWindow(AppContext& ctx, QWidget* parent) : QMainWindow(parent), m_ctx(ctx) {
  setObjectName(QStringLiteral("mainWindow"));
  setWindowTitle(tr("%1 — Hearth").arg(QFileInfo(ctx.projectPath()).fileName()));
  const QString icon = findResource(QStringLiteral("icons/hearth.svg"));
  setWindowIcon(QIcon::fromTheme(QStringLiteral("hearth"), icon.isEmpty() ? style()->standardIcon(QStyle::SP_ComputerIcon) : QIcon(icon)));

  m_splitter = new QSplitter(Qt::Horizontal, this);
  m_splitter->setObjectName(QStringLiteral("mainSplitter"));
  m_nav = new QListWidget(m_splitter);
  m_nav->setObjectName(QStringLiteral("navigation"));
  m_nav->setFrameShape(QFrame::NoFrame);
  m_nav->setIconSize(QSize(24, 24));
  m_nav->setSpacing(2);
  m_stack = new QStackedWidget(m_splitter);
  m_stack->setObjectName(QStringLiteral("pages"));

  if (ctx.project()) {
    m_pages[CHAT] = createChatPage(ctx, m_stack);
    m_pages[MODELS] = createModelsPage(ctx, m_stack);
    m_pages[COMPARE] = createComparePage(ctx, m_stack);
    m_pages[PROMPTS] = createPromptsPage(ctx, m_stack);
    m_pages[RUNS] = createRunsPage(ctx, m_stack);
    m_pages[FINE_TUNE] = createFineTunePage(ctx, m_stack);
    for (int p = 0; p < PAGE_COUNT; ++p) {
      m_stack->addWidget(m_pages[p]);
      auto* item = new QListWidgetItem(pageIcon(style(), p), pageTitle(p), m_nav);
      item->setToolTip(tr("%1 (Ctrl+%2)").arg(pageTitle(p)).arg(p + 1));
    }
  } else {
    auto* failed = new QWidget(m_stack);
    failed->setObjectName(QStringLiteral("projectError"));
    auto* layout = new QVBoxLayout(failed);
    auto* label = new QLabel(tr("<h3>The project could not be opened</h3><p>%1</p><p>%2</p>")
                                 .arg(ctx.projectPath().toHtmlEscaped(), ctx.lastError().toHtmlEscaped()),
                             failed);
    label->setWordWrap(true);
    label->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* open = new QPushButton(tr("Open another project…"), failed);
    auto* create = new QPushButton(tr("Create a new project…"), failed);
    connect(open, &QPushButton::clicked, this, [this] { chooseProject(false); });
    connect(create, &QPushButton::clicked, this, [this] { chooseProject(true); });
    layout->addStretch(1);
    layout->addWidget(label);
    layout->addWidget(open, 0, Qt::AlignLeft);
    layout->addWidget(create, 0, Qt::AlignLeft);
    layout->addStretch(2);
    m_stack->addWidget(failed);
    m_nav->setEnabled(false);
  }
  m_splitter->addWidget(m_nav);
  m_splitter->addWidget(m_stack);
  m_splitter->setStretchFactor(0, 0);
  m_splitter->setStretchFactor(1, 1);
  m_splitter->setCollapsible(1, false);
  m_nav->setMinimumWidth(m_nav->sizeHintForColumn(0) + 3 * m_nav->spacing() + 24);
  setCentralWidget(m_splitter);

  connect(m_nav, &QListWidget::currentRowChanged, this, [this](int row) {
    if (row >= 0 && row < m_stack->count()) m_stack->setCurrentIndex(row);
  });
  connect(&ctx, &AppContext::chatWithRequested, this, [this] { showPage(CHAT); });
  connect(&ctx, &AppContext::promptInsertRequested, this, [this] { showPage(CHAT); });
  connect(&ctx, &AppContext::newChatRequested, this, [this] { showPage(CHAT); });
  connect(&ctx, &AppContext::compareRequested, this, [this] { showPage(COMPARE); });
  connect(&ctx, &AppContext::statusMessage, this, [this](const QString& text) { statusBar()->showMessage(text, 5000); });

  m_hardware = new HardwareStatus(ctx, statusBar());
  buildMenus();
  restoreLayout();
}

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  QAction* newProject = file->addAction(tr("New project…"), this, [this] { chooseProject(true); });
  newProject->setShortcut(QKeySequence(tr("Ctrl+Shift+N")));
  QAction* openProject = file->addAction(tr("Open project…"), this, [this] { chooseProject(false); });
  openProject->setShortcut(QKeySequence::Open);
  file->addSeparator();
  QAction* quit = file->addAction(tr("Quit"), this, &QWidget::close);
  quit->setShortcut(QKeySequence::Quit);

  QMenu* chat = menuBar()->addMenu(tr("&Chat"));
  QAction* newChat = chat->addAction(tr("New chat"), this, [this] {
    showPage(CHAT);
    m_ctx.requestNewChat();
  });
  newChat->setObjectName(QStringLiteral("newChatAction"));
  newChat->setShortcut(QKeySequence::New);
  newChat->setEnabled(m_ctx.project() != nullptr);

  QMenu* go = menuBar()->addMenu(tr("&Go"));
  for (int p = 0; p < PAGE_COUNT; ++p) {
    QAction* a = go->addAction(pageIcon(style(), p), pageTitle(p), this, [this, p] { showPage(p); });
    a->setObjectName(QStringLiteral("goPage%1").arg(p + 1));
    a->setShortcut(QKeySequence(QStringLiteral("Ctrl+%1").arg(p + 1)));
    a->setEnabled(m_ctx.project() != nullptr);
  }

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("About Hearth"), this, [this] {
    QMessageBox::about(this, tr("About Hearth"),
                       tr("<h3>Hearth</h3><p>A workbench for local language models: chat, fine-tune and "
                          "compare, with every run kept in a local project.</p><p>Project: %1</p>")
                           .arg(m_ctx.projectPath().toHtmlEscaped()));
  });
}

void MainWindow::showPage(int page) {
  if (page < 0 || page >= PAGE_COUNT || !m_pages[page]) return;
  m_nav->setCurrentRow(page);
  m_stack->setCurrentIndex(page);
}

int MainWindow::currentPage() const { return m_pages[0] ? m_stack->currentIndex() : -1; }

QWidget* MainWindow::page(int page) const {
  return page >= 0 && page < PAGE_COUNT ? m_pages[page] : nullptr;
}

void MainWindow::restoreLayout() {
  const QByteArray geometry = WINDOW_GEOMETRY.get();
  if (geometry.isEmpty() || !restoreGeometry(geometry)) resize(1200, 780);
  restoreState(WINDOW_STATE.get());
  const QByteArray splitter = SPLITTER_STATE.get();
  if (splitter.isEmpty() || !m_splitter->restoreState(splitter)) m_splitter->setSizes({170, 1030});
  showPage(CURRENT_PAGE.get());
  if (currentPage() < 0 && m_pages[0]) showPage(CHAT);
}

void MainWindow::saveLayout() {
  WINDOW_GEOMETRY.set(saveGeometry());
  WINDOW_STATE.set(saveState());
  SPLITTER_STATE.set(m_splitter->saveState());
  if (currentPage() >= 0) CURRENT_PAGE.set(currentPage());
}

void MainWindow::closeEvent(QCloseEvent* event) {
  saveLayout();
  QMainWindow::closeEvent(event);
}

void MainWindow::chooseProject(bool create) {
  const QString dir = QFileInfo(m_ctx.projectPath()).absolutePath();
  const QString filter = tr("Hearth projects (*.hearth);;All files (*)");
  QString path = create ? QFileDialog::getSaveFileName(this, tr("New project"), dir, filter)
                        : QFileDialog::getOpenFileName(this, tr("Open project"), dir, filter);
  if (path.isEmpty()) return;
  if (create && QFileInfo(path).suffix().isEmpty()) path += QStringLiteral(".hearth");
  if (create && QFileInfo(path).exists() && QFileInfo(path).size() > 0) {
    QMessageBox::warning(this, tr("New project"), tr("%1 already exists; open it with File > Open project.").arg(path));
    return;
  }
  emit openProjectRequested(path);
}

}  // namespace hearth::ui
