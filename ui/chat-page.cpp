/* ChatPage: conversations, model picker, streaming messages with branches, and the settings panel.
 *
 * Non-obvious choice: after every stored change the page re-reads the conversation's messages from
 * the project (cheap: one indexed query) instead of patching its copy, so what is shown is exactly what
 * was stored, including rows the worker wrote on its own connection.
 */
#include "chat-page.h"

#include <QAction>
#include <QComboBox>
#include <QHBoxLayout>
#include <QKeySequence>
#include <QLabel>
#include <QLineEdit>
#include <QListView>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QShortcut>
#include <QSplitter>
#include <QThread>
#include <QTimer>
#include <QVBoxLayout>
#include <algorithm>

#include "app-context.h"
#include "chat-conversation-model.h"
#include "chat-message-view.h"
#include "chat-settings-panel.h"
#include "pages.h"
#include "settings.h"

namespace hearth::ui {
namespace {

QString qs(const std::string& s) { return QString::fromStdString(s); }

// The three columns' widths, and the model version picked last (preselected in a new conversation).
const Setting<QByteArray> SPLITTER_STATE{"chat/splitter", QByteArray()};
const Setting<qint64> LAST_VERSION{"chat/lastModelVersion", 0};
// Where replies are computed ("cpu", "cuda", "auto"); applies at the next model load.
const Setting<QString> RUN_ON{"chat/runOn", QStringLiteral("cpu")};

using Device = InferenceOptions::Device;

// "Ran on cuda:0 NVIDIA H200", or "Ran on the CPU — built without CUDA" when a GPU was asked for.
QString ranOnText(const QString& backend, const QString& note) {
  if (backend.isEmpty()) return QString();
  if (backend == QLatin1String("cpu"))
    return note.isEmpty() ? ChatPage::tr("Ran on the CPU") : ChatPage::tr("Ran on the CPU — %1").arg(note);
  return ChatPage::tr("Ran on %1").arg(backend);
}

// "12.3 tok/s · 0.41 J/token (estimated)" for a stored assistant message.
QString footerOf(const store::Message& m) {
  QStringList parts;
  if (m.tokensPerSecond) parts << QObject::tr("%1 tok/s").arg(*m.tokensPerSecond, 0, 'f', 1);
  parts << QObject::tr("%n token(s)", nullptr, int(m.completionTokens));
  auto sp = nlohmann::json::parse(m.samplingParams, nullptr, false);
  if (m.energyJoules) {
    QString sensor;  // the row may have been written by another program: check every type
    if (sp.is_object() && sp.contains("energy") && sp["energy"].is_object() && sp["energy"].contains("sensor") &&
        sp["energy"]["sensor"].is_string())
      sensor = qs(sp["energy"]["sensor"].get<std::string>());
    QString e = m.completionTokens > 0
                    ? QObject::tr("%1 J/token").arg(*m.energyJoules / double(m.completionTokens), 0, 'g', 3)
                    : QObject::tr("%1 J").arg(*m.energyJoules, 0, 'g', 3);
    if (!sensor.isEmpty()) e += QStringLiteral(" (%1)").arg(sensor);
    parts << e;
  }
  return parts.join(QStringLiteral(" · "));
}

bool isPartial(const store::Message& m) {
  auto sp = nlohmann::json::parse(m.samplingParams, nullptr, false);
  return sp.is_object() && sp.contains("partial") && sp["partial"].is_boolean() && sp["partial"].get<bool>();
}

}  // namespace

ChatPage::ChatPage(AppContext& ctx, QWidget* parent) : QWidget(parent), m_ctx(ctx) {
  setObjectName(QStringLiteral("chatPage"));
  m_controller = new ChatController(this);

  auto* outer = new QHBoxLayout(this);
  outer->setContentsMargins(0, 0, 0, 0);
  auto* split = new QSplitter(Qt::Horizontal, this);
  outer->addWidget(split);

  // Left: conversations.
  auto* left = new QWidget(split);
  auto* leftCol = new QVBoxLayout(left);
  auto* newButton = new QPushButton(tr("New chat"), left);
  newButton->setObjectName(QStringLiteral("newChatButton"));
  newButton->setToolTip(tr("Start a new conversation (Ctrl+N)"));
  m_search = new QLineEdit(left);
  m_search->setObjectName(QStringLiteral("conversationSearch"));
  m_search->setPlaceholderText(tr("Search conversations"));
  m_search->setClearButtonEnabled(true);
  m_list = new QListView(left);
  m_list->setObjectName(QStringLiteral("conversationList"));
  m_list->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed);
  m_conversations = new ChatConversationModel(this);
  m_conversations->setProject(m_ctx.project());
  m_list->setModel(m_conversations);
  m_list->setContextMenuPolicy(Qt::ActionsContextMenu);
  auto* renameAction = new QAction(tr("Rename"), m_list);
  connect(renameAction, &QAction::triggered, this, [this] {
    if (m_list->currentIndex().isValid()) m_list->edit(m_list->currentIndex());
  });
  auto* deleteAction = new QAction(tr("Delete…"), m_list);
  deleteAction->setShortcut(QKeySequence::Delete);
  deleteAction->setShortcutContext(Qt::WidgetShortcut);
  connect(deleteAction, &QAction::triggered, this, [this] {
    store::Id id = m_conversations->idAt(m_list->currentIndex().row());
    if (id == 0) return;
    auto answer = QMessageBox::question(this, tr("Delete conversation"),
                                        tr("Delete “%1” and all its messages from the project?")
                                            .arg(m_list->currentIndex().data().toString()));
    if (answer == QMessageBox::Yes) deleteConversation(id);
  });
  m_list->addAction(renameAction);
  m_list->addAction(deleteAction);
  leftCol->addWidget(newButton);
  leftCol->addWidget(m_search);
  leftCol->addWidget(m_list, 1);
  split->addWidget(left);

  // Centre: model, messages, input.
  auto* centre = new QWidget(split);
  auto* col = new QVBoxLayout(centre);
  auto* top = new QHBoxLayout;
  m_modelPicker = new QComboBox(centre);
  m_modelPicker->setObjectName(QStringLiteral("modelPicker"));
  m_modelPicker->setMinimumWidth(240);
  m_modelStatus = new QLabel(centre);
  m_modelStatus->setObjectName(QStringLiteral("modelStatus"));
  m_busyBar = new QProgressBar(centre);
  m_busyBar->setObjectName(QStringLiteral("busyBar"));
  m_busyBar->setRange(0, 0);  // indeterminate: loading and generation give no fraction
  m_busyBar->setMaximumWidth(120);
  m_busyBar->setVisible(false);
  top->addWidget(new QLabel(tr("Model:"), centre));
  top->addWidget(m_modelPicker);
  m_runOn = new QComboBox(centre);
  m_runOn->setObjectName(QStringLiteral("runOnPicker"));
  m_runOn->setToolTip(tr("Where replies are computed; applies when the model is next loaded. A GPU that "
                         "cannot serve falls back to the CPU, and the line under this says why."));
  m_runOn->addItem(tr("CPU"), QStringLiteral("cpu"));
  m_runOn->addItem(tr("GPU (CUDA)"), QStringLiteral("cuda"));
  m_runOn->addItem(tr("Automatic"), QStringLiteral("auto"));
  if (int i = m_runOn->findData(RUN_ON.get()); i >= 0) m_runOn->setCurrentIndex(i);
  top->addWidget(new QLabel(tr("Run on:"), centre));
  top->addWidget(m_runOn);
  top->addWidget(m_busyBar);
  top->addWidget(m_modelStatus, 1);
  col->addLayout(top);
  m_ranOn = new QLabel(centre);
  m_ranOn->setObjectName(QStringLiteral("ranOnStatus"));
  m_ranOn->setWordWrap(true);
  m_ranOn->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_ranOn->setVisible(false);
  col->addWidget(m_ranOn);
  m_error = new QLabel(centre);
  m_error->setObjectName(QStringLiteral("chatError"));
  m_error->setWordWrap(true);
  m_error->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_error->setStyleSheet(QStringLiteral("QLabel { color: palette(bright-text); background: #b3261e; padding: 6px; }"));
  m_error->setVisible(false);
  col->addWidget(m_error);
  m_view = new ChatMessageView(centre);
  col->addWidget(m_view, 1);
  auto* inputRow = new QHBoxLayout;
  m_input = new QPlainTextEdit(centre);
  m_input->setObjectName(QStringLiteral("chatInput"));
  m_input->setPlaceholderText(tr("Message (Ctrl+Enter sends, Esc stops)"));
  m_input->setMaximumHeight(100);
  auto* buttons = new QVBoxLayout;
  m_send = new QPushButton(tr("Send"), centre);
  m_send->setObjectName(QStringLiteral("sendButton"));
  m_stop = new QPushButton(tr("Stop"), centre);
  m_stop->setObjectName(QStringLiteral("stopButton"));
  m_stop->setEnabled(false);
  buttons->addWidget(m_send);
  buttons->addWidget(m_stop);
  inputRow->addWidget(m_input, 1);
  inputRow->addLayout(buttons);
  col->addLayout(inputRow);
  split->addWidget(centre);

  // Right: settings.
  m_settings = new ChatSettingsPanel(split);
  split->addWidget(m_settings);
  split->setStretchFactor(0, 0);
  split->setStretchFactor(1, 1);
  split->setStretchFactor(2, 0);
  split->setSizes({200, 600, 260});
  if (QByteArray state = SPLITTER_STATE.get(); !state.isEmpty()) split->restoreState(state);
  connect(split, &QSplitter::splitterMoved, this, [split] { SPLITTER_STATE.set(split->saveState()); });

  m_saveTimer = new QTimer(this);
  m_saveTimer->setSingleShot(true);
  m_saveTimer->setInterval(500);
  connect(m_saveTimer, &QTimer::timeout, this, &ChatPage::saveSystemPrompt);

  // Actions and shortcuts (active while focus is inside the page).
  connect(m_send, &QPushButton::clicked, this, [this] { send(m_input->toPlainText()); });
  connect(m_stop, &QPushButton::clicked, this, &ChatPage::stop);
  connect(newButton, &QPushButton::clicked, this, &ChatPage::newConversation);
  for (auto key : {QKeySequence(Qt::CTRL | Qt::Key_Return), QKeySequence(Qt::CTRL | Qt::Key_Enter)}) {
    auto* sc = new QShortcut(key, this);
    sc->setContext(Qt::WidgetWithChildrenShortcut);
    connect(sc, &QShortcut::activated, this, [this] { send(m_input->toPlainText()); });
  }
  auto* esc = new QShortcut(QKeySequence(Qt::Key_Escape), this);
  esc->setContext(Qt::WidgetWithChildrenShortcut);
  connect(esc, &QShortcut::activated, this, &ChatPage::stop);
  // Ctrl+N belongs to the window's Chat > New chat action (a page shortcut too would make it
  // ambiguous, and neither would fire); the action reaches the page through AppContext.
  connect(&m_ctx, &AppContext::newChatRequested, this, &ChatPage::newConversation);

  connect(m_view, &ChatMessageView::editSubmitted, this, &ChatPage::editAndResend);
  connect(m_view, &ChatMessageView::regenerateRequested, this, &ChatPage::regenerate);
  connect(m_view, &ChatMessageView::branchRequested, this, &ChatPage::switchBranch);
  connect(m_search, &QLineEdit::textChanged, this, [this](const QString& t) { m_conversations->setSearch(t); });
  connect(m_list->selectionModel(), &QItemSelectionModel::currentChanged, this, [this](const QModelIndex& i) {
    store::Id id = m_conversations->idAt(i.row());
    if (id != 0 && id != m_conversationId) openConversation(id);
  });
  connect(m_conversations, &ChatConversationModel::storeError, this, &ChatPage::showError);
  connect(m_conversations, &QAbstractItemModel::dataChanged, this, &ChatPage::notifyOthers);  // a rename
  connect(m_modelPicker, &QComboBox::activated, this, [this] {
    auto v = pickedVersion();
    if (!v) return;
    LAST_VERSION.set(*v);
    if (m_conversationId != 0 && m_ctx.project()) {
      if (const auto* c = m_conversations->conversation(m_conversationId)) {
        store::Conversation u = *c;
        u.modelVersionId = *v;
        if (auto ok = m_ctx.project()->updateConversation(u); !ok) showError(qs(ok.error().to_string()));
        else reloadConversations();
      }
    }
    ensureModel();
  });
  connect(m_runOn, &QComboBox::currentIndexChanged, this, [this] { RUN_ON.set(m_runOn->currentData().toString()); });
  connect(m_settings, &ChatSettingsPanel::changed, this, [this] {
    m_unsentSettings.insert(m_conversationId, m_settings->settings());
  });
  connect(m_settings, &ChatSettingsPanel::systemPromptChanged, this, [this] { m_saveTimer->start(); });

  // Worker.
  connect(m_controller, &ChatController::busyChanged, this, &ChatPage::setBusy);
  connect(m_controller, &ChatController::loadingModel, this, [this](const QString& what) {
    m_modelStatus->setText(tr("Loading %1…").arg(what));
  });
  connect(m_controller, &ChatController::modelLoaded, this, [this](const ChatModelInfo& info) {
    m_modelStatus->setText(tr("%1 · %2 · %3 parameters%4 · loaded in %5 s")
                               .arg(info.name, info.architecture, info.parameters,
                                    info.lora ? tr(" · LoRA") : QString())
                               .arg(info.loadSeconds, 0, 'f', 2));
    m_settings->setModelTemplate(info.modelTemplate, info.fallbackTemplate);
  });
  connect(m_controller, &ChatController::modelFailed, this, [this](const QString& error) {
    m_loadedVersion = 0;
    m_modelStatus->setText(tr("No model loaded"));
    showError(tr("Could not load the model: %1").arg(error));
  });
  connect(m_controller, &ChatController::chunk, this, [this](quint64 id, const QString& text) {
    if (id == m_replyRequest) m_view->appendStreaming(text);
  });
  connect(m_controller, &ChatController::replied, this, [this](const ChatReplyDone& done) {
    if (done.id != m_replyRequest) return;
    m_replyRequest = 0;
    setBusy(m_controller->loading() || m_controller->generating());
    if (!done.storeError.isEmpty()) showError(tr("The reply could not be stored: %1").arg(done.storeError));
    m_ranOn->setText(ranOnText(done.backend, done.backendNote));
    m_ranOn->setVisible(!m_ranOn->text().isEmpty());
    if (done.conversationId == m_conversationId) {
      reloadMessages();
      for (const auto& m : m_messages)
        if (m.id == done.messageId && m.parentId) m_selectedChild.insert(*m.parentId, m.id);
      render();
    }
    notifyOthers();
    emit replyFinished(done.messageId);
  });
  connect(m_controller, &ChatController::failed, this, [this](quint64 id, const QString& error) {
    if (id != m_replyRequest) return;
    m_replyRequest = 0;
    setBusy(m_controller->loading() || m_controller->generating());
    m_view->endStreaming();
    showError(error);
  });

  // Other pages.
  connect(&m_ctx, &AppContext::modelsChanged, this, &ChatPage::refreshModels);
  connect(&m_ctx, &AppContext::conversationsChanged, this, [this] {
    if (!m_notifying) reloadConversations();
  });
  connect(&m_ctx, &AppContext::chatWithRequested, this, [this](store::Id versionId) {
    newConversation();
    selectModelVersion(versionId);
  });
  connect(&m_ctx, &AppContext::promptInsertRequested, this, [this](const QString& text, bool asSystem) {
    if (asSystem)
      m_settings->setSystemPrompt(text);
    else
      m_input->insertPlainText(text);
  });

  if (!m_ctx.project()) {
    showError(tr("No project is open: %1").arg(m_ctx.lastError()));
    m_send->setEnabled(false);
    return;
  }
  refreshModels();
  if (qint64 last = LAST_VERSION.get(); last != 0) {
    int i = m_modelPicker->findData(QVariant::fromValue(last));
    if (i >= 0) m_modelPicker->setCurrentIndex(i);
  }
  reloadConversations();
  newConversation();
}

ChatPage::~ChatPage() = default;  // the controller (a child) stops and joins its thread

void ChatPage::showError(const QString& text) {
  m_error->setText(text);
  m_error->setVisible(true);
  emit errorShown(text);
}

void ChatPage::clearError() {
  m_error->clear();
  m_error->setVisible(false);
}

QString ChatPage::errorText() const { return m_error->isVisible() ? m_error->text() : QString(); }
bool ChatPage::isGenerating() const { return m_replyRequest != 0; }

void ChatPage::refreshModels() {
  if (!m_ctx.project()) return;
  auto current = pickedVersion();
  m_modelPicker->clear();
  auto list = session::listChatModels(*m_ctx.project());
  if (!list) {
    showError(qs(list.error().to_string()));
    return;
  }
  for (const auto& c : *list) m_modelPicker->addItem(qs(c.label), QVariant::fromValue(qint64(c.versionId)));
  if (list->empty()) {
    m_modelPicker->setPlaceholderText(tr("No model: import one on the Models page"));
    m_modelPicker->setCurrentIndex(-1);
  }
  if (current) {
    int i = m_modelPicker->findData(QVariant::fromValue(qint64(*current)));
    if (i >= 0) m_modelPicker->setCurrentIndex(i);
  }
  // With a placeholder text QComboBox does not pick the first item by itself.
  if (m_modelPicker->currentIndex() < 0 && m_modelPicker->count() > 0) m_modelPicker->setCurrentIndex(0);
}

InferenceOptions::Device ChatPage::runOnDevice() const {
  QString d = m_runOn->currentData().toString();
  if (d == QLatin1String("cuda")) return Device::cuda;
  if (d == QLatin1String("auto")) return Device::automatic;
  return Device::cpu;
}

std::optional<store::Id> ChatPage::pickedVersion() const {
  if (m_modelPicker->currentIndex() < 0) return std::nullopt;
  return store::Id(m_modelPicker->currentData().toLongLong());
}

bool ChatPage::selectModelVersion(store::Id versionId) {
  int i = m_modelPicker->findData(QVariant::fromValue(qint64(versionId)));
  if (i < 0) {
    refreshModels();
    i = m_modelPicker->findData(QVariant::fromValue(qint64(versionId)));
  }
  if (i < 0) return false;
  m_modelPicker->setCurrentIndex(i);
  emit m_modelPicker->activated(i);
  return true;
}

bool ChatPage::ensureModel() {
  auto v = pickedVersion();
  if (!v) {
    showError(tr("Pick a model first (the Models page imports one)."));
    return false;
  }
  Device device = runOnDevice();
  if (*v == m_loadedVersion && device == m_loadedDevice) return true;
  auto choice = session::chatModelFor(*m_ctx.project(), *v);
  if (!choice) {
    showError(qs(choice.error().to_string()));
    return false;
  }
  clearError();
  choice->load.threads = std::max(1, QThread::idealThreadCount());
  choice->load.device = device;
  m_loadedVersion = *v;
  m_loadedDevice = device;
  m_controller->load(choice->load);
  return true;
}

void ChatPage::notifyOthers() {
  // This page reloads what it must itself; a reset of its own list now could drop an open editor.
  m_notifying = true;
  m_ctx.notifyConversationsChanged();
  m_notifying = false;
}

void ChatPage::reloadConversations() {
  m_conversations->reload();
  int row = m_conversations->rowOf(m_conversationId);
  QSignalBlocker block(m_list->selectionModel());
  if (row >= 0)
    m_list->setCurrentIndex(m_conversations->index(row));
  else
    m_list->clearSelection();
}

void ChatPage::newConversation() {
  openConversation(0);
  m_input->setFocus();
}

bool ChatPage::deleteConversation(store::Id id) {
  if (!m_ctx.project() || id == 0) return false;
  if (id == m_conversationId) newConversation();
  if (auto ok = m_ctx.project()->deleteConversation(id); !ok) {
    showError(qs(ok.error().to_string()));
    return false;
  }
  m_unsentSettings.remove(id);
  reloadConversations();
  notifyOthers();
  return true;
}

void ChatPage::openConversation(store::Id id) {
  if (isGenerating()) stop();
  m_conversationId = id;
  m_messages.clear();
  m_selectedChild.clear();
  clearError();
  if (id != 0 && m_ctx.project()) {
    reloadMessages();
    if (auto it = m_unsentSettings.find(id); it != m_unsentSettings.end()) {
      m_settings->setSettings(*it);
    } else if (auto s = session::conversationSettings(*m_ctx.project(), id, m_settings->settings()); s) {
      m_settings->setSettings(*s);
    }
    if (const auto* c = m_conversations->conversation(id); c && c->modelVersionId) {
      int i = m_modelPicker->findData(QVariant::fromValue(qint64(*c->modelVersionId)));
      if (i >= 0) m_modelPicker->setCurrentIndex(i);
    }
  } else {
    session::ChatSettings keep = m_settings->settings();
    keep.systemPrompt.clear();
    m_settings->setSettings(keep);
  }
  reloadConversations();
  render();
}

void ChatPage::reloadMessages() {
  if (!m_ctx.project() || m_conversationId == 0) return;
  auto msgs = m_ctx.project()->messages(m_conversationId);
  if (!msgs) {
    showError(qs(msgs.error().to_string()));
    return;
  }
  m_messages = std::move(*msgs);
}

std::vector<store::Message> ChatPage::currentPath() const {
  std::vector<store::Message> path;
  store::Id key = 0;
  for (size_t guard = 0; guard <= m_messages.size(); ++guard) {
    std::vector<const store::Message*> children;
    for (const auto& m : m_messages)
      if (m.parentId.value_or(0) == key) children.push_back(&m);
    if (children.empty()) break;
    const store::Message* chosen = children.back();
    auto it = m_selectedChild.find(key);
    if (it != m_selectedChild.end() && *it == -1) break;  // a reply being regenerated: hide the old one
    if (it != m_selectedChild.end())
      for (const auto* c : children)
        if (c->id == *it) chosen = c;
    path.push_back(*chosen);
    key = chosen->id;
  }
  return path;
}

void ChatPage::render() {
  QVector<ChatMessageItem> items;
  for (const auto& m : currentPath()) {
    ChatMessageItem item;
    item.id = m.id;
    item.role = qs(m.role);
    item.content = qs(m.content);
    int count = 0, index = 0;
    for (const auto& o : m_messages)
      if (o.parentId == m.parentId) {
        if (o.id == m.id) index = count;
        ++count;
      }
    item.siblingIndex = index;
    item.siblingCount = count;
    if (m.role == "assistant") {
      item.footer = footerOf(m);
      item.partial = isPartial(m);
    }
    items.push_back(item);
  }
  m_view->setMessages(items);
}

void ChatPage::setBusy(bool busy) {
  m_busyBar->setVisible(busy);
  m_stop->setEnabled(m_replyRequest != 0);
  m_send->setEnabled(!isGenerating() && m_ctx.project());
  m_view->setBusy(isGenerating());
}

void ChatPage::send(const QString& rawText) {
  QString text = rawText.trimmed();
  if (text.isEmpty() || isGenerating() || !m_ctx.project()) return;
  if (!ensureModel()) return;
  store::Project& p = *m_ctx.project();
  session::ChatSettings settings = m_settings->settings();
  auto version = pickedVersion();
  if (m_conversationId == 0) {
    store::Conversation c;
    c.title = text.left(60).simplified().toStdString();
    c.modelVersionId = version;
    c.systemPrompt = settings.systemPrompt;
    auto id = p.createConversation(c);
    if (!id) {
      showError(qs(id.error().to_string()));
      return;
    }
    m_unsentSettings.remove(0);
    m_conversationId = *id;
    notifyOthers();
    reloadConversations();
  }
  auto path = currentPath();
  std::optional<store::Id> parent;
  if (!path.empty()) parent = path.back().id;
  auto id = p.addMessage(session::makeUserMessage(m_conversationId, parent, text.toStdString(), version, settings));
  if (!id) {
    showError(qs(id.error().to_string()));
    return;
  }
  m_unsentSettings.remove(m_conversationId);
  m_input->clear();
  reloadMessages();
  m_selectedChild.insert(parent.value_or(0), *id);
  render();
  startReply(*id);
}

void ChatPage::startReply(store::Id userMessageId) {
  if (!ensureModel()) return;
  clearError();
  ChatGenerateRequest r;
  r.projectPath = m_ctx.projectPath();
  r.conversationId = m_conversationId;
  r.parentId = userMessageId;
  r.versionId = pickedVersion();
  r.branch = session::turnsOf(session::branchTo(m_messages, userMessageId));
  r.settings = m_settings->settings();
  m_view->beginStreaming();
  m_replyRequest = m_controller->generate(r);
  setBusy(true);
}

void ChatPage::stop() {
  if (!isGenerating()) return;
  m_controller->stop();
}

void ChatPage::regenerate(store::Id assistantId) {
  if (isGenerating()) return;
  for (const auto& m : m_messages)
    if (m.id == assistantId && m.parentId) {
      // Show the user message alone while the new sibling is written.
      m_selectedChild.insert(*m.parentId, -1);
      render();
      startReply(*m.parentId);
      return;
    }
}

void ChatPage::editAndResend(store::Id userMessageId, const QString& text) {
  if (isGenerating() || !m_ctx.project() || text.trimmed().isEmpty()) return;
  const store::Message* original = nullptr;
  for (const auto& m : m_messages)
    if (m.id == userMessageId) original = &m;
  if (!original || original->role != "user") return;
  session::ChatSettings settings = m_settings->settings();
  auto id = m_ctx.project()->addMessage(session::makeUserMessage(m_conversationId, original->parentId,
                                                                 text.trimmed().toStdString(), pickedVersion(), settings));
  if (!id) {
    showError(qs(id.error().to_string()));
    return;
  }
  store::Id parentKey = original->parentId.value_or(0);
  reloadMessages();
  m_selectedChild.insert(parentKey, *id);
  render();
  startReply(*id);
}

void ChatPage::switchBranch(store::Id messageId, int delta) {
  const store::Message* msg = nullptr;
  for (const auto& m : m_messages)
    if (m.id == messageId) msg = &m;
  if (!msg) return;
  std::vector<store::Id> siblings;
  for (const auto& m : m_messages)
    if (m.parentId == msg->parentId) siblings.push_back(m.id);
  auto at = std::find(siblings.begin(), siblings.end(), messageId) - siblings.begin();
  auto to = at + delta;
  if (to < 0 || to >= std::ptrdiff_t(siblings.size())) return;
  m_selectedChild.insert(msg->parentId.value_or(0), siblings[size_t(to)]);
  render();
}

void ChatPage::saveSystemPrompt() {
  if (m_conversationId == 0 || !m_ctx.project()) return;
  auto c = m_ctx.project()->conversation(m_conversationId);
  if (!c) return;
  std::string sp = m_settings->settings().systemPrompt;
  if (c->systemPrompt == sp) return;
  c->systemPrompt = sp;
  if (auto ok = m_ctx.project()->updateConversation(*c); !ok) showError(qs(ok.error().to_string()));
}

QWidget* createChatPage(AppContext& ctx, QWidget* parent) { return new ChatPage(ctx, parent); }

}  // namespace hearth::ui
