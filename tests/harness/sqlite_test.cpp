// The SQLite layer: values round-trip through binding and columns (NaN as NULL, optionals,
// strings with NUL bytes), a cached statement is reset after use, errors name the file and the
// operation, a read-only connection cannot write, and a second writer sees SQLITE_BUSY.
#include <sqlite3.h>

#include <cmath>
#include <limits>

#include "harness/check.h"
#include "harness/sqlite.h"
#include "tests/harness/run_fixtures.h"
#include "tests/support/catch.h"

using namespace ablate;
using ablate::test::TempDir;

namespace {
constexpr std::chrono::milliseconds kNoWait{0};
}

TEST_CASE("sqlite: values round-trip through bind and the column readers", "[sqlite]") {
  TempDir tmp("sqlite");
  SqliteDb db(tmp / "t.sqlite", SqliteDb::Mode::create, kNoWait);
  db.exec("CREATE TABLE t(k INTEGER PRIMARY KEY, s TEXT, i INTEGER, r REAL)", "creating t");
  const std::string with_nul("a\0b", 3);
  db.query("INSERT INTO t VALUES(?, ?, ?, ?)", "inserting")
      .bind(1, with_nul, int64_t{1} << 40, std::numeric_limits<double>::quiet_NaN())
      .run();
  CHECK(db.changes() == 1);
  db.query("INSERT INTO t VALUES(?, ?, ?, ?)", "inserting")
      .bind(2, std::nullopt, std::optional<int64_t>(), std::optional<double>(2.5))
      .run();
  {
    SqlQuery q = db.query("SELECT s, i, r, r IS NULL FROM t WHERE k=?", "reading");
    REQUIRE(q.bind(1).next());
    CHECK(q.text(0) == with_nul);
    CHECK(q.i64(1) == int64_t{1} << 40);
    CHECK(std::isnan(q.real(2)));
    CHECK(q.i64(3) == 1);  // NaN was stored as NULL
    CHECK_FALSE(q.opt_real(2).has_value());
    CHECK_FALSE(q.next());
  }
  // The same statement again, from the cache: reset, bindings cleared.
  SqlQuery q = db.query("SELECT s, i, r, r IS NULL FROM t WHERE k=?", "reading");
  REQUIRE(q.bind(2).next());
  CHECK(q.is_null(0));
  CHECK(q.text(0).empty());
  CHECK_FALSE(q.opt_i64(1).has_value());
  CHECK(q.opt_real(2) == 2.5);
}

TEST_CASE("sqlite: errors name the file and the operation; read-only cannot write; busy is told apart",
          "[sqlite]") {
  TempDir tmp("sqlite");
  const auto file = tmp / "t.sqlite";
  CHECK_THROWS_AS(SqliteDb(file, SqliteDb::Mode::read_write, kNoWait), StoreError);  // missing
  SqliteDb db(file, SqliteDb::Mode::create, kNoWait);
  db.exec("CREATE TABLE t(k INTEGER PRIMARY KEY)", "creating t");
  try {
    db.query("SELECT nope FROM t", "reading the missing column");
    FAIL("no error");
  } catch (const StoreError& e) {
    const std::string what = e.what();
    CHECK(what.find("reading the missing column: preparing SQL: SELECT nope FROM t") == 0);
    CHECK(what.find("no such column: nope") != std::string::npos);
    CHECK(what.find(file.string()) != std::string::npos);
  }
  SqliteDb reader(file, SqliteDb::Mode::read_only, kNoWait);
  try {
    reader.query("INSERT INTO t VALUES(1)", "writing").run();
    FAIL("no error");
  } catch (const StoreError& e) {
    CHECK(e.code == SQLITE_READONLY);
  }
  // Another connection holding the write lock: BEGIN IMMEDIATE is busy, not an error to report.
  db.exec("BEGIN IMMEDIATE", "locking");
  SqliteDb other(file, SqliteDb::Mode::read_write, kNoWait);
  const int rc = other.exec_rc("BEGIN IMMEDIATE");
  CHECK(sqlite_busy(rc));
  CHECK_FALSE(sqlite_busy(SQLITE_READONLY));
  CHECK(db.in_transaction());
  CHECK_FALSE(other.in_transaction());
  db.exec("COMMIT", "unlocking");
}
