/* ComparePage: two workers, one prompt, two streamed answers, a (blind) vote stored on the chosen answer.
 *
 * Non-obvious choice: the sides are drawn from QRandomGenerator::global() per comparison, and until
 * the vote the titles say only "Answer 1" / "Answer 2" and the figures (tokens/s, which differ by model
 * size) stay hidden too, since they would give the models away.
 */
#include "compare-page.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QRandomGenerator>
#include <QSpinBox>
#include <QThread>
#include <QVBoxLayout>

#include "app-context.h"
#include "compare-pane.h"
#include "pages.h"

namespace hearth::ui {
namespace {
QString qs(const std::string& s) { return QString::fromStdString(s); }
}  // namespace

ComparePage::ComparePage(AppContext& ctx, QWidget* parent) : QWidget(parent), m_ctx(ctx) {
  setObjectName(QStringLiteral("comparePage"));
  auto* col = new QVBoxLayout(this);

  auto* top = new QHBoxLayout;
  for (int i = 0; i < 2; ++i) {
    m_pick[i] = new QComboBox(this);
    m_pick[i]->setObjectName(i == 0 ? QStringLiteral("modelA") : QStringLiteral("modelB"));
    m_pick[i]->setMinimumWidth(220);
    top->addWidget(new QLabel(i == 0 ? tr("Model A:") : tr("Model B:"), this));
    top->addWidget(m_pick[i], 1);
  }
  m_blind = new QCheckBox(tr("Blind"), this);
  m_blind->setObjectName(QStringLiteral("blindMode"));
  m_blind->setToolTip(tr("Show the answers in random order without names until you pick the better one"));
  m_blind->setChecked(true);
  top->addWidget(m_blind);
  top->addWidget(new QLabel(tr("Max tokens:"), this));
  m_maxTokens = new QSpinBox(this);
  m_maxTokens->setObjectName(QStringLiteral("compareMaxTokens"));
  m_maxTokens->setRange(1, 1 << 16);
  m_maxTokens->setValue(256);
  top->addWidget(m_maxTokens);
  col->addLayout(top);

  auto* promptRow = new QHBoxLayout;
  m_prompt = new QPlainTextEdit(this);
  m_prompt->setObjectName(QStringLiteral("comparePrompt"));
  m_prompt->setPlaceholderText(tr("One prompt for both models"));
  m_prompt->setMaximumHeight(90);
  auto* buttons = new QVBoxLayout;
  m_go = new QPushButton(tr("Compare"), this);
  m_go->setObjectName(QStringLiteral("compareButton"));
  m_stop = new QPushButton(tr("Stop"), this);
  m_stop->setObjectName(QStringLiteral("compareStop"));
  m_stop->setEnabled(false);
  buttons->addWidget(m_go);
  buttons->addWidget(m_stop);
  promptRow->addWidget(m_prompt, 1);
  promptRow->addLayout(buttons);
  col->addLayout(promptRow);

  m_error = new QLabel(this);
  m_error->setObjectName(QStringLiteral("compareError"));
  m_error->setWordWrap(true);
  m_error->setStyleSheet(QStringLiteral("QLabel { color: white; background: #b3261e; padding: 6px; }"));
  m_error->setVisible(false);
  col->addWidget(m_error);

  auto* panes = new QHBoxLayout;
  m_panes[0] = new ComparePane(QStringLiteral("paneLeft"), this);
  m_panes[1] = new ComparePane(QStringLiteral("paneRight"), this);
  panes->addWidget(m_panes[0], 1);
  panes->addWidget(m_panes[1], 1);
  col->addLayout(panes, 1);

  auto* votes = new QHBoxLayout;
  m_voteLeft = new QPushButton(tr("◀ Left is better"), this);
  m_voteLeft->setObjectName(QStringLiteral("voteLeft"));
  m_voteRight = new QPushButton(tr("Right is better ▶"), this);
  m_voteRight->setObjectName(QStringLiteral("voteRight"));
  m_voteLeft->setEnabled(false);
  m_voteRight->setEnabled(false);
  m_status = new QLabel(this);
  m_status->setObjectName(QStringLiteral("compareStatus"));
  votes->addWidget(m_voteLeft);
  m_status->setAlignment(Qt::AlignCenter);
  votes->addWidget(m_status, 1);
  votes->addWidget(m_voteRight);
  col->addLayout(votes);

  for (int i = 0; i < 2; ++i) {
    m_controllers[i] = new ChatController(this);
    auto* c = m_controllers[i];
    connect(c, &ChatController::chunk, this, [this, i](quint64 id, const QString& text) {
      if (id == m_request[i]) m_panes[sideOf(i)]->append(text);
    });
    connect(c, &ChatController::replied, this, [this, i](const ChatReplyDone& done) { onReply(i, done); });
    connect(c, &ChatController::failed, this, [this, i](quint64 id, const QString& error) {
      if (id == m_request[i]) onFailed(i, error);
    });
    connect(c, &ChatController::modelFailed, this, [this, i](const QString& error) {
      m_loaded[i] = 0;
      showError(tr("Could not load model %1: %2").arg(i == 0 ? QStringLiteral("A") : QStringLiteral("B"), error));
    });
    connect(c, &ChatController::loadingModel, this,
            [this](const QString& what) { m_status->setText(tr("Loading %1…").arg(what)); });
  }
  connect(m_go, &QPushButton::clicked, this, [this] { compare(m_prompt->toPlainText()); });
  connect(m_stop, &QPushButton::clicked, this, &ComparePage::stop);
  connect(m_voteLeft, &QPushButton::clicked, this, [this] { vote(true); });
  connect(m_voteRight, &QPushButton::clicked, this, [this] { vote(false); });
  connect(&m_ctx, &AppContext::modelsChanged, this, &ComparePage::refreshModels);
  connect(&m_ctx, &AppContext::compareRequested, this, [this](store::Id a, store::Id b) { setVersions(a, b); });

  updateTitles();
  if (!m_ctx.project()) {
    showError(tr("No project is open: %1").arg(m_ctx.lastError()));
    m_go->setEnabled(false);
    return;
  }
  refreshModels();
}

ComparePage::~ComparePage() = default;  // the controllers (children) stop and join their threads

void ComparePage::refreshModels() {
  if (!m_ctx.project()) return;
  auto list = session::listChatModels(*m_ctx.project());
  if (!list) {
    showError(qs(list.error().to_string()));
    return;
  }
  for (int i = 0; i < 2; ++i) {
    QVariant keep = m_pick[i]->currentData();
    m_pick[i]->clear();
    for (const auto& c : *list) m_pick[i]->addItem(qs(c.label), QVariant::fromValue(qint64(c.versionId)));
    int at = keep.isValid() ? m_pick[i]->findData(keep) : -1;
    // Default: the two newest versions (often a fine-tune and its base).
    m_pick[i]->setCurrentIndex(at >= 0 ? at : std::min(i, m_pick[i]->count() - 1));
  }
}

bool ComparePage::setVersions(store::Id a, store::Id b) {
  refreshModels();
  int ia = m_pick[0]->findData(QVariant::fromValue(qint64(a)));
  int ib = m_pick[1]->findData(QVariant::fromValue(qint64(b)));
  if (ia < 0 || ib < 0) return false;
  m_pick[0]->setCurrentIndex(ia);
  m_pick[1]->setCurrentIndex(ib);
  return true;
}

void ComparePage::setBlind(bool on) { m_blind->setChecked(on); }
void ComparePage::setMaxTokens(int n) { m_maxTokens->setValue(n); }
ComparePane* ComparePage::pane(bool left) const { return m_panes[left ? 0 : 1]; }

store::Id ComparePage::messageOnSide(bool left) const {
  int model = (left == m_leftIsA) ? 0 : 1;
  return m_message[model];
}
store::Id ComparePage::versionOnSide(bool left) const {
  int model = (left == m_leftIsA) ? 0 : 1;
  return m_version[model];
}

QString ComparePage::errorText() const { return m_error->isVisible() ? m_error->text() : QString(); }

void ComparePage::showError(const QString& text) {
  m_error->setText(text);
  m_error->setVisible(true);
}

void ComparePage::updateTitles() {
  for (int model = 0; model < 2; ++model) {
    int side = sideOf(model);
    QString title = m_revealed && !m_modelName[model].isEmpty()
                        ? QStringLiteral("%1: %2").arg(model == 0 ? QStringLiteral("A") : QStringLiteral("B"),
                                                       m_modelName[model])
                        : tr("Answer %1").arg(side + 1);
    m_panes[side]->setTitle(title);
  }
}

void ComparePage::setRunning(bool running) {
  m_go->setEnabled(!running && m_ctx.project());
  m_stop->setEnabled(running);
}

void ComparePage::compare(const QString& rawPrompt) {
  QString prompt = rawPrompt.trimmed();
  if (prompt.isEmpty() || !m_ctx.project() || !bothDone()) return;
  m_error->setVisible(false);
  store::Project& p = *m_ctx.project();
  session::ChatModelChoice choice[2];
  for (int i = 0; i < 2; ++i) {
    if (m_pick[i]->currentIndex() < 0) {
      showError(tr("Pick two model versions (the Models page imports models)."));
      return;
    }
    auto c = session::chatModelFor(p, m_pick[i]->currentData().toLongLong());
    if (!c) {
      showError(qs(c.error().to_string()));
      return;
    }
    choice[i] = std::move(*c);
  }
  session::ChatSettings settings;
  settings.maxTokens = m_maxTokens->value();
  // A fixed seed: both models draw from the same random stream, so the comparison is of the models.
  settings.sampling.seed = QRandomGenerator::global()->bounded(1u << 30);

  store::Conversation conv;
  conv.title = ("Side by side: " + prompt.left(50).simplified()).toStdString();
  conv.modelVersionId = choice[0].versionId;
  auto convId = p.createConversation(conv);
  if (!convId) {
    showError(qs(convId.error().to_string()));
    return;
  }
  auto userId = p.addMessage(session::makeUserMessage(*convId, std::nullopt, prompt.toStdString(),
                                                      choice[0].versionId, settings));
  if (!userId) {
    showError(qs(userId.error().to_string()));
    return;
  }
  m_conversationId = *convId;
  m_ctx.notifyConversationsChanged();

  bool blind = m_blind->isChecked();
  m_leftIsA = blind ? QRandomGenerator::global()->bounded(2) == 0 : true;
  m_revealed = !blind;
  int threads = std::max(1, QThread::idealThreadCount() / 2);
  for (int i = 0; i < 2; ++i) {
    m_version[i] = choice[i].versionId;
    m_modelName[i] = qs(choice[i].label);
    m_message[i] = 0;
    m_done[i] = false;
    m_panes[i]->clear();
    if (m_loaded[i] != choice[i].versionId) {
      choice[i].load.threads = threads;
      m_controllers[i]->load(choice[i].load);
      m_loaded[i] = choice[i].versionId;
    }
    ChatGenerateRequest r;
    r.projectPath = m_ctx.projectPath();
    r.conversationId = *convId;
    r.parentId = *userId;
    r.versionId = choice[i].versionId;
    r.branch = {{"user", prompt.toStdString()}};
    r.settings = settings;
    m_request[i] = m_controllers[i]->generate(r);
  }
  updateTitles();
  m_voteLeft->setEnabled(false);
  m_voteRight->setEnabled(false);
  m_status->setText(tr("Generating…"));
  setRunning(true);
}

void ComparePage::stop() {
  for (auto* c : m_controllers) c->stop();
}

void ComparePage::onReply(int model, const ChatReplyDone& done) {
  if (done.id != m_request[model]) return;
  m_request[model] = 0;
  m_done[model] = true;
  m_message[model] = done.messageId;
  ComparePane* pane = m_panes[sideOf(model)];
  pane->setText(done.text);
  if (!done.storeError.isEmpty()) showError(tr("An answer could not be stored: %1").arg(done.storeError));
  QString figures = tr("%1 tokens · %2 tok/s").arg(done.completionTokens).arg(done.tokensPerSecond, 0, 'f', 1);
  if (done.hasEnergy && done.completionTokens > 0)
    figures += tr(" · %1 J/token%2")
                   .arg(done.joules / double(done.completionTokens), 0, 'g', 3)
                   .arg(done.estimated ? tr(" (estimated)") : QString());
  if (done.partial) figures = tr("stopped · ") + figures;
  pane->setFooter(m_revealed ? figures : QString());
  pane->setProperty("figures", figures);
  if (bothDone()) {
    setRunning(false);
    bool stored = m_message[0] != 0 && m_message[1] != 0;
    m_voteLeft->setEnabled(stored);
    m_voteRight->setEnabled(stored);
    m_status->setText(stored ? tr("Which answer is better?") : QString());
    emit answersDone();
  }
}

void ComparePage::onFailed(int model, const QString& error) {
  m_request[model] = 0;
  m_done[model] = true;
  showError(tr("Model %1: %2").arg(model == 0 ? QStringLiteral("A") : QStringLiteral("B"), error));
  if (bothDone()) {
    setRunning(false);
    m_status->clear();
    emit answersDone();
  }
}

void ComparePage::vote(bool left) {
  if (!bothDone() || !m_ctx.project()) return;
  store::Id msg = messageOnSide(left);
  if (msg == 0) return;
  if (auto ok = m_ctx.project()->voteMessage(msg, +1); !ok) {
    showError(qs(ok.error().to_string()));
    return;
  }
  m_revealed = true;
  updateTitles();
  for (auto* pane : m_panes) pane->setFooter(pane->property("figures").toString());
  m_panes[left ? 0 : 1]->setHighlighted(true);
  int model = (left == m_leftIsA) ? 0 : 1;
  m_status->setText(tr("Vote stored for %1").arg(m_modelName[model]));
  m_voteLeft->setEnabled(false);
  m_voteRight->setEnabled(false);
  m_ctx.notifyConversationsChanged();
  emit voted(msg);
}

QWidget* createComparePage(AppContext& ctx, QWidget* parent) { return new ComparePage(ctx, parent); }

}  // namespace hearth::ui
