/* ComparePage driven through its widgets (offscreen): one prompt to two model versions fills both panes
 * and stores both answers as siblings under one user message; in blind mode the panes carry no model
 * names until the vote; the vote lands on the chosen answer's stored message; then the names show.
 * Writes a screenshot of the page after a vote.
 *
 * Non-obvious choice: model B is a second tiny random llama written by the engine's model writer with
 * the shared model's tokenizer, so the two answers differ and the vote can be checked to land on the
 * side that was clicked, whichever model the random draw put there.
 */
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include "app-context.h"
#include "compare-page.h"
#include "compare-pane.h"
#include "hearth/gguf.h"
#include "hearth/model-writer.h"

#include "ui-test-util.h"

using namespace hearth;
using namespace hearth::ui;

namespace {

constexpr int TIMEOUT_MS = 60000;

store::Id importModel(store::Project& p, const std::string& path, const std::string& name) {
  return hearth::test::importGguf(p, path, name, "v1");
}

}  // namespace

class TestComparePage : public QObject {
  Q_OBJECT
 private:
  QTemporaryDir m_dir;
  std::unique_ptr<AppContext> m_ctx;
  store::Id m_a = 0, m_b = 0;

 private slots:
  void initTestCase() {
    QVERIFY(m_dir.isValid());
    m_ctx = std::make_unique<AppContext>(m_dir.filePath(QStringLiteral("compare.hearth")));
    QVERIFY2(m_ctx->project(), qPrintable(m_ctx->lastError()));
    std::string tiny = HEARTH_TESTDATA "/models/llama-2-tiny-random.gguf";
    auto src = GgufFile::open(tiny);
    QVERIFY2(src.has_value(), src ? "" : src.error().to_string().c_str());
    auto w = make_random_weights(tiny_params(Architecture::llama, 64, 1, 32000), 5);
    QVERIFY(w.has_value());
    GgufWriteOptions o;
    o.tokenizer_source = &*src;
    o.name = "tiny-b";
    std::string other = m_dir.filePath(QStringLiteral("tiny-b.gguf")).toStdString();
    auto ok = write_gguf_model(*w, other, o);
    QVERIFY2(ok.has_value(), ok ? "" : ok.error().to_string().c_str());
    m_a = importModel(*m_ctx->project(), tiny, "tiny-a");
    m_b = importModel(*m_ctx->project(), other, "tiny-b");
  }

  void blindComparisonFillsBothPanesAndStoresTheVote() {
    ComparePage page(*m_ctx);
    page.resize(1200, 700);
    page.show();
    QVERIFY(page.setVersions(m_a, m_b));
    page.setBlind(true);
    page.setMaxTokens(10);
    QSignalSpy done(&page, &ComparePage::answersDone);
    auto* prompt = page.findChild<QPlainTextEdit*>(QStringLiteral("comparePrompt"));
    QTest::keyClicks(prompt, QStringLiteral("Name three colours."));
    QTest::mouseClick(page.findChild<QPushButton*>(QStringLiteral("compareButton")), Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(page.bothDone(), TIMEOUT_MS);
    QCOMPARE(done.count(), 1);
    QVERIFY2(page.errorText().isEmpty(), qPrintable(page.errorText()));
    QVERIFY(!page.pane(true)->text().isEmpty());
    QVERIFY(!page.pane(false)->text().isEmpty());
    QVERIFY(page.pane(true)->text() != page.pane(false)->text());

    // Blind: no names, the two sides hold the two versions (in some order).
    QVERIFY(!page.revealed());
    for (bool left : {true, false}) {
      QVERIFY(!page.pane(left)->title().contains(QStringLiteral("tiny")));
    }
    QVERIFY((page.versionOnSide(true) == m_a && page.versionOnSide(false) == m_b) ||
            (page.versionOnSide(true) == m_b && page.versionOnSide(false) == m_a));

    // Both answers are stored as siblings under the one prompt, each with its version.
    auto msgs = *m_ctx->project()->messages(page.conversation());
    QCOMPARE(msgs.size(), size_t(3));
    QCOMPARE(msgs[0].role, std::string("user"));
    for (int i = 1; i < 3; ++i) {
      QCOMPARE(msgs[size_t(i)].role, std::string("assistant"));
      QCOMPARE(msgs[size_t(i)].parentId, std::optional<store::Id>(msgs[0].id));
      QVERIFY(msgs[size_t(i)].energyJoules.has_value());
    }

    // The user picks the right side.
    store::Id chosen = page.messageOnSide(false), other = page.messageOnSide(true);
    store::Id chosenVersion = page.versionOnSide(false);
    QTest::mouseClick(page.findChild<QPushButton*>(QStringLiteral("voteRight")), Qt::LeftButton);
    QVERIFY(page.revealed());
    msgs = *m_ctx->project()->messages(page.conversation());
    for (const auto& m : msgs) {
      if (m.id == chosen) {
        QCOMPARE(m.votes, std::int64_t(1));
        QCOMPARE(m.modelVersionId, std::optional<store::Id>(chosenVersion));
      }
      if (m.id == other) QCOMPARE(m.votes, std::int64_t(0));
    }
    QString rightTitle = page.pane(false)->title();
    QVERIFY2(rightTitle.contains(chosenVersion == m_a ? QStringLiteral("tiny-a") : QStringLiteral("tiny-b")),
             qPrintable(rightTitle));
    QVERIFY(!page.findChild<QPushButton*>(QStringLiteral("voteLeft"))->isEnabled());

    QDir().mkpath(QStringLiteral(HEARTH_SCREENSHOTS));
    QVERIFY(page.grab().save(QStringLiteral(HEARTH_SCREENSHOTS "/compare-page.png")));
  }

  void compareRequestFromAnotherPageSetsBothModels() {
    ComparePage page(*m_ctx);
    m_ctx->requestCompare(m_b, m_a);
    page.setBlind(false);
    page.setMaxTokens(4);
    page.compare(QStringLiteral("Hi"));
    QTRY_VERIFY_WITH_TIMEOUT(page.bothDone(), TIMEOUT_MS);
    // Not blind: A on the left, named.
    QCOMPARE(page.versionOnSide(true), m_b);
    QVERIFY(page.revealed());
    QVERIFY(page.pane(true)->title().contains(QStringLiteral("tiny-b")));
  }

  void cleanupTestCase() { m_ctx.reset(); }
};

QTEST_MAIN(TestComparePage)
#include "tst_comparepage.moc"
