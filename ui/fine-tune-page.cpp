/* FineTunePage: see fine-tune-page.h.
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

#include "app-context.h"
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

FineTunePage::FineTunePage(AppContext& ctx, QWidget* parent) : QWidget(parent), m_ctx(ctx), m_cli(findCli()) {
  setObjectName(QStringLiteral("fineTunePage"));
  auto* layout = new QVBoxLayout(this);
  auto* intro = new QLabel(
      tr("<h3>Fine-tuning</h3>"
         "<p>The fine-tune wizard is not built yet. Today, fine-tuning runs from the command line with "
         "<code>hearth-cli train CONFIG.yaml --project FILE</code>. The configuration names the base model, "
         "the dataset, the method (LoRA or full) and the training settings; docs/training.md documents "
         "every key.</p>"
         "<p>A run started that way writes this project: it appears on the <b>Runs</b> page while it trains, "
         "and the adapter it produces appears under its base model on the <b>Models</b> page.</p>"),
      this);
  intro->setWordWrap(true);
  intro->setTextFormat(Qt::RichText);
  layout->addWidget(intro);

  m_where = new QLabel(this);
  m_where->setObjectName(QStringLiteral("examplesWhere"));
  m_where->setWordWrap(true);
  m_where->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(m_where);

  auto* splitter = new QSplitter(Qt::Horizontal, this);
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
  m_command = new QLabel(this);
  m_command->setObjectName(QStringLiteral("trainCommand"));
  m_command->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_command->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  m_command->setWordWrap(true);
  auto* copy = new QPushButton(tr("Copy command"), this);
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

QWidget* createFineTunePage(AppContext& ctx, QWidget* parent) { return new FineTunePage(ctx, parent); }

}  // namespace hearth::ui
