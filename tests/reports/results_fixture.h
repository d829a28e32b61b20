// A hand-made results database for the reports tests: the harness's table layout (runs,
// experiments, metrics, evals, env) created with raw SQL in a fresh temporary folder, so every number
// a test expects is one it inserted itself. Also `Near`, Catch's floating-point Approx class: in
// Catch2 v2 the global `Approx` of tests/support/catch.h names the vector matcher function.
#pragma once

#include "tests/support/catch.h"

#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace ablate::test {

#if ABLATE_CATCH2_V3
using Near = Catch::Approx;
#else
using Near = Catch::Detail::Approx;
#endif

// The message of the exception `f` throws, or "" when it throws none (Catch2 v2 and v3 spell
// their string matchers differently).
template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

inline std::filesystem::path fresh_temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  const auto dir = std::filesystem::temp_directory_path() /
                   ("ablate_reports_" + tag + "_" + std::to_string(::getpid()) + "_" +
                    std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

class ResultsFixture {
 public:
  explicit ResultsFixture(const std::string& tag) : dir_(fresh_temp_dir(tag)), path_((dir_ / "results.db").string()) {
    if (sqlite3_open(path_.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("open " + path_);
    // Test data need no durability: without fsync per insert the fixtures fill in milliseconds.
    exec("PRAGMA synchronous=OFF; PRAGMA journal_mode=MEMORY;");
    exec(R"sql(
      CREATE TABLE runs(id TEXT PRIMARY KEY, experiment TEXT NOT NULL, config_hash TEXT NOT NULL,
        config_json TEXT NOT NULL, axes_json TEXT NOT NULL DEFAULT '{}', seed INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL DEFAULT 0, started_at REAL, finished_at REAL, host TEXT, gpu TEXT,
        exit_reason TEXT, code_version TEXT, diverged_step INTEGER, last_step INTEGER);
      CREATE TABLE experiments(name TEXT NOT NULL, run_id TEXT NOT NULL,
        axes_json TEXT NOT NULL DEFAULT '{}', added_at REAL NOT NULL DEFAULT 0,
        PRIMARY KEY(name, run_id));
      CREATE TABLE metrics(run_id TEXT NOT NULL, step INTEGER NOT NULL, epoch REAL,
        name TEXT NOT NULL, value REAL, PRIMARY KEY(run_id, name, step)) WITHOUT ROWID;
      CREATE TABLE evals(run_id TEXT NOT NULL, protocol TEXT NOT NULL, dataset TEXT NOT NULL,
        scale REAL NOT NULL, metric TEXT NOT NULL, value REAL,
        PRIMARY KEY(run_id, protocol, dataset, scale, metric)) WITHOUT ROWID;
      CREATE TABLE env(run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT,
        PRIMARY KEY(run_id, key)) WITHOUT ROWID;)sql");
  }
  ~ResultsFixture() {
    sqlite3_close(db_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  ResultsFixture(const ResultsFixture&) = delete;
  ResultsFixture& operator=(const ResultsFixture&) = delete;

  const std::string& path() const { return path_; }
  const std::filesystem::path& dir() const { return dir_; }

  // A run whose config is its axes plus `extra_config` (so seedless configs of equal axes agree).
  void run(const std::string& id, const std::string& experiment, nlohmann::json axes,
           const std::string& status = "done", const std::string& exit_reason = "",
           std::optional<long> diverged_step = std::nullopt,
           const nlohmann::json& extra_config = nlohmann::json::object()) {
    nlohmann::json config = extra_config;
    for (auto it = axes.begin(); it != axes.end(); ++it) config[it.key()] = it.value();
    const long seed = axes.value("seed", 0L);
    exec("INSERT INTO runs(id, experiment, config_hash, config_json, axes_json, seed, status, "
         "attempts, exit_reason, diverged_step) VALUES(" +
         q(id) + "," + q(experiment) + "," + q("h-" + id) + "," + q(config.dump()) + "," +
         q(axes.dump()) + "," + std::to_string(seed) + "," + q(status) + ",1," +
         (exit_reason.empty() ? "NULL" : q(exit_reason)) + "," +
         (diverged_step ? std::to_string(*diverged_step) : "NULL") + ")");
    exec("INSERT INTO experiments(name, run_id, axes_json) VALUES(" + q(experiment) + "," + q(id) +
         "," + q(axes.dump()) + ")");
  }
  void metric(const std::string& run, long step, const std::string& name, double value) {
    exec("INSERT INTO metrics(run_id, step, name, value) VALUES(" + q(run) + "," +
         std::to_string(step) + "," + q(name) + "," + num(value) + ")");
  }
  void eval(const std::string& run, const std::string& protocol, const std::string& dataset,
            double scale, const std::string& metric, double value) {
    exec("INSERT INTO evals VALUES(" + q(run) + "," + q(protocol) + "," + q(dataset) + "," +
         num(scale) + "," + q(metric) + "," + num(value) + ")");
  }
  void env(const std::string& run, const std::string& key, const std::string& value) {
    exec("INSERT INTO env VALUES(" + q(run) + "," + q(key) + "," + q(value) + ")");
  }
  void finished_at(const std::string& run, double t) {
    exec("UPDATE runs SET finished_at = " + num(t) + " WHERE id = " + q(run));
  }
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string msg = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(msg + " in: " + sql);
    }
  }

 private:
  static std::string q(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
  }
  static std::string num(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
  }
  std::filesystem::path dir_;
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace ablate::test
