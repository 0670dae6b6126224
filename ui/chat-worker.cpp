/* ChatWorker and ChatController: model loading and reply generation on a worker thread.
 *
 * Non-obvious choice: the controller's destructor cancels first (atomic), then asks the thread to quit
 * and waits: generation polls the cancel flag and the thread's interruption request between tokens, so
 * the wait is short even in the middle of a long reply. The worker is deleted on its own thread by
 * QThread::finished -> deleteLater.
 */
#include "chat-worker.h"

#include <chrono>
#include <exception>

#include "hearth/model.h"

namespace hearth::ui {

ChatWorker::ChatWorker(std::shared_ptr<std::atomic<quint64>> cancelUpTo) : m_cancelUpTo(std::move(cancelUpTo)) {}
ChatWorker::~ChatWorker() = default;

bool ChatWorker::keepGoing(quint64 id) const {
  if (QThread::currentThread()->isInterruptionRequested()) return false;
  return id > m_cancelUpTo->load();
}

void ChatWorker::load(const ChatLoadRequest& request) {
  try {
    emit loading(request.id, QString::fromStdString(request.options.modelPath.filename().string()));
    m_session.reset();
    auto s = session::ChatSession::open(request.options);
    if (!s) {
      emit loadFailed(request.id, QString::fromStdString(s.error().to_string()));
      return;
    }
    m_session = std::move(*s);
    ChatModelInfo info;
    info.id = request.id;
    const auto& d = m_session->desc();
    info.name = QString::fromStdString(d.name.empty() ? d.path.filename().string() : d.name);
    info.architecture = QString::fromUtf8(architecture_name(d.params.arch));
    info.parameters = QString::fromStdString(format_param_count(d.n_params));
    info.modelTemplate = QString::fromStdString(m_session->modelTemplate());
    info.fallbackTemplate = m_session->modelTemplate().empty();
    info.lora = m_session->hasLora();
    info.loadSeconds = m_session->loadSeconds();
    emit loaded(info);
  } catch (const std::exception& e) {  // out of memory while mapping or converting weights
    m_session.reset();
    emit loadFailed(request.id, QStringLiteral("loading the model failed: %1").arg(QString::fromUtf8(e.what())));
  }
}

void ChatWorker::generate(const ChatGenerateRequest& request) {
  try {
    if (!m_session) {
      emit failed(request.id, tr("No model is loaded"));
      return;
    }
    if (!keepGoing(request.id)) {  // stopped before it started
      emit failed(request.id, tr("Stopped"));
      return;
    }
    QString pending;
    // The first text is sent at once (the user sees the reply start), later text every CHUNK_MS.
    auto lastFlush = std::chrono::steady_clock::time_point{};
    auto flush = [&] {
      if (pending.isEmpty()) return;
      emit chunk(request.id, pending);
      pending.clear();
      lastFlush = std::chrono::steady_clock::now();
    };
    auto r = m_session->reply(
        request.branch, request.settings,
        [&](std::string_view text) {
          pending += QString::fromUtf8(text.data(), qsizetype(text.size()));
          if (std::chrono::steady_clock::now() - lastFlush >= std::chrono::milliseconds(CHUNK_MS)) flush();
          return keepGoing(request.id);
        },
        [&] { return keepGoing(request.id); });
    flush();
    if (!r) {
      emit failed(request.id, QString::fromStdString(r.error().to_string()));
      return;
    }
    ChatReplyDone done;
    done.id = request.id;
    done.conversationId = request.conversationId;
    done.text = QString::fromStdString(r->text);
    done.stop = QString::fromUtf8(stop_reason_name(r->stop));
    done.partial = r->partial();
    done.promptTokens = r->stats.n_prompt;
    done.completionTokens = r->stats.n_generated;
    done.tokensPerSecond = r->tokensPerSecond();
    done.hasEnergy = r->energy.hasData;
    done.joules = r->energy.joules;
    done.estimated = r->energy.kind == telemetry::SensorKind::estimated;
    done.backend = QString::fromStdString(r->backend);
    done.backendNote = QString::fromStdString(r->backendNote);
    if (!request.projectPath.isEmpty() && request.conversationId != 0) {
      if (!m_project || m_projectPath != request.projectPath) {
        m_project.reset();
        auto p = store::Project::open(request.projectPath.toStdString());
        if (p) {
          m_project = std::make_unique<store::Project>(std::move(*p));
          m_projectPath = request.projectPath;
        } else {
          done.storeError = QString::fromStdString(p.error().to_string());
        }
      }
      if (m_project) {
        auto msg = session::makeAssistantMessage(request.conversationId, request.parentId, request.versionId,
                                                 request.settings, *r);
        auto id = m_project->addMessage(msg);
        if (id)
          done.messageId = *id;
        else
          done.storeError = QString::fromStdString(id.error().to_string());
      }
    }
    emit replied(done);
  } catch (const std::exception& e) {  // std::bad_alloc for a context too large for memory
    emit failed(request.id, QStringLiteral("generation failed: %1").arg(QString::fromUtf8(e.what())));
  }
}

// ---- controller ----

ChatController::ChatController(QObject* parent)
    : QObject(parent), m_cancelUpTo(std::make_shared<std::atomic<quint64>>(0)) {
  qRegisterMetaType<ChatLoadRequest>();
  qRegisterMetaType<ChatGenerateRequest>();
  qRegisterMetaType<ChatModelInfo>();
  qRegisterMetaType<ChatReplyDone>();
  m_thread = new QThread(this);
  m_thread->setObjectName(QStringLiteral("hearth-chat-worker"));
  auto* worker = new ChatWorker(m_cancelUpTo);
  worker->moveToThread(m_thread);
  connect(m_thread, &QThread::finished, worker, &QObject::deleteLater);
  connect(this, &ChatController::requestLoad, worker, &ChatWorker::load);
  connect(this, &ChatController::requestGenerate, worker, &ChatWorker::generate);
  connect(worker, &ChatWorker::loading, this, [this](quint64, const QString& what) { emit loadingModel(what); });
  connect(worker, &ChatWorker::loaded, this, [this](const ChatModelInfo& info) {
    if (info.id == m_loading) {
      m_loading = 0;
      emit busyChanged(generating());
    }
    emit modelLoaded(info);
  });
  connect(worker, &ChatWorker::loadFailed, this, [this](quint64 id, const QString& error) {
    if (id == m_loading) {
      m_loading = 0;
      emit busyChanged(generating());
    }
    emit modelFailed(error);
  });
  connect(worker, &ChatWorker::chunk, this, &ChatController::chunk);
  connect(worker, &ChatWorker::replied, this, [this](const ChatReplyDone& done) {
    if (done.id == m_generating) {
      m_generating = 0;
      emit busyChanged(loading());
    }
    emit replied(done);
  });
  connect(worker, &ChatWorker::failed, this, [this](quint64 id, const QString& error) {
    if (id == m_generating) {
      m_generating = 0;
      emit busyChanged(loading());
    }
    emit failed(id, error);
  });
  m_thread->start();
}

ChatController::~ChatController() {
  m_cancelUpTo->store(~quint64(0));
  m_thread->requestInterruption();
  m_thread->quit();
  m_thread->wait();
}

quint64 ChatController::load(const session::ChatModelOptions& options) {
  ChatLoadRequest r;
  r.id = m_nextId++;
  r.options = options;
  m_loading = r.id;
  emit busyChanged(true);
  emit requestLoad(r);
  return r.id;
}

quint64 ChatController::generate(ChatGenerateRequest request) {
  request.id = m_nextId++;
  m_generating = request.id;
  emit busyChanged(true);
  emit requestGenerate(request);
  return request.id;
}

void ChatController::stop() { m_cancelUpTo->store(m_nextId - 1); }

}  // namespace hearth::ui
