// Local runner, driven with a fake worker: a bash script that speaks the worker protocol (reads
// run_dir/config.json, appends journal lines, checkpoints every 2 steps and resumes from the
// checkpoint). Its behaviour is chosen by the run's seed: 0 finishes, 1 exits with code 3,
// 2 kills itself with SIGKILL, 3 reports divergence, 4 also journals its CUDA_VISIBLE_DEVICES.
// Data-parallel runs (resources.gpus > 1): every rank records its rank environment and process
// group in rank<i>.seen; rank 0 trains as above while the others sleep and exit 0 (5), or kill
// themselves with SIGKILL after announcing it, whereupon rank 0 finishes the run as failed the way
// the worker does after a failed collective (6), or hangs (7).
// Covers outcomes and exit reasons, --rerun, GPU assignment, data-parallel launches, and SIGKILL of
// the runner at random moments followed by resumption: every run done once, every step's metric
// present once.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "harness/check.h"
#include "harness/env_info.h"
#include "harness/journal.h"
#include "harness/lifecycle.h"
#include "harness/process.h"
#include "harness/runner.h"
#include "harness/store.h"
#include "tests/harness/run_fixtures.h"
#include "tests/support/catch.h"

using namespace ablate;
using ablate::test::TempDir;

namespace {

constexpr int kSteps = 6;

// Writes the fake worker into `dir` and returns its path. step_sleep: seconds per step.
std::string write_fake_worker(const std::filesystem::path& dir, double step_sleep) {
  const auto path = dir / "fake_worker.sh";
  std::ofstream out(path);
  out << R"(#!/bin/bash
# Fake ablate worker: `fake_worker.sh worker --run-dir DIR`.
set -u
dir="$3"; j="$dir/journal.jsonl"
seed=$(grep -o '"seed":[0-9]*' "$dir/config.json" | head -1 | cut -d: -f2)
mode=$((seed % 10))
steps=)" << kSteps << R"(
rank=${RANK:-0}
if [ "$mode" -ge 5 ]; then
  read -r -a st < /proc/$$/stat
  echo "${RANK:-} ${WORLD_SIZE:-} ${LOCAL_RANK:-} ${MASTER_ADDR:-} ${MASTER_PORT:-} ${ABLATE_DIST_TIMEOUT_S:-}" \
       "${CUDA_VISIBLE_DEVICES:-none} ${st[4]} $$" > "$dir/rank$rank.seen"
  if [ "$rank" != 0 ]; then
    sleep )" << 2 * step_sleep << R"(
    if [ "$mode" -ge 6 ]; then echo "rank $rank: dying" >&2; touch "$dir/rank$rank.dying"; kill -9 $$; fi
    exit 0
  fi
fi
seq=0; [ -f "$j" ] && seq=$(grep -c '' "$j")
emit() { seq=$((seq+1)); printf '{"seq":%d,"t":0,"type":%s}\n' "$seq" "$1" >> "$j"; }
emit '"open","pid":'$$',"host":"fake"'
[ "$mode" = 4 ] && emit '"env","key":"cuda_visible_devices","value":"'"${CUDA_VISIBLE_DEVICES:-none}"'"'
start=1; [ -f "$dir/ckpt" ] && start=$(( $(cat "$dir/ckpt") + 1 ))
for ((s = start; s <= steps; s++)); do
  sleep )" << step_sleep << R"(
  emit '"metric","step":'$s',"epoch":0,"name":"loss","value":'$s'.5'
  emit '"progress","step":'$s',"total_steps":'$steps',"loss":1,"images_per_s":100'
  if [ $((s % 2)) = 0 ]; then echo $s > "$dir/ckpt.tmp"; mv "$dir/ckpt.tmp" "$dir/ckpt"; fi
  if [ "$mode" = 1 ] && [ $s = 2 ]; then echo "fake failure at step 2" >&2; exit 3; fi
  if [ "$mode" = 2 ] && [ $s = 2 ]; then kill -9 $$; fi
  if [ "$mode" = 6 ] && [ -f "$dir/rank1.dying" ]; then
    emit '"finish","status":"failed","exit_reason":"data-parallel rank 0 of 2: all-reduce failed: peer closed","step":'$s
    exit 1
  fi
  if [ "$mode" = 7 ] && [ -f "$dir/rank1.dying" ]; then while :; do sleep 0.05; done; fi
  if [ "$mode" = 3 ] && [ $s = 3 ]; then
    emit '"finish","status":"diverged","exit_reason":"loss is nan","step":3'; exit 0
  fi
done
emit '"finish","status":"done","exit_reason":"","step":'$steps
)";
  out.close();
  ::chmod(path.c_str(), 0755);
  return path.string();
}

RunnerOptions options(const TempDir& tmp, double step_sleep, int jobs) {
  RunnerOptions o;
  o.db = (tmp / "db.sqlite").string();
  o.jobs = jobs;
  o.lease_s = 60;
  o.ablate_exe = write_fake_worker(tmp.path(), step_sleep);
  return o;
}

int count_finish_lines(const std::filesystem::path& run_dir) {
  std::ifstream in(journal_path(run_dir));
  int n = 0;
  for (std::string l; std::getline(in, l);) n += l.find(R"("type":"finish")") != std::string::npos;
  return n;
}

// Metric "loss" was logged at every step 1..kSteps with value step + 0.5.
void check_all_steps(Store& store, const std::string& id) {
  std::vector<MetricRow> m = store.metrics(id);
  REQUIRE(m.size() == kSteps);
  for (int s = 1; s <= kSteps; ++s) {
    CHECK(m[s - 1].step == s);
    CHECK(m[s - 1].value == s + 0.5);
  }
}

}  // namespace

TEST_CASE("runner: outcomes and exit reasons are recorded per run", "[runner]") {
  TempDir tmp("runner");
  RunnerOptions o = options(tmp, 0.02, 4);
  Experiment e = test::experiment_of("outcomes", {0, 1, 2, 3});
  CHECK(run_experiment(e, o) == 1);  // failures present

  Store store(o.db);
  RunRow done = *store.run(e.runs[0].id), exit3 = *store.run(e.runs[1].id),
         killed = *store.run(e.runs[2].id), diverged = *store.run(e.runs[3].id);
  CHECK(done.status == "done");
  CHECK(done.attempts == 1);
  CHECK(done.last_step == kSteps);
  CHECK(done.total_steps == kSteps);
  CHECK(done.code_version == code_version(build_source_dir()));
  check_all_steps(store, done.id);
  CHECK(exit3.status == "failed");
  CHECK(exit3.exit_reason.rfind("exit code 3", 0) == 0);
  CHECK(exit3.exit_reason.find("fake failure at step 2") != std::string::npos);  // log tail
  CHECK(killed.status == "failed");
  CHECK(killed.exit_reason.rfind("killed by signal 9 (SIGKILL)", 0) == 0);
  CHECK(killed.exit_reason.find("OOM") != std::string::npos);
  CHECK(diverged.status == "diverged");
  CHECK(diverged.diverged_step == 3);
  CHECK(diverged.exit_reason == "loss is nan");

  // The worker got the canonical config, written before exec.
  const auto dir = std::filesystem::path(done.run_dir);
  CHECK(dir == std::filesystem::absolute(tmp / "runs" / done.id));
  std::ifstream cfg(dir / "config.json");
  std::string text((std::istreambuf_iterator<char>(cfg)), std::istreambuf_iterator<char>());
  CHECK(text == canonical_dump(config_to_json(e.runs[0].config)) + "\n");
  CHECK(config_from_json(nlohmann::json::parse(text)).seed == 0);
  std::vector<std::string> ids;
  for (const PlannedRun& r : e.runs) ids.push_back(r.id);
  CHECK(store.status_counts(ids) == std::map<std::string, int>{{"done", 1}, {"failed", 2}, {"diverged", 1},
                                                               {"running", 0}, {"queued", 0}, {"lost", 0}});
}

TEST_CASE("runner: finished runs are skipped; --rerun failed resumes, --rerun all starts afresh",
          "[runner]") {
  TempDir tmp("runner");
  RunnerOptions o = options(tmp, 0.01, 2);
  Experiment e = test::experiment_of("rerun", {0, 1});
  CHECK(run_experiment(e, o) == 1);
  CHECK(run_experiment(e, o) == 1);  // nothing to run: attempts unchanged
  {
    Store store(o.db);
    CHECK(store.run(e.runs[0].id)->attempts == 1);
    CHECK(store.run(e.runs[1].id)->attempts == 1);
  }
  o.rerun = "failed";
  CHECK(run_experiment(e, o) == 0);
  {
    Store store(o.db);
    CHECK(store.run(e.runs[0].id)->attempts == 1);
    RunRow resumed = *store.run(e.runs[1].id);
    CHECK(resumed.attempts == 2);
    // The fake fails on reaching step 2; resumed from its step-2 checkpoint it finishes, and the
    // metrics of both attempts together cover every step.
    CHECK(resumed.status == "done");
    check_all_steps(store, resumed.id);
  }
  o.rerun = "all";
  CHECK(run_experiment(e, o) == 1);
  Store store(o.db);
  CHECK(store.run(e.runs[0].id)->attempts == 2);
  CHECK(store.run(e.runs[0].id)->status == "done");
  CHECK(count_finish_lines(store.run(e.runs[0].id)->run_dir) == 1);  // folder was wiped
  check_all_steps(store, e.runs[0].id);
  CHECK(store.run(e.runs[1].id)->status == "failed");  // afresh: fails at step 2 again
  CHECK(store.metrics(e.runs[1].id).size() == 2);
}

TEST_CASE("runner: --gpus hands each run its own device via CUDA_VISIBLE_DEVICES", "[runner]") {
  TempDir tmp("runner");
  RunnerOptions o = options(tmp, 0.05, 1);
  o.gpus = {3, 5};
  Experiment e = test::experiment_of("gpus", {4, 14, 24, 34});
  PlannedRun too_big = test::planned_run(44, /*gpus=*/3);
  e.runs.push_back(too_big);
  CHECK(run_experiment(e, o) == 1);  // the 3-GPU run cannot be placed
  Store store(o.db);
  CHECK(store.run(too_big.id)->status == "queued");
  std::set<std::string> used;
  for (size_t i = 0; i < 4; ++i) {
    RunRow r = *store.run(e.runs[i].id);
    CHECK(r.status == "done");
    CHECK(store.env(r.id).at("cuda_visible_devices") == r.gpu);
    used.insert(r.gpu);
  }
  CHECK(used == std::set<std::string>{"3", "5"});  // one device per run, both devices in use
}

TEST_CASE("runner: --gpus starts the run needing most GPUs first", "[runner]") {
  TempDir tmp("runner");
  RunnerOptions o = options(tmp, 0.05, 1);
  o.gpus = {3, 5};
  o.gpu_mem_gib = 80;
  Experiment e = test::experiment_of("largest", {10, 20, 30});
  e.runs.push_back(test::planned_run(40, /*gpus=*/2));  // last in the file, first to start
  CHECK(run_experiment(e, o) == 0);
  Store store(o.db);
  const RunRow wide = *store.run(e.runs[3].id);
  CHECK(wide.gpu == "3,5");
  for (int i = 0; i < 3; ++i) CHECK(*store.run(e.runs[i].id)->started_at >= *wide.finished_at);
}

TEST_CASE("runner: a run whose memory estimate exceeds the GPUs is recorded as out of memory", "[runner]") {
  TempDir tmp("runner");
  RunnerOptions o = options(tmp, 0.01, 1);
  o.gpus = {0};
  o.gpu_mem_gib = 16;
  Experiment e = test::experiment_of("oom", {10});
  PlannedRun big = test::planned_run(20);
  big.config.model.size = "vit_l";
  big.config.model.img_size = 224;
  big.config.model.patch_size = 16;
  big.config.train.batch = 512;  // ~40 GiB: not on 16 GiB GPUs, on 80 GiB ones
  big.id = config_hash(big.config);
  e.runs.push_back(big);
  PlannedRun declared = test::planned_run(30);
  declared.config.resources.mem_gb = 30;  // the user's figure overrides the estimate
  declared.id = config_hash(declared.config);
  e.runs.push_back(declared);
  CHECK(run_experiment(e, o) == 1);
  Store store(o.db);
  CHECK(store.run(e.runs[0].id)->status == "done");
  for (const PlannedRun* r : {&e.runs[1], &e.runs[2]}) {
    const RunRow row = *store.run(r->id);
    CHECK(row.status == "failed");
    CHECK(row.exit_reason.find("out of memory (estimated before launch)") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(tmp / "runs" / r->id / "journal.jsonl"));  // never launched
  }
  o.gpu_mem_gib = 80;  // on bigger GPUs the failed runs run with --rerun failed
  o.rerun = "failed";
  CHECK(run_experiment(e, o) == 0);
  CHECK(store.run(e.runs[1].id)->status == "done");
}

TEST_CASE("runner: a k-rank CPU run takes k of the --jobs slots", "[runner]") {
  TempDir tmp("runner");
  RunnerOptions o = options(tmp, 0.05, 2);
  Experiment e;
  e.name = "slots";
  e.runs.push_back(test::planned_run(10, /*gpus=*/2));  // two Gloo ranks: both slots
  e.runs.push_back(test::planned_run(20));
  e.runs.push_back(test::planned_run(30));
  CHECK(run_experiment(e, o) == 0);
  Store store(o.db);
  const RunRow wide = *store.run(e.runs[0].id);
  for (int i = 1; i < 3; ++i) {
    const RunRow r = *store.run(e.runs[i].id);
    CHECK(r.status == "done");
    CHECK(*r.started_at >= *wide.finished_at);  // never beside the 2-rank run
  }
  // The two single-rank runs share the slots: they overlap.
  const RunRow a = *store.run(e.runs[1].id), b = *store.run(e.runs[2].id);
  CHECK(*a.started_at < *b.finished_at);
  CHECK(*b.started_at < *a.finished_at);
}

TEST_CASE("runner: bad options are rejected before anything runs", "[runner]") {
  TempDir tmp("runner");
  RunnerOptions o = options(tmp, 0.01, 1);
  Experiment e = test::experiment_of("bad", {0});
  RunnerOptions bad = o;
  bad.rerun = "some";
  CHECK_THROWS_AS(run_experiment(e, bad), ConfigError);
  bad = o;
  bad.ablate_exe = (tmp / "missing").string();
  CHECK_THROWS_AS(run_experiment(e, bad), ConfigError);
  bad = o;
  bad.gpus = {0, 0};
  CHECK_THROWS_AS(run_experiment(e, bad), ConfigError);
  CHECK_FALSE(std::filesystem::exists(tmp / "db.sqlite"));
}

TEST_CASE("runner: SIGKILL of the runner at random moments, then resume", "[runner]") {
  TempDir tmp("runner");
  RunnerOptions o = options(tmp, 0.06, 2);
  Experiment e = test::experiment_of("kill", {0, 10, 20, 30, 40});
  std::mt19937 rng(7);
  std::set<int64_t> worker_pids;
  for (int kill = 0; kill < 6; ++kill) {
    pid_t runner = ::fork();
    REQUIRE(runner >= 0);
    if (runner == 0) {
      int rc = 1;
      try {
        rc = run_experiment(e, o);
      } catch (...) {
      }
      ::_exit(rc);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 500));
    ::kill(runner, SIGKILL);
    ::waitpid(runner, nullptr, 0);
    Store store(o.db);
    for (const RunRow& r : store.runs())
      if (r.worker_pid) worker_pids.insert(*r.worker_pid);
  }
  // PDEATHSIG: no worker outlived its runner (give the kernel a moment to deliver it).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int64_t pid : worker_pids) CHECK_FALSE(process_alive(pid, std::nullopt));

  CHECK(run_experiment(e, o) == 0);
  Store store(o.db);
  int relaunched = 0;
  for (const PlannedRun& p : e.runs) {
    RunRow r = *store.run(p.id);
    CHECK(r.status == "done");
    CHECK(count_finish_lines(r.run_dir) == 1);  // done once, never re-run after its finish
    check_all_steps(store, r.id);
    relaunched += r.attempts > 1;
  }
  CHECK(relaunched > 0);  // the kills did interrupt runs
  CHECK(store.runs().size() == e.runs.size());
}

TEST_CASE("runner: SIGINT stops the workers, leaves their runs lost, and they resume", "[runner]") {
  TempDir tmp("runner");
  RunnerOptions o = options(tmp, 0.1, 2);
  Experiment e = test::experiment_of("interrupt", {0, 10});
  pid_t runner = ::fork();
  REQUIRE(runner >= 0);
  if (runner == 0) {
    int rc = 1;
    try {
      rc = run_experiment(e, o);
    } catch (...) {
    }
    ::_exit(rc);
  }
  // Interrupt once both workers run (polling the database like `ablate status` would).
  for (int i = 0; i < 500; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!std::filesystem::exists(o.db)) continue;
    Store store(o.db);
    int running = 0;
    for (const RunRow& r : store.runs()) running += r.status == "running" && r.worker_pid.has_value();
    if (running == 2) break;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ::kill(runner, SIGINT);
  int status = 0;
  REQUIRE(::waitpid(runner, &status, 0) == runner);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  {
    Store store(o.db);
    for (const PlannedRun& p : e.runs) {
      RunRow r = *store.run(p.id);
      CHECK(r.status == "lost");
      CHECK(r.exit_reason.find("interrupted by SIGINT") != std::string::npos);
      REQUIRE(r.worker_pid.has_value());
      CHECK_FALSE(process_alive(*r.worker_pid, std::nullopt));
    }
  }
  CHECK(run_experiment(e, o) == 0);
  Store store(o.db);
  for (const PlannedRun& p : e.runs) {
    CHECK(store.run(p.id)->attempts == 2);
    check_all_steps(store, p.id);
  }
}

namespace {

// One rank<i>.seen line of the fake worker: what the runner gave that rank.
struct SeenRank {
  std::string rank, world, local_rank, master_addr, master_port, timeout, cuda;
  int64_t pgid = 0, pid = 0;
};

SeenRank seen_rank(const std::string& run_dir, int rank) {
  std::ifstream in(std::filesystem::path(run_dir) / ("rank" + std::to_string(rank) + ".seen"));
  std::string line;
  std::getline(in, line);
  std::vector<std::string> f;
  for (size_t b = 0; b <= line.size();) {  // space-separated, empty fields kept
    size_t e = line.find(' ', b);
    if (e == std::string::npos) e = line.size();
    f.push_back(line.substr(b, e - b));
    b = e + 1;
  }
  REQUIRE(f.size() == 9);
  return {f[0], f[1], f[2], f[3], f[4], f[5], f[6], std::stoll(f[7]), std::stoll(f[8])};
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("runner: a data-parallel run is k ranks with the rank environment, in one process group",
          "[runner]") {
  TempDir tmp("runner");
  RunnerOptions o = options(tmp, 0.05, 2);
  o.dist_timeout_s = 7;
  Experiment e;
  e.name = "ranks";
  e.runs = {test::planned_run(5, /*gpus=*/3), test::planned_run(15)};
  // A launcher's variables in the runner's own environment reach no worker as they are.
  ::setenv("RANK", "9", 1);
  ::setenv("WORLD_SIZE", "12", 1);
  const int rc = run_experiment(e, o);
  ::unsetenv("RANK");
  ::unsetenv("WORLD_SIZE");
  CHECK(rc == 0);
  Store store(o.db);
  const RunRow r = *store.run(e.runs[0].id);
  CHECK(r.status == "done");
  CHECK(r.attempts == 1);
  CHECK(count_finish_lines(r.run_dir) == 1);
  check_all_steps(store, r.id);  // once each: rank 0 alone journals
  const char* cuda = std::getenv("CUDA_VISIBLE_DEVICES");
  const SeenRank r0 = seen_rank(r.run_dir, 0);
  CHECK(r.worker_pid == r0.pid);
  for (int k = 0; k < 3; ++k) {
    INFO("rank " << k);
    const SeenRank s = seen_rank(r.run_dir, k);
    CHECK(s.rank == std::to_string(k));
    CHECK(s.world == "3");
    CHECK(s.local_rank == std::to_string(k));
    CHECK(s.master_addr == "127.0.0.1");
    CHECK(s.master_port == r0.master_port);
    CHECK(std::stoi(s.master_port) > 0);
    CHECK(s.timeout == "7");
    CHECK(s.cuda == (cuda && *cuda ? cuda : "none"));  // CPU ranks: left as it was
    CHECK(s.pgid == r0.pid);  // one group: one signal stops the run
    if (k > 0) CHECK(slurp(std::filesystem::path(r.run_dir) / fmt::format("worker.rank{}.log", k))
                         .find(fmt::format("rank {} of 3", k)) != std::string::npos);
  }
  // The single-process run gets no rank environment at all.
  const SeenRank single = seen_rank(store.run(e.runs[1].id)->run_dir, 0);
  CHECK(single.rank.empty());
  CHECK(single.world.empty());
  CHECK(single.master_port.empty());
}

TEST_CASE("runner: --gpus gives a data-parallel run's ranks its GPUs, rank i on the i-th", "[runner]") {
  TempDir tmp("runner");
  RunnerOptions o = options(tmp, 0.05, 1);
  o.gpus = {3, 5, 6};
  Experiment e;
  e.name = "gpu_ranks";
  e.runs = {test::planned_run(25, /*gpus=*/2), test::planned_run(4)};
  CHECK(run_experiment(e, o) == 0);
  Store store(o.db);
  const RunRow r = *store.run(e.runs[0].id);
  CHECK(r.status == "done");
  CHECK(r.gpu == "3,5");
  for (int k = 0; k < 2; ++k) {
    const SeenRank s = seen_rank(r.run_dir, k);
    CHECK(s.cuda == "3,5");
    CHECK(s.local_rank == std::to_string(k));
  }
  // The 1-GPU run ran beside it on the third GPU.
  const RunRow single = *store.run(e.runs[1].id);
  CHECK(single.gpu == "6");
  CHECK(store.env(single.id).at("cuda_visible_devices") == "6");
}

TEST_CASE("runner: a dead rank fails its data-parallel run with the rank named; a hung rank is killed",
          "[runner]") {
  TempDir tmp("runner");
  RunnerOptions o = options(tmp, 0.05, 2);
  o.dist_timeout_s = 1;
  Experiment e;
  e.name = "rank_failures";
  e.runs = {test::planned_run(6, /*gpus=*/2), test::planned_run(7, /*gpus=*/2)};
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(run_experiment(e, o) == 1);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Store store(o.db);

  // Rank 1 was SIGKILLed; rank 0 saw its collective fail and finished the run: both are told.
  const RunRow reported = *store.run(e.runs[0].id);
  INFO(reported.exit_reason);
  CHECK(reported.status == "failed");
  CHECK(reported.exit_reason.rfind("rank 1 of 2: killed by signal 9 (SIGKILL)", 0) == 0);
  CHECK(reported.exit_reason.find("last log line: rank 1: dying") != std::string::npos);  // its own log
  CHECK(reported.exit_reason.find(" | rank 0 of 2 reported: data-parallel rank 0 of 2: all-reduce failed") !=
        std::string::npos);
  CHECK(count_finish_lines(reported.run_dir) == 1);

  // Rank 1 died and rank 0 hung: killed 2 x the timeout after rank 1 ended, not waited for.
  const RunRow hung = *store.run(e.runs[1].id);
  INFO(hung.exit_reason);
  CHECK(hung.status == "failed");
  CHECK(hung.exit_reason.rfind("rank 1 of 2: killed by signal 9 (SIGKILL)", 0) == 0);
  CHECK(hung.exit_reason.find(" | rank 0 of 2: killed by the runner: still running 2 s after rank 1 ended") !=
        std::string::npos);
  CHECK(secs < 8);
  for (int k = 0; k < 2; ++k) CHECK_FALSE(process_alive(seen_rank(hung.run_dir, k).pid, std::nullopt));
}

// ---- several runners on one database ----

namespace {

// Runs run_experiment(e, o) in a child process, its notes (stderr) going to `log`; returns its pid.
// With a pipe `go`, the child waits until its write end closes, so several start at the same moment.
pid_t start_runner(const Experiment& e, const RunnerOptions& o, const std::filesystem::path& log,
                   const int* go = nullptr) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, STDERR_FILENO);
    if (go) {
      ::close(go[1]);
      char byte;
      while (::read(go[0], &byte, 1) > 0) {
      }
    }
    int rc = 2;
    try {
      rc = run_experiment(e, o);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "error: %s\n", ex.what());
    }
    std::fflush(stderr);
    ::_exit(rc);
  }
  return pid;
}

int exit_code_of(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

int count_lines_with(const std::filesystem::path& file, const std::string& needle) {
  std::ifstream in(file);
  int n = 0;
  for (std::string l; std::getline(in, l);) n += l.find(needle) != std::string::npos;
  return n;
}

// A process that looks like the worker of `run_dir` to /proc (its command line holds "worker" and
// the folder) and sleeps: a worker left behind, or one another runner launched.
pid_t start_sleeping_worker(const TempDir& tmp, const std::filesystem::path& run_dir) {
  const auto script = tmp / "sleeping_worker.sh";
  std::ofstream(script) << "#!/bin/bash\nsleep 60\n";
  ::chmod(script.c_str(), 0755);
  std::filesystem::create_directories(run_dir);
  SpawnSpec spec;
  spec.argv = {script.string(), "worker", "--run-dir", run_dir.string()};
  spec.log = run_dir / "worker.log";
  const pid_t pid = spawn_logged(spec);
  for (int i = 0; i < 200 && process_cmdline(pid).size() < 4; ++i)  // until exec has happened
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return pid;
}

}  // namespace

TEST_CASE("runner: four runners started at once on one database run every run exactly once",
          "[runner][concurrent]") {
  TempDir tmp("runner");
  RunnerOptions o = options(tmp, 0.05, 1);
  Experiment e = test::experiment_of("crowd", {0, 10, 20, 30, 40, 50, 60, 70, 80});  // all finish done
  constexpr int kRunners = 4;
  int go[2];
  REQUIRE(::pipe(go) == 0);
  std::vector<pid_t> runners;
  for (int k = 0; k < kRunners; ++k) runners.push_back(start_runner(e, o, tmp / fmt::format("runner{}.log", k), go));
  ::close(go[0]);
  ::close(go[1]);  // go
  int runners_that_launched = 0, launches = 0;
  for (int k = 0; k < kRunners; ++k) {
    const auto log = tmp / fmt::format("runner{}.log", k);
    INFO("runner " << k << ":\n" << slurp(log));
    CHECK(exit_code_of(runners[k]) == 0);
    CHECK(count_lines_with(log, "locked") == 0);
    CHECK(count_lines_with(log, "SIGKILL") == 0);
    CHECK(count_lines_with(log, "error") == 0);
    const int started = count_lines_with(log, " started (attempt");
    launches += started;
    runners_that_launched += started > 0;
  }
  CHECK(launches == static_cast<int>(e.runs.size()));
  CHECK(runners_that_launched >= 2);  // they did run side by side
  Store store(o.db);
  for (const PlannedRun& p : e.runs) {
    const RunRow r = *store.run(p.id);
    INFO(r.id << " " << r.status << " " << r.exit_reason);
    CHECK(r.status == "done");
    CHECK(r.attempts == 1);
    CHECK(count_lines_with(journal_path(r.run_dir), R"("type":"open")") == 1);  // one worker launch
    CHECK(count_finish_lines(r.run_dir) == 1);
    check_all_steps(store, r.id);
  }
}

TEST_CASE("runner: a run a live runner holds is waited for, its worker left alone", "[runner][concurrent]") {
  TempDir tmp("runner");
  RunnerOptions o = options(tmp, 0.01, 1);
  Experiment e = test::experiment_of("held", {0, 10});
  const PlannedRun& held = e.runs[1];
  {
    // This test process plays the other runner: alive, on this host, its worker running.
    Store store(o.db);
    store.upsert_planned(e.name, e.runs);
    ClaimInfo me;
    me.host = host_name();
    me.runner_pid = ::getpid();
    me.runner_start = process_start_ticks(::getpid()).value_or(0);
    me.run_dir = (tmp / "runs" / held.id).string();
    REQUIRE(store.claim_run(held.id, {"queued"}, me) == 1);
  }
  const pid_t worker = start_sleeping_worker(tmp, tmp / "runs" / held.id);
  Store(o.db).set_worker_pid(held.id, 1, worker);
  const pid_t runner = start_runner(e, o, tmp / "runner.log");
  // The runner runs the free run, then waits for the held one.
  for (int i = 0; i < 500 && Store(o.db).run(e.runs[0].id)->status != "done"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::seconds(3));  // longer than its look at runs held elsewhere
  CHECK(process_alive(worker, std::nullopt));
  CHECK(::waitpid(runner, nullptr, WNOHANG) == 0);  // still waiting
  {
    Store store(o.db);
    CHECK(store.run(held.id)->attempts == 1);
    REQUIRE(store.finish(held.id, 1, "done", ""));  // the other runner records its run's end
  }
  INFO(slurp(tmp / "runner.log"));
  CHECK(exit_code_of(runner) == 0);
  CHECK(process_alive(worker, std::nullopt));  // never touched
  ::kill(worker, SIGKILL);
  ::waitpid(worker, nullptr, 0);
  CHECK(count_lines_with(tmp / "runner.log", "running under another runner") == 1);
  CHECK(count_lines_with(tmp / "runner.log", "done under another runner") == 1);
}

TEST_CASE("runner: the worker of a dead runner is killed before its run is taken over, and says by whom",
          "[runner][concurrent]") {
  TempDir tmp("runner");
  RunnerOptions o = options(tmp, 0.01, 1);
  Experiment e = test::experiment_of("orphan", {0});
  const PlannedRun& run = e.runs[0];
  const pid_t dead = ::fork();
  REQUIRE(dead >= 0);
  if (dead == 0) ::_exit(0);
  ClaimInfo gone;
  gone.host = host_name();
  gone.runner_pid = dead;
  gone.runner_start = process_start_ticks(dead).value_or(1);
  ::waitpid(dead, nullptr, 0);
  gone.run_dir = (tmp / "runs" / run.id).string();
  {
    Store store(o.db);
    store.upsert_planned(e.name, e.runs);
    REQUIRE(store.claim_run(run.id, {"queued"}, gone) == 1);
  }
  const pid_t worker = start_sleeping_worker(tmp, gone.run_dir);
  Store(o.db).set_worker_pid(run.id, 1, worker);
  CHECK(run_experiment(e, o) == 0);
  int status = 0;
  REQUIRE(::waitpid(worker, &status, 0) == worker);  // this test is its parent: it was killed
  CHECK(wait_status_text(status) == "killed by signal 9 (SIGKILL)");
  const std::string note = leftover_kill_note(std::filesystem::path(gone.run_dir) / "worker.log", worker);
  INFO(note);
  CHECK(note.find(fmt::format("SIGKILL sent to leftover worker pid {} of attempt 1 by ablate (pid {}", worker,
                              ::getpid())) == 0);
  CHECK(note.find(fmt::format("its runner (pid {} on {}) is gone", dead, gone.host)) != std::string::npos);
  Store store(o.db);
  const RunRow r = *store.run(run.id);
  CHECK(r.status == "done");
  CHECK(r.attempts == 2);
}
