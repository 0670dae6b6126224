/* ChatSession: loading a chat model and answering a branch of a conversation, metered for energy; the
 * helpers that store replies as messages.
 *
 * Non-obvious choice: the LoRA adapter is attached through InferenceOptions::lora only when this
 * engine has that member (a requires-expression inside a template), so the session builds against an
 * engine with or without adapter support; without it an adapter path is a clear `unsupported` error.
 */
#include "hearth/session/chat-session.h"

#include <chrono>
#include <set>
#include <thread>

#include "hearth/chat-template.h"
#include "hearth/inference.h"
#include "hearth/lora.h"
#include "hearth/telemetry/recorder.h"

namespace hearth::session {

const char* const ChatSession::FALLBACK_TEMPLATE =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

namespace {

// Attaches an adapter when InferenceOptions has a `lora` member; false when it has none.
template <class Options>
Expected<bool> attachLora(Options& options, const std::filesystem::path& path, const ModelDesc& base) {
  if constexpr (requires(Options o) { o.lora; }) {
    auto adapter = load_lora_adapter(path, base);
    if (!adapter) return Unexpected{adapter.error()};
    options.lora = std::make_shared<LoraAdapter>(std::move(*adapter));
    return true;
  } else {
    (void)options;
    (void)path;
    (void)base;
    return false;
  }
}

template <class T>
void readKey(const nlohmann::json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it == j.end()) return;
  if constexpr (std::is_same_v<T, std::string>) {
    if (it->is_string()) out = it->template get<std::string>();
  } else {
    if (it->is_number()) out = it->template get<T>();
  }
}

}  // namespace

nlohmann::json ChatSettings::toJson() const {
  nlohmann::json j = {{"temperature", sampling.temperature}, {"top_k", sampling.top_k},
                      {"top_p", sampling.top_p},             {"min_p", sampling.min_p},
                      {"repeat_penalty", sampling.repeat_penalty},
                      {"seed", sampling.seed},               {"max_tokens", maxTokens},
                      {"n_ctx", nCtx}};
  if (!templateOverride.empty()) j["chat_template"] = templateOverride;
  return j;
}

ChatSettings ChatSettings::fromJson(const nlohmann::json& j) { return fromJson(j, ChatSettings{}); }

ChatSettings ChatSettings::fromJson(const nlohmann::json& j, const ChatSettings& base) {
  ChatSettings s = base;
  if (!j.is_object()) return s;
  readKey(j, "temperature", s.sampling.temperature);
  readKey(j, "top_k", s.sampling.top_k);
  readKey(j, "top_p", s.sampling.top_p);
  readKey(j, "min_p", s.sampling.min_p);
  readKey(j, "repeat_penalty", s.sampling.repeat_penalty);
  readKey(j, "seed", s.sampling.seed);
  readKey(j, "max_tokens", s.maxTokens);
  readKey(j, "n_ctx", s.nCtx);
  s.templateOverride.clear();
  readKey(j, "chat_template", s.templateOverride);
  return s;
}

struct ChatSession::Impl {
  std::unique_ptr<Model> model;
  std::optional<Tokenizer> tokenizer;
  std::string modelTemplate;
  InferenceOptions inferOptions;
  bool lora = false;
  double loadSeconds = 0;
  std::unique_ptr<InferenceSession> session;
  std::unique_ptr<telemetry::Sampler> ownSampler;
  telemetry::Sampler* sampler = nullptr;
  // The last parsed template, keyed by its source.
  mutable std::string parsedSource;
  mutable std::optional<ChatTemplate> parsed;

  Expected<const ChatTemplate*> templateFor(const ChatSettings& s) const {
    const std::string& src = !s.templateOverride.empty() ? s.templateOverride
                             : !modelTemplate.empty()    ? modelTemplate
                                                         : std::string(FALLBACK_TEMPLATE);
    if (!parsed || parsedSource != src) {
      auto t = ChatTemplate::parse(src);
      if (!t) {
        Error e = t.error();
        if (!s.templateOverride.empty()) e.message = "the overridden chat template: " + e.message;
        return Unexpected{e};
      }
      parsed = std::move(*t);
      parsedSource = src;
    }
    return &*parsed;
  }
};

ChatSession::ChatSession(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
ChatSession::~ChatSession() = default;

Expected<std::unique_ptr<ChatSession>> ChatSession::open(const ChatModelOptions& options,
                                                         telemetry::Sampler* sampler) {
  auto t0 = std::chrono::steady_clock::now();
  auto impl = std::make_unique<Impl>();
  auto model = open_model(options.modelPath);
  if (!model) return Unexpected{model.error()};
  impl->model = std::make_unique<Model>(std::move(*model));
  auto tok = load_tokenizer(options.modelPath);
  if (!tok) return Unexpected{tok.error()};
  impl->tokenizer = std::move(*tok);
  const auto& ti = impl->model->desc().tokenizer;
  if (ti.chat_template) impl->modelTemplate = *ti.chat_template;
  impl->inferOptions.n_threads = options.threads;
  impl->inferOptions.device = options.device;
  impl->inferOptions.gpu_index = options.gpuIndex;
  if (!options.loraPath.empty()) {
    auto attached = attachLora(impl->inferOptions, options.loraPath, impl->model->desc());
    if (!attached) return Unexpected{attached.error()};
    if (!*attached)
      return make_error(ErrorCode::unsupported,
                        "cannot apply the adapter '" + options.loraPath.string() +
                            "': this build's inference engine has no LoRA support",
                        "merge the adapter into the model, or chat with the base model");
    impl->lora = true;
  }
  if (sampler) {
    impl->sampler = sampler;
  } else {
    auto own = telemetry::makeSampler(telemetry::TelemetryOptions{});
    if (!own) return Unexpected{own.error()};
    impl->ownSampler = std::move(*own);
    impl->ownSampler->start();
    impl->sampler = impl->ownSampler.get();
  }
  impl->loadSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return std::unique_ptr<ChatSession>(new ChatSession(std::move(impl)));
}

const ModelDesc& ChatSession::desc() const { return m_impl->model->desc(); }
const Tokenizer& ChatSession::tokenizer() const { return *m_impl->tokenizer; }
const std::string& ChatSession::modelTemplate() const { return m_impl->modelTemplate; }
bool ChatSession::usingFallbackTemplate(const ChatSettings& s) const {
  return s.templateOverride.empty() && m_impl->modelTemplate.empty();
}
bool ChatSession::hasLora() const { return m_impl->lora; }
double ChatSession::loadSeconds() const { return m_impl->loadSeconds; }

Expected<std::string> ChatSession::render(const std::vector<ChatTurn>& branch, const ChatSettings& s) const {
  HEARTH_TRY(const ChatTemplate* tpl, m_impl->templateFor(s));
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!s.systemPrompt.empty()) messages.push_back({{"role", "system"}, {"content", s.systemPrompt}});
  for (const auto& t : branch) messages.push_back({{"role", t.role}, {"content", t.content}});
  ChatTemplateOptions o;
  o.add_generation_prompt = true;
  const Tokenizer& tk = *m_impl->tokenizer;
  if (auto id = tk.bos_id()) o.bos_token = tk.token_text(*id);
  if (auto id = tk.eos_id()) o.eos_token = tk.token_text(*id);
  return tpl->render(messages, o);
}

Expected<ChatReply> ChatSession::reply(const std::vector<ChatTurn>& branch, const ChatSettings& s,
                                       const OnText& onText, const KeepGoing& keepGoing) {
  HEARTH_TRY(std::string text, render(branch, s));
  const Tokenizer& tk = *m_impl->tokenizer;
  // The template writes special markers as text; BOS is added only when it did not write it already.
  std::string bos = tk.bos_id() ? tk.token_text(*tk.bos_id()) : std::string();
  bool hasBos = !bos.empty() && text.rfind(bos, 0) == 0;
  HEARTH_TRY(std::vector<TokenId> ids, tk.encode(text, false, true));
  if (tk.add_bos() && !hasBos && tk.bos_id()) ids.insert(ids.begin(), *tk.bos_id());

  int64_t train = desc().params.n_ctx_train;
  int64_t nCtx = s.nCtx > 0 ? s.nCtx : (train > 0 ? train : 4096);
  if (train > 0) nCtx = std::min(nCtx, train);
  if (!m_impl->session || m_impl->session->n_ctx() != nCtx) {
    m_impl->session.reset();
    InferenceOptions o = m_impl->inferOptions;
    o.n_ctx = nCtx;
    HEARTH_TRY(auto created, InferenceSession::create(*m_impl->model, o));
    m_impl->session = std::move(created);
  }
  if (int64_t(ids.size()) >= nCtx)
    return make_error(ErrorCode::out_of_range,
                      "the conversation (" + std::to_string(ids.size()) + " tokens) does not fit the context of " +
                          std::to_string(nCtx) + " tokens",
                      "raise the context length or start a new conversation");

  GenerateOptions g;
  g.max_tokens = s.maxTokens;
  g.sampling = s.sampling;
  telemetry::EnergyMeter meter(*m_impl->sampler);
  meter.start();
  auto r = generate(*m_impl->session, tk, ids, g, onText, keepGoing);
  if (!r) {
    meter.stop();
    return Unexpected{r.error()};
  }
  ChatReply out;
  out.text = std::move(r->text);
  out.stop = r->stop;
  out.stats = r->stats;
  out.energy = meter.stop(r->stats.n_generated);
  out.backend = m_impl->session->backend();
  out.backendNote = m_impl->session->backend_note();
  return out;
}

// ---- store helpers ----

store::Message makeUserMessage(store::Id conversationId, std::optional<store::Id> parentId,
                               const std::string& content, std::optional<store::Id> versionId,
                               const ChatSettings& settings) {
  store::Message m;
  m.conversationId = conversationId;
  m.parentId = parentId;
  m.role = "user";
  m.content = content;
  m.modelVersionId = versionId;
  m.systemPrompt = settings.systemPrompt;
  m.samplingParams = settings.toJson().dump();
  return m;
}

store::Message makeAssistantMessage(store::Id conversationId, store::Id parentId,
                                    std::optional<store::Id> versionId, const ChatSettings& settings,
                                    const ChatReply& reply) {
  store::Message m;
  m.conversationId = conversationId;
  m.parentId = parentId;
  m.role = "assistant";
  m.content = reply.text;
  m.modelVersionId = versionId;
  m.systemPrompt = settings.systemPrompt;
  nlohmann::json sp = settings.toJson();
  sp["stop"] = stop_reason_name(reply.stop);
  if (reply.partial()) sp["partial"] = true;
  sp["prefill_s"] = reply.stats.prefill_s;
  sp["decode_s"] = reply.stats.decode_s;
  m.samplingParams = sp.dump();
  m.promptTokens = reply.stats.n_prompt;
  m.completionTokens = reply.stats.n_generated;
  if (reply.stats.decode_s > 0) m.tokensPerSecond = reply.tokensPerSecond();
  telemetry::annotateMessage(m, reply.energy);
  return m;
}

std::vector<store::Message> branchTo(const std::vector<store::Message>& all, store::Id leafId) {
  std::vector<store::Message> path;
  std::set<store::Id> seen;
  std::optional<store::Id> at = leafId;
  while (at && seen.insert(*at).second) {
    const store::Message* found = nullptr;
    for (const auto& m : all)
      if (m.id == *at) found = &m;
    if (!found) break;
    path.push_back(*found);
    at = found->parentId;
  }
  return {path.rbegin(), path.rend()};
}

std::vector<ChatTurn> turnsOf(const std::vector<store::Message>& branch) {
  std::vector<ChatTurn> turns;
  for (const auto& m : branch)
    if (m.role != "system") turns.push_back({m.role, m.content});
  return turns;
}

namespace {

Expected<ChatModelChoice> choiceFrom(store::Project& project, const store::ModelVersion& v, const store::Model& m) {
  ChatModelChoice c;
  c.versionId = v.id;
  c.kind = v.kind;
  c.label = m.name + " · " + (v.label.empty() ? "v" + std::to_string(v.id) : v.label) + " (" + v.kind + ")";
  if (v.kind == "adapter") {
    c.load.loraPath = v.path;
    HEARTH_TRY(auto line, project.lineage(v.id));
    for (const auto& anc : line) {
      if (anc.kind == "adapter") continue;
      if (!anc.path.empty()) {
        c.load.modelPath = anc.path;
      } else {
        HEARTH_TRY(store::Model base, project.model(anc.modelId));
        c.load.modelPath = base.path;
      }
      break;
    }
    if (c.load.modelPath.empty())
      return make_error(ErrorCode::not_found, "adapter version " + std::to_string(v.id) + " has no base model version");
  } else {
    c.load.modelPath = v.path.empty() ? m.path : v.path;
  }
  return c;
}

}  // namespace

Expected<std::vector<ChatModelChoice>> listChatModels(store::Project& project) {
  // The store lists versions per lineage only; one read-only query over the versions table.
  HEARTH_TRY(auto st, project.database().prepare("SELECT id FROM model_versions ORDER BY id DESC"));
  std::vector<store::Id> ids;
  for (;;) {
    HEARTH_TRY(bool row, st.step());
    if (!row) break;
    ids.push_back(st.int64(0));
  }
  std::vector<ChatModelChoice> out;
  for (store::Id id : ids) {
    auto c = chatModelFor(project, id);
    if (c) out.push_back(std::move(*c));  // a version whose base is gone is left out, not an error
  }
  return out;
}

Expected<ChatModelChoice> chatModelFor(store::Project& project, store::Id versionId) {
  HEARTH_TRY(store::ModelVersion v, project.modelVersion(versionId));
  HEARTH_TRY(store::Model m, project.model(v.modelId));
  return choiceFrom(project, v, m);
}

Expected<std::optional<store::Id>> findModelVersionByPath(store::Project& project,
                                                          const std::filesystem::path& path) {
  auto norm = [](const std::filesystem::path& p) { return std::filesystem::absolute(p).lexically_normal(); };
  const auto want = norm(path);
  HEARTH_TRY(auto st, project.database().prepare(
      "SELECT v.id, v.path, m.path FROM model_versions v JOIN models m ON m.id = v.model_id "
      "WHERE v.kind <> 'adapter' ORDER BY v.id DESC"));
  for (;;) {
    HEARTH_TRY(bool row, st.step());
    if (!row) break;
    std::string file = st.text(1).empty() ? st.text(2) : st.text(1);
    if (!file.empty() && norm(file) == want) return std::optional<store::Id>(st.int64(0));
  }
  return std::optional<store::Id>();
}

ChatRecorder::ChatRecorder(store::Project& project, std::optional<store::Id> versionId)
    : m_project(project), m_version(versionId) {}

Expected<store::Id> ChatRecorder::user(const std::string& text, const ChatSettings& settings) {
  if (m_conversation == 0) {
    store::Conversation c;
    c.title = text.substr(0, 60);
    c.modelVersionId = m_version;
    c.systemPrompt = settings.systemPrompt;
    HEARTH_TRY(m_conversation, m_project.createConversation(c));
    m_last.reset();
    ++m_conversations;
  }
  HEARTH_TRY(store::Id id, m_project.addMessage(makeUserMessage(m_conversation, m_last, text, m_version, settings)));
  m_beforeUser = m_last;
  m_last = id;
  return id;
}

Expected<store::Id> ChatRecorder::reply(const ChatReply& reply, const ChatSettings& settings) {
  if (m_conversation == 0 || !m_last)
    return make_error(ErrorCode::invalid_argument, "a reply needs a user message before it");
  HEARTH_TRY(store::Id id, m_project.addMessage(makeAssistantMessage(m_conversation, *m_last, m_version, settings, reply)));
  m_last = id;
  ++m_replies;
  if (reply.energy.hasData) m_joules += reply.energy.joules;
  return id;
}

void ChatRecorder::userFailed() { m_last = m_beforeUser; }

void ChatRecorder::restart() {
  m_conversation = 0;
  m_last.reset();
}

Expected<ChatSettings> conversationSettings(store::Project& project, store::Id conversationId,
                                            const ChatSettings& defaults) {
  HEARTH_TRY(store::Conversation c, project.conversation(conversationId));
  HEARTH_TRY(auto msgs, project.messages(conversationId));
  ChatSettings s = defaults;
  for (auto it = msgs.rbegin(); it != msgs.rend(); ++it) {
    auto j = nlohmann::json::parse(it->samplingParams, nullptr, false);
    if (j.is_object() && j.contains("temperature")) {
      s = ChatSettings::fromJson(j, defaults);
      break;
    }
  }
  s.systemPrompt = c.systemPrompt;
  return s;
}

}  // namespace hearth::session
