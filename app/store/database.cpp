/* The sqlite3 RAII wrapper: connections, prepared statements, IMMEDIATE transactions.
 *
 * Non-obvious choice: a failed COMMIT is followed by an explicit ROLLBACK. After SQLITE_FULL or an I/O
 * error at commit time SQLite may leave the transaction open; rolling it back at once keeps the
 * connection usable (the caller can mark the run failed or retry) instead of holding the write lock.
 */
#include "hearth/store/database.h"

#include <sqlite3.h>

#include <utility>

namespace hearth::store {

Error sqliteError(int rc, const std::string& path, const std::string& context, const char* sqliteMessage) {
  const int primary = rc & 0xff;
  ErrorCode code = ErrorCode::internal;
  std::string hint;
  switch (primary) {
    case SQLITE_FULL:
      code = ErrorCode::io;
      hint = "the disk (or the project's size limit) is full; free some space and retry";
      break;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      code = ErrorCode::io;
      break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      code = ErrorCode::io;
      hint = "another program holds the project locked; retry when it is done";
      break;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      code = ErrorCode::format;
      break;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      code = ErrorCode::invalid_argument;
      break;
    case SQLITE_NOTFOUND:
      code = ErrorCode::not_found;
      break;
    default:
      break;
  }
  std::string msg = "project '" + path + "': " + context + ": ";
  msg += sqliteMessage ? sqliteMessage : sqlite3_errstr(rc);
  return Error{code, std::move(msg), std::move(hint)};
}

// ---- Statement ---------------------------------------------------------------------------------

Statement::Statement(Statement&& o) noexcept
    : m_db(std::exchange(o.m_db, nullptr)), m_stmt(std::exchange(o.m_stmt, nullptr)), m_bindError(o.m_bindError) {}

Statement& Statement::operator=(Statement&& o) noexcept {
  if (this != &o) {
    if (m_stmt) sqlite3_finalize(m_stmt);
    m_db = std::exchange(o.m_db, nullptr);
    m_stmt = std::exchange(o.m_stmt, nullptr);
    m_bindError = o.m_bindError;
  }
  return *this;
}

Statement::~Statement() {
  if (m_stmt) sqlite3_finalize(m_stmt);
}

Statement& Statement::bind(int index, std::int64_t v) {
  int rc = sqlite3_bind_int64(m_stmt, index, v);
  if (rc != SQLITE_OK && !m_bindError) m_bindError = rc;
  return *this;
}
Statement& Statement::bind(int index, double v) {
  int rc = sqlite3_bind_double(m_stmt, index, v);
  if (rc != SQLITE_OK && !m_bindError) m_bindError = rc;
  return *this;
}
Statement& Statement::bind(int index, std::string_view v) {
  int rc = sqlite3_bind_text64(m_stmt, index, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK && !m_bindError) m_bindError = rc;
  return *this;
}
Statement& Statement::bindNull(int index) {
  int rc = sqlite3_bind_null(m_stmt, index);
  if (rc != SQLITE_OK && !m_bindError) m_bindError = rc;
  return *this;
}
Statement& Statement::bind(int index, const std::optional<std::int64_t>& v) {
  return v ? bind(index, *v) : bindNull(index);
}
Statement& Statement::bind(int index, const std::optional<double>& v) {
  return v ? bind(index, *v) : bindNull(index);
}
Statement& Statement::bind(int index, const std::optional<std::string>& v) {
  return v ? bind(index, std::string_view(*v)) : bindNull(index);
}

Expected<bool> Statement::step() {
  const char* sql = sqlite3_sql(m_stmt);
  std::string ctx = "running '" + std::string(sql ? sql : "").substr(0, 60) + "'";
  if (m_bindError) {
    int rc = std::exchange(m_bindError, 0);
    return Unexpected{sqliteError(rc, m_db->path(), ctx, sqlite3_errstr(rc))};
  }
  int rc = sqlite3_step(m_stmt);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Error e = m_db->error(rc, ctx);
  sqlite3_reset(m_stmt);
  return Unexpected{std::move(e)};
}

Expected<void> Statement::exec() {
  for (;;) {
    HEARTH_TRY(bool row, step());
    if (!row) return {};
  }
}

void Statement::reset() {
  sqlite3_reset(m_stmt);
  sqlite3_clear_bindings(m_stmt);
  m_bindError = 0;
}

bool Statement::isNull(int col) const { return sqlite3_column_type(m_stmt, col) == SQLITE_NULL; }
std::int64_t Statement::int64(int col) const { return sqlite3_column_int64(m_stmt, col); }
double Statement::real(int col) const { return sqlite3_column_double(m_stmt, col); }
std::string Statement::text(int col) const {
  const unsigned char* p = sqlite3_column_text(m_stmt, col);
  int n = sqlite3_column_bytes(m_stmt, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}
std::optional<std::int64_t> Statement::optInt64(int col) const {
  if (isNull(col)) return std::nullopt;
  return int64(col);
}
std::optional<double> Statement::optReal(int col) const {
  if (isNull(col)) return std::nullopt;
  return real(col);
}
std::optional<std::string> Statement::optText(int col) const {
  if (isNull(col)) return std::nullopt;
  return text(col);
}

// ---- Database ----------------------------------------------------------------------------------

Database::Database(Database&& o) noexcept : m_db(std::exchange(o.m_db, nullptr)), m_path(std::move(o.m_path)) {}

Database& Database::operator=(Database&& o) noexcept {
  if (this != &o) {
    if (m_db) sqlite3_close_v2(m_db);
    m_db = std::exchange(o.m_db, nullptr);
    m_path = std::move(o.m_path);
  }
  return *this;
}

Database::~Database() {
  if (m_db) sqlite3_close_v2(m_db);
}

Expected<Database> Database::open(const std::string& path, OpenMode mode) {
  int flags = SQLITE_OPEN_EXRESCODE;
  switch (mode) {
    case OpenMode::readOnly: flags |= SQLITE_OPEN_READONLY; break;
    case OpenMode::readWrite: flags |= SQLITE_OPEN_READWRITE; break;
    case OpenMode::readWriteCreate: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE; break;
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Database db;
  db.m_db = raw;
  db.m_path = path;
  if (rc != SQLITE_OK) {
    Error e = raw ? db.error(rc, "opening") : sqliteError(rc, path, "opening", nullptr);
    return Unexpected{std::move(e)};
  }
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Expected<void> Database::exec(const std::string& sql) {
  char* msg = nullptr;
  int rc = sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, &msg);
  if (rc != SQLITE_OK) {
    Error e = sqliteError(rc, m_path, "running '" + sql.substr(0, 60) + "'", msg);
    sqlite3_free(msg);
    return Unexpected{std::move(e)};
  }
  return {};
}

Expected<Statement> Database::prepare(const std::string& sql) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(m_db, sql.c_str(), static_cast<int>(sql.size()), &st, nullptr);
  if (rc != SQLITE_OK) return Unexpected{error(rc, "preparing '" + sql.substr(0, 60) + "'")};
  return Statement(this, st);
}

Expected<std::int64_t> Database::queryInt(const std::string& sql) {
  HEARTH_TRY(Statement st, prepare(sql));
  HEARTH_TRY(bool row, st.step());
  if (!row) return make_error(ErrorCode::internal, "project '" + m_path + "': no row from '" + sql + "'");
  return st.int64(0);
}

Expected<std::string> Database::queryText(const std::string& sql) {
  HEARTH_TRY(Statement st, prepare(sql));
  HEARTH_TRY(bool row, st.step());
  if (!row) return make_error(ErrorCode::internal, "project '" + m_path + "': no row from '" + sql + "'");
  return st.text(0);
}

std::int64_t Database::lastInsertRowid() const { return sqlite3_last_insert_rowid(m_db); }
int Database::changes() const { return sqlite3_changes(m_db); }

Error Database::error(int rc, const std::string& context) const {
  return sqliteError(rc, m_path, context, m_db ? sqlite3_errmsg(m_db) : nullptr);
}

// ---- Transaction -------------------------------------------------------------------------------

Expected<Transaction> Transaction::begin(Database& db) {
  HEARTH_TRY_VOID(db.exec("BEGIN IMMEDIATE"));
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (m_db && sqlite3_get_autocommit(m_db->handle()) == 0) {
    (void)m_db->exec("ROLLBACK");
  }
}

Expected<void> Transaction::commit() {
  Database* db = std::exchange(m_db, nullptr);
  if (!db) return make_error(ErrorCode::internal, "commit of a finished transaction");
  auto r = db->exec("COMMIT");
  if (!r && sqlite3_get_autocommit(db->handle()) == 0) (void)db->exec("ROLLBACK");
  return r;
}

}  // namespace hearth::store
