/* FineTunePage: see fine-tune-page.h.
 *
 * A finished job's actions use the version ids the child printed (`version: ID`); "Compare with base"
 * compares that version with the run's base version.
 *
 * Non-obvious choice: the command names hearth-cli by its absolute path when it sits beside this
 * program (installed) or in the build tree (../app/hearth-cli), so the copied line works when pasted
 * into any terminal, even without hearth-cli on PATH.
 */
#include "fine-tune-page.h"

#include <QApplication>
#include <QClipboard>
#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFontDatabase>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSplitter>
#include <QVBoxLayout>

#include <QStackedWidget>
#include <QTabWidget>

#include "app-context.h"
#include "fine-tune-wizard.h"
#include "run-dashboard.h"
#include "run-queue.h"
#include "pages.h"
#include "settings.h"

namespace hearth::ui {
namespace {

QString shellQuote(const QString& s) {
  static const QString safe = QStringLiteral("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@");
  bool plain = !s.isEmpty();
  for (QChar c : s) plain = plain && safe.contains(c);
  if (plain) return s;
  QString q = s;
  q.replace(QLatin1Char('\''), QStringLiteral("'\\''"));
  return QLatin1Char('\'') + q + QLatin1Char('\'');
}

QString findCli() {
  const QDir dir(QCoreApplication::applicationDirPath());
  for (const QString& candidate : {dir.filePath(QStringLiteral("hearth-cli")), dir.filePath(QStringLiteral("../app/hearth-cli"))}) {
    QFileInfo info(candidate);
    if (info.isFile() && info.isExecutable()) return info.canonicalFilePath();
  }
  return QStringLiteral("hearth-cli");
}

}  // namespace

QStringList FineTunePage::exampleFolders() {
  QStringList out;
  for (const QString& folder : resourceFolders()) out << QDir(folder).filePath(QStringLiteral("examples"));
  return out;
}

FineTunePage::FineTunePage(AppContext& ctx, QWidget* parent)
    : QWidget(parent), m_ctx(ctx), m_cli(findCli()), m_queue(new RunQueue(ctx, this)) {
  setObjectName(QStringLiteral("fineTunePage"));
  auto* outer = new QVBoxLayout(this);
  auto* tabs = new QTabWidget(this);
  tabs->setObjectName(QStringLiteral("fineTuneTabs"));
  outer->addWidget(tabs);

  // Tab 1: the wizard's runs and their dashboards.
  auto* runsTab = new QWidget(tabs);
  auto* rl = new QVBoxLayout(runsTab);
  auto* top = new QHBoxLayout;
  auto* start = new QPushButton(tr("New fine-tune…"), runsTab);
  start->setObjectName(QStringLiteral("newFineTuneButton"));
  m_chat = new QPushButton(tr("Chat with it"), runsTab);
  m_chat->setObjectName(QStringLiteral("chatWithRunButton"));
  m_compare = new QPushButton(tr("Compare with base"), runsTab);
  m_compare->setObjectName(QStringLiteral("compareWithBaseButton"));
  top->addWidget(start);
  top->addStretch(1);
  top->addWidget(m_chat);
  top->addWidget(m_compare);
  rl->addLayout(top);
  auto* rsplit = new QSplitter(Qt::Horizontal, runsTab);
  m_jobs = new QListWidget(rsplit);
  m_jobs->setObjectName(QStringLiteral("runJobs"));
  m_dashboards = new QStackedWidget(rsplit);
  auto* empty = new QLabel(tr("No run yet in this window. <b>New fine-tune…</b> sets one up; runs queue and "
                              "train one at a time, each in its own process."),
                           m_dashboards);
  empty->setWordWrap(true);
  empty->setAlignment(Qt::AlignCenter);
  m_dashboards->addWidget(empty);
  rsplit->addWidget(m_jobs);
  rsplit->addWidget(m_dashboards);
  rsplit->setStretchFactor(1, 4);
  rl->addWidget(rsplit, 1);
  tabs->addTab(runsTab, tr("Runs"));
  connect(start, &QPushButton::clicked, this, [this] { newFineTune(); });
  connect(m_chat, &QPushButton::clicked, this, &FineTunePage::chatWithCurrent);
  connect(m_compare, &QPushButton::clicked, this, &FineTunePage::compareCurrentWithBase);
  connect(m_jobs, &QListWidget::currentRowChanged, this, [this] {
    if (RunDashboard* d = dashboard(currentJob())) m_dashboards->setCurrentWidget(d);
    updateActions();
  });
  connect(m_queue, &RunQueue::jobAdded, this, &FineTunePage::addJob);
  connect(m_queue, &RunQueue::jobChanged, this, &FineTunePage::updateJob);
  connect(m_queue, &RunQueue::jobFinished, this, [this](int id) {
    const RunQueue::Job* j = m_queue->job(id);
    if (j && j->state == RunQueue::State::finished)
      m_ctx.showStatus(tr("Fine-tune \"%1\" finished; its model is in the library.").arg(j->name));
    updateJob(id);
  });
  updateActions();

  // Tab 2: the command line.
  auto* cliTab = new QWidget(tabs);
  auto* layout = new QVBoxLayout(cliTab);
  tabs->addTab(cliTab, tr("Command line"));
  auto* intro = new QLabel(
      tr("<p>Fine-tuning also runs from the command line with "
         "<code>hearth-cli train CONFIG.yaml --project FILE</code>. The configuration names the base model, "
         "the dataset, the method (LoRA or full) and the training settings; docs/training.md documents "
         "every key.</p>"
         "<p>A run started that way writes this project: it appears on the <b>Runs</b> page while it trains, "
         "and the adapter it produces appears under its base model on the <b>Models</b> page.</p>"),
      cliTab);
  intro->setWordWrap(true);
  intro->setTextFormat(Qt::RichText);
  layout->addWidget(intro);

  m_where = new QLabel(cliTab);
  m_where->setObjectName(QStringLiteral("examplesWhere"));
  m_where->setWordWrap(true);
  m_where->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(m_where);

  auto* splitter = new QSplitter(Qt::Horizontal, cliTab);
  m_examples = new QListWidget(splitter);
  m_examples->setObjectName(QStringLiteral("exampleConfigs"));
  m_preview = new QPlainTextEdit(splitter);
  m_preview->setObjectName(QStringLiteral("exampleConfigText"));
  m_preview->setReadOnly(true);
  m_preview->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  splitter->addWidget(m_examples);
  splitter->addWidget(m_preview);
  splitter->setStretchFactor(1, 2);
  layout->addWidget(splitter, 1);

  auto* row = new QHBoxLayout;
  m_command = new QLabel(cliTab);
  m_command->setObjectName(QStringLiteral("trainCommand"));
  m_command->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_command->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  m_command->setWordWrap(true);
  auto* copy = new QPushButton(tr("Copy command"), cliTab);
  copy->setObjectName(QStringLiteral("copyCommandButton"));
  row->addWidget(m_command, 1);
  row->addWidget(copy);
  layout->addLayout(row);

  connect(m_examples, &QListWidget::currentRowChanged, this, &FineTunePage::showSelected);
  connect(copy, &QPushButton::clicked, this, &FineTunePage::copyCommand);
  reload();
}

QStringList FineTunePage::exampleFiles() const {
  QStringList out;
  for (int i = 0; i < m_examples->count(); ++i) out << m_examples->item(i)->data(Qt::UserRole).toString();
  return out;
}

void FineTunePage::reload() {
  m_examples->clear();
  const QStringList folders = exampleFolders();
  QString found;
  for (const QString& folder : folders) {
    QDir dir(folder);
    if (!dir.exists()) continue;
    const QStringList files = dir.entryList({QStringLiteral("*.yaml"), QStringLiteral("*.yml")}, QDir::Files, QDir::Name);
    if (files.isEmpty()) continue;
    found = dir.canonicalPath();
    for (const QString& f : files) {
      auto* item = new QListWidgetItem(f, m_examples);
      item->setData(Qt::UserRole, dir.absoluteFilePath(f));
    }
    break;
  }
  if (found.isEmpty())
    m_where->setText(tr("No example configurations were found (looked in: %1).").arg(folders.join(QStringLiteral(", "))));
  else
    m_where->setText(tr("Example configurations in %1:").arg(found));
  if (m_examples->count() > 0) m_examples->setCurrentRow(0);
  else showSelected();
}

void FineTunePage::showSelected() {
  QListWidgetItem* item = m_examples->currentItem();
  if (!item) {
    m_preview->clear();
    m_command->setText(QString());
    return;
  }
  QFile f(item->data(Qt::UserRole).toString());
  if (f.open(QIODevice::ReadOnly)) m_preview->setPlainText(QString::fromUtf8(f.read(256 * 1024)));
  else m_preview->setPlainText(tr("Cannot read %1: %2").arg(f.fileName(), f.errorString()));
  m_command->setText(command());
}

QString FineTunePage::command() const {
  QListWidgetItem* item = m_examples->currentItem();
  if (!item) return {};
  return QStringLiteral("%1 train %2 --project %3")
      .arg(shellQuote(m_cli), shellQuote(item->data(Qt::UserRole).toString()), shellQuote(m_ctx.projectPath()));
}

void FineTunePage::copyCommand() {
  const QString cmd = command();
  if (cmd.isEmpty()) return;
  QApplication::clipboard()->setText(cmd);
  m_ctx.showStatus(tr("Copied: %1").arg(cmd));
}

FineTuneWizard* FineTunePage::newFineTune() {
  auto* w = new FineTuneWizard(m_ctx, this);
  w->setAttribute(Qt::WA_DeleteOnClose);
  w->setWindowFlag(Qt::Window);
  connect(w, &QWizard::accepted, this, [this, w] {
    const int id = m_queue->enqueue(w->configPath(), w->runName(), w->baseVersionId());
    for (int i = 0; i < m_jobs->count(); ++i)
      if (m_jobs->item(i)->data(Qt::UserRole).toInt() == id) m_jobs->setCurrentRow(i);
  });
  w->show();
  return w;
}

void FineTunePage::addJob(int jobId) {
  auto* item = new QListWidgetItem(m_jobs);
  item->setData(Qt::UserRole, jobId);
  auto* d = new RunDashboard(*m_queue, jobId, m_dashboards);
  m_dashboards->addWidget(d);
  m_dashboardOf[jobId] = d;
  updateJob(jobId);
  m_jobs->setCurrentItem(item);
}

void FineTunePage::updateJob(int jobId) {
  const RunQueue::Job* j = m_queue->job(jobId);
  if (!j) return;
  for (int i = 0; i < m_jobs->count(); ++i) {
    QListWidgetItem* item = m_jobs->item(i);
    if (item->data(Qt::UserRole).toInt() != jobId) continue;
    QString text = QStringLiteral("%1\n%2").arg(j->name, RunQueue::stateName(j->state));
    if (j->totalSteps > 0 && !j->isFinal()) text += QStringLiteral(" · %1/%2").arg(j->step).arg(j->totalSteps);
    item->setText(text);
  }
  updateActions();
}

int FineTunePage::currentJob() const {
  QListWidgetItem* item = m_jobs->currentItem();
  return item ? item->data(Qt::UserRole).toInt() : 0;
}

RunDashboard* FineTunePage::dashboard(int jobId) const {
  auto it = m_dashboardOf.find(jobId);
  return it == m_dashboardOf.end() ? nullptr : it->second;
}

void FineTunePage::updateActions() {
  const RunQueue::Job* j = m_queue->job(currentJob());
  const bool done = j && j->state == RunQueue::State::finished && j->chatVersionId();
  m_chat->setEnabled(done);
  m_compare->setEnabled(done && baseOf(*j));
}

void FineTunePage::chatWithCurrent() {
  const RunQueue::Job* j = m_queue->job(currentJob());
  if (j && j->chatVersionId()) m_ctx.requestChatWith(*j->chatVersionId());
}

void FineTunePage::compareCurrentWithBase() {
  const RunQueue::Job* j = m_queue->job(currentJob());
  if (!j || !j->chatVersionId()) return;
  if (auto base = baseOf(*j)) m_ctx.requestCompare(*base, *j->chatVersionId());
}

std::optional<store::Id> FineTunePage::baseOf(const RunQueue::Job& j) const {
  // The run's base as the store recorded it (the session may have imported the file as its own version).
  if (store::Project* p = m_ctx.project(); p && j.runId != 0)
    if (auto r = p->run(j.runId); r && r->baseVersionId) return r->baseVersionId;
  return j.baseVersionId;
}

QWidget* createFineTunePage(AppContext& ctx, QWidget* parent) { return new FineTunePage(ctx, parent); }

}  // namespace hearth::ui
