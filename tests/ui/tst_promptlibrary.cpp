/* Qt Test of the Prompts page (PromptLibraryPage) driven through its widgets on a fresh project:
 * create a prompt and a system prompt, edit (a new version each time the text changes, none when it
 * does not), tags alone, history and "edit from this version", search and tag filter, a duplicate name
 * (an error in the page), and "Use in chat" (AppContext::promptInsertRequested).
 *
 * Non-obvious choice: every expectation is read back from the store (Project::prompt/promptVersions),
 * not from the page's own widgets, so the test proves what was saved, not what is displayed.
 */
#include <QComboBox>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>

#include "app-context.h"
#include "prompt-library-page.h"
#include "settings.h"

using namespace hearth;
using namespace hearth::ui;

class TestPromptLibrary : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase();
  void init();
  void cleanup();
  void createEditVersion();
  void systemPromptAndUse();
  void filterBySearchAndTag();
  void restoreAnOldVersion();
  void duplicateNameIsAnError();

 private:
  template <class T>
  T* child(const char* name) {
    T* w = m_page->findChild<T*>(QString::fromLatin1(name));
    if (!w) qFatal("no widget %s", name);
    return w;
  }
  // Fills the editor as a user would and clicks Save.
  void write(const QString& name, const QString& text, const QString& tags, bool system = false) {
    child<QPushButton>("newPromptButton")->click();
    child<QLineEdit>("promptName")->setText(name);
    child<QComboBox>("promptKind")->setCurrentIndex(system ? 1 : 0);
    child<QLineEdit>("promptTags")->setText(tags);
    child<QPlainTextEdit>("promptText")->setPlainText(text);
    child<QPushButton>("savePromptButton")->click();
  }

  std::unique_ptr<QTemporaryDir> m_dir;
  std::unique_ptr<AppContext> m_ctx;
  std::unique_ptr<PromptLibraryPage> m_page;
};

void TestPromptLibrary::initTestCase() {
  // Settings of this executable only (ctest runs the gui tests in parallel).
  QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, QStringLiteral(HEARTH_TEST_TMP "/settings"));
  setApplicationIdentity();
}

void TestPromptLibrary::init() {
  m_dir = std::make_unique<QTemporaryDir>();
  QVERIFY(m_dir->isValid());
  m_ctx = std::make_unique<AppContext>(m_dir->filePath(QStringLiteral("p.hearth")));
  QVERIFY2(m_ctx->project(), qPrintable(m_ctx->lastError()));
  m_page = std::make_unique<PromptLibraryPage>(*m_ctx);
}

void TestPromptLibrary::cleanup() {
  m_page.reset();
  m_ctx.reset();
  m_dir.reset();
}

void TestPromptLibrary::createEditVersion() {
  write(QStringLiteral("Reviewer"), QStringLiteral("Review this code."), QStringLiteral("coding, review"));
  auto prompts = m_ctx->project()->prompts();
  QVERIFY(prompts.has_value());
  QCOMPARE(prompts->size(), std::size_t(1));
  const store::Prompt p = (*prompts)[0];
  QCOMPARE(p.name, std::string("Reviewer"));
  QCOMPARE(p.text, std::string("Review this code."));
  QCOMPARE(p.tags, (std::vector<std::string>{"coding", "review"}));
  QCOMPARE(p.latestVersion, std::int64_t(1));
  QCOMPARE(m_page->currentPromptId(), p.id);
  QCOMPARE(m_page->visiblePromptIds(), QList<store::Id>{p.id});

  // A changed text: version 2; both versions kept.
  child<QPlainTextEdit>("promptText")->setPlainText(QStringLiteral("Review this code for bugs."));
  child<QPushButton>("savePromptButton")->click();
  auto versions = m_ctx->project()->promptVersions(p.id);
  QVERIFY(versions.has_value());
  QCOMPARE(versions->size(), std::size_t(2));
  QCOMPARE((*versions)[0].text, std::string("Review this code."));
  QCOMPARE((*versions)[1].text, std::string("Review this code for bugs."));
  QCOMPARE(child<QListWidget>("promptVersions")->count(), 2);

  // Saving again unchanged adds no version; a tag change alone adds none either.
  child<QPushButton>("savePromptButton")->click();
  child<QLineEdit>("promptTags")->setText(QStringLiteral("coding"));
  child<QPushButton>("savePromptButton")->click();
  auto after = m_ctx->project()->prompt(p.id);
  QVERIFY(after.has_value());
  QCOMPARE(after->latestVersion, std::int64_t(2));
  QCOMPARE(after->tags, std::vector<std::string>{"coding"});
}

void TestPromptLibrary::systemPromptAndUse() {
  write(QStringLiteral("Pirate"), QStringLiteral("You are a pirate."), QStringLiteral("fun"), true);
  auto prompts = m_ctx->project()->promptsWithTag(PromptLibraryPage::SYSTEM_TAG);
  QVERIFY(prompts.has_value());
  QCOMPARE(prompts->size(), std::size_t(1));
  QCOMPARE((*prompts)[0].name, std::string("Pirate"));

  QSignalSpy spy(m_ctx.get(), &AppContext::promptInsertRequested);
  child<QPushButton>("usePromptButton")->click();
  QCOMPARE(spy.count(), 1);
  QCOMPARE(spy.at(0).at(0).toString(), QStringLiteral("You are a pirate."));
  QCOMPARE(spy.at(0).at(1).toBool(), true);

  write(QStringLiteral("Summarise"), QStringLiteral("Summarise in one line:"), QString());
  child<QPushButton>("usePromptButton")->click();
  QCOMPARE(spy.count(), 2);
  QCOMPARE(spy.at(1).at(0).toString(), QStringLiteral("Summarise in one line:"));
  QCOMPARE(spy.at(1).at(1).toBool(), false);

  // An empty text is not sent.
  child<QPushButton>("newPromptButton")->click();
  child<QPushButton>("usePromptButton")->click();
  QCOMPARE(spy.count(), 2);
  QVERIFY(!m_page->bannerText().isEmpty());
}

void TestPromptLibrary::filterBySearchAndTag() {
  write(QStringLiteral("Alpha"), QStringLiteral("translate to French"), QStringLiteral("lang"));
  write(QStringLiteral("Beta"), QStringLiteral("write a haiku"), QStringLiteral("poetry"));
  write(QStringLiteral("Gamma"), QStringLiteral("translate to German"), QStringLiteral("lang, poetry"));
  const auto all = m_ctx->project()->prompts();
  QVERIFY(all.has_value() && all->size() == 3);
  auto idOf = [&](const std::string& name) {
    for (const auto& p : *all)
      if (p.name == name) return p.id;
    return store::Id(0);
  };
  QCOMPARE(m_page->visiblePromptIds().size(), 3);

  auto* tag = child<QComboBox>("promptTagFilter");
  tag->setCurrentIndex(tag->findText(QStringLiteral("poetry")));
  QCOMPARE(m_page->visiblePromptIds(), (QList<store::Id>{idOf("Beta"), idOf("Gamma")}));

  auto* search = child<QLineEdit>("promptSearch");
  search->setText(QStringLiteral("TRANSLATE"));
  QCOMPARE(m_page->visiblePromptIds(), QList<store::Id>{idOf("Gamma")});

  tag->setCurrentIndex(0);  // all tags
  QCOMPARE(m_page->visiblePromptIds(), (QList<store::Id>{idOf("Alpha"), idOf("Gamma")}));
  search->clear();
  QCOMPARE(m_page->visiblePromptIds().size(), 3);
}

void TestPromptLibrary::restoreAnOldVersion() {
  write(QStringLiteral("Greeter"), QStringLiteral("Say hello."), QString());
  const store::Id id = m_page->currentPromptId();
  child<QPlainTextEdit>("promptText")->setPlainText(QStringLiteral("Say hello loudly."));
  child<QPushButton>("savePromptButton")->click();
  auto* versions = child<QListWidget>("promptVersions");
  QCOMPARE(versions->count(), 2);
  versions->setCurrentRow(1);  // newest first: row 1 is v1
  QCOMPARE(child<QPlainTextEdit>("promptVersionText")->toPlainText(), QStringLiteral("Say hello."));
  child<QPushButton>("restoreVersionButton")->click();
  child<QPushButton>("savePromptButton")->click();
  auto p = m_ctx->project()->prompt(id);
  QVERIFY(p.has_value());
  QCOMPARE(p->latestVersion, std::int64_t(3));
  QCOMPARE(p->text, std::string("Say hello."));
}

void TestPromptLibrary::duplicateNameIsAnError() {
  write(QStringLiteral("Same"), QStringLiteral("one"), QString());
  write(QStringLiteral("Same"), QStringLiteral("two"), QString());
  QVERIFY2(m_page->bannerText().contains(QStringLiteral("Same")), qPrintable(m_page->bannerText()));
  auto prompts = m_ctx->project()->prompts();
  QVERIFY(prompts.has_value());
  QCOMPARE(prompts->size(), std::size_t(1));
  QCOMPARE((*prompts)[0].text, std::string("one"));
  // A nameless prompt is refused as well.
  write(QString(), QStringLiteral("three"), QString());
  QCOMPARE(m_ctx->project()->prompts()->size(), std::size_t(1));
}

QTEST_MAIN(TestPromptLibrary)
#include "tst_promptlibrary.moc"
