/* ChatPage driven through its real widgets on the tiny model (offscreen): a message typed and sent
 * appears with its reply, both stored (the reply with energy); Stop ends a long reply early and stores
 * it marked partial; Edit and resend makes a sibling branch the ‹ › controls move between; a broken
 * model file shows an error in the page. Writes a screenshot of the page with a conversation.
 *
 * Non-obvious choice: every wait is QTRY_* on what the user would see or what the store holds, with
 * generous timeouts (the CI machine has two shared cores), and replies are kept to a few tokens.
 */
#include <QApplication>
#include <QClipboard>
#include <QComboBox>
#include <QDir>
#include <QAbstractItemView>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QToolButton>
#include <QtTest>
#include <fstream>

#include "app-context.h"
#include "chat-message-view.h"
#include "chat-message-widget.h"
#include "chat-page.h"
#include "chat-settings-panel.h"
#include "chat-worker.h"

#include "ui-test-util.h"

using namespace hearth;
using namespace hearth::ui;

namespace {

constexpr int TIMEOUT_MS = 60000;

QString tinyModel() { return QStringLiteral(HEARTH_TESTDATA "/models/llama-2-tiny-random.gguf"); }

store::Id importModel(store::Project& p, const QString& path, const std::string& name) {
  return hearth::test::importGguf(p, path.toStdString(), name);
}

std::vector<store::Message> stored(AppContext& ctx, store::Id conv) {
  auto m = ctx.project()->messages(conv);
  return m ? *m : std::vector<store::Message>{};
}

ChatMessageWidget* widgetAt(ChatPage& page, int i) {
  auto ws = page.messageView()->messageWidgets();
  return i < ws.size() ? ws[i] : nullptr;
}

}  // namespace

class TestChatPage : public QObject {
  Q_OBJECT
 private:
  QTemporaryDir m_dir;
  std::unique_ptr<AppContext> m_ctx;
  store::Id m_version = 0;

  std::unique_ptr<ChatPage> makePage(int maxTokens, int nCtx = 512) {
    auto page = std::make_unique<ChatPage>(*m_ctx);
    page->resize(1200, 760);
    page->show();
    page->activateWindow();
    if (!QTest::qWaitForWindowActive(page.get())) qWarning("the page's window is not active: shortcuts untested");
    session::ChatSettings s = page->settingsPanel()->settings();
    s.maxTokens = maxTokens;
    s.nCtx = nCtx;
    s.sampling.seed = 7;
    page->settingsPanel()->setSettings(s);
    return page;
  }

  void sendThroughWidgets(ChatPage& page, const QString& text) {
    auto* input = page.findChild<QPlainTextEdit*>(QStringLiteral("chatInput"));
    auto* send = page.findChild<QPushButton*>(QStringLiteral("sendButton"));
    QVERIFY(input && send);
    input->setFocus();
    QTest::keyClicks(input, text);
    QTest::mouseClick(send, Qt::LeftButton);
  }

 private slots:
  void initTestCase() {
    QVERIFY(m_dir.isValid());
    m_ctx = std::make_unique<AppContext>(m_dir.filePath(QStringLiteral("chat.hearth")));
    QVERIFY2(m_ctx->project(), qPrintable(m_ctx->lastError()));
    m_version = importModel(*m_ctx->project(), tinyModel(), "llama-2-tiny-random");
  }

  void modelsImportedLaterArePicked() {
    QTemporaryDir dir;
    AppContext ctx(dir.filePath(QStringLiteral("later.hearth")));
    ChatPage page(ctx);
    auto* picker = page.findChild<QComboBox*>(QStringLiteral("modelPicker"));
    QCOMPARE(picker->count(), 0);
    store::Id v = importModel(*ctx.project(), tinyModel(), "late");
    ctx.notifyModelsChanged();  // what the Models page does after an import
    QCOMPARE(picker->count(), 1);
    QCOMPARE(picker->currentData().toLongLong(), qint64(v));
  }

  void sendShowsAndStoresTheReply() {
    auto page = makePage(8);
    QVERIFY(page->selectModelVersion(m_version));
    sendThroughWidgets(*page, QStringLiteral("Hello, **model**"));
    // The user message is stored and shown at once; the reply streams, then is stored.
    QVERIFY(page->currentConversation() != 0);
    QTRY_VERIFY_WITH_TIMEOUT(!page->isGenerating(), TIMEOUT_MS);
    QVERIFY2(page->errorText().isEmpty(), qPrintable(page->errorText()));
    QTRY_COMPARE_WITH_TIMEOUT(page->messageView()->messageCount(), 2, TIMEOUT_MS);
    auto msgs = stored(*m_ctx, page->currentConversation());
    QCOMPARE(msgs.size(), size_t(2));
    QCOMPARE(msgs[0].role, std::string("user"));
    QCOMPARE(msgs[0].content, std::string("Hello, **model**"));
    QCOMPARE(msgs[1].role, std::string("assistant"));
    QCOMPARE(msgs[1].parentId, std::optional<store::Id>(msgs[0].id));
    QVERIFY(msgs[1].completionTokens > 0 && msgs[1].completionTokens <= 8);
    QVERIFY2(msgs[1].energyJoules.has_value(), "the reply carries energy");
    QCOMPARE(msgs[1].modelVersionId, std::optional<store::Id>(m_version));
    // What is shown is what was stored; Markdown is rendered (no literal ** in the user bubble).
    auto* reply = widgetAt(*page, 1);
    QVERIFY(reply);
    QCOMPARE(reply->text(), QString::fromStdString(msgs[1].content));
    auto* userBody = widgetAt(*page, 0)->findChild<QLabel*>(QStringLiteral("messageBody"));
    QCOMPARE(userBody->textFormat(), Qt::MarkdownText);
    auto* footer = reply->findChild<QLabel*>(QStringLiteral("messageFooter"));
    QVERIFY2(footer->text().contains(QStringLiteral("tok/s")), qPrintable(footer->text()));
    QVERIFY2(footer->text().contains(QStringLiteral("J/token")), qPrintable(footer->text()));

    // A second turn with Ctrl+Enter continues the same branch.
    auto* input = page->findChild<QPlainTextEdit*>(QStringLiteral("chatInput"));
    QVERIFY(input->toPlainText().isEmpty());
    input->setFocus();
    QTest::keyClicks(input, QStringLiteral("And then?"));
    QTest::keyClick(input, Qt::Key_Return, Qt::ControlModifier);
    QCOMPARE(page->messageView()->messageCount(), 3);  // the user message at once, the reply streaming
    QTRY_VERIFY_WITH_TIMEOUT(!page->isGenerating() && page->messageView()->messageCount() == 4, TIMEOUT_MS);
    msgs = stored(*m_ctx, page->currentConversation());
    QCOMPARE(msgs.size(), size_t(4));
    QCOMPARE(msgs[2].parentId, std::optional<store::Id>(msgs[1].id));

    QDir().mkpath(QStringLiteral(HEARTH_SCREENSHOTS));
    QVERIFY(page->grab().save(QStringLiteral(HEARTH_SCREENSHOTS "/chat-page.png")));
  }

  void stopEndsGenerationAndStoresThePartialReply() {
    // Until the context (4096, the model's) is full: thousands of tokens, far more than the few that
    // pass between the first streamed text and the Esc pressed as soon as it is on screen.
    auto page = makePage(-1, 4096);
    QVERIFY(page->selectModelVersion(m_version));
    auto* stop = page->findChild<QPushButton*>(QStringLiteral("stopButton"));
    auto* input = page->findChild<QPlainTextEdit*>(QStringLiteral("chatInput"));
    bool pressed = false, stopWasEnabled = false;
    connect(page->findChild<ChatController*>(), &ChatController::chunk, page.get(), [&] {
      if (pressed) return;
      pressed = true;
      stopWasEnabled = stop->isEnabled();
      QVERIFY(!page->messageView()->streamingText().isEmpty());
      QTest::keyClick(input, Qt::Key_Escape);  // Esc stops
    });
    page->send(QStringLiteral("Write a very long story"));
    QTRY_VERIFY_WITH_TIMEOUT(pressed, TIMEOUT_MS);
    QVERIFY(stopWasEnabled);
    QTRY_VERIFY_WITH_TIMEOUT(!page->isGenerating(), TIMEOUT_MS);
    auto msgs = stored(*m_ctx, page->currentConversation());
    QCOMPARE(msgs.size(), size_t(2));
    auto sp = nlohmann::json::parse(msgs[1].samplingParams);
    QCOMPARE(sp.value("stop", std::string()), std::string("cancelled"));
    QCOMPARE(sp.value("partial", false), true);
    QVERIFY(msgs[1].completionTokens > 0);
    QVERIFY(msgs[1].completionTokens < 4000);
    auto* footer = widgetAt(*page, 1)->findChild<QLabel*>(QStringLiteral("messageFooter"));
    QVERIFY2(footer->text().contains(QStringLiteral("stopped")), qPrintable(footer->text()));
  }

  void editMakesABranchToSwitchBetween() {
    auto page = makePage(4);
    QVERIFY(page->selectModelVersion(m_version));
    page->send(QStringLiteral("First question"));
    QTRY_VERIFY_WITH_TIMEOUT(!page->isGenerating() && page->messageView()->messageCount() == 2, TIMEOUT_MS);

    auto* user = widgetAt(*page, 0);
    QTest::mouseClick(user->findChild<QToolButton*>(QStringLiteral("editButton")), Qt::LeftButton);
    auto* editor = user->findChild<QPlainTextEdit*>(QStringLiteral("editEditor"));
    QVERIFY(editor->isVisible());
    editor->setPlainText(QStringLiteral("Second question"));
    QTest::mouseClick(user->findChild<QPushButton*>(QStringLiteral("editSend")), Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(!page->isGenerating() && page->messageView()->messageCount() == 2 &&
                                 widgetAt(*page, 0)->text() == QStringLiteral("Second question"),
                             TIMEOUT_MS);

    auto msgs = stored(*m_ctx, page->currentConversation());
    QCOMPARE(msgs.size(), size_t(4));
    int rootUsers = 0;
    for (const auto& m : msgs) rootUsers += m.role == "user" && !m.parentId;
    QCOMPARE(rootUsers, 2);  // two siblings with the same (no) parent

    auto* label = widgetAt(*page, 0)->findChild<QLabel*>(QStringLiteral("branchLabel"));
    QVERIFY(label->isVisible());
    QCOMPARE(label->text(), QStringLiteral("2/2"));
    QTest::mouseClick(widgetAt(*page, 0)->findChild<QToolButton*>(QStringLiteral("branchPrev")), Qt::LeftButton);
    QTRY_COMPARE(widgetAt(*page, 0)->text(), QStringLiteral("First question"));
    QCOMPARE(widgetAt(*page, 0)->findChild<QLabel*>(QStringLiteral("branchLabel"))->text(), QStringLiteral("1/2"));
    // The reply shown follows the branch.
    QCOMPARE(widgetAt(*page, 1)->item().id, msgs[1].id);

    // Copy puts the message's text on the clipboard.
    QTest::mouseClick(widgetAt(*page, 1)->findChild<QToolButton*>(QStringLiteral("copyButton")), Qt::LeftButton);
    QCOMPARE(QGuiApplication::clipboard()->text(), QString::fromStdString(msgs[1].content));

    // Regenerate: a second reply to the same user message, shown as 2/2 of the replies.
    QTest::mouseClick(widgetAt(*page, 1)->findChild<QToolButton*>(QStringLiteral("regenerateButton")), Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(!page->isGenerating() && page->messageView()->messageCount() == 2 &&
                                 widgetAt(*page, 1)->item().id != msgs[1].id,
                             TIMEOUT_MS);
    msgs = stored(*m_ctx, page->currentConversation());
    QCOMPARE(msgs.size(), size_t(5));
    QCOMPARE(msgs[4].role, std::string("assistant"));
    QCOMPARE(msgs[4].parentId, msgs[1].parentId);
    QCOMPARE(widgetAt(*page, 1)->findChild<QLabel*>(QStringLiteral("branchLabel"))->text(), QStringLiteral("2/2"));
  }

  void conversationsAreListedSearchedAndRenamed() {
    auto page = makePage(4);
    auto* list = page->findChild<QAbstractItemView*>(QStringLiteral("conversationList"));
    QVERIFY(list->model()->rowCount() >= 3);
    auto* search = page->findChild<QLineEdit*>(QStringLiteral("conversationSearch"));
    search->setText(QStringLiteral("long story"));
    QCOMPARE(list->model()->rowCount(), 1);
    QVERIFY(list->model()->setData(list->model()->index(0, 0), QStringLiteral("Story time")));
    search->setText(QStringLiteral("Story time"));
    QCOMPARE(list->model()->rowCount(), 1);
    // Renaming through the list's own editor, as a double-click does.
    list->setCurrentIndex(list->model()->index(0, 0));
    list->edit(list->currentIndex());
    auto* editor = list->viewport()->findChild<QLineEdit*>();
    QVERIFY(editor);
    editor->selectAll();
    QTest::keyClicks(editor, QStringLiteral("Bedtime story"));
    QTest::keyClick(editor, Qt::Key_Return);
    QTRY_COMPARE(list->model()->index(0, 0).data().toString(), QStringLiteral("Bedtime story"));
    search->setText(QStringLiteral("Bedtime"));
    QCOMPARE(list->model()->rowCount(), 1);
    search->clear();
    QVERIFY(list->model()->rowCount() >= 3);

    // New chat (the window's Ctrl+N action, through AppContext) leaves the conversation on show for
    // a new, empty one.
    list->setCurrentIndex(list->model()->index(0, 0));
    QVERIFY(page->currentConversation() != 0);
    QVERIFY(page->messageView()->messageCount() > 0);
    m_ctx->requestNewChat();
    QCOMPARE(page->currentConversation(), store::Id(0));
    QCOMPARE(page->messageView()->messageCount(), 0);

    // Delete removes the conversation with its messages.
    int before = list->model()->rowCount();
    store::Id victim = list->model()->index(0, 0).data(Qt::UserRole + 1).toLongLong();
    QVERIFY(page->deleteConversation(victim));
    QCOMPARE(list->model()->rowCount(), before - 1);
    QVERIFY(stored(*m_ctx, victim).empty());
  }

  void oddlyTypedStoredFieldsStillShow() {
    // Rows written by another program (or an older Hearth) with unexpected JSON types.
    store::Conversation c;
    c.title = "odd";
    store::Id conv = *m_ctx->project()->createConversation(c);
    store::Message u;
    u.conversationId = conv;
    u.role = "user";
    u.content = "hi";
    u.samplingParams = R"({"temperature":"hot","max_tokens":[1],"seed":-3})";
    store::Id uid = *m_ctx->project()->addMessage(u);
    store::Message a = u;
    a.role = "assistant";
    a.parentId = uid;
    a.content = "hello";
    a.energyJoules = 2.0;
    a.completionTokens = 4;
    a.samplingParams = R"({"energy":{"sensor":5},"partial":"yes"})";
    QVERIFY(m_ctx->project()->addMessage(a).has_value());
    auto page = makePage(4);
    page->openConversation(conv);
    QCOMPARE(page->messageView()->messageCount(), 2);
    auto* footer = widgetAt(*page, 1)->findChild<QLabel*>(QStringLiteral("messageFooter"));
    QVERIFY2(footer->text().contains(QStringLiteral("0.5 J/token")), qPrintable(footer->text()));
    QVERIFY(page->settingsPanel()->settings().maxTokens == 4);  // the odd value ignored
  }

  void brokenModelShowsAnErrorInThePage() {
    QString broken = m_dir.filePath(QStringLiteral("broken.gguf"));
    {
      std::ifstream in(tinyModel().toStdString(), std::ios::binary);
      std::string head(2048, '\0');
      in.read(head.data(), std::streamsize(head.size()));
      std::ofstream out(broken.toStdString(), std::ios::binary);
      out.write(head.data(), std::streamsize(head.size()));
    }
    store::Id v = importModel(*m_ctx->project(), broken, "broken");
    auto page = makePage(4);
    QSignalSpy errors(page.get(), &ChatPage::errorShown);
    QVERIFY(page->selectModelVersion(v));
    QTRY_VERIFY_WITH_TIMEOUT(page->errorText().contains(QStringLiteral("broken.gguf")), TIMEOUT_MS);
    QVERIFY(errors.count() >= 1);
    // Sending still fails cleanly: the user message is kept, no reply, the error stays in the page.
    page->send(QStringLiteral("Anyone there?"));
    QTRY_VERIFY_WITH_TIMEOUT(!page->isGenerating(), TIMEOUT_MS);
    QVERIFY(!page->errorText().isEmpty());
  }

  void cleanupTestCase() { m_ctx.reset(); }
};

QTEST_MAIN(TestChatPage)
#include "tst_chatpage.moc"
