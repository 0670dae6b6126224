/* The chat page's "Run on" choice, through its real widgets on the tiny model (offscreen): GPU (CUDA)
 * chosen before the model loads still gives a reply where no GPU can serve, and the line under the model
 * bar says it ran on the CPU and why; the choice is remembered for the next page; switching back to CPU
 * reloads the model at the next send and the line then names the CPU with no reason.
 *
 * Non-obvious choice: on a machine whose CUDA build does serve, the GPU case accepts "Ran on cuda:…"
 * instead; everywhere else (this CI) it must be the CPU with a non-empty reason.
 */
#include <QComboBox>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSettings>
#include <QTemporaryDir>
#include <QtTest>

#include "app-context.h"
#include "chat-message-view.h"
#include "chat-page.h"
#include "chat-settings-panel.h"
#include "settings.h"

#include "ui-test-util.h"

using namespace hearth;
using namespace hearth::ui;

namespace {

constexpr int TIMEOUT_MS = 60000;

}  // namespace

class TestChatRunOn : public QObject {
  Q_OBJECT
 private:
  QTemporaryDir m_dir;
  std::unique_ptr<AppContext> m_ctx;
  store::Id m_version = 0;

  std::unique_ptr<ChatPage> makePage() {
    auto page = std::make_unique<ChatPage>(*m_ctx);
    page->resize(1200, 760);
    page->show();
    session::ChatSettings s = page->settingsPanel()->settings();
    s.maxTokens = 4;
    s.nCtx = 256;
    s.sampling.seed = 5;
    page->settingsPanel()->setSettings(s);
    return page;
  }

  // Types and sends `text`, waits for the reply; returns the "ran on" line.
  QString sendAndWait(ChatPage& page, const QString& text, int messagesAfter) {
    auto* input = page.findChild<QPlainTextEdit*>(QStringLiteral("chatInput"));
    auto* send = page.findChild<QPushButton*>(QStringLiteral("sendButton"));
    auto* ranOn = page.findChild<QLabel*>(QStringLiteral("ranOnStatus"));
    if (!input || !send || !ranOn) return QStringLiteral("(widgets missing)");
    input->setFocus();
    QTest::keyClicks(input, text);
    QTest::mouseClick(send, Qt::LeftButton);
    if (!QTest::qWaitFor([&] { return !page.isGenerating() && page.messageView()->messageCount() == messagesAfter; },
                         TIMEOUT_MS))
      return QStringLiteral("(no reply: %1)").arg(page.errorText());
    return ranOn->isVisible() ? ranOn->text() : QStringLiteral("(line hidden)");
  }

 private slots:
  void initTestCase() {
    // Settings in this test's own folder, so clearing them never touches the user's.
    QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, QStringLiteral(HEARTH_TEST_TMP "/settings"));
    setApplicationIdentity();
    QSettings().clear();
    QVERIFY(m_dir.isValid());
    m_ctx = std::make_unique<AppContext>(m_dir.filePath(QStringLiteral("runon.hearth")));
    QVERIFY2(m_ctx->project(), qPrintable(m_ctx->lastError()));
    m_version = test::importGguf(*m_ctx->project(), HEARTH_TESTDATA "/models/llama-2-tiny-random.gguf",
                                 "llama-2-tiny-random");
  }

  void gpuChoiceRepliesAndSaysWhereItRan() {
    auto page = makePage();
    auto* runOn = page->findChild<QComboBox*>(QStringLiteral("runOnPicker"));
    QVERIFY(runOn);
    QCOMPARE(runOn->currentText(), QStringLiteral("CPU"));  // the default
    QStringList items;
    for (int i = 0; i < runOn->count(); ++i) items << runOn->itemText(i);
    QCOMPARE(items, (QStringList{QStringLiteral("CPU"), QStringLiteral("GPU (CUDA)"), QStringLiteral("Automatic")}));
    runOn->setCurrentIndex(runOn->findText(QStringLiteral("GPU (CUDA)")));
    QVERIFY(page->selectModelVersion(m_version));

    QString line = sendAndWait(*page, QStringLiteral("Hello"), 2);
    QVERIFY2(page->errorText().isEmpty(), qPrintable(page->errorText()));
    qInfo("%s", qPrintable(line));
    if (!line.startsWith(QStringLiteral("Ran on cuda:"))) {
      const QString prefix = QStringLiteral("Ran on the CPU — ");
      QVERIFY2(line.startsWith(prefix), qPrintable(line));
      QVERIFY2(line.size() > prefix.size() + 3, qPrintable(line));  // a reason, not an empty note
    }
    QVERIFY(!page->messageView()->messageWidgets().isEmpty());
  }

  void theChoiceIsRememberedAndAppliesAtTheNextLoad() {
    auto page = makePage();
    auto* runOn = page->findChild<QComboBox*>(QStringLiteral("runOnPicker"));
    QVERIFY(runOn);
    QCOMPARE(runOn->currentText(), QStringLiteral("GPU (CUDA)"));  // remembered from the test before
    QVERIFY(page->selectModelVersion(m_version));
    QString first = sendAndWait(*page, QStringLiteral("One"), 2);
    QVERIFY2(first.startsWith(QStringLiteral("Ran on cuda:")) || first.startsWith(QStringLiteral("Ran on the CPU — ")),
             qPrintable(first));
    // Back to the CPU: the next send reloads the model on it, and the line gives no reason.
    runOn->setCurrentIndex(runOn->findText(QStringLiteral("CPU")));
    QString second = sendAndWait(*page, QStringLiteral("Two"), 4);
    QVERIFY2(page->errorText().isEmpty(), qPrintable(page->errorText()));
    QCOMPARE(second, QStringLiteral("Ran on the CPU"));
  }

  void cleanupTestCase() { m_ctx.reset(); }
};

QTEST_MAIN(TestChatRunOn)
#include "tst_chatrunon.moc"
