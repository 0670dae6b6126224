/* Unit tests of the project store through its public API: identity and refusal of foreign or newer
 * files (left byte-identical), every table's create/read paths, lineage, runs and metrics against an
 * in-memory reference, the hash-chained event log and tamper detection, export/import, backup,
 * recovery of interrupted runs, and migration from every committed fixture version.
 *
 * Non-obvious choice: tampering is done the way an attacker with the file would do it, through raw
 * sqlite3 on a second connection after dropping the append-only triggers; nothing in the store's API
 * is used to break the chain.
 */
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "must.h"
#include "../../app/store/event-log.h"
#include "hearth/store/project.h"
#include "hearth/store/schema.h"
#include "hearth/store/sha256.h"
#include "test-util.h"

using namespace hearth::store;
namespace fs = std::filesystem;
using hearth::ErrorCode;
using RunRecord = hearth::store::Run;  // inside TEST bodies `Run` names testing::Test::Run

namespace {

using hearth::test::must;

std::string bytes(const fs::path& p) { return hearth::test::read_text(p); }

// Runs SQL on a raw connection (no Hearth code), as an outside tool would.
void rawSql(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "") << " in " << sql;
  sqlite3_free(err);
  sqlite3_close(db);
}

std::int64_t rawInt(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(file.c_str(), &db);
  sqlite3_stmt* st = nullptr;
  std::int64_t v = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

Id addRunWithMetrics(Project& p, const std::string& name, int steps) {
  RunRecord r;
  r.name = name;
  r.config = R"({"lr": 0.0002, "rank": 8})";
  r.seed = 1234;
  Id id = must(p.createRun(r));
  must(p.startRun(id));
  std::vector<MetricRecord> batch;
  for (int s = 0; s < steps; ++s) {
    batch.push_back({"loss", {s, 3.0 / (1 + s), 1.7e9 + s * 0.25, 4096LL * s}});
    batch.push_back({"lr", {s, 2e-4 * (1 - s / double(steps)), 1.7e9 + s * 0.25, 4096LL * s}});
  }
  must(p.appendMetrics(id, batch));
  return id;
}

}  // namespace

// ---- identity, pragmas, refusal ------------------------------------------------------------------

TEST(Store, CreateSetsIdentityAndPragmas) {
  auto dir = hearth::test::scratch("create");
  auto file = dir / "p.hearth";
  auto p = must(Project::create(file.string()));
  auto& db = p.database();
  EXPECT_EQ(must(db.queryText("PRAGMA journal_mode")), "wal");
  EXPECT_EQ(must(db.queryInt("PRAGMA foreign_keys")), 1);
  EXPECT_EQ(must(db.queryInt("PRAGMA synchronous")), 2);  // FULL
  EXPECT_EQ(must(db.queryInt("PRAGMA application_id")), HEARTH_APPLICATION_ID);
  EXPECT_EQ(must(db.queryInt("PRAGMA user_version")), latestSchemaVersion());
  EXPECT_EQ(p.schemaVersion(), latestSchemaVersion());
  EXPECT_EQ(must(p.integrityCheck()), "ok");
  auto events = must(p.events());
  ASSERT_EQ(events.size(), static_cast<size_t>(latestSchemaVersion()));  // create + one per later migration
  EXPECT_EQ(events[0].action, "create");
  EXPECT_EQ(events[0].entity, "project");
  // A second create on the same file refuses.
  auto again = Project::create(file.string());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::invalid_argument);
}

TEST(Store, MissingFileIsNotFoundAndNotCreated) {
  auto dir = hearth::test::scratch("missing");
  auto r = Project::open((dir / "nope.hearth").string());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::not_found);
  EXPECT_NE(r.error().message.find("nope.hearth"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "nope.hearth"));
  // create makes missing parent folders, as the default path needs.
  auto deep = dir / "a" / "b" / "c.hearth";
  OpenOptions o;
  o.create = true;
  auto p = must(Project::open(deep.string(), o));
  EXPECT_TRUE(fs::exists(deep));
}

TEST(Store, RefusesFilesThatAreNotHearthProjectsAndLeavesThemUntouched) {
  auto dir = hearth::test::scratch("foreign");
  std::vector<fs::path> files;
  hearth::test::write_text(dir / "notes.txt", "just some text\n");
  files.push_back(dir / "notes.txt");
  std::mt19937 rng(3);
  std::string noise(8192, '\0');
  for (auto& c : noise) c = static_cast<char>(rng());
  hearth::test::write_text(dir / "noise.bin", noise);
  files.push_back(dir / "noise.bin");
  rawSql(dir / "other.db", "CREATE TABLE t(a); INSERT INTO t VALUES (1);");
  files.push_back(dir / "other.db");
  rawSql(dir / "otherapp.db", "PRAGMA application_id = 1234; CREATE TABLE x(y);");
  files.push_back(dir / "otherapp.db");
  rawSql(dir / "wal-other.db", "PRAGMA journal_mode=WAL; CREATE TABLE t(a); INSERT INTO t VALUES (2);");
  files.push_back(dir / "wal-other.db");
  // A Hearth project cut short after its first 50 bytes.
  {
    auto good = dir / "good.hearth";
    must(Project::create(good.string()));
    hearth::test::write_text(dir / "truncated.hearth", bytes(good).substr(0, 50));
    files.push_back(dir / "truncated.hearth");
  }
  for (const auto& f : files) {
    const std::string before = bytes(f);
    auto r = Project::open(f.string());
    ASSERT_FALSE(r) << f;
    EXPECT_EQ(r.error().code, ErrorCode::format) << f << ": " << r.error().to_string();
    EXPECT_NE(r.error().message.find(f.filename().string()), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("not a Hearth project"), std::string::npos) << r.error().message;
    EXPECT_EQ(bytes(f), before) << f << " was modified";
    EXPECT_FALSE(fs::exists(f.string() + "-wal") && fs::file_size(f.string() + "-wal") > 0) << f;
    // The CLI says the same on one stderr line and exits non-zero.
    auto cli = hearth::test::run(hearth::test::cli() + " project info --project '" + f.string() + "'");
    EXPECT_NE(cli.exit_code, 0);
    EXPECT_TRUE(cli.out.empty()) << cli.out;
    EXPECT_NE(cli.err.find("not a Hearth project"), std::string::npos) << cli.err;
    EXPECT_EQ(bytes(f), before) << f << " was modified by hearth-cli";
  }
  // A directory is not a project either.
  auto d = Project::open(dir.string());
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, ErrorCode::format);
}

TEST(Store, RefusesProjectsFromANewerHearthAndLeavesThemUntouched) {
  auto dir = hearth::test::scratch("newer");
  auto file = dir / "future.hearth";
  {
    auto p = must(Project::create(file.string()));
    addRunWithMetrics(p, "r", 10);
  }
  rawSql(file, "PRAGMA user_version = " + std::to_string(latestSchemaVersion() + 7));
  ASSERT_FALSE(fs::exists(file.string() + "-wal") && fs::file_size(file.string() + "-wal") > 0);
  const std::string before = bytes(file);
  const std::string hashBefore = must(sha256File(file.string()));
  auto r = Project::open(file.string());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::unsupported);
  EXPECT_NE(r.error().message.find("newer Hearth"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("v" + std::to_string(latestSchemaVersion() + 7)), std::string::npos);
  auto cli = hearth::test::run(hearth::test::cli() + " runs list --project '" + file.string() + "'");
  EXPECT_NE(cli.exit_code, 0);
  EXPECT_NE(cli.err.find("newer Hearth"), std::string::npos) << cli.err;
  EXPECT_EQ(bytes(file), before);
  EXPECT_EQ(must(sha256File(file.string())), hashBefore);
}

TEST(Store, DefaultPathFollowsXdgDataHome) {
  const char* oldXdg = std::getenv("XDG_DATA_HOME");
  const char* oldHome = std::getenv("HOME");
  std::string savedXdg = oldXdg ? oldXdg : "", savedHome = oldHome ? oldHome : "";
  setenv("XDG_DATA_HOME", "/srv/data", 1);
  EXPECT_EQ(Project::defaultPath(), "/srv/data/hearth/default.hearth");
  setenv("XDG_DATA_HOME", "relative/ignored", 1);  // the spec says relative values are invalid
  setenv("HOME", "/home/ada", 1);
  EXPECT_EQ(Project::defaultPath(), "/home/ada/.local/share/hearth/default.hearth");
  unsetenv("XDG_DATA_HOME");
  EXPECT_EQ(Project::defaultPath(), "/home/ada/.local/share/hearth/default.hearth");
  if (oldXdg) setenv("XDG_DATA_HOME", savedXdg.c_str(), 1);
  if (oldHome) setenv("HOME", savedHome.c_str(), 1);
}

// ---- library tables -------------------------------------------------------------------------------

TEST(Store, ModelVersionsCarryLineage) {
  auto dir = hearth::test::scratch("lineage");
  auto p = must(Project::create((dir / "p.hearth").string()));
  Model m;
  m.name = "tiny";
  m.path = "/models/tiny.gguf";
  m.format = "gguf";
  m.sha256 = sha256Hex("weights");
  m.sizeBytes = 7;
  m.architecture = "llama";
  m.parameters = 1000;
  m.tensorTypes = R"(["F16","F32"])";
  Id model = must(p.addModel(m));
  auto stored = must(p.model(model));
  EXPECT_EQ(stored.sha256, m.sha256);
  EXPECT_EQ(stored.tensorTypes, m.tensorTypes);
  EXPECT_FALSE(stored.createdAt.empty());

  ModelVersion base;
  base.modelId = model;
  base.kind = "base";
  Id baseId = must(p.addModelVersion(base));
  Dataset d;
  d.name = "fortunes";
  d.path = "/data/f.jsonl";
  d.format = "jsonl-text";
  d.sha256 = sha256Hex("data");
  d.rows = 10;
  d.tokensTotal = 500;
  d.tokensMin = 3;
  d.tokensMax = 90;
  Id ds = must(p.addDataset(d));
  EXPECT_EQ(must(p.dataset(ds)).tokensMax, 90);
  RunRecord r;
  r.baseVersionId = baseId;
  r.datasetId = ds;
  Id run = must(p.createRun(r));
  ModelVersion adapter;
  adapter.modelId = model;
  adapter.kind = "adapter";
  adapter.parentVersionId = baseId;
  adapter.producedByRunId = run;
  Id adapterId = must(p.addModelVersion(adapter));
  ModelVersion merged;
  merged.modelId = model;
  merged.kind = "merged";
  merged.parentVersionId = adapterId;
  Id mergedId = must(p.addModelVersion(merged));

  auto chain = must(p.lineage(mergedId));
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(chain[0].id, mergedId);
  EXPECT_EQ(chain[1].id, adapterId);
  EXPECT_EQ(chain[1].producedByRunId, run);
  EXPECT_EQ(chain[2].id, baseId);
  EXPECT_EQ(chain[2].kind, "base");

  // Foreign keys are enforced: a version of a missing model, a bad kind, removing a model in use.
  const auto eventsBefore = must(p.events()).size();
  ModelVersion orphan;
  orphan.modelId = 999;
  auto bad = p.addModelVersion(orphan);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::invalid_argument);
  ModelVersion weird;
  weird.modelId = model;
  weird.kind = "quantum";
  EXPECT_FALSE(p.addModelVersion(weird));
  EXPECT_FALSE(p.removeModel(model));
  EXPECT_EQ(must(p.events()).size(), eventsBefore) << "a failed write must not log an event";
  EXPECT_EQ(must(p.models()).size(), 1u);
}

TEST(Store, RunLifecycleAndEvents) {
  auto dir = hearth::test::scratch("lifecycle");
  auto p = must(Project::create((dir / "p.hearth").string()));
  Id exp = must(p.createExperiment("sweep", "lr sweep"));
  EXPECT_FALSE(p.createExperiment("sweep")) << "experiment names are unique";
  RunRecord r;
  r.experimentId = exp;
  r.name = "lr 1e-4";
  r.config = R"({"lr":1e-4,"epochs":2})";
  r.seed = 7;
  r.hardware = "test cpu";
  r.codeVersion = "0.1.0";
  r.status = RunStatus::finished;  // ignored: new runs are queued
  Id id = must(p.createRun(r));
  auto q = must(p.run(id));
  EXPECT_EQ(q.status, RunStatus::queued);
  EXPECT_EQ(q.config, r.config);
  EXPECT_EQ(q.seed, 7);
  EXPECT_FALSE(p.finishRun(id, "{}", "{}", std::nullopt, std::nullopt)) << "a queued run cannot finish";
  must(p.startRun(id));
  auto running = must(p.run(id));
  EXPECT_EQ(running.status, RunStatus::running);
  EXPECT_EQ(running.ownerPid, static_cast<std::int64_t>(::getpid()));
  EXPECT_FALSE(running.ownerHost.empty());
  EXPECT_FALSE(running.ownerStart.empty());
  EXPECT_TRUE(running.startedAt.has_value());
  EXPECT_FALSE(p.startRun(id)) << "a running run cannot start again";
  must(p.finishRun(id, R"({"loss":1.5})", R"({"loss":1.2})", 1234.5, std::nullopt));
  auto done = must(p.run(id));
  EXPECT_EQ(done.status, RunStatus::finished);
  EXPECT_EQ(done.energyJoules, 1234.5);
  EXPECT_EQ(nlohmann::json::parse(done.bestMetrics)["loss"], 1.2);

  Id failing = must(p.createRun(RunRecord{}));
  must(p.failRun(failing, "out of memory"));
  EXPECT_EQ(must(p.run(failing)).status, RunStatus::failed);
  EXPECT_EQ(must(p.run(failing)).error, "out of memory");

  RunRecord badConfig;
  badConfig.config = "[1,2";
  auto bad = p.createRun(badConfig);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::invalid_argument);

  // Every change of run `id` is in the log, in order.
  std::vector<std::string> actions;
  for (const auto& e : must(p.events()))
    if (e.entity == "run" && e.entityId == id) actions.push_back(e.action + ":" + nlohmann::json::parse(e.payload).value("status", ""));
  EXPECT_EQ(actions, (std::vector<std::string>{"create:queued", "update:running", "update:finished"}));

  must(p.deleteRun(failing));
  EXPECT_FALSE(p.run(failing));
  EXPECT_EQ(must(p.runs()).size(), 1u);
  EXPECT_EQ(must(p.events()).back().action, "delete");
}

TEST(Store, MetricsMatchAnInMemoryReference) {
  auto dir = hearth::test::scratch("metrics");
  auto p = must(Project::create((dir / "p.hearth").string()));
  Id run = must(p.createRun(RunRecord{}));
  Id other = must(p.createRun(RunRecord{}));
  std::mt19937 rng(42);
  std::map<std::string, std::map<std::int64_t, MetricPoint>> ref;  // last write wins, as the store promises
  const std::vector<std::string> names = {"loss", "lr", "grad_norm"};
  // Mostly increasing steps in batches of varied size, with some steps logged again (a resumed run).
  std::int64_t step = 0;
  for (int b = 0; b < 300; ++b) {
    std::vector<MetricRecord> batch;
    int n = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      std::int64_t s = (rng() % 10 == 0 && step > 20) ? step - static_cast<std::int64_t>(rng() % 20) : step++;
      for (const auto& name : names) {
        MetricPoint pt{s, std::uniform_real_distribution<double>(-5, 5)(rng), 1.7e9 + b + i * 1e-3,
                       static_cast<std::int64_t>(rng() % 100000)};
        batch.push_back({name, pt});
        ref[name][s] = pt;
      }
    }
    must(p.appendMetrics(run, batch));
    must(p.appendMetrics(other, {{"loss", {b, -1.0, 0, 0}}}));
  }
  auto same = [](const MetricPoint& a, const MetricPoint& b) {
    return a.step == b.step && a.value == b.value && a.wallTime == b.wallTime && a.tokensSeen == b.tokensSeen;
  };
  EXPECT_EQ(must(p.metricNames(run)), (std::vector<std::string>{"grad_norm", "loss", "lr"}));
  for (const auto& name : names) {
    auto all = must(p.readMetric(run, name));
    ASSERT_EQ(all.size(), ref[name].size()) << name;
    size_t i = 0;
    for (const auto& [s, pt] : ref[name]) {
      ASSERT_TRUE(same(all[i], pt)) << name << " step " << s << " got step " << all[i].step << " value " << all[i].value;
      ++i;
    }
    for (int trial = 0; trial < 50; ++trial) {
      std::int64_t a = static_cast<std::int64_t>(rng() % (step + 10)) - 5;
      std::int64_t b = a + static_cast<std::int64_t>(rng() % 200);
      auto got = must(p.readMetric(run, name, a, b));
      std::vector<MetricPoint> want;
      for (auto it = ref[name].lower_bound(a); it != ref[name].end() && it->first <= b; ++it) want.push_back(it->second);
      ASSERT_EQ(got.size(), want.size()) << name << " [" << a << ", " << b << "]";
      for (size_t k = 0; k < got.size(); ++k) ASSERT_TRUE(same(got[k], want[k]));
    }
  }
  EXPECT_EQ(must(p.readMetric(other, "loss")).size(), 300u);
  EXPECT_TRUE(must(p.readMetric(run, "no such metric")).empty());
  EXPECT_TRUE(must(p.readMetric(run, "loss", 10, 5)).empty());
  // 300 small batches extend chunks instead of making one row per batch.
  EXPECT_LT(rawInt(dir / "p.hearth", "SELECT count(*) FROM metric_chunks WHERE run_id = " + std::to_string(other)), 5);

  // Appending to a run that does not exist stores nothing.
  auto bad = p.appendMetrics(9999, {{"loss", {0, 1, 0, 0}}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::not_found);
  auto empty = p.appendMetrics(run, {{"", {0, 1, 0, 0}}});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::invalid_argument);
}

TEST(Store, ConversationsBranchAndVote) {
  auto dir = hearth::test::scratch("chat");
  auto p = must(Project::create((dir / "p.hearth").string()));
  Conversation c;
  c.title = "hello";
  c.systemPrompt = "be brief";
  Id conv = must(p.createConversation(c));
  Message user;
  user.conversationId = conv;
  user.role = "user";
  user.content = "hi";
  Id u = must(p.addMessage(user));
  Message a1;
  a1.conversationId = conv;
  a1.parentId = u;
  a1.role = "assistant";
  a1.content = "hello!";
  a1.samplingParams = R"({"temperature":0.7,"seed":1})";
  a1.promptTokens = 5;
  a1.completionTokens = 3;
  a1.tokensPerSecond = 42.5;
  a1.energyJoules = 0.3;
  Id m1 = must(p.addMessage(a1));
  Message a2 = a1;  // an edit: a sibling under the same parent
  a2.content = "hey";
  Id m2 = must(p.addMessage(a2));
  must(p.voteMessage(m1, +1));
  must(p.voteMessage(m2, -1));
  auto msgs = must(p.messages(conv));
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[1].parentId, u);
  EXPECT_EQ(msgs[2].parentId, u);
  EXPECT_EQ(msgs[1].votes, 1);
  EXPECT_EQ(msgs[2].votes, -1);
  EXPECT_EQ(msgs[1].tokensPerSecond, 42.5);
  EXPECT_EQ(msgs[1].samplingParams, a1.samplingParams);
  // A parent from another conversation is refused.
  Id conv2 = must(p.createConversation(Conversation{}));
  Message stray = user;
  stray.conversationId = conv2;
  stray.parentId = m1;
  EXPECT_FALSE(p.addMessage(stray));
  EXPECT_FALSE(p.voteMessage(12345, 1));
}

TEST(Store, PromptEditsMakeVersions) {
  auto dir = hearth::test::scratch("prompts");
  auto p = must(Project::create((dir / "p.hearth").string()));
  Id id = must(p.createPrompt("summarise", "Summarise:", {"writing", "short"}));
  EXPECT_EQ(must(p.editPrompt(id, "Summarise briefly:")), 2);
  EXPECT_EQ(must(p.editPrompt(id, "Summarise in one line:")), 3);
  auto latest = must(p.prompt(id));
  EXPECT_EQ(latest.latestVersion, 3);
  EXPECT_EQ(latest.text, "Summarise in one line:");
  EXPECT_EQ(latest.tags, (std::vector<std::string>{"short", "writing"}));
  auto versions = must(p.promptVersions(id));
  ASSERT_EQ(versions.size(), 3u);
  EXPECT_EQ(versions[0].text, "Summarise:");
  EXPECT_EQ(versions[1].text, "Summarise briefly:");
  Id other = must(p.createPrompt("translate", "Translate:", {"writing"}));
  EXPECT_EQ(must(p.promptsWithTag("writing")).size(), 2u);
  must(p.setPromptTags(other, {"lang"}));
  EXPECT_EQ(must(p.promptsWithTag("writing")).size(), 1u);
  EXPECT_FALSE(p.createPrompt("summarise", "dup"));
  EXPECT_FALSE(p.editPrompt(777, "x"));
}

// ---- event log -------------------------------------------------------------------------------------

TEST(Store, EventLogIsAppendOnlyAndTamperEvident) {
  auto dir = hearth::test::scratch("chain");
  auto file = dir / "p.hearth";
  std::size_t n = 0;
  {
    auto p = must(Project::create(file.string()));
    addRunWithMetrics(p, "a", 5);
    must(p.createPrompt("x", "y"));
    must(p.createExperiment("e"));
    auto report = must(p.verifyChain());
    EXPECT_TRUE(report.ok) << report.reason;
    n = must(p.events()).size();
    EXPECT_EQ(static_cast<std::size_t>(report.events), n);
    EXPECT_EQ(report.headHash, must(p.events()).back().hash);
    // The triggers refuse updates and deletes, even through the store's own connection.
    auto up = p.database().exec("UPDATE events SET payload = '{}' WHERE id = 2");
    ASSERT_FALSE(up);
    EXPECT_NE(up.error().message.find("append-only"), std::string::npos);
    EXPECT_FALSE(p.database().exec("DELETE FROM events WHERE id = 2"));
  }
  ASSERT_GE(n, 5u);
  auto verifyCli = [&] { return hearth::test::run(hearth::test::cli() + " audit verify --project '" + file.string() + "'"); };
  auto ok = verifyCli();
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out.substr(0, ok.out.find('\n')), "chain ok: " + std::to_string(n) + " events");

  // Copies of the intact file, each tampered a different way.
  auto tampered = [&](const std::string& name, const std::string& sql) {
    auto f = dir / name;
    fs::copy_file(file, f, fs::copy_options::overwrite_existing);
    rawSql(f, "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; " + sql);
    return f;
  };
  struct Case {
    fs::path file;
    Id broken;
    std::string reason;
  };
  // An edited payload; an edited payload with its own hash recomputed (caught by the next event); a
  // deleted event; an edited timestamp.
  auto e3 = must(must(Project::open(file.string())).events(3, 1)).at(0);
  e3.payload = R"({"name":"forged"})";
  const std::string forgedHash = detail::eventHash(e3);
  std::vector<Case> cases = {
      {tampered("edit.hearth", "UPDATE events SET payload = '{\"name\":\"forged\"}' WHERE id = 3"), 3, "content"},
      {tampered("rehash.hearth", "UPDATE events SET payload = '{\"name\":\"forged\"}', hash = '" + forgedHash +
                                     "' WHERE id = 3"), 4, "prev_hash"},
      {tampered("delete.hearth", "DELETE FROM events WHERE id = 4"), 5, "missing"},
      {tampered("time.hearth", "UPDATE events SET at = '2020-01-01T00:00:00.000Z' WHERE id = 2"), 2, "content"},
  };
  for (const auto& c : cases) {
    OpenOptions o;
    o.recoverInterrupted = false;
    auto p = must(Project::open(c.file.string(), o));
    auto report = must(p.verifyChain());
    EXPECT_FALSE(report.ok) << c.file;
    EXPECT_EQ(report.firstBrokenEvent, c.broken) << c.file << ": " << report.reason;
    EXPECT_NE(report.reason.find(c.reason), std::string::npos) << report.reason;
    auto cli = hearth::test::run(hearth::test::cli() + " audit verify --project '" + c.file.string() + "'");
    EXPECT_NE(cli.exit_code, 0);
    EXPECT_TRUE(cli.out.empty()) << cli.out;
    EXPECT_NE(cli.err.find("event " + std::to_string(c.broken)), std::string::npos) << cli.err;
  }
}

TEST(Store, MetricsEditedAfterARunEndedAreDetected) {
  auto dir = hearth::test::scratch("metric-tamper");
  auto file = dir / "p.hearth";
  Id finished = 0, failed = 0;
  {
    auto p = must(Project::create(file.string()));
    finished = addRunWithMetrics(p, "done", 300);
    must(p.finishRun(finished, "{}", "{}", std::nullopt, std::nullopt));
    failed = addRunWithMetrics(p, "broken", 20);
    must(p.failRun(failed, "nan loss"));
    // Appending to an ended run (an import) is legitimate: it records a new digest.
    must(p.appendMetrics(failed, {{"loss", {1000, 0.5, 0, 0}}}));
    auto report = must(p.verifyChain());
    EXPECT_TRUE(report.ok) << report.reason;
    auto digest = must(p.metricsDigest(finished));
    EXPECT_EQ(digest.first, 600);
    // The finish event carries the digest.
    Id finishEvent = 0;
    for (const auto& e : must(p.events()))
      if (e.entity == "run" && e.entityId == finished && e.payload.find("metrics_sha256") != std::string::npos) {
        finishEvent = e.id;
        EXPECT_EQ(nlohmann::json::parse(e.payload)["metrics_sha256"], digest.second);
      }
    ASSERT_NE(finishEvent, 0);
  }
  // One changed value in one chunk of the finished run, written with raw SQL.
  auto f = dir / "edited.hearth";
  fs::copy_file(file, f);
  rawSql(f, "UPDATE metric_chunks SET data = zeroblob(length(data)) WHERE id = (SELECT min(id) FROM metric_chunks "
            "WHERE run_id = " + std::to_string(finished) + ")");
  OpenOptions o;
  o.recoverInterrupted = false;
  auto p = must(Project::open(f.string(), o));
  auto report = must(p.verifyChain());
  EXPECT_FALSE(report.ok);
  EXPECT_NE(report.reason.find("run " + std::to_string(finished)), std::string::npos) << report.reason;
  EXPECT_NE(report.reason.find("changed after the run ended"), std::string::npos) << report.reason;
  auto cli = hearth::test::run(hearth::test::cli() + " audit verify --project '" + f.string() + "'");
  EXPECT_NE(cli.exit_code, 0);
  EXPECT_NE(cli.err.find("event " + std::to_string(report.firstBrokenEvent.value_or(-1))), std::string::npos) << cli.err;
}

// ---- export / import / backup ----------------------------------------------------------------------

TEST(Store, RunExportImportRoundTrips) {
  auto dir = hearth::test::scratch("export");
  auto src = must(Project::create((dir / "a.hearth").string()));
  Dataset d;
  d.name = "fortunes";
  d.path = "/d.jsonl";
  d.format = "jsonl-text";
  d.sha256 = sha256Hex("dataset bytes");
  Id ds = must(src.addDataset(d));
  RunRecord r;
  r.name = "exp, \"quoted\"";
  r.config = R"({"lr":0.0002,"nested":{"a":[1,2,3]}})";
  r.seed = 99;
  r.datasetId = ds;
  Id run = must(src.createRun(r));
  must(src.startRun(run));
  std::vector<MetricRecord> batch;
  for (int s = 0; s < 500; ++s) {
    batch.push_back({"loss", {s, 1.0 / 3.0 + s * 1e-17 + std::sqrt(double(s)), 1.7e9 + s / 7.0, 333LL * s}});
    batch.push_back({"odd,name \"q\"", {s * 2, -s * 0.1, 1.7e9, s}});
  }
  must(src.appendMetrics(run, batch));
  must(src.finishRun(run, R"({"loss":0.5})", R"({"loss":0.4})", 12.0, std::nullopt));

  const std::string json = must(src.exportRunJson(run));
  auto j = nlohmann::json::parse(json);
  EXPECT_EQ(j["format"], "hearth-run");
  EXPECT_EQ(j["run"]["config"]["nested"]["a"][2], 3);
  EXPECT_EQ(j["provenance"]["dataset"]["sha256"], d.sha256);
  EXPECT_EQ(j["metrics"]["loss"].size(), 500u);

  auto dst = must(Project::create((dir / "b.hearth").string()));
  Dataset same = d;
  same.path = "/elsewhere/d.jsonl";
  must(dst.addDataset(Dataset{0, "other", "/o", "jsonl-text", sha256Hex("other"), 0, 0, {}, {}, {}}));
  Id sameDs = must(dst.addDataset(same));
  Id imported = must(dst.importRunJson(json));
  auto ir = must(dst.run(imported));
  EXPECT_EQ(ir.name, r.name);
  EXPECT_EQ(ir.status, RunStatus::finished);
  EXPECT_EQ(ir.seed, 99);
  EXPECT_EQ(ir.datasetId, sameDs) << "re-linked by sha256";
  EXPECT_EQ(nlohmann::json::parse(ir.config), nlohmann::json::parse(r.config));
  for (const std::string name : {"loss", "odd,name \"q\""}) {
    auto a = must(src.readMetric(run, name));
    auto b = must(dst.readMetric(imported, name));
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].step, b[i].step);
      ASSERT_EQ(a[i].value, b[i].value) << "bit-exact through JSON";
      ASSERT_EQ(a[i].wallTime, b[i].wallTime);
      ASSERT_EQ(a[i].tokensSeen, b[i].tokensSeen);
    }
  }
  int importEvents = 0;
  for (const auto& e : must(dst.events())) importEvents += e.action == "import" && e.entityId == imported;
  EXPECT_EQ(importEvents, 1);
  // The imported points are covered by a digest event, so the chain (with its metric check) holds.
  EXPECT_NE(must(dst.events()).back().payload.find(must(dst.metricsDigest(imported)).second), std::string::npos);
  EXPECT_TRUE(must(dst.verifyChain()).ok);

  // CSV: header, one line per point, quoted names, and a bit-exact round trip into another run.
  const std::string csv = must(src.exportRunCsv(run));
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "run_id,metric,step,value,wall_time,tokens_seen");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1001);
  EXPECT_NE(csv.find(std::to_string(run) + ",\"odd,name \"\"q\"\"\",4,"), std::string::npos);
  Id target = must(dst.createRun(RunRecord{}));
  EXPECT_EQ(must(dst.importMetricsCsv(target, csv)), 1000);
  auto a = must(src.readMetric(run, "loss"));
  auto b = must(dst.readMetric(target, "loss"));
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i].value, b[i].value);

  // Bad input: clear errors, nothing stored.
  const auto runsBefore = must(dst.runs()).size();
  for (const std::string bad : {std::string("{"), std::string(R"({"format":"other"})"),
                                std::string(R"({"format":"hearth-run","version":1,"run":{},"metrics":{"x":[[1,2]]}})")}) {
    auto e = dst.importRunJson(bad);
    ASSERT_FALSE(e) << bad;
    EXPECT_EQ(e.error().code, ErrorCode::format);
  }
  EXPECT_EQ(must(dst.runs()).size(), runsBefore);
  auto badCsv = dst.importMetricsCsv(target, "run_id,metric,step,value,wall_time,tokens_seen\n1,loss,abc,1,2,3\n");
  ASSERT_FALSE(badCsv);
  EXPECT_NE(badCsv.error().message.find("line 2"), std::string::npos) << badCsv.error().message;
}

TEST(Store, BackupIsACompleteProject) {
  auto dir = hearth::test::scratch("backup");
  auto p = must(Project::create((dir / "p.hearth").string()));
  Id run = addRunWithMetrics(p, "r", 3000);
  must(p.createPrompt("x", "y", {"t"}));
  must(p.backupTo((dir / "copy.hearth").string()));
  EXPECT_FALSE(p.backupTo((dir / "copy.hearth").string())) << "never overwrites";
  // The source keeps working after the backup.
  must(p.appendMetrics(run, {{"loss", {5000, 1, 0, 0}}}));
  auto copy = must(Project::open((dir / "copy.hearth").string()));
  EXPECT_EQ(must(copy.integrityCheck()), "ok");
  EXPECT_TRUE(must(copy.verifyChain()).ok);
  EXPECT_EQ(must(copy.readMetric(run, "loss")).size(), 3000u);
  EXPECT_EQ(must(p.readMetric(run, "loss")).size(), 3001u);
  EXPECT_EQ(must(copy.prompt(1)).tags, std::vector<std::string>{"t"});
}

// ---- recovery of interrupted runs ------------------------------------------------------------------

TEST(Store, RunsOfDeadOwnersBecomeInterruptedOnOpen) {
  auto dir = hearth::test::scratch("recover");
  auto file = dir / "p.hearth";
  // A pid that certainly belonged to a process that has ended.
  pid_t child = fork();
  if (child == 0) _exit(0);
  int status = 0;
  waitpid(child, &status, 0);
  Id dead = 0, mine = 0, remote = 0, reused = 0;
  {
    auto p = must(Project::create(file.string()));
    for (Id* id : {&dead, &mine, &remote, &reused}) {
      *id = must(p.createRun(RunRecord{}));
      must(p.startRun(*id));
    }
  }
  rawSql(file, "UPDATE runs SET owner_pid = " + std::to_string(child) + " WHERE id = " + std::to_string(dead) +
                   "; UPDATE runs SET owner_host = 'some-other-machine' WHERE id = " + std::to_string(remote) +
                   "; UPDATE runs SET owner_start = 'another-boot:1' WHERE id = " + std::to_string(reused));
  auto p = must(Project::open(file.string()));
  EXPECT_EQ(must(p.run(dead)).status, RunStatus::interrupted);
  EXPECT_FALSE(must(p.run(dead)).error.empty());
  EXPECT_EQ(must(p.run(mine)).status, RunStatus::running) << "this process still owns it";
  EXPECT_EQ(must(p.run(remote)).status, RunStatus::running) << "another host's process cannot be judged";
  EXPECT_EQ(must(p.run(reused)).status, RunStatus::interrupted) << "same pid, different process";
  int interrupts = 0;
  for (const auto& e : must(p.events())) interrupts += e.action == "interrupt";
  EXPECT_EQ(interrupts, 2);
  EXPECT_TRUE(must(p.verifyChain()).ok);
  EXPECT_TRUE(must(p.recoverInterruptedRuns()).empty()) << "recovery is idempotent";
}

// ---- migrations --------------------------------------------------------------------------------------

namespace {
std::vector<std::string> schemaOf(Project& p) {
  auto st = must(p.database().prepare("SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_master ORDER BY type, name"));
  std::vector<std::string> out;
  while (must(st.step())) out.push_back(st.text(0));
  return out;
}
}  // namespace

TEST(Store, MigratesEveryFixtureVersionToLatest) {
  auto dir = hearth::test::scratch("migrate");
  auto fresh = must(Project::create((dir / "fresh.hearth").string()));
  const auto freshSchema = schemaOf(fresh);
  for (int v = 0; v <= latestSchemaVersion(); ++v) {
    SCOPED_TRACE("fixture v" + std::to_string(v));
    auto fixture = hearth::test::source_dir("tests/app/fixtures/v" + std::to_string(v) + ".hearth");
    ASSERT_TRUE(fs::exists(fixture)) << "every schema version needs a fixture: make it with store-make-fixture";
    auto file = dir / ("v" + std::to_string(v) + ".hearth");
    fs::copy_file(fixture, file);
    if (v > 0) EXPECT_EQ(rawInt(file, "PRAGMA user_version"), v);
    auto p = must(Project::open(file.string()));
    EXPECT_EQ(p.schemaVersion(), latestSchemaVersion());
    EXPECT_EQ(must(p.integrityCheck()), "ok");
    EXPECT_EQ(schemaOf(p), freshSchema) << "a migrated file has exactly the schema of a new one";
    auto report = must(p.verifyChain());
    EXPECT_TRUE(report.ok) << report.reason;
    int migrations = 0;
    for (const auto& e : must(p.events())) migrations += e.action == "migrate";
    EXPECT_EQ(migrations, latestSchemaVersion() - 1) << "one event per migration since v1";
    if (v == 0) {
      EXPECT_TRUE(must(p.runs()).empty());
      continue;
    }
    // Version 1 data survives every later migration.
    auto runs = must(p.runs());
    ASSERT_EQ(runs.size(), 2u);
    EXPECT_EQ(runs[0].name, "lr 2e-4");
    EXPECT_EQ(runs[0].status, RunStatus::finished);
    EXPECT_EQ(runs[0].outputVersionId, 2);
    EXPECT_EQ(runs[1].status, RunStatus::failed);
    auto loss = must(p.readMetric(1, "loss"));
    ASSERT_EQ(loss.size(), 300u);
    for (const auto& pt : loss) {
      ASSERT_EQ(pt.value, 3.0 - pt.step / 100.0);
      ASSERT_EQ(pt.tokensSeen, 512 * pt.step);
    }
    auto chain = must(p.lineage(2));
    ASSERT_EQ(chain.size(), 2u);
    EXPECT_EQ(chain[1].kind, "base");
    EXPECT_EQ(must(p.dataset(1)).tokensMax, 400);
    // A migrated project keeps working: new runs, metrics, chat, prompts.
    Id run = addRunWithMetrics(p, "after migration", 10);
    EXPECT_EQ(must(p.readMetric(run, "loss")).size(), 10u);
    must(p.createPrompt("new prompt", "text"));
    if (v >= 2) {
      auto msgs = must(p.messages(1));
      ASSERT_EQ(msgs.size(), 3u);
      EXPECT_EQ(msgs[2].parentId, 1);
      EXPECT_EQ(must(p.prompt(1)).latestVersion, 2);
    }
    EXPECT_TRUE(must(p.verifyChain()).ok);
  }
}

// ---- hearth-cli ---------------------------------------------------------------------------------------

TEST(StoreCli, InitInfoRunsExport) {
  using hearth::test::cli;
  using hearth::test::run;
  auto dir = hearth::test::scratch("cli");
  auto file = dir / "cli.hearth";
  const std::string proj = " --project '" + file.string() + "'";
  auto init = run(cli() + " project init '" + file.string() + "'");
  ASSERT_EQ(init.exit_code, 0) << init.err;
  EXPECT_NE(init.out.find("created project"), std::string::npos);
  EXPECT_NE(run(cli() + " project init '" + file.string() + "'").exit_code, 0);
  Id id = 0;
  {
    auto p = must(Project::open(file.string()));
    id = addRunWithMetrics(p, "cli run", 25);
    must(p.finishRun(id, R"({"loss":0.1})", "{}", std::nullopt, std::nullopt));
  }
  auto info = run(cli() + " project info --json" + proj);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  auto ij = nlohmann::json::parse(info.out);
  EXPECT_EQ(ij["runs"], 1);
  EXPECT_EQ(ij["metric_points"], 50);
  EXPECT_EQ(ij["schema_version"], latestSchemaVersion());

  auto list = run(cli() + " runs list --json" + proj);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto lj = nlohmann::json::parse(list.out);
  ASSERT_EQ(lj.size(), 1u);
  EXPECT_EQ(lj[0]["status"], "finished");
  EXPECT_EQ(lj[0]["metric_points"], 50);
  auto text = run(cli() + " runs list" + proj);
  EXPECT_NE(text.out.find("cli run"), std::string::npos);

  auto show = run(cli() + " runs show '" + std::to_string(id) + "' --json" + proj);
  ASSERT_EQ(show.exit_code, 0) << show.err;
  auto sj = nlohmann::json::parse(show.out);
  EXPECT_EQ(sj["config"]["rank"], 8);
  EXPECT_EQ(sj["metrics"]["loss"]["points"], 25);
  auto byName = run(cli() + " runs show 'cli run'" + proj);
  EXPECT_EQ(byName.exit_code, 0) << byName.err;
  EXPECT_NE(byName.out.find("finished"), std::string::npos);
  auto missing = run(cli() + " runs show 42" + proj);
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("42"), std::string::npos);

  auto csv = run(cli() + " runs export " + std::to_string(id) + " --format csv" + proj);
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_EQ(std::count(csv.out.begin(), csv.out.end(), '\n'), 51);
  auto json = run(cli() + " runs export " + std::to_string(id) + " --format json" + proj);
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(nlohmann::json::parse(json.out)["metrics"]["lr"].size(), 25u);
  hearth::test::write_text(dir / "run.json", json.out);
  auto imp = run(cli() + " runs import '" + (dir / "run.json").string() + "'" + proj);
  EXPECT_EQ(imp.exit_code, 0) << imp.err;
  EXPECT_EQ(nlohmann::json::parse(run(cli() + " runs list --json" + proj).out).size(), 2u);
  auto backup = run(cli() + " project backup '" + (dir / "copy.hearth").string() + "'" + proj);
  ASSERT_EQ(backup.exit_code, 0) << backup.err;
  auto copyList = run(cli() + " runs list --json --project '" + (dir / "copy.hearth").string() + "'");
  EXPECT_EQ(nlohmann::json::parse(copyList.out).size(), 2u) << copyList.err;
  EXPECT_NE(run(cli() + " project backup '" + (dir / "copy.hearth").string() + "'" + proj).exit_code, 0)
      << "a backup never overwrites";
  auto verify = run(cli() + " audit verify" + proj);
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  EXPECT_EQ(verify.out.rfind("chain ok: ", 0), 0u) << verify.out;

  // --project defaults to $XDG_DATA_HOME/hearth/default.hearth.
  auto xdg = dir / "xdg";
  auto def = run("XDG_DATA_HOME='" + xdg.string() + "' " + cli() + " project info");
  EXPECT_NE(def.exit_code, 0);
  EXPECT_NE(def.err.find((xdg / "hearth" / "default.hearth").string()), std::string::npos) << def.err;
  auto defInit = run("XDG_DATA_HOME='" + xdg.string() + "' " + cli() + " project init");
  EXPECT_EQ(defInit.exit_code, 0) << defInit.err;
  EXPECT_TRUE(fs::exists(xdg / "hearth" / "default.hearth"));
  auto def2 = run("XDG_DATA_HOME='" + xdg.string() + "' " + cli() + " audit verify");
  EXPECT_EQ(def2.exit_code, 0) << def2.err;
}
