/* Project: the library side of the store: models and model versions (lineage), datasets,
 * experiments, conversations and messages, and the prompt library.
 *
 * Non-obvious choice: lineage() walks parent links in C++ with a visited set instead of a recursive
 * CTE, so a cycle written by a damaged or hand-edited file ends with a clear error instead of a loop.
 */
#include <set>

#include "hearth/store/project.h"
#include "hearth/store/record-json.h"
#include "project-impl.h"

namespace hearth::store {
namespace {

bool validJson(const std::string& s) { return !nlohmann::json::parse(s, nullptr, false).is_discarded(); }

constexpr const char* MODEL_COLUMNS =
    "id, name, path, format, sha256, size_bytes, architecture, parameters, tensor_types, created_at";
Model readModel(const Statement& st) {
  Model m;
  m.id = st.int64(0);
  m.name = st.text(1);
  m.path = st.text(2);
  m.format = st.text(3);
  m.sha256 = st.text(4);
  m.sizeBytes = st.int64(5);
  m.architecture = st.text(6);
  m.parameters = st.int64(7);
  m.tensorTypes = st.text(8);
  m.createdAt = st.text(9);
  return m;
}

constexpr const char* VERSION_COLUMNS =
    "id, model_id, parent_version_id, produced_by_run_id, kind, label, path, sha256, created_at";
ModelVersion readVersion(const Statement& st) {
  ModelVersion v;
  v.id = st.int64(0);
  v.modelId = st.int64(1);
  v.parentVersionId = st.optInt64(2);
  v.producedByRunId = st.optInt64(3);
  v.kind = st.text(4);
  v.label = st.text(5);
  v.path = st.text(6);
  v.sha256 = st.text(7);
  v.createdAt = st.text(8);
  return v;
}

constexpr const char* DATASET_COLUMNS =
    "id, name, path, format, sha256, rows, tokens_total, tokens_min, tokens_max, created_at";
Dataset readDataset(const Statement& st) {
  Dataset d;
  d.id = st.int64(0);
  d.name = st.text(1);
  d.path = st.text(2);
  d.format = st.text(3);
  d.sha256 = st.text(4);
  d.rows = st.int64(5);
  d.tokensTotal = st.int64(6);
  d.tokensMin = st.optInt64(7);
  d.tokensMax = st.optInt64(8);
  d.createdAt = st.text(9);
  return d;
}

constexpr const char* MESSAGE_COLUMNS =
    "id, conversation_id, parent_id, role, content, model_version_id, system_prompt, sampling_params, "
    "prompt_tokens, completion_tokens, tokens_per_second, energy_joules, votes, created_at";
Message readMessage(const Statement& st) {
  Message m;
  m.id = st.int64(0);
  m.conversationId = st.int64(1);
  m.parentId = st.optInt64(2);
  m.role = st.text(3);
  m.content = st.text(4);
  m.modelVersionId = st.optInt64(5);
  m.systemPrompt = st.text(6);
  m.samplingParams = st.text(7);
  m.promptTokens = st.int64(8);
  m.completionTokens = st.int64(9);
  m.tokensPerSecond = st.optReal(10);
  m.energyJoules = st.optReal(11);
  m.votes = st.int64(12);
  m.createdAt = st.text(13);
  return m;
}

template <class T, class F>
Expected<std::vector<T>> collect(Statement& st, F read) {
  std::vector<T> out;
  for (;;) {
    HEARTH_TRY(bool row, st.step());
    if (!row) break;
    out.push_back(read(st));
  }
  return out;
}

}  // namespace

// ---- models ------------------------------------------------------------------------------------

Expected<Id> Project::addModel(const Model& m) {
  if (m.name.empty() || m.path.empty() || m.format.empty())
    return make_error(ErrorCode::invalid_argument, "a model needs a name, a path and a format");
  if (!validJson(m.tensorTypes))
    return make_error(ErrorCode::invalid_argument, "model '" + m.name + "': tensor types are not JSON");
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Statement st, db.prepare(
      "INSERT INTO models(name, path, format, sha256, size_bytes, architecture, parameters, tensor_types, "
      "created_at) VALUES(?,?,?,?,?,?,?,?,?)"));
  st.bind(1, m.name).bind(2, m.path).bind(3, m.format).bind(4, m.sha256).bind(5, m.sizeBytes);
  st.bind(6, m.architecture).bind(7, m.parameters).bind(8, m.tensorTypes).bind(9, detail::nowIso());
  HEARTH_TRY_VOID(st.exec());
  Id id = db.lastInsertRowid();
  HEARTH_TRY(Model stored, model(id));
  HEARTH_TRY_VOID(m_impl->log("create", "model", id, toJson(stored).dump()));
  HEARTH_TRY_VOID(tx.commit());
  return id;
}

Expected<Model> Project::model(Id id) {
  HEARTH_TRY(Statement st, m_impl->db.prepare(std::string("SELECT ") + MODEL_COLUMNS + " FROM models WHERE id=?"));
  st.bind(1, id);
  HEARTH_TRY(bool row, st.step());
  if (!row) return Unexpected{m_impl->notFound("model", id)};
  return readModel(st);
}

Expected<std::vector<Model>> Project::models() {
  HEARTH_TRY(Statement st, m_impl->db.prepare(std::string("SELECT ") + MODEL_COLUMNS + " FROM models ORDER BY id"));
  return collect<Model>(st, readModel);
}

Expected<void> Project::removeModel(Id id) {
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Model m, model(id));
  HEARTH_TRY(Statement st, db.prepare("DELETE FROM models WHERE id=?"));
  st.bind(1, id);
  auto ok = st.exec();
  if (!ok)
    return Unexpected{m_impl->context(ok.error(), "removing model " + std::to_string(id) +
                                                      "; its versions are still referenced")};
  HEARTH_TRY_VOID(m_impl->log("delete", "model", id, nlohmann::json{{"name", m.name}, {"sha256", m.sha256}}.dump()));
  return tx.commit();
}

Expected<void> Project::renameModel(Id id, const std::string& name) {
  if (name.empty()) return make_error(ErrorCode::invalid_argument, "a model needs a name");
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Model m, model(id));
  HEARTH_TRY(Statement st, db.prepare("UPDATE models SET name=? WHERE id=?"));
  st.bind(1, name).bind(2, id);
  HEARTH_TRY_VOID(st.exec());
  HEARTH_TRY_VOID(m_impl->log("update", "model", id, nlohmann::json{{"name", name}, {"old_name", m.name}}.dump()));
  return tx.commit();
}

Expected<void> Project::removeModelAndVersions(Id id) {
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Model m, model(id));
  // Children were inserted after their parents (a parent must exist first), so id order DESC deletes
  // every child before its parent.
  HEARTH_TRY(Statement ids, db.prepare("SELECT id FROM model_versions WHERE model_id=? ORDER BY id DESC"));
  ids.bind(1, id);
  HEARTH_TRY(std::vector<Id> versions, collect<Id>(ids, [](const Statement& s) { return s.int64(0); }));
  HEARTH_TRY(Statement del, db.prepare("DELETE FROM model_versions WHERE id=?"));
  for (Id v : versions) {
    del.bind(1, v);
    auto ok = del.exec();
    if (!ok)
      return Unexpected{m_impl->context(ok.error(), "removing version " + std::to_string(v) + " of model '" + m.name +
                                                        "'; a run, conversation, message or another version "
                                                        "still refers to it")};
    del.reset();
    HEARTH_TRY_VOID(m_impl->log("delete", "model_version", v, nlohmann::json{{"model_id", id}}.dump()));
  }
  HEARTH_TRY(Statement st, db.prepare("DELETE FROM models WHERE id=?"));
  st.bind(1, id);
  HEARTH_TRY_VOID(st.exec());
  HEARTH_TRY_VOID(m_impl->log("delete", "model", id, nlohmann::json{{"name", m.name}, {"sha256", m.sha256}}.dump()));
  return tx.commit();
}

Expected<Id> Project::addModelVersion(const ModelVersion& v) {
  if (v.kind != "base" && v.kind != "adapter" && v.kind != "merged")
    return make_error(ErrorCode::invalid_argument, "model version kind '" + v.kind +
                                                       "' is not one of base, adapter, merged");
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Statement st, db.prepare(
      "INSERT INTO model_versions(model_id, parent_version_id, produced_by_run_id, kind, label, path, sha256, "
      "created_at) VALUES(?,?,?,?,?,?,?,?)"));
  st.bind(1, v.modelId).bind(2, v.parentVersionId).bind(3, v.producedByRunId).bind(4, v.kind);
  st.bind(5, v.label).bind(6, v.path).bind(7, v.sha256).bind(8, detail::nowIso());
  auto ok = st.exec();
  if (!ok)
    return Unexpected{m_impl->context(ok.error(), "adding a version of model " + std::to_string(v.modelId) +
                                                      " (its model, parent version and run must exist)")};
  Id id = db.lastInsertRowid();
  HEARTH_TRY(ModelVersion stored, modelVersion(id));
  HEARTH_TRY_VOID(m_impl->log("create", "model_version", id, toJson(stored).dump()));
  HEARTH_TRY_VOID(tx.commit());
  return id;
}

Expected<ModelVersion> Project::modelVersion(Id id) {
  HEARTH_TRY(Statement st, m_impl->db.prepare(std::string("SELECT ") + VERSION_COLUMNS +
                                              " FROM model_versions WHERE id=?"));
  st.bind(1, id);
  HEARTH_TRY(bool row, st.step());
  if (!row) return Unexpected{m_impl->notFound("model version", id)};
  return readVersion(st);
}

Expected<std::vector<ModelVersion>> Project::modelVersions(Id modelId) {
  HEARTH_TRY(Statement st, m_impl->db.prepare(std::string("SELECT ") + VERSION_COLUMNS +
                                              " FROM model_versions WHERE model_id=? ORDER BY id"));
  st.bind(1, modelId);
  return collect<ModelVersion>(st, readVersion);
}

Expected<std::vector<ModelVersion>> Project::lineage(Id versionId) {
  std::vector<ModelVersion> out;
  std::set<Id> seen;
  std::optional<Id> next = versionId;
  while (next) {
    if (!seen.insert(*next).second)
      return make_error(ErrorCode::format, "project '" + path() + "': model version " + std::to_string(*next) +
                                               " is its own ancestor (damaged lineage)");
    HEARTH_TRY(ModelVersion v, modelVersion(*next));
    next = v.parentVersionId;
    out.push_back(std::move(v));
  }
  return out;
}

// ---- datasets and experiments ------------------------------------------------------------------

Expected<Id> Project::addDataset(const Dataset& d) {
  if (d.name.empty() || d.path.empty() || d.format.empty())
    return make_error(ErrorCode::invalid_argument, "a dataset needs a name, a path and a format");
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Statement st, db.prepare(
      "INSERT INTO datasets(name, path, format, sha256, rows, tokens_total, tokens_min, tokens_max, created_at) "
      "VALUES(?,?,?,?,?,?,?,?,?)"));
  st.bind(1, d.name).bind(2, d.path).bind(3, d.format).bind(4, d.sha256).bind(5, d.rows);
  st.bind(6, d.tokensTotal).bind(7, d.tokensMin).bind(8, d.tokensMax).bind(9, detail::nowIso());
  HEARTH_TRY_VOID(st.exec());
  Id id = db.lastInsertRowid();
  HEARTH_TRY(Dataset stored, dataset(id));
  HEARTH_TRY_VOID(m_impl->log("create", "dataset", id, toJson(stored).dump()));
  HEARTH_TRY_VOID(tx.commit());
  return id;
}

Expected<Dataset> Project::dataset(Id id) {
  HEARTH_TRY(Statement st, m_impl->db.prepare(std::string("SELECT ") + DATASET_COLUMNS + " FROM datasets WHERE id=?"));
  st.bind(1, id);
  HEARTH_TRY(bool row, st.step());
  if (!row) return Unexpected{m_impl->notFound("dataset", id)};
  return readDataset(st);
}

Expected<std::vector<Dataset>> Project::datasets() {
  HEARTH_TRY(Statement st, m_impl->db.prepare(std::string("SELECT ") + DATASET_COLUMNS +
                                              " FROM datasets ORDER BY id"));
  return collect<Dataset>(st, readDataset);
}

Expected<Id> Project::createExperiment(const std::string& name, const std::string& description) {
  if (name.empty()) return make_error(ErrorCode::invalid_argument, "an experiment needs a name");
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Statement st, db.prepare("INSERT INTO experiments(name, description, created_at) VALUES(?,?,?)"));
  st.bind(1, name).bind(2, description).bind(3, detail::nowIso());
  auto ok = st.exec();
  if (!ok) return Unexpected{m_impl->context(ok.error(), "creating experiment '" + name + "' (names are unique)")};
  Id id = db.lastInsertRowid();
  HEARTH_TRY_VOID(m_impl->log("create", "experiment", id,
                              nlohmann::json{{"name", name}, {"description", description}}.dump()));
  HEARTH_TRY_VOID(tx.commit());
  return id;
}

Expected<std::vector<Experiment>> Project::experiments() {
  HEARTH_TRY(Statement st, m_impl->db.prepare("SELECT id, name, description, created_at FROM experiments ORDER BY id"));
  return collect<Experiment>(st, [](const Statement& s) {
    return Experiment{s.int64(0), s.text(1), s.text(2), s.text(3)};
  });
}

// ---- conversations and messages ----------------------------------------------------------------

Expected<Id> Project::createConversation(const Conversation& c) {
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Statement st, db.prepare(
      "INSERT INTO conversations(title, model_version_id, system_prompt, created_at) VALUES(?,?,?,?)"));
  st.bind(1, c.title).bind(2, c.modelVersionId).bind(3, c.systemPrompt).bind(4, detail::nowIso());
  HEARTH_TRY_VOID(st.exec());
  Id id = db.lastInsertRowid();
  HEARTH_TRY(Conversation stored, conversation(id));
  HEARTH_TRY_VOID(m_impl->log("create", "conversation", id, toJson(stored).dump()));
  HEARTH_TRY_VOID(tx.commit());
  return id;
}

Expected<Conversation> Project::conversation(Id id) {
  HEARTH_TRY(Statement st, m_impl->db.prepare(
      "SELECT id, title, model_version_id, system_prompt, created_at FROM conversations WHERE id=?"));
  st.bind(1, id);
  HEARTH_TRY(bool row, st.step());
  if (!row) return Unexpected{m_impl->notFound("conversation", id)};
  return Conversation{st.int64(0), st.text(1), st.optInt64(2), st.text(3), st.text(4)};
}

Expected<std::vector<Conversation>> Project::conversations(const std::string& search) {
  std::string sql = "SELECT id, title, model_version_id, system_prompt, created_at FROM conversations";
  if (!search.empty())
    sql += " WHERE title LIKE ?1 ESCAPE '\\' OR EXISTS(SELECT 1 FROM messages m WHERE "
           "m.conversation_id = conversations.id AND m.content LIKE ?1 ESCAPE '\\')";
  sql += " ORDER BY id DESC";
  HEARTH_TRY(Statement st, m_impl->db.prepare(sql));
  if (!search.empty()) {
    std::string pattern = "%";
    for (char ch : search) {
      if (ch == '%' || ch == '_' || ch == '\\') pattern += '\\';
      pattern += ch;
    }
    st.bind(1, pattern + "%");
  }
  return collect<Conversation>(st, [](const Statement& s) {
    return Conversation{s.int64(0), s.text(1), s.optInt64(2), s.text(3), s.text(4)};
  });
}

Expected<void> Project::updateConversation(const Conversation& c) {
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Statement st, db.prepare(
      "UPDATE conversations SET title=?, model_version_id=?, system_prompt=? WHERE id=?"));
  st.bind(1, c.title).bind(2, c.modelVersionId).bind(3, c.systemPrompt).bind(4, c.id);
  auto ok = st.exec();
  if (!ok) return Unexpected{m_impl->context(ok.error(), "updating conversation " + std::to_string(c.id))};
  if (db.changes() == 0) return Unexpected{m_impl->notFound("conversation", c.id)};
  HEARTH_TRY(Conversation stored, conversation(c.id));
  HEARTH_TRY_VOID(m_impl->log("update", "conversation", c.id, toJson(stored).dump()));
  return tx.commit();
}

Expected<void> Project::deleteConversation(Id id) {
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Statement del, db.prepare("DELETE FROM messages WHERE conversation_id=?"));
  del.bind(1, id);
  HEARTH_TRY_VOID(del.exec());
  HEARTH_TRY(Statement st, db.prepare("DELETE FROM conversations WHERE id=?"));
  st.bind(1, id);
  HEARTH_TRY_VOID(st.exec());
  if (db.changes() == 0) return Unexpected{m_impl->notFound("conversation", id)};
  HEARTH_TRY_VOID(m_impl->log("delete", "conversation", id, "{}"));
  return tx.commit();
}

Expected<Id> Project::addMessage(const Message& m) {
  if (!validJson(m.samplingParams))
    return make_error(ErrorCode::invalid_argument, "message sampling parameters are not JSON");
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  if (m.parentId) {
    HEARTH_TRY(Statement chk, db.prepare("SELECT conversation_id FROM messages WHERE id=?"));
    chk.bind(1, *m.parentId);
    HEARTH_TRY(bool row, chk.step());
    if (!row || chk.int64(0) != m.conversationId)
      return make_error(ErrorCode::invalid_argument, "parent message " + std::to_string(*m.parentId) +
                                                         " is not in conversation " + std::to_string(m.conversationId));
  }
  HEARTH_TRY(Statement st, db.prepare(
      "INSERT INTO messages(conversation_id, parent_id, role, content, model_version_id, system_prompt, "
      "sampling_params, prompt_tokens, completion_tokens, tokens_per_second, energy_joules, votes, created_at) "
      "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)"));
  st.bind(1, m.conversationId).bind(2, m.parentId).bind(3, m.role).bind(4, m.content).bind(5, m.modelVersionId);
  st.bind(6, m.systemPrompt).bind(7, m.samplingParams).bind(8, m.promptTokens).bind(9, m.completionTokens);
  st.bind(10, m.tokensPerSecond).bind(11, m.energyJoules).bind(12, m.votes).bind(13, detail::nowIso());
  auto ok = st.exec();
  if (!ok) return Unexpected{m_impl->context(ok.error(), "adding a message to conversation " +
                                                             std::to_string(m.conversationId))};
  Id id = db.lastInsertRowid();
  Message stored = m;
  stored.id = id;
  HEARTH_TRY_VOID(m_impl->log("create", "message", id, toJson(stored).dump()));
  HEARTH_TRY_VOID(tx.commit());
  return id;
}

Expected<std::vector<Message>> Project::messages(Id conversationId) {
  HEARTH_TRY(Statement st, m_impl->db.prepare(std::string("SELECT ") + MESSAGE_COLUMNS +
                                              " FROM messages WHERE conversation_id=? ORDER BY id"));
  st.bind(1, conversationId);
  return collect<Message>(st, readMessage);
}

Expected<void> Project::voteMessage(Id messageId, int delta) {
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Statement st, db.prepare("UPDATE messages SET votes = votes + ? WHERE id=?"));
  st.bind(1, delta).bind(2, messageId);
  HEARTH_TRY_VOID(st.exec());
  if (db.changes() == 0) return Unexpected{m_impl->notFound("message", messageId)};
  HEARTH_TRY_VOID(m_impl->log("update", "message", messageId, nlohmann::json{{"vote", delta}}.dump()));
  return tx.commit();
}

// ---- prompt library ----------------------------------------------------------------------------

namespace {
Expected<void> writeTags(Database& db, Id promptId, const std::vector<std::string>& tags) {
  HEARTH_TRY(Statement del, db.prepare("DELETE FROM prompt_tags WHERE prompt_id=?"));
  del.bind(1, promptId);
  HEARTH_TRY_VOID(del.exec());
  HEARTH_TRY(Statement ins, db.prepare("INSERT OR IGNORE INTO prompt_tags(prompt_id, tag) VALUES(?,?)"));
  for (const auto& t : tags) {
    if (t.empty()) continue;
    ins.bind(1, promptId).bind(2, t);
    HEARTH_TRY_VOID(ins.exec());
    ins.reset();
  }
  return {};
}
}  // namespace

Expected<Id> Project::createPrompt(const std::string& name, const std::string& text,
                                   const std::vector<std::string>& tags) {
  if (name.empty()) return make_error(ErrorCode::invalid_argument, "a prompt needs a name");
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  std::string now = detail::nowIso();
  HEARTH_TRY(Statement st, db.prepare("INSERT INTO prompts(name, created_at) VALUES(?,?)"));
  st.bind(1, name).bind(2, now);
  auto ok = st.exec();
  if (!ok) return Unexpected{m_impl->context(ok.error(), "creating prompt '" + name + "' (names are unique)")};
  Id id = db.lastInsertRowid();
  HEARTH_TRY(Statement v, db.prepare("INSERT INTO prompt_versions(prompt_id, version, text, created_at) VALUES(?,1,?,?)"));
  v.bind(1, id).bind(2, text).bind(3, now);
  HEARTH_TRY_VOID(v.exec());
  HEARTH_TRY_VOID(writeTags(db, id, tags));
  HEARTH_TRY_VOID(m_impl->log("create", "prompt", id,
                              nlohmann::json{{"name", name}, {"version", 1}, {"text", text}, {"tags", tags}}.dump()));
  HEARTH_TRY_VOID(tx.commit());
  return id;
}

Expected<std::int64_t> Project::editPrompt(Id promptId, const std::string& text) {
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Statement last, db.prepare("SELECT max(version) FROM prompt_versions WHERE prompt_id=?"));
  last.bind(1, promptId);
  HEARTH_TRY(bool row, last.step());
  if (!row || last.isNull(0)) return Unexpected{m_impl->notFound("prompt", promptId)};
  std::int64_t version = last.int64(0) + 1;
  HEARTH_TRY(Statement v, db.prepare("INSERT INTO prompt_versions(prompt_id, version, text, created_at) VALUES(?,?,?,?)"));
  v.bind(1, promptId).bind(2, version).bind(3, text).bind(4, detail::nowIso());
  HEARTH_TRY_VOID(v.exec());
  HEARTH_TRY_VOID(m_impl->log("update", "prompt", promptId,
                              nlohmann::json{{"version", version}, {"text", text}}.dump()));
  HEARTH_TRY_VOID(tx.commit());
  return version;
}

Expected<void> Project::setPromptTags(Id promptId, const std::vector<std::string>& tags) {
  Database& db = m_impl->db;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  HEARTH_TRY(Prompt p, prompt(promptId));
  (void)p;
  HEARTH_TRY_VOID(writeTags(db, promptId, tags));
  HEARTH_TRY_VOID(m_impl->log("update", "prompt", promptId, nlohmann::json{{"tags", tags}}.dump()));
  return tx.commit();
}

Expected<Prompt> Project::prompt(Id promptId) {
  Database& db = m_impl->db;
  HEARTH_TRY(Statement st, db.prepare(
      "SELECT p.id, p.name, p.created_at, v.version, v.text FROM prompts p JOIN prompt_versions v "
      "ON v.prompt_id = p.id WHERE p.id=? ORDER BY v.version DESC LIMIT 1"));
  st.bind(1, promptId);
  HEARTH_TRY(bool row, st.step());
  if (!row) return Unexpected{m_impl->notFound("prompt", promptId)};
  Prompt p;
  p.id = st.int64(0);
  p.name = st.text(1);
  p.createdAt = st.text(2);
  p.latestVersion = st.int64(3);
  p.text = st.text(4);
  HEARTH_TRY(Statement tags, db.prepare("SELECT tag FROM prompt_tags WHERE prompt_id=? ORDER BY tag"));
  tags.bind(1, promptId);
  HEARTH_TRY(p.tags, collect<std::string>(tags, [](const Statement& s) { return s.text(0); }));
  return p;
}

Expected<std::vector<PromptVersion>> Project::promptVersions(Id promptId) {
  HEARTH_TRY(Statement st, m_impl->db.prepare(
      "SELECT prompt_id, version, text, created_at FROM prompt_versions WHERE prompt_id=? ORDER BY version"));
  st.bind(1, promptId);
  return collect<PromptVersion>(st, [](const Statement& s) {
    return PromptVersion{s.int64(0), s.int64(1), s.text(2), s.text(3)};
  });
}

Expected<std::vector<Prompt>> Project::promptsWithTag(const std::string& tag) {
  HEARTH_TRY(Statement st, m_impl->db.prepare("SELECT prompt_id FROM prompt_tags WHERE tag=? ORDER BY prompt_id"));
  st.bind(1, tag);
  HEARTH_TRY(std::vector<Id> ids, collect<Id>(st, [](const Statement& s) { return s.int64(0); }));
  std::vector<Prompt> out;
  for (Id id : ids) {
    HEARTH_TRY(Prompt p, prompt(id));
    out.push_back(std::move(p));
  }
  return out;
}

Expected<std::vector<Prompt>> Project::prompts() {
  HEARTH_TRY(Statement st, m_impl->db.prepare("SELECT id FROM prompts ORDER BY name, id"));
  HEARTH_TRY(std::vector<Id> ids, collect<Id>(st, [](const Statement& s) { return s.int64(0); }));
  std::vector<Prompt> out;
  for (Id id : ids) {
    HEARTH_TRY(Prompt p, prompt(id));
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace hearth::store
