// The run lifecycle (see lifecycle.h): status words, the choice of runs to execute and the claim
// step shared by the local runner and the Slurm backend.
#include "harness/lifecycle.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include <fmt/format.h>

#include "harness/check.h"
#include "harness/config_io.h"
#include "harness/env_info.h"
#include "harness/journal.h"
#include "harness/process.h"
#include "harness/sys_util.h"

namespace ablate {
namespace {

namespace fs = std::filesystem;

// Starts the note stop_leftover_worker() writes into the worker's log.
constexpr const char* kKillNote = "==== ablate: ";
constexpr const char* kKillNoteEnd = " ====";

// How long the claim step waits for a killed leftover worker to disappear.
constexpr double kLeftoverKillWait_s = 5;

// Whether process `pid` is an ablate worker of run folder `run_dir` (its command line has "worker"
// and the folder): the only processes ablate kills that it did not start itself.
bool is_worker_of(int64_t pid, const std::string& run_dir) {
  const std::vector<std::string> args = process_cmdline(pid);
  const bool worker = std::find(args.begin(), args.end(), "worker") != args.end();
  return worker && !run_dir.empty() && std::find(args.begin(), args.end(), run_dir) != args.end();
}

// Kills the worker of a lost run that outlived its runner on this host (PDEATHSIG makes this rare:
// a runner that died between fork and prctl, or a worker re-parented some other way), so two
// workers never write one run folder. A worker whose runner is alive is never touched. The kill
// is written into the worker's log, naming the sender.
void stop_leftover_worker(const RunRow& row, const ClaimInfo& who, std::vector<std::string>& notes) {
  if (!row.worker_pid || *row.worker_pid <= 0) return;
  const std::string here = host_name();
  const std::string& worker_host = row.worker_host.empty() ? row.host : row.worker_host;
  if (worker_host != here || !is_worker_of(*row.worker_pid, row.run_dir)) return;
  if (row.host == here && row.runner_pid && process_alive(*row.runner_pid, row.runner_start)) return;
  const pid_t pid = static_cast<pid_t>(*row.worker_pid);
  const std::string what =
      fmt::format("SIGKILL sent to leftover worker pid {} of attempt {} by ablate (pid {} on {}): its runner{} is "
                  "gone",
                  pid, row.attempts, who.runner_pid > 0 ? who.runner_pid : ::getpid(), here,
                  row.runner_pid ? fmt::format(" (pid {} on {})", *row.runner_pid, row.host) : "");
  std::ofstream(fs::path(row.run_dir) / "worker.log", std::ios::app) << kKillNote << what << kKillNoteEnd << "\n";
  kill_and_wait(pid, kLeftoverKillWait_s);
  notes.push_back(fmt::format("run {}: {}", row.id, what));
}

void write_config(const PlannedRun& run, const fs::path& run_dir) {
  fs::create_directories(run_dir);
  write_file_atomically(run_dir / "config.json", canonical_dump(config_to_json(run.config)) + "\n");
}

// --rerun all of a run that had ended: claimed from that final status, then folder and results
// wiped under the claim.
Claim claim_afresh(Store& store, const PlannedRun& run, RunStatus seen, const ClaimInfo& who,
                   const fs::path& run_dir) {
  Claim c;
  const std::optional<int> attempt = store.claim_run(run.id, {status_name(seen)}, who);
  if (!attempt) {
    c.status = status_of(*store.run(run.id));
    c.outcome = c.status == RunStatus::running ? Claim::Outcome::elsewhere : Claim::Outcome::finished;
    return c;
  }
  fs::remove_all(run_dir);  // first the folder, then the rows: an interruption in between re-does both
  store.clear_results(run.id, *attempt);
  write_config(run, run_dir);
  return {Claim::Outcome::claimed, *attempt, RunStatus::running, {}};
}

}  // namespace

const char* status_name(RunStatus s) {
  switch (s) {
    case RunStatus::queued: return "queued";
    case RunStatus::running: return "running";
    case RunStatus::done: return "done";
    case RunStatus::failed: return "failed";
    case RunStatus::diverged: return "diverged";
    case RunStatus::lost: return "lost";
  }
  ABLATE_CHECK(false, "RunStatus {}", static_cast<int>(s));
}

std::optional<RunStatus> parse_run_status(std::string_view s) {
  for (RunStatus r : kAllRunStatuses)
    if (s == status_name(r)) return r;
  return std::nullopt;
}

RunStatus status_of(const RunRow& row) {
  const std::optional<RunStatus> s = parse_run_status(row.status);
  if (!s)
    throw StoreError(SQLITE_MISMATCH, fmt::format("run {} has status '{}', which this ablate does not know: use a "
                                                  "newer ablate",
                                                  row.id, row.status));
  return *s;
}

bool is_final(RunStatus s) { return s == RunStatus::done || s == RunStatus::failed || s == RunStatus::diverged; }

Rerun parse_rerun(std::string_view option) {
  if (option.empty()) return Rerun::none;
  if (option == "failed") return Rerun::failed;
  if (option == "all") return Rerun::all;
  throw ConfigError("<command line>", "--rerun", fmt::format("unknown value '{}'", option), "failed or all");
}

bool wants_execution(RunStatus s, Rerun rerun) {
  switch (s) {
    case RunStatus::queued:
    case RunStatus::lost: return true;
    case RunStatus::failed: return rerun != Rerun::none;
    case RunStatus::done:
    case RunStatus::diverged: return rerun == Rerun::all;
    case RunStatus::running: return false;
  }
  return false;
}

bool held_by_slurm(const RunRow& row) { return !row.slurm_job_id.empty() || row.host.rfind("slurm:", 0) == 0; }

std::vector<RunChoice> choose_runs(Store& store, const Experiment& experiment, Rerun rerun) {
  std::vector<RunChoice> choices;
  for (const PlannedRun& r : experiment.runs) {
    std::optional<RunRow> row = store.run(r.id);
    ABLATE_CHECK(row.has_value(), "planned run {} missing after upsert", r.id);
    RunChoice c;
    c.run = &r;
    c.seen = status_of(*row);
    c.action = c.seen == RunStatus::running     ? RunChoice::Action::elsewhere
               : wants_execution(c.seen, rerun) ? RunChoice::Action::execute
                                                : RunChoice::Action::finished;
    c.row = std::move(*row);
    choices.push_back(std::move(c));
  }
  return choices;
}

std::string leftover_kill_note(const fs::path& log, int64_t pid) {
  const std::string tail = log_tail(log);
  const size_t at = tail.rfind(fmt::format("{}SIGKILL sent to leftover worker pid {} ", kKillNote, pid));
  if (at == std::string::npos) return "";
  const size_t begin = at + std::string_view(kKillNote).size();
  const size_t end = tail.find(kKillNoteEnd, begin);
  return tail.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

Claim claim_for_execution(Store& store, const PlannedRun& run, RunStatus seen, Rerun rerun, ClaimInfo who,
                          const fs::path& run_dir) {
  who.run_dir = run_dir.string();
  if (rerun == Rerun::all && is_final(seen)) return claim_afresh(store, run, seen, who, run_dir);
  Claim c;
  std::optional<RunRow> row = store.run(run.id);
  ABLATE_CHECK(row.has_value(), "run {} missing", run.id);
  c.status = status_of(*row);
  if (c.status == RunStatus::running) {
    c.outcome = Claim::Outcome::elsewhere;
    return c;
  }
  if (c.status == RunStatus::lost) stop_leftover_worker(*row, who, c.notes);
  // A worker may have finished after its runner was killed: its journal decides, not a relaunch.
  const IngestResult pre = ingest_journal(store, run.id, run_dir);
  if (pre.finish_changed_status) {
    c.status = *parse_run_status(pre.finish->status);
    c.notes.push_back(fmt::format("run {} had already finished ({}) before its runner stopped", run.id,
                                  pre.finish->status));
    return c;
  }
  std::vector<std::string> from = {status_name(RunStatus::queued), status_name(RunStatus::lost)};
  if (is_final(seen) && wants_execution(seen, rerun)) from.push_back(status_name(seen));
  const std::optional<int> attempt = store.claim_run(run.id, from, who);
  if (!attempt) {  // another runner took it, or it ended meanwhile
    c.status = status_of(*store.run(run.id));
    c.outcome = c.status == RunStatus::running ? Claim::Outcome::elsewhere : Claim::Outcome::finished;
    return c;
  }
  write_config(run, run_dir);
  return {Claim::Outcome::claimed, *attempt, RunStatus::running, std::move(c.notes)};
}

}  // namespace ablate
