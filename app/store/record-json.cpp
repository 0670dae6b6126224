/* JSON forms of the store's records.
 *
 * Non-obvious choice: optional ids and values become JSON null rather than being omitted, so every
 * export of a record has the same keys and diffs between two runs line up.
 */
#include "hearth/store/record-json.h"

namespace hearth::store {
namespace {
template <class T>
nlohmann::json opt(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}
}  // namespace

nlohmann::json embedJson(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return nlohmann::json(text);
  return j;
}

nlohmann::json toJson(const Model& m) {
  return {{"id", m.id}, {"name", m.name}, {"path", m.path}, {"format", m.format}, {"sha256", m.sha256},
          {"size_bytes", m.sizeBytes}, {"architecture", m.architecture}, {"parameters", m.parameters},
          {"tensor_types", embedJson(m.tensorTypes)}, {"created_at", m.createdAt}};
}

nlohmann::json toJson(const ModelVersion& v) {
  return {{"id", v.id}, {"model_id", v.modelId}, {"parent_version_id", opt(v.parentVersionId)},
          {"produced_by_run_id", opt(v.producedByRunId)}, {"kind", v.kind}, {"label", v.label},
          {"path", v.path}, {"sha256", v.sha256}, {"created_at", v.createdAt}};
}

nlohmann::json toJson(const Dataset& d) {
  return {{"id", d.id}, {"name", d.name}, {"path", d.path}, {"format", d.format}, {"sha256", d.sha256},
          {"rows", d.rows}, {"tokens_total", d.tokensTotal}, {"tokens_min", opt(d.tokensMin)},
          {"tokens_max", opt(d.tokensMax)}, {"created_at", d.createdAt}};
}

nlohmann::json toJson(const Experiment& e) {
  return {{"id", e.id}, {"name", e.name}, {"description", e.description}, {"created_at", e.createdAt}};
}

nlohmann::json toJson(const Run& r) {
  return {{"id", r.id},
          {"experiment_id", opt(r.experimentId)},
          {"name", r.name},
          {"kind", r.kind},
          {"config", embedJson(r.config)},
          {"seed", opt(r.seed)},
          {"status", runStatusName(r.status)},
          {"created_at", r.createdAt},
          {"started_at", opt(r.startedAt)},
          {"finished_at", opt(r.finishedAt)},
          {"hardware", r.hardware},
          {"code_version", r.codeVersion},
          {"base_version_id", opt(r.baseVersionId)},
          {"dataset_id", opt(r.datasetId)},
          {"output_version_id", opt(r.outputVersionId)},
          {"final_metrics", embedJson(r.finalMetrics)},
          {"best_metrics", embedJson(r.bestMetrics)},
          {"energy_joules", opt(r.energyJoules)},
          {"owner_pid", opt(r.ownerPid)},
          {"owner_host", r.ownerHost},
          {"error", r.error}};
}

nlohmann::json toJson(const Conversation& c) {
  return {{"id", c.id}, {"title", c.title}, {"model_version_id", opt(c.modelVersionId)},
          {"system_prompt", c.systemPrompt}, {"created_at", c.createdAt}};
}

nlohmann::json toJson(const Message& m) {
  return {{"id", m.id}, {"conversation_id", m.conversationId}, {"parent_id", opt(m.parentId)},
          {"role", m.role}, {"content", m.content}, {"model_version_id", opt(m.modelVersionId)},
          {"system_prompt", m.systemPrompt}, {"sampling_params", embedJson(m.samplingParams)},
          {"prompt_tokens", m.promptTokens}, {"completion_tokens", m.completionTokens},
          {"tokens_per_second", opt(m.tokensPerSecond)}, {"energy_joules", opt(m.energyJoules)},
          {"votes", m.votes}, {"created_at", m.createdAt}};
}

nlohmann::json toJson(const Prompt& p) {
  return {{"id", p.id}, {"name", p.name}, {"tags", p.tags}, {"latest_version", p.latestVersion},
          {"text", p.text}, {"created_at", p.createdAt}};
}

nlohmann::json toJson(const Event& e) {
  return {{"id", e.id}, {"at", e.at}, {"actor", e.actor}, {"action", e.action}, {"entity", e.entity},
          {"entity_id", opt(e.entityId)}, {"payload", embedJson(e.payload)}, {"prev_hash", e.prevHash},
          {"hash", e.hash}};
}

}  // namespace hearth::store
