// The one SQLite layer of the results database, used by its two clients: the store
// (harness/store.h: lifecycle writes and queries) and the report reader (reports/results_db.h:
// read-only queries of any copy of a database). A connection opens with a busy timeout, caches
// each prepared statement by its SQL text, and names its file and the operation in every error
// (StoreError). A query binds its parameters in order, steps through rows, and resets its
// statement when it goes out of scope, so no read transaction outlives it (it would pin an old WAL
// snapshot while a runner writes).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

struct sqlite3;
struct sqlite3_stmt;

namespace ablate {

class SqliteDb;

// A cached statement in use (SqliteDb::query). Columns count from 0, parameters from 1.
class SqlQuery {
 public:
  SqlQuery(const SqliteDb& db, sqlite3_stmt* stmt, const char* what) : db_(db), stmt_(stmt), what_(what) {}
  ~SqlQuery();
  SqlQuery(const SqlQuery&) = delete;
  SqlQuery& operator=(const SqlQuery&) = delete;

  // Binds parameters 1, 2, ... to `args` (strings, integers, doubles, nullopt, optionals).
  template <class... A>
  SqlQuery& bind(const A&... args) {
    int i = 0;
    (bind_one(++i, args), ...);
    return *this;
  }
  // Steps once: true when a row is available.
  bool next();
  // Steps to completion; returns the number of rows changed.
  int run();

  bool is_null(int c) const;
  std::string text(int c) const;  // "" for NULL
  int64_t i64(int c) const;
  double real(int c) const;  // NaN for NULL
  std::optional<int64_t> opt_i64(int c) const;
  std::optional<double> opt_real(int c) const;

 private:
  void check(int rc) const;
  void bind_one(int i, std::string_view v);
  void bind_one(int i, const std::string& v) { bind_one(i, std::string_view(v)); }
  void bind_one(int i, const char* v) { bind_one(i, std::string_view(v)); }
  void bind_one(int i, int v) { bind_one(i, static_cast<int64_t>(v)); }
  void bind_one(int i, int64_t v);
  void bind_one(int i, double v);  // NaN has no SQLite representation: stored as NULL
  void bind_one(int i, std::nullopt_t);
  template <class T>
  void bind_one(int i, const std::optional<T>& v) {
    if (v) bind_one(i, *v);
    else bind_one(i, std::nullopt);
  }

  const SqliteDb& db_;
  sqlite3_stmt* stmt_;
  const char* what_;
};

class SqliteDb {
 public:
  enum class Mode {
    create,      // read-write, the file created when missing
    read_write,  // read-write, the file must exist
    read_only,
  };
  // Opens `path`; StoreError naming it when that fails. busy_timeout: how long a statement waits
  // for another connection's write lock before failing with SQLITE_BUSY.
  SqliteDb(std::filesystem::path path, Mode mode, std::chrono::milliseconds busy_timeout);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // The cached statement for `sql`, ready to bind; `what` (a literal) names it in errors. const:
  // preparing is caching, not a change of the database.
  SqlQuery query(std::string_view sql, const char* what) const;
  // Runs SQL without result rows (pragmas, schema, BEGIN/COMMIT); returns SQLite's result code.
  int exec_rc(const char* sql);
  // exec_rc, failing with StoreError unless it succeeds.
  void exec(const char* sql, std::string_view what);
  // Whether a transaction is open on this connection.
  bool in_transaction() const;
  // Rows changed by the latest statement.
  int changes() const;

  // StoreError: "<what>: <SQLite's message> (SQLite error <rc>: <text>) in <path>".
  [[noreturn]] void fail(int rc, std::string_view what) const;

 private:
  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
  mutable std::unordered_map<std::string, sqlite3_stmt*> stmts_;  // prepared once per SQL text
};

// Whether a result code means another connection holds the lock (SQLITE_BUSY / SQLITE_LOCKED and
// their extended codes): worth retrying.
bool sqlite_busy(int rc);

}  // namespace ablate
