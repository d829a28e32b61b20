// The SQLite layer (see sqlite.h): connection, statement cache, binding and reading of columns.
#include "harness/sqlite.h"

#include <sqlite3.h>

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "harness/check.h"

namespace ablate {

// ---- queries ----

SqlQuery::~SqlQuery() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool SqlQuery::next() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_.fail(rc, what_);
}

int SqlQuery::run() {
  while (next()) {
  }
  return db_.changes();
}

bool SqlQuery::is_null(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }

std::string SqlQuery::text(int c) const {
  const unsigned char* t = sqlite3_column_text(stmt_, c);
  return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(stmt_, c)) : "";
}

int64_t SqlQuery::i64(int c) const { return sqlite3_column_int64(stmt_, c); }

double SqlQuery::real(int c) const {
  return is_null(c) ? std::numeric_limits<double>::quiet_NaN() : sqlite3_column_double(stmt_, c);
}

std::optional<int64_t> SqlQuery::opt_i64(int c) const { return is_null(c) ? std::nullopt : std::optional(i64(c)); }

std::optional<double> SqlQuery::opt_real(int c) const { return is_null(c) ? std::nullopt : std::optional(real(c)); }

void SqlQuery::check(int rc) const {
  if (rc != SQLITE_OK) db_.fail(rc, what_);
}

void SqlQuery::bind_one(int i, std::string_view v) {
  check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
}

void SqlQuery::bind_one(int i, int64_t v) { check(sqlite3_bind_int64(stmt_, i, v)); }

void SqlQuery::bind_one(int i, double v) {
  check(std::isnan(v) ? sqlite3_bind_null(stmt_, i) : sqlite3_bind_double(stmt_, i, v));
}

void SqlQuery::bind_one(int i, std::nullopt_t) { check(sqlite3_bind_null(stmt_, i)); }

// ---- connection ----

SqliteDb::SqliteDb(std::filesystem::path path, Mode mode, std::chrono::milliseconds busy_timeout)
    : path_(std::move(path)) {
  const int flags = SQLITE_OPEN_NOMUTEX | (mode == Mode::read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
                    (mode == Mode::create ? SQLITE_OPEN_CREATE : 0);
  const int rc = sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    try {
      fail(rc, "opening the results database");
    } catch (...) {
      sqlite3_close_v2(db_);
      throw;
    }
  }
  sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout.count()));
}

SqliteDb::~SqliteDb() {
  for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);  // finalize before closing
  sqlite3_close_v2(db_);
}

SqlQuery SqliteDb::query(std::string_view sql, const char* what) const {
  auto it = stmts_.find(std::string(sql));
  if (it == stmts_.end()) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                      &stmt, nullptr);
    if (rc != SQLITE_OK) fail(rc, fmt::format("{}: preparing SQL: {}", what, sql));
    it = stmts_.emplace(std::string(sql), stmt).first;
  }
  return SqlQuery(*this, it->second, what);
}

int SqliteDb::exec_rc(const char* sql) { return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }

void SqliteDb::exec(const char* sql, std::string_view what) {
  const int rc = exec_rc(sql);
  if (rc != SQLITE_OK) fail(rc, what);
}

bool SqliteDb::in_transaction() const { return !sqlite3_get_autocommit(db_); }

int SqliteDb::changes() const { return sqlite3_changes(db_); }

void SqliteDb::fail(int rc, std::string_view what) const {
  throw StoreError(rc, fmt::format("{}: {} (SQLite error {}: {}) in {}", what, db_ ? sqlite3_errmsg(db_) : "cannot open",
                                   rc, sqlite3_errstr(rc), path_.string()));
}

bool sqlite_busy(int rc) { return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED; }

}  // namespace ablate
