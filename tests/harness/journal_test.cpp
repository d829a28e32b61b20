// Journal: the line format, ingestion of every record type, idempotent re-ingestion, torn last
// lines (written by hand and produced by kill -9 of a writing process), and finish lines deciding
// a run's status only while it is running or lost.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <random>
#include <thread>

#include "harness/env_info.h"
#include "harness/journal.h"
#include "harness/store.h"
#include "tests/harness/run_fixtures.h"
#include "tests/support/catch.h"

using namespace ablate;
using ablate::test::TempDir;

namespace {

std::vector<std::string> read_lines(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct RunFixture {
  TempDir tmp{"journal"};
  Store store{tmp / "db.sqlite"};
  PlannedRun run = test::planned_run(0);
  std::filesystem::path dir = tmp / "run";
  RunFixture() { store.upsert_planned("e", {run}); }
  int claim() {
    ClaimInfo who;
    who.host = host_name();
    who.runner_pid = ::getpid();
    return *store.claim_run(run.id, {"queued", "lost", "failed"}, who);
  }
};

}  // namespace

TEST_CASE("journal: one JSON object per line with consecutive sequence numbers", "[journal]") {
  TempDir tmp("journal");
  {
    JournalWriter w(tmp.path());
    w.metric(10, 0.25, "loss", 0.5);
    w.metric(20, 0.5, "loss", std::nan(""));
    w.progress(20, 80, HUGE_VAL, 123.0);
    w.finish("done", "", 80);
  }
  std::vector<std::string> lines = read_lines(journal_path(tmp.path()));
  REQUIRE(lines.size() == 5);  // open + 4
  for (size_t i = 0; i < lines.size(); ++i) {
    nlohmann::json j = nlohmann::json::parse(lines[i]);
    CHECK(j["seq"] == i + 1);
    CHECK(j["t"].get<double>() > 1.6e9);
  }
  CHECK(lines[0].find(R"("type":"open")") != std::string::npos);
  CHECK(nlohmann::json::parse(lines[0])["pid"] == ::getpid());
  CHECK(lines[1].find(R"("step":10,"epoch":0.25,"name":"loss","value":0.5)") != std::string::npos);
  CHECK(nlohmann::json::parse(lines[2])["value"] == "nan");
  CHECK(nlohmann::json::parse(lines[3])["loss"] == "inf");
  CHECK(nlohmann::json::parse(lines[4])["status"] == "done");
  // A second writer continues the numbering.
  { JournalWriter w(tmp.path()); }
  CHECK(nlohmann::json::parse(read_lines(journal_path(tmp.path())).back())["seq"] == 6);
  CHECK_THROWS_AS(JournalWriter(tmp.path()).finish("great", "", 1), InternalError);
}

TEST_CASE("journal: ingestion applies every record type once, in one pass", "[journal]") {
  RunFixture f;
  const int attempt = f.claim();
  {
    JournalWriter w(f.dir);
    w.env("torch", "2.11.0");
    for (int s = 1; s <= 5; ++s) w.metric(s * 10, s * 0.1, "loss", 1.0 / s);
    w.eval("knn", "eurosat", 0.5, "top1", 0.625);
    w.artifact("ckpt", "ckpt/last.pt", "ab12");
    w.progress(50, 100, 0.2, 900.0);
  }
  IngestResult r = ingest_journal(f.store, f.run.id, f.dir);
  CHECK(r.lines == 10);
  CHECK(r.bad_lines == 0);
  REQUIRE(r.progress.has_value());
  CHECK(r.progress->images_per_s == 900.0);
  CHECK_FALSE(r.finish.has_value());
  std::vector<MetricRow> m = f.store.metrics(f.run.id);
  REQUIRE(m.size() == 5);
  CHECK(m[2].step == 30);
  CHECK(m[2].epoch == 3 * 0.1);  // shortest round-trip JSON: bit-exact
  CHECK(m[2].value == 1.0 / 3);
  REQUIRE(f.store.evals(f.run.id).size() == 1);
  CHECK(f.store.evals(f.run.id)[0].scale == 0.5);
  CHECK(f.store.env(f.run.id).at("torch") == "2.11.0");
  CHECK(f.store.artifacts(f.run.id).at(0).sha256 == "ab12");
  RunRow row = *f.store.run(f.run.id);
  CHECK(row.last_step == 50);
  CHECK(row.total_steps == 100);
  CHECK(row.worker_pid == ::getpid());
  CHECK(row.status == "running");
  CHECK(f.store.journal_offset(f.run.id).offset ==
        static_cast<int64_t>(std::filesystem::file_size(journal_path(f.dir))));
  CHECK(f.store.journal_offset(f.run.id).seq == 10);

  // Nothing new: nothing applied. Rewinding the offset re-applies lines without duplicates.
  CHECK(ingest_journal(f.store, f.run.id, f.dir).lines == 0);
  f.store.set_journal_offset(f.run.id, journal_path(f.dir).string(), {0, 0});
  CHECK(ingest_journal(f.store, f.run.id, f.dir).lines == 10);
  CHECK(f.store.metrics(f.run.id).size() == 5);

  // The finish line ends the attempt.
  { JournalWriter(f.dir).finish("diverged", "grad norm 1e9 > 20x median", 60); }
  r = ingest_journal(f.store, f.run.id, f.dir);
  CHECK(r.finish_changed_status);
  row = *f.store.run(f.run.id);
  CHECK(row.status == "diverged");
  CHECK(row.diverged_step == 60);
  CHECK(row.exit_reason == "grad norm 1e9 > 20x median");
  CHECK_FALSE(f.store.finish(f.run.id, attempt, "failed", "late exit"));  // journal won
  CHECK(ingest_journal(f.store, f.run.id, std::filesystem::path(f.tmp / "no-such-dir")).lines == 0);
}

TEST_CASE("journal: a torn last line is left for later and overwritten by the next writer", "[journal]") {
  RunFixture f;
  f.claim();
  { JournalWriter w(f.dir); w.metric(1, 0, "loss", 1.0); }
  const auto path = journal_path(f.dir);
  const std::string good = read_all(path);
  {
    std::ofstream out(path, std::ios::app | std::ios::binary);
    out << R"({"seq":3,"t":1,"type":"metric","step":2,"epoch":0,"na)";  // killed mid-line
  }
  IngestResult r = ingest_journal(f.store, f.run.id, f.dir);
  CHECK(r.lines == 2);
  CHECK(r.bad_lines == 0);
  CHECK(f.store.journal_offset(f.run.id).offset == static_cast<int64_t>(good.size()));

  {
    JournalWriter w(f.dir);  // truncates the fragment, continues at seq 3
    w.metric(2, 0, "loss", 0.5);
  }
  std::vector<std::string> lines = read_lines(path);
  REQUIRE(lines.size() == 4);
  CHECK(nlohmann::json::parse(lines[2])["seq"] == 3);
  CHECK(nlohmann::json::parse(lines[3])["step"] == 2);
  r = ingest_journal(f.store, f.run.id, f.dir);
  CHECK(r.lines == 2);
  CHECK(r.bad_lines == 0);
  CHECK(f.store.metrics(f.run.id).size() == 2);
}

TEST_CASE("journal: malformed complete lines are counted and skipped", "[journal]") {
  RunFixture f;
  f.claim();
  {
    JournalWriter w(f.dir);
    w.metric(1, 0, "loss", 1.0);
  }
  {
    std::ofstream out(journal_path(f.dir), std::ios::app);
    out << "not json at all\n";
    out << R"({"seq":3,"t":1,"type":"metric","step":"two"})" << "\n";  // wrong field types
    out << R"({"seq":4,"t":1,"type":"hologram"})" << "\n";             // unknown record type
  }
  { JournalWriter(f.dir).metric(5, 0, "loss", 0.25); }
  IngestResult r = ingest_journal(f.store, f.run.id, f.dir);
  CHECK(r.bad_lines == 3);
  CHECK(r.lines == 4);  // open, metric, open, metric
  CHECK(f.store.metrics(f.run.id).size() == 2);
}

TEST_CASE("journal: a finish line applies to running or lost runs only", "[journal]") {
  RunFixture f;
  { JournalWriter(f.dir).finish("done", "", 10); }
  // Queued (never claimed): the line is recorded as read, the status is not touched.
  IngestResult r = ingest_journal(f.store, f.run.id, f.dir);
  CHECK(r.finish.has_value());
  CHECK_FALSE(r.finish_changed_status);
  CHECK(f.store.run(f.run.id)->status == "queued");

  // Lost (runner killed after the worker finished): the journal decides.
  RunFixture g;
  const int attempt = g.claim();
  REQUIRE(g.store.finish(g.run.id, attempt, "lost", "runner gone"));
  { JournalWriter(g.dir).finish("done", "", 10); }
  r = ingest_journal(g.store, g.run.id, g.dir);
  CHECK(r.finish_changed_status);
  CHECK(g.store.run(g.run.id)->status == "done");
}

TEST_CASE("journal: kill -9 of a writing process never corrupts what ingestion sees", "[journal]") {
  std::mt19937 rng(1234);
  for (int round = 0; round < 4; ++round) {
    RunFixture f;
    f.claim();
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      JournalWriter w(f.dir);
      const std::string long_name(300, 'x');  // longer lines: a better chance to tear one
      for (int64_t s = 1;; ++s) w.metric(s, 0, long_name, static_cast<double>(s));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 60));
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);

    IngestResult first = ingest_journal(f.store, f.run.id, f.dir);
    CHECK(first.bad_lines == 0);
    REQUIRE(first.lines > 1);
    const int64_t logged = first.lines - 1;  // minus the open line
    { JournalWriter(f.dir).metric(logged + 1, 0, "after", 1.0); }  // resumes after any fragment
    IngestResult second = ingest_journal(f.store, f.run.id, f.dir);
    CHECK(second.bad_lines == 0);
    CHECK(second.lines == 2);
    // Steps 1..logged arrived, each once, each with its own value.
    std::vector<MetricRow> m = f.store.metrics(f.run.id);
    REQUIRE(static_cast<int64_t>(m.size()) == logged + 1);
    for (int64_t s = 1; s <= logged; ++s) {
      const MetricRow& row = m[static_cast<size_t>(s)];  // "after" sorts first
      CHECK(row.step == s);
      CHECK(row.value == static_cast<double>(s));
    }
  }
}
