/* Project: opening (recognise, configure, migrate, recover), information, backup and the event log.
 *
 * Non-obvious choice: a file is first inspected through a separate READ-ONLY connection (application
 * id, schema version, whether it has any tables). Only a file that passes is reopened read-write: even
 * `PRAGMA journal_mode=WAL` writes to the header, so a foreign or newer file must never see a writable
 * connection. synchronous=FULL (not NORMAL) is chosen because WAL+NORMAL can lose the last committed
 * transactions on power loss; the store promises that a batch reported committed is on disk, and one
 * fsync per metric batch costs little next to a training step.
 */
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "hearth/store/project.h"
#include "hearth/store/schema.h"
#include "project-impl.h"

namespace hearth::store {

namespace detail {

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

namespace {
std::string bootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

// Fields of /proc/<pid>/stat after the command name: state is [0], starttime is [19].
bool readProcStat(long pid, char& state, std::string& startTicks) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return false;
  std::string line;
  std::getline(in, line);
  auto close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 1));
  std::string tok;
  int i = 0;
  state = '?';
  while (rest >> tok) {
    if (i == 0) state = tok.empty() ? '?' : tok[0];
    if (i == 19) {
      startTicks = tok;
      return true;
    }
    ++i;
  }
  return false;
}
}  // namespace

std::string processStart(long pid) {
  char state;
  std::string ticks;
  if (!readProcStat(pid, state, ticks)) return {};
  return bootId() + ":" + ticks;
}

bool ownerAlive(std::int64_t pid, const std::string& host, const std::string& start) {
  if (host != hostName()) return true;  // another machine's process: we cannot know
  if (pid <= 0 || pid > INT32_MAX) return false;
  char state;
  std::string ticks;
  if (readProcStat(static_cast<long>(pid), state, ticks)) {
    if (state == 'Z' || state == 'X') return false;
    if (!start.empty() && start != bootId() + ":" + ticks) return false;  // pid reused or rebooted
    return true;
  }
  // No /proc entry: gone (or no procfs, where kill(pid, 0) decides).
  if (::kill(static_cast<pid_t>(pid), 0) == 0) return true;
  return errno != ESRCH;
}

}  // namespace detail

namespace {

std::string defaultActor() {
  const char* user = std::getenv("USER");
  std::string comm;
  std::ifstream in("/proc/self/comm");
  std::getline(in, comm);
  if (comm.empty()) comm = "hearth";
  return std::string(user && *user ? user : "unknown") + "@" + detail::hostName() + " (" + comm + " pid " +
         std::to_string(::getpid()) + ")";
}

struct Probe {
  std::int64_t applicationId = 0;
  std::int64_t userVersion = 0;
  std::int64_t objects = 0;
};

// Reads the identity of an existing, non-empty file without any chance of writing to it.
// Only through SQLite: closing any other descriptor of the file (an ifstream reading the header) would
// drop every POSIX lock this process holds on it, so a connection already open in this process (the
// desktop window's, while a chat worker opens its own) could then see another process reset the WAL
// under it. SQLite shares one descriptor per file across connections and defers closing it.
// A WAL reader can meet SQLITE_BUSY for a moment (another connection restarting or checkpointing the
// log), so the probe waits as long as the real connection would.
Expected<Probe> probe(const std::string& path, int busyTimeoutMs) {
  HEARTH_TRY(Database ro, Database::open(path, Database::OpenMode::readOnly));
  sqlite3_busy_timeout(ro.handle(), busyTimeoutMs);
  Probe p;
  auto appId = ro.queryInt("PRAGMA application_id");
  auto userVersion = ro.queryInt("PRAGMA user_version");
  auto objects = ro.queryInt("SELECT count(*) FROM sqlite_master");
  for (auto* r : {&appId, &userVersion, &objects}) {
    if (*r) continue;
    if (r->error().code == ErrorCode::io) return Unexpected{r->error()};  // locked, unreadable
    if (r->error().message.find("not a database") != std::string::npos)
      return make_error(ErrorCode::format, "'" + path + "' is not a Hearth project: not an SQLite database",
                        "choose a .hearth file, or create one with `hearth-cli project init FILE`");
    return make_error(ErrorCode::format, "'" + path + "' is not a Hearth project (or is damaged): " +
                                             r->error().message, "the file was left unchanged");
  }
  p.applicationId = *appId;
  p.userVersion = *userVersion;
  p.objects = *objects;
  return p;
}

}  // namespace

Project::Project(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Project::Project(Project&&) noexcept = default;
Project& Project::operator=(Project&&) noexcept = default;
Project::~Project() = default;

std::string Project::defaultPath() {
  const char* xdg = std::getenv("XDG_DATA_HOME");
  std::filesystem::path base;
  if (xdg && *xdg && std::filesystem::path(xdg).is_absolute()) {
    base = xdg;
  } else {
    const char* home = std::getenv("HOME");
    base = std::filesystem::path(home && *home ? home : ".") / ".local" / "share";
  }
  return (base / "hearth" / "default.hearth").string();
}

Expected<Project> Project::create(const std::string& path, const OpenOptions& options) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && std::filesystem::file_size(path, ec) > 0)
    return make_error(ErrorCode::invalid_argument, "'" + path + "' already exists",
                      "open it instead, or choose another file name");
  OpenOptions o = options;
  o.create = true;
  return open(path, o);
}

Expected<Project> Project::open(const std::string& path, const OpenOptions& options) {
  if (path.empty()) return make_error(ErrorCode::invalid_argument, "no project file given");
  namespace fs = std::filesystem;
  std::error_code ec;
  auto st = fs::status(path, ec);
  int fromVersion = 0;
  bool exists = fs::exists(st);
  if (!exists) {
    if (!options.create)
      return make_error(ErrorCode::not_found, "no project at '" + path + "'",
                        "create one with `hearth-cli project init " + path + "`");
    auto parent = fs::path(path).parent_path();
    if (!parent.empty()) fs::create_directories(parent, ec);
  } else {
    if (!fs::is_regular_file(st))
      return make_error(ErrorCode::format, "'" + path + "' is not a Hearth project: not a regular file");
    const auto size = fs::file_size(path, ec);
    if (ec || ::access(path.c_str(), R_OK) != 0)
      return make_error(ErrorCode::io, "cannot read project '" + path + "'",
                        "check the file's permissions");
    if (size > 0) {
      HEARTH_TRY(Probe p, probe(path, options.busyTimeoutMs));
      if (p.applicationId != HEARTH_APPLICATION_ID) {
        if (!(p.applicationId == 0 && p.userVersion == 0 && p.objects == 0)) {
          char id[16];
          std::snprintf(id, sizeof id, "0x%08llx", static_cast<unsigned long long>(p.applicationId & 0xffffffff));
          return make_error(ErrorCode::format,
                            "'" + path + "' is an SQLite database but not a Hearth project (application id " +
                                id + ", " + std::to_string(p.objects) + " schema objects)",
                            "Hearth opens only files it created; the file was left unchanged");
        }
      } else if (p.userVersion > latestSchemaVersion()) {
        return make_error(ErrorCode::unsupported,
                          "'" + path + "' was written by a newer Hearth (schema v" + std::to_string(p.userVersion) +
                              "; this build reads up to v" + std::to_string(latestSchemaVersion()) + ")",
                          "open it with a newer Hearth; the file was left unchanged");
      } else if (p.userVersion < 1) {
        return make_error(ErrorCode::format, "'" + path + "' is a damaged Hearth project: application id set but "
                                             "schema version " + std::to_string(p.userVersion));
      }
      fromVersion = static_cast<int>(p.applicationId == HEARTH_APPLICATION_ID ? p.userVersion : 0);
    }
  }

  auto impl = std::make_unique<Impl>();
  impl->actor = options.actor.empty() ? defaultActor() : options.actor;
  HEARTH_TRY(impl->db, Database::open(path, exists ? Database::OpenMode::readWrite
                                                   : Database::OpenMode::readWriteCreate));
  Database& db = impl->db;
  sqlite3_busy_timeout(db.handle(), options.busyTimeoutMs);
  HEARTH_TRY(std::string mode, db.queryText("PRAGMA journal_mode=WAL"));
  if (mode != "wal")
    return make_error(ErrorCode::io, "project '" + path + "': cannot switch to WAL mode (got '" + mode + "')",
                      "WAL needs a local file system that supports shared memory; network shares do not");
  HEARTH_TRY_VOID(db.exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"));
  HEARTH_TRY_VOID(migrate(db, fromVersion, latestSchemaVersion(), impl->actor));
  HEARTH_TRY(std::int64_t version, db.queryInt("PRAGMA user_version"));
  impl->schemaVersion = static_cast<int>(version);
  Project project(std::move(impl));
  if (options.recoverInterrupted) HEARTH_TRY_VOID(project.recoverInterruptedRuns());
  return project;
}

const std::string& Project::path() const { return m_impl->db.path(); }
int Project::schemaVersion() const { return m_impl->schemaVersion; }
Database& Project::database() { return m_impl->db; }

Expected<ProjectInfo> Project::info() {
  Database& db = m_impl->db;
  ProjectInfo info;
  info.path = db.path();
  info.schemaVersion = m_impl->schemaVersion;
  HEARTH_TRY(std::int64_t pages, db.queryInt("PRAGMA page_count"));
  HEARTH_TRY(std::int64_t pageSize, db.queryInt("PRAGMA page_size"));
  info.sizeBytes = pages * pageSize;
  struct Count {
    const char* table;
    std::int64_t* out;
  } counts[] = {{"models", &info.models},         {"model_versions", &info.modelVersions},
                {"datasets", &info.datasets},     {"experiments", &info.experiments},
                {"runs", &info.runs},
                {"conversations", &info.conversations}, {"messages", &info.messages},
                {"prompts", &info.prompts},       {"events", &info.events}};
  for (auto& c : counts) {
    HEARTH_TRY(*c.out, db.queryInt(std::string("SELECT count(*) FROM ") + c.table));
  }
  HEARTH_TRY(info.metricPoints, db.queryInt("SELECT coalesce(sum(count), 0) FROM metric_chunks"));
  return info;
}

Expected<std::string> Project::integrityCheck() {
  HEARTH_TRY(Statement st, m_impl->db.prepare("PRAGMA integrity_check"));
  std::string out;
  for (;;) {
    HEARTH_TRY(bool row, st.step());
    if (!row) break;
    if (!out.empty()) out += "\n";
    out += st.text(0);
  }
  return out;
}

Expected<void> Project::backupTo(const std::string& destination) {
  std::error_code ec;
  if (std::filesystem::exists(destination, ec))
    return make_error(ErrorCode::invalid_argument, "backup target '" + destination + "' already exists",
                      "choose a new file name");
  HEARTH_TRY(Database dest, Database::open(destination, Database::OpenMode::readWriteCreate));
  sqlite3_backup* b = sqlite3_backup_init(dest.handle(), "main", m_impl->db.handle(), "main");
  if (!b) return Unexpected{dest.error(sqlite3_errcode(dest.handle()), "starting backup of '" + path() + "'")};
  int rc;
  // Copy in slices so that writers on other connections are not locked out for the whole copy; a
  // write by another connection restarts the copy, one by this connection is applied to it directly.
  do {
    rc = sqlite3_backup_step(b, 1024);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(5);
  } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    Error e = dest.error(rc, "backing up '" + path() + "'");
    dest = Database();
    std::filesystem::remove(destination, ec);
    return Unexpected{std::move(e)};
  }
  // The copy keeps the source's WAL flag in its header; make it a single self-contained file.
  HEARTH_TRY_VOID(dest.exec("PRAGMA journal_mode=DELETE"));
  return {};
}

Expected<std::vector<Id>> Project::recoverInterruptedRuns() {
  Database& db = m_impl->db;
  std::vector<Id> dead;
  {
    HEARTH_TRY(Statement st, db.prepare(
        "SELECT id, owner_pid, owner_host, owner_start FROM runs WHERE status = 'running'"));
    for (;;) {
      HEARTH_TRY(bool row, st.step());
      if (!row) break;
      if (!detail::ownerAlive(st.optInt64(1).value_or(0), st.text(2), st.text(3))) dead.push_back(st.int64(0));
    }
  }
  if (dead.empty()) return dead;
  HEARTH_TRY(Transaction tx, Transaction::begin(db));
  std::vector<Id> marked;
  for (Id id : dead) {
    HEARTH_TRY(Statement up, db.prepare(
        "UPDATE runs SET status = 'interrupted', finished_at = ?, error = ? "
        "WHERE id = ? AND status = 'running'"));
    std::string reason = "the process writing the run ended without finishing it";
    up.bind(1, detail::nowIso()).bind(2, reason).bind(3, id);
    HEARTH_TRY_VOID(up.exec());
    if (db.changes() == 0) continue;  // another process recovered or finished it meanwhile
    nlohmann::json payload = {{"status", "interrupted"}, {"reason", reason}};
    HEARTH_TRY(auto digest, metricsDigest(id));
    payload["metric_points"] = digest.first;
    payload["metrics_sha256"] = digest.second;
    HEARTH_TRY_VOID(m_impl->log("interrupt", "run", id, payload.dump()));
    marked.push_back(id);
  }
  HEARTH_TRY_VOID(tx.commit());
  return marked;
}

// ---- event log ---------------------------------------------------------------------------------

namespace {
Event readEvent(const Statement& st) {
  Event e;
  e.id = st.int64(0);
  e.at = st.text(1);
  e.actor = st.text(2);
  e.action = st.text(3);
  e.entity = st.text(4);
  e.entityId = st.optInt64(5);
  e.payload = st.text(6);
  e.prevHash = st.text(7);
  e.hash = st.text(8);
  return e;
}
constexpr const char* EVENT_COLUMNS = "id, at, actor, action, entity, entity_id, payload, prev_hash, hash";
}  // namespace

Expected<std::vector<Event>> Project::events(Id fromId, std::int64_t limit) {
  HEARTH_TRY(Statement st, m_impl->db.prepare(std::string("SELECT ") + EVENT_COLUMNS +
                                              " FROM events WHERE id >= ? ORDER BY id LIMIT ?"));
  st.bind(1, fromId).bind(2, limit);
  std::vector<Event> out;
  for (;;) {
    HEARTH_TRY(bool row, st.step());
    if (!row) break;
    out.push_back(readEvent(st));
  }
  return out;
}

Expected<ChainReport> Project::verifyChain() {
  // One read transaction, so the walk sees a single consistent snapshot while writers continue.
  HEARTH_TRY_VOID(m_impl->db.exec("BEGIN"));
  struct EndRead {
    Database& db;
    ~EndRead() { (void)db.exec("COMMIT"); }
  } endRead{m_impl->db};
  HEARTH_TRY(Statement st, m_impl->db.prepare(std::string("SELECT ") + EVENT_COLUMNS + " FROM events ORDER BY id"));
  ChainReport report;
  std::string prev = detail::GENESIS_HASH;
  Id expectedId = 1;
  for (;;) {
    HEARTH_TRY(bool row, st.step());
    if (!row) break;
    Event e = readEvent(st);
    auto broken = [&](std::string why) {
      report.ok = false;
      report.firstBrokenEvent = e.id;
      report.reason = std::move(why);
    };
    if (e.id != expectedId) {
      broken(e.id > expectedId ? "events " + std::to_string(expectedId) + ".." + std::to_string(e.id - 1) +
                                     " are missing before it"
                               : "its id is out of sequence");
    } else if (e.prevHash != prev) {
      broken("its prev_hash does not match the hash of the event before it");
    } else if (detail::eventHash(e) != e.hash) {
      broken("its content does not match its hash (edited after it was written)");
    }
    if (!report.ok) return report;
    ++report.events;
    prev = e.hash;
    ++expectedId;
  }
  report.headHash = report.events ? prev : std::string();

  // Metrics of ended runs against the digest their latest digest-carrying event recorded.
  HEARTH_TRY(Statement ended, m_impl->db.prepare(
      "SELECT r.id, (SELECT e.id FROM events e WHERE e.entity = 'run' AND e.entity_id = r.id AND "
      "e.payload LIKE '%\"metrics_sha256\"%' ORDER BY e.id DESC LIMIT 1) FROM runs r "
      "WHERE r.status IN ('finished', 'failed', 'interrupted') ORDER BY 2"));
  for (;;) {
    HEARTH_TRY(bool row, ended.step());
    if (!row) break;
    if (ended.isNull(1)) continue;  // ended before digests were recorded (an older Hearth)
    const Id runId = ended.int64(0);
    const Id eventId = ended.int64(1);
    HEARTH_TRY(std::vector<Event> ev, events(eventId, 1));
    if (ev.empty()) continue;
    auto payload = nlohmann::json::parse(ev[0].payload, nullptr, false);
    if (payload.is_discarded() || !payload.contains("metrics_sha256") || !payload["metrics_sha256"].is_string())
      continue;
    HEARTH_TRY(auto digest, metricsDigest(runId));
    if (digest.second != payload["metrics_sha256"].get<std::string>()) {
      report.ok = false;
      report.firstBrokenEvent = eventId;
      report.reason = "run " + std::to_string(runId) + "'s metrics (" + std::to_string(digest.first) +
                      " points) no longer match the digest this event recorded (" +
                      std::to_string(payload.value("metric_points", std::int64_t(-1))) +
                      " points): they were changed after the run ended";
      return report;
    }
  }
  return report;
}

}  // namespace hearth::store
