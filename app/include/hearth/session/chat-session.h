/* ChatSession: one loaded chat model (weights, tokenizer, chat template, optional LoRA adapter, an
 * inference session) that answers a branch of a conversation with a streamed, cancellable reply, timed
 * and metered for energy. Plus the helpers that turn settings and replies into store::Message rows.
 * Headless (no Qt): hearth-cli and the desktop program's chat worker both use it.
 *
 * Non-obvious choices:
 * - A model without a chat template is still chattable: ChatML (FALLBACK_TEMPLATE) is used and
 *   `usingFallbackTemplate()` says so, so the user sees it and can override it; an override is any Jinja
 *   text in ChatSettings::templateOverride.
 * - The settings a reply was made with (sampling, max tokens, context, template override) are stored as
 *   JSON in the message's sampling_params, next to the "energy" object telemetry::annotateMessage adds;
 *   the latest message of a conversation therefore holds the conversation's settings (docs/chat.md).
 *
 * Ownership and threads: a ChatSession is used by one thread at a time (the one that calls reply()).
 * The telemetry Sampler it reads may be shared (it is thread-safe) and must outlive the session; when
 * none is given the session owns and runs one.
 */
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hearth/error.h"
#include "hearth/generate.h"
#include "hearth/inference.h"
#include "hearth/model.h"
#include "hearth/store/project.h"
#include "hearth/telemetry/sampler.h"
#include "hearth/tokenizer.h"

namespace hearth::session {

struct ChatTurn {
  std::string role;  // "user", "assistant", "system"
  std::string content;
};

// Everything a reply depends on besides the model and the messages.
struct ChatSettings {
  std::string systemPrompt;      // prepended as a system turn when not empty
  SamplingParams sampling;       // temperature, top_k, top_p, min_p, repeat_penalty, seed
  int64_t maxTokens = 512;       // < 0: until a stop or the context is full
  int64_t nCtx = 4096;           // capped at the model's training context
  std::string templateOverride;  // Jinja source; empty: the model's own template

  // {"temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed", "max_tokens", "n_ctx",
  //  "chat_template" (only when overridden)}. The system prompt has columns of its own.
  nlohmann::json toJson() const;
  // Reads the keys toJson() writes; missing or mistyped keys keep the value in `base`.
  static ChatSettings fromJson(const nlohmann::json& j, const ChatSettings& base);
  static ChatSettings fromJson(const nlohmann::json& j);
};

struct ChatModelOptions {
  std::filesystem::path modelPath;  // .gguf or Hugging Face folder
  std::filesystem::path loraPath;   // PEFT folder or GGUF adapter; empty: none
  int threads = 0;                  // 0: all hardware threads
  // Where replies are computed. cuda and automatic fall back to the CPU (never an error) when the GPU
  // cannot serve; ChatReply::backendNote then says why.
  InferenceOptions::Device device = InferenceOptions::Device::cpu;
  int gpuIndex = 0;  // CUDA device for cuda / automatic
};

struct ChatReply {
  std::string text;
  StopReason stop = StopReason::max_tokens;
  GenerateStats stats;
  telemetry::EnergyReport energy;
  std::string backend;      // what computed the reply: "cpu" or e.g. "cuda:0 NVIDIA H200"
  std::string backendNote;  // why the CPU served although a GPU was asked for; empty otherwise
  double tokensPerSecond() const { return stats.decode_tokens_per_s(); }
  bool partial() const { return stop == StopReason::cancelled; }
};

class ChatSession {
 public:
  // ChatML, for models whose files carry no chat template.
  static const char* const FALLBACK_TEMPLATE;

  // Loads the model, its tokenizer and (when given) the adapter. Errors: those of open_model(),
  // load_tokenizer() and the adapter loader (each naming the file); unsupported when an adapter is given
  // but this build's engine cannot apply one.
  static Expected<std::unique_ptr<ChatSession>> open(const ChatModelOptions& options,
                                                     telemetry::Sampler* sampler = nullptr);
  ~ChatSession();
  ChatSession(const ChatSession&) = delete;
  ChatSession& operator=(const ChatSession&) = delete;

  const ModelDesc& desc() const;
  const Tokenizer& tokenizer() const;
  // The model's own template, empty when its files have none.
  const std::string& modelTemplate() const;
  bool usingFallbackTemplate(const ChatSettings& s) const;
  bool hasLora() const;
  double loadSeconds() const;

  // The prompt text for `branch` (with the system prompt and the assistant header). Errors:
  // template_error (syntax, or what the template raised, e.g. roles that must alternate).
  Expected<std::string> render(const std::vector<ChatTurn>& branch, const ChatSettings& settings) const;

  // Answers the branch (its last turn is normally the user's). `onText` receives the text as it
  // becomes final and may return false to stop; `keepGoing` is polled between steps. Stopping is not
  // an error: the reply says StopReason::cancelled and holds the text so far. Errors: render errors;
  // out_of_range when the prompt does not fit nCtx; invalid_argument for bad sampling values.
  Expected<ChatReply> reply(const std::vector<ChatTurn>& branch, const ChatSettings& settings,
                            const OnText& onText = {}, const KeepGoing& keepGoing = {});

 private:
  struct Impl;
  explicit ChatSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

// ---- store helpers ----

// A user message (content, system prompt, settings JSON) to add under `parentId`.
store::Message makeUserMessage(store::Id conversationId, std::optional<store::Id> parentId,
                               const std::string& content, std::optional<store::Id> versionId,
                               const ChatSettings& settings);
// The assistant message for `reply`: text, token counts, tokens/s, the settings JSON plus "stop" and
// (when cancelled) "partial": true, and the energy (telemetry::annotateMessage).
store::Message makeAssistantMessage(store::Id conversationId, store::Id parentId,
                                    std::optional<store::Id> versionId, const ChatSettings& settings,
                                    const ChatReply& reply);

// The path from the root to `leafId` in a conversation's messages (all branches), root first.
// Empty when `leafId` is not among them; a parent cycle ends the walk.
std::vector<store::Message> branchTo(const std::vector<store::Message>& all, store::Id leafId);
// The messages as turns for ChatSession::reply() (system messages left out: the settings carry it).
std::vector<ChatTurn> turnsOf(const std::vector<store::Message>& branch);

// A model version with what a chat needs to load it: for an adapter, the base model file (the nearest
// ancestor that is not an adapter) and the adapter file.
struct ChatModelChoice {
  store::Id versionId = 0;
  std::string label;  // "model name · version label (kind)"
  std::string kind;
  ChatModelOptions load;
};
// Every model version of the project, newest first.
Expected<std::vector<ChatModelChoice>> listChatModels(store::Project& project);
Expected<ChatModelChoice> chatModelFor(store::Project& project, store::Id versionId);
// The newest non-adapter version whose file (its own path, else its model's) is `path` (compared as
// absolute, lexically normal paths); nullopt when the project has none.
Expected<std::optional<store::Id>> findModelVersionByPath(store::Project& project, const std::filesystem::path& path);

// Stores one linear conversation as it happens (hearth-cli chat --project): the conversation row is
// created with the first user message (titled by it), each message is the child of the one before,
// and restart() makes the next message open a new conversation. Uses `project` on the caller's thread.
class ChatRecorder {
 public:
  ChatRecorder(store::Project& project, std::optional<store::Id> versionId);
  Expected<store::Id> user(const std::string& text, const ChatSettings& settings);
  Expected<store::Id> reply(const ChatReply& reply, const ChatSettings& settings);
  // The last user message got no reply (an error): it stays stored, as a branch without an answer, and
  // the next message continues from the message before it.
  void userFailed();
  void restart();
  store::Id conversation() const { return m_conversation; }
  int conversations() const { return m_conversations; }
  int replies() const { return m_replies; }
  double joules() const { return m_joules; }

 private:
  store::Project& m_project;
  std::optional<store::Id> m_version;
  store::Id m_conversation = 0;
  std::optional<store::Id> m_last, m_beforeUser;
  int m_conversations = 0, m_replies = 0;
  double m_joules = 0;
};

// Settings of a conversation: the conversation's system prompt with the settings JSON of its latest
// message that has them (else `defaults`).
Expected<ChatSettings> conversationSettings(store::Project& project, store::Id conversationId,
                                            const ChatSettings& defaults = {});

}  // namespace hearth::session
