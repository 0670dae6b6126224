/* PromptLibraryPage: see prompt-library-page.h.
 *
 * Non-obvious choice: Save compares with the stored latest version and writes only what changed, so
 * saving twice does not pile up identical versions, and a tag change alone does not bump the version.
 */
#include "prompt-library-page.h"

#include <QComboBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSplitter>
#include <QVBoxLayout>
#include <algorithm>
#include <set>

#include "app-context.h"
#include "message-banner.h"
#include "pages.h"

namespace hearth::ui {
namespace {

constexpr int ID_ROLE = Qt::UserRole + 1;

QStringList toQt(const std::vector<std::string>& v) {
  QStringList out;
  for (const auto& s : v) out << QString::fromStdString(s);
  return out;
}

QString storeError(const hearth::Error& e) { return QString::fromStdString(e.to_string()); }

}  // namespace

PromptLibraryPage::PromptLibraryPage(AppContext& ctx, QWidget* parent) : QWidget(parent), m_ctx(ctx) {
  setObjectName(QStringLiteral("promptsPage"));
  auto* layout = new QVBoxLayout(this);
  m_banner = new MessageBanner(this);
  layout->addWidget(m_banner);
  auto* splitter = new QSplitter(Qt::Horizontal, this);
  layout->addWidget(splitter, 1);

  auto* left = new QWidget(splitter);
  auto* leftLayout = new QVBoxLayout(left);
  leftLayout->setContentsMargins(0, 0, 0, 0);
  m_search = new QLineEdit(left);
  m_search->setObjectName(QStringLiteral("promptSearch"));
  m_search->setPlaceholderText(tr("Search names and text"));
  m_search->setClearButtonEnabled(true);
  m_tagFilter = new QComboBox(left);
  m_tagFilter->setObjectName(QStringLiteral("promptTagFilter"));
  m_list = new QListWidget(left);
  m_list->setObjectName(QStringLiteral("promptList"));
  auto* add = new QPushButton(tr("New prompt"), left);
  add->setObjectName(QStringLiteral("newPromptButton"));
  leftLayout->addWidget(m_search);
  leftLayout->addWidget(m_tagFilter);
  leftLayout->addWidget(m_list, 1);
  leftLayout->addWidget(add);
  splitter->addWidget(left);

  auto* right = new QWidget(splitter);
  auto* rightLayout = new QVBoxLayout(right);
  rightLayout->setContentsMargins(0, 0, 0, 0);
  auto* form = new QFormLayout;
  m_name = new QLineEdit(right);
  m_name->setObjectName(QStringLiteral("promptName"));
  m_kind = new QComboBox(right);
  m_kind->setObjectName(QStringLiteral("promptKind"));
  m_kind->addItems({tr("Prompt"), tr("System prompt")});
  m_tags = new QLineEdit(right);
  m_tags->setObjectName(QStringLiteral("promptTags"));
  m_tags->setPlaceholderText(tr("comma-separated, e.g. coding, review"));
  m_versionLabel = new QLabel(right);
  m_versionLabel->setObjectName(QStringLiteral("promptVersionLabel"));
  form->addRow(tr("Name:"), m_name);
  form->addRow(tr("Kind:"), m_kind);
  form->addRow(tr("Tags:"), m_tags);
  form->addRow(tr("Version:"), m_versionLabel);
  rightLayout->addLayout(form);
  m_text = new QPlainTextEdit(right);
  m_text->setObjectName(QStringLiteral("promptText"));
  m_text->setPlaceholderText(tr("The prompt's text"));
  rightLayout->addWidget(m_text, 2);
  auto* buttons = new QHBoxLayout;
  auto* save = new QPushButton(tr("Save"), right);
  save->setObjectName(QStringLiteral("savePromptButton"));
  save->setToolTip(tr("A changed text is stored as a new version; earlier versions are kept."));
  auto* use = new QPushButton(tr("Use in chat"), right);
  use->setObjectName(QStringLiteral("usePromptButton"));
  use->setToolTip(tr("Puts the text into the chat's input, or its system prompt for a system prompt."));
  buttons->addWidget(save);
  buttons->addStretch(1);
  buttons->addWidget(use);
  rightLayout->addLayout(buttons);

  auto* history = new QGroupBox(tr("History"), right);
  auto* historyLayout = new QHBoxLayout(history);
  m_versions = new QListWidget(history);
  m_versions->setObjectName(QStringLiteral("promptVersions"));
  m_versionText = new QPlainTextEdit(history);
  m_versionText->setObjectName(QStringLiteral("promptVersionText"));
  m_versionText->setReadOnly(true);
  m_restore = new QPushButton(tr("Edit from this version"), history);
  m_restore->setObjectName(QStringLiteral("restoreVersionButton"));
  auto* versionSide = new QVBoxLayout;
  versionSide->addWidget(m_versionText, 1);
  versionSide->addWidget(m_restore, 0, Qt::AlignRight);
  historyLayout->addWidget(m_versions, 1);
  historyLayout->addLayout(versionSide, 2);
  rightLayout->addWidget(history, 1);
  splitter->addWidget(right);
  splitter->setStretchFactor(0, 1);
  splitter->setStretchFactor(1, 2);

  connect(m_search, &QLineEdit::textChanged, this, &PromptLibraryPage::applyFilter);
  connect(m_tagFilter, &QComboBox::currentIndexChanged, this, &PromptLibraryPage::applyFilter);
  connect(m_list, &QListWidget::currentItemChanged, this, [this](QListWidgetItem* item) {
    if (!item) return;
    m_current = item->data(ID_ROLE).toLongLong();
    showPrompt();
  });
  connect(m_versions, &QListWidget::currentRowChanged, this, &PromptLibraryPage::showVersion);
  connect(m_restore, &QPushButton::clicked, this, [this] { m_text->setPlainText(m_versionText->toPlainText()); });
  connect(add, &QPushButton::clicked, this, &PromptLibraryPage::newPrompt);
  connect(save, &QPushButton::clicked, this, &PromptLibraryPage::save);
  connect(use, &QPushButton::clicked, this, &PromptLibraryPage::use);
  connect(&m_ctx, &AppContext::promptsChanged, this, &PromptLibraryPage::reload);

  reload();
  if (m_prompts.empty()) newPrompt();
}

QString PromptLibraryPage::bannerText() const { return m_banner->text(); }
store::Id PromptLibraryPage::currentPromptId() const { return m_current; }

QStringList PromptLibraryPage::editedTags() const {
  QStringList tags;
  for (const QString& t : m_tags->text().split(QLatin1Char(','), Qt::SkipEmptyParts)) {
    const QString tag = t.trimmed();
    if (!tag.isEmpty() && tag != QLatin1String(SYSTEM_TAG) && !tags.contains(tag)) tags << tag;
  }
  if (m_kind->currentIndex() == 1) tags << QString::fromLatin1(SYSTEM_TAG);
  return tags;
}

void PromptLibraryPage::reload() {
  m_prompts.clear();
  if (!m_ctx.project()) {
    m_banner->showMessage(MessageBanner::Kind::error, tr("No project is open: %1").arg(m_ctx.lastError()));
    return;
  }
  auto prompts = m_ctx.project()->prompts();
  if (!prompts) {
    m_banner->showMessage(MessageBanner::Kind::error, tr("Reading the prompts failed: %1").arg(storeError(prompts.error())));
    return;
  }
  m_prompts = std::move(*prompts);
  std::set<QString> tags;
  for (const auto& p : m_prompts)
    for (const auto& t : p.tags) tags.insert(QString::fromStdString(t));
  const QString keepTag = m_tagFilter->currentIndex() > 0 ? m_tagFilter->currentText() : QString();
  {
    QSignalBlocker block(m_tagFilter);
    m_tagFilter->clear();
    m_tagFilter->addItem(tr("All tags"));
    for (const QString& t : tags) m_tagFilter->addItem(t);
    const int keep = keepTag.isEmpty() ? 0 : m_tagFilter->findText(keepTag);
    m_tagFilter->setCurrentIndex(keep < 0 ? 0 : keep);
  }
  applyFilter();
}

void PromptLibraryPage::applyFilter() {
  const QString needle = m_search->text().trimmed();
  const QString tag = m_tagFilter->currentIndex() > 0 ? m_tagFilter->currentText() : QString();
  const store::Id keep = m_current;
  QSignalBlocker block(m_list);
  m_list->clear();
  for (const auto& p : m_prompts) {
    const QStringList tags = toQt(p.tags);
    if (!tag.isEmpty() && !tags.contains(tag)) continue;
    const QString name = QString::fromStdString(p.name);
    if (!needle.isEmpty() && !name.contains(needle, Qt::CaseInsensitive) &&
        !QString::fromStdString(p.text).contains(needle, Qt::CaseInsensitive) &&
        !tags.contains(needle, Qt::CaseInsensitive))
      continue;
    QString title = name;
    if (!tags.isEmpty()) title += QStringLiteral("  [%1]").arg(tags.join(QStringLiteral(", ")));
    auto* item = new QListWidgetItem(title, m_list);
    item->setData(ID_ROLE, QVariant::fromValue<qint64>(p.id));
    item->setToolTip(QString::fromStdString(p.text).left(400));
    if (p.id == keep) m_list->setCurrentItem(item);
  }
}

QList<store::Id> PromptLibraryPage::visiblePromptIds() const {
  QList<store::Id> out;
  for (int i = 0; i < m_list->count(); ++i) out << m_list->item(i)->data(ID_ROLE).toLongLong();
  return out;
}

void PromptLibraryPage::selectPrompt(store::Id id) {
  for (int i = 0; i < m_list->count(); ++i)
    if (m_list->item(i)->data(ID_ROLE).toLongLong() == id) {
      m_list->setCurrentRow(i);
      m_current = id;
      showPrompt();
      return;
    }
}

void PromptLibraryPage::newPrompt() {
  m_current = 0;
  m_list->clearSelection();
  m_name->clear();
  m_name->setReadOnly(false);
  m_kind->setCurrentIndex(0);
  m_tags->clear();
  m_text->clear();
  m_versionLabel->setText(tr("new"));
  m_versions->clear();
  m_versionText->clear();
  m_restore->setEnabled(false);
  m_name->setFocus();
}

void PromptLibraryPage::showPrompt() {
  if (!m_ctx.project() || !m_current) return;
  auto p = m_ctx.project()->prompt(m_current);
  if (!p) {
    m_banner->showMessage(MessageBanner::Kind::error, tr("Reading the prompt failed: %1").arg(storeError(p.error())));
    return;
  }
  QStringList tags = toQt(p->tags);
  const bool system = tags.removeAll(QString::fromLatin1(SYSTEM_TAG)) > 0;
  m_name->setText(QString::fromStdString(p->name));
  m_name->setReadOnly(true);
  m_kind->setCurrentIndex(system ? 1 : 0);
  m_tags->setText(tags.join(QStringLiteral(", ")));
  m_text->setPlainText(QString::fromStdString(p->text));
  m_versionLabel->setText(tr("%1 (created %2)").arg(p->latestVersion).arg(QString::fromStdString(p->createdAt)));
  m_versions->clear();
  auto versions = m_ctx.project()->promptVersions(m_current);
  if (!versions) {
    m_banner->showMessage(MessageBanner::Kind::error, tr("Reading the versions failed: %1").arg(storeError(versions.error())));
    return;
  }
  for (auto it = versions->rbegin(); it != versions->rend(); ++it) {
    auto* item = new QListWidgetItem(tr("v%1 — %2").arg(it->version).arg(QString::fromStdString(it->createdAt)), m_versions);
    item->setData(ID_ROLE, QString::fromStdString(it->text));
  }
  m_versions->setCurrentRow(0);
}

void PromptLibraryPage::showVersion() {
  QListWidgetItem* item = m_versions->currentItem();
  m_versionText->setPlainText(item ? item->data(ID_ROLE).toString() : QString());
  m_restore->setEnabled(item != nullptr && m_versions->currentRow() > 0);
}

bool PromptLibraryPage::save() {
  if (!m_ctx.project()) return false;
  store::Project& project = *m_ctx.project();
  const std::string text = m_text->toPlainText().toStdString();
  std::vector<std::string> tags;
  for (const QString& t : editedTags()) tags.push_back(t.toStdString());
  if (!m_current) {
    const QString name = m_name->text().trimmed();
    if (name.isEmpty()) {
      m_banner->showMessage(MessageBanner::Kind::error, tr("A prompt needs a name."));
      return false;
    }
    auto id = project.createPrompt(name.toStdString(), text, tags);
    if (!id) {
      m_banner->showMessage(MessageBanner::Kind::error, tr("Saving “%1” failed: %2").arg(name, storeError(id.error())));
      return false;
    }
    m_current = *id;
    m_ctx.showStatus(tr("Saved prompt %1").arg(name));
  } else {
    auto stored = project.prompt(m_current);
    if (!stored) {
      m_banner->showMessage(MessageBanner::Kind::error, tr("Saving failed: %1").arg(storeError(stored.error())));
      return false;
    }
    if (stored->text != text) {
      auto v = project.editPrompt(m_current, text);
      if (!v) {
        m_banner->showMessage(MessageBanner::Kind::error, tr("Saving failed: %1").arg(storeError(v.error())));
        return false;
      }
      m_ctx.showStatus(tr("Saved version %1 of %2").arg(*v).arg(QString::fromStdString(stored->name)));
    }
    std::vector<std::string> sortedNew = tags, sortedOld = stored->tags;
    std::sort(sortedNew.begin(), sortedNew.end());
    std::sort(sortedOld.begin(), sortedOld.end());
    if (sortedNew != sortedOld) {
      auto ok = project.setPromptTags(m_current, tags);
      if (!ok) {
        m_banner->showMessage(MessageBanner::Kind::error, tr("Saving the tags failed: %1").arg(storeError(ok.error())));
        return false;
      }
    }
  }
  m_banner->clear();
  m_ctx.notifyPromptsChanged();  // reloads this page too
  selectPrompt(m_current);
  return true;
}

void PromptLibraryPage::use() {
  const QString text = m_text->toPlainText();
  if (text.trimmed().isEmpty()) {
    m_banner->showMessage(MessageBanner::Kind::warning, tr("The prompt is empty."));
    return;
  }
  m_ctx.insertPrompt(text, m_kind->currentIndex() == 1);
}

QWidget* createPromptsPage(AppContext& ctx, QWidget* parent) { return new PromptLibraryPage(ctx, parent); }

}  // namespace hearth::ui
