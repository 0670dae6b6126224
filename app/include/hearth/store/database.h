/* A small RAII wrapper over the sqlite3 C API: Database (one connection), Statement (one prepared
 * statement), Transaction (BEGIN IMMEDIATE ... COMMIT, rolled back unless committed).
 *
 * Non-obvious choice: every write transaction is BEGIN IMMEDIATE, never a deferred BEGIN. A deferred
 * transaction that reads (the event log's last hash) and then writes can fail with SQLITE_BUSY_SNAPSHOT
 * half way when another connection committed in between; taking the write lock up front makes the
 * busy_timeout apply and keeps the hash chain strictly sequential across connections and processes.
 *
 * Threading: a Database is one connection and must be used by one thread at a time (DESIGN.md: each
 * connection on the thread that opened it). Statements and Transactions borrow their Database and must
 * not outlive it. Errors: every fallible call returns Expected; SQLite result codes are mapped to
 * hearth::ErrorCode by sqliteError() (disk full -> io with a hint, not-a-database -> format, ...).
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hearth/error.h"

struct sqlite3;
struct sqlite3_stmt;

namespace hearth::store {

// Builds an Error from a SQLite result code: `context` says what was being done ("appending metrics
// to run 3"), `path` names the project file.
Error sqliteError(int rc, const std::string& path, const std::string& context, const char* sqliteMessage);

class Database;

class Statement {
 public:
  Statement() = default;
  Statement(Statement&& o) noexcept;
  Statement& operator=(Statement&& o) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Binders take 1-based parameter indexes, as sqlite3_bind_* does. They return *this for chaining;
  // a bind failure is remembered and reported by the next step().
  Statement& bind(int index, std::int64_t v);
  Statement& bind(int index, int v) { return bind(index, static_cast<std::int64_t>(v)); }
  Statement& bind(int index, double v);
  Statement& bind(int index, std::string_view v);  // copied (SQLITE_TRANSIENT)
  Statement& bind(int index, const char* v) { return bind(index, std::string_view(v)); }
  Statement& bind(int index, const std::string& v) { return bind(index, std::string_view(v)); }
  Statement& bindNull(int index);
  Statement& bind(int index, const std::optional<std::int64_t>& v);
  Statement& bind(int index, const std::optional<double>& v);
  Statement& bind(int index, const std::optional<std::string>& v);

  // Advances: true when a row is ready, false when done.
  Expected<bool> step();
  // Runs to completion, ignoring rows.
  Expected<void> exec();
  // Resets for re-use with new bindings (bindings are cleared).
  void reset();

  bool isNull(int col) const;
  std::int64_t int64(int col) const;
  double real(int col) const;
  std::string text(int col) const;
  std::optional<std::int64_t> optInt64(int col) const;
  std::optional<double> optReal(int col) const;
  std::optional<std::string> optText(int col) const;

  sqlite3_stmt* handle() const { return m_stmt; }

 private:
  friend class Database;
  Statement(Database* db, sqlite3_stmt* stmt) : m_db(db), m_stmt(stmt) {}
  Database* m_db = nullptr;
  sqlite3_stmt* m_stmt = nullptr;
  int m_bindError = 0;
};

class Database {
 public:
  enum class OpenMode { readOnly, readWrite, readWriteCreate };

  Database() = default;
  Database(Database&& o) noexcept;
  Database& operator=(Database&& o) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  static Expected<Database> open(const std::string& path, OpenMode mode);

  bool isOpen() const { return m_db != nullptr; }
  const std::string& path() const { return m_path; }
  sqlite3* handle() const { return m_db; }

  // Runs one or more statements with no parameters and no rows wanted.
  Expected<void> exec(const std::string& sql);
  Expected<Statement> prepare(const std::string& sql);
  // First column of the first row of a one-row query as an integer (e.g. PRAGMA user_version).
  Expected<std::int64_t> queryInt(const std::string& sql);
  Expected<std::string> queryText(const std::string& sql);
  std::int64_t lastInsertRowid() const;
  int changes() const;

  // The Error for the connection's latest failure, with `rc` and a context phrase.
  Error error(int rc, const std::string& context) const;

 private:
  sqlite3* m_db = nullptr;
  std::string m_path;
};

// BEGIN IMMEDIATE on construction (via begin()); ROLLBACK in the destructor unless commit() succeeded.
class Transaction {
 public:
  static Expected<Transaction> begin(Database& db);
  Transaction(Transaction&& o) noexcept : m_db(o.m_db) { o.m_db = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();
  Expected<void> commit();

 private:
  explicit Transaction(Database* db) : m_db(db) {}
  Database* m_db = nullptr;
};

}  // namespace hearth::store
