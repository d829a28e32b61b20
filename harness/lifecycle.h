// The run lifecycle, one set of rules for the local runner and the Slurm backend alike:
//
//   queued --claim--> running --finish line / runner's verdict--> done | failed | diverged
//                        \--runner gone, or interrupted--> lost --claim--> running ...
//
// A run's status is a RunStatus here and the same lower-case word in the database (runs.status).
// Which runs a call executes (choose_runs) and how it takes one (claim_for_execution) are decided
// here once; the backends only launch what they were handed.
//
// Several runners may work on one database at once (two terminals, a cron job beside a manual run,
// a Slurm submission beside a local runner). A run is executed exactly once: the claim is an atomic
// transition in the store, a run another live runner holds is left alone (the local runner waits
// for it, see runner.h), and a final status that appears while this call runs is never re-run. A
// worker is only killed when its runner is dead (the run was declared lost).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/experiment.h"
#include "harness/store.h"

namespace ablate {

enum class RunStatus { queued, running, done, failed, diverged, lost };

inline constexpr RunStatus kAllRunStatuses[] = {RunStatus::queued, RunStatus::running, RunStatus::done,
                                                RunStatus::failed, RunStatus::diverged, RunStatus::lost};

// The word stored in runs.status and journal finish lines: "queued", "running", ...
const char* status_name(RunStatus s);
// nullopt for anything that is not one of the six words.
std::optional<RunStatus> parse_run_status(std::string_view s);
// The status of a stored run. Throws StoreError when the row holds a word this version does not
// know (a database written by a newer ablate).
RunStatus status_of(const RunRow& row);
// done, failed and diverged: the run ended and no runner will touch it again unless asked (--rerun).
bool is_final(RunStatus s);

// `ablate run --rerun`: which final runs run again.
enum class Rerun {
  none,    // queued and lost runs only
  failed,  // also failed ones, resumed from their checkpoint
  all,     // every run, afresh (results and run folder wiped)
};
// "", "failed" or "all"; ConfigError naming --rerun otherwise.
Rerun parse_rerun(std::string_view option);

// Whether a run seen in status `s` is one this call should execute.
bool wants_execution(RunStatus s, Rerun rerun);

// Whether a running run is held by a Slurm job (its liveness comes from Slurm, not a heartbeat).
bool held_by_slurm(const RunRow& row);

// What one call does with a planned run.
struct RunChoice {
  const PlannedRun* run = nullptr;
  RunStatus seen = RunStatus::queued;  // its status when chosen
  enum class Action {
    execute,    // claim and launch it
    finished,   // final, and not asked to run again
    elsewhere,  // running under another runner or a Slurm job
  } action = Action::execute;
  RunRow row;  // the row as read when chosen
};

// Reads the row of every planned run (upserted before) and decides, in experiment order.
std::vector<RunChoice> choose_runs(Store& store, const Experiment& experiment, Rerun rerun);

// The result of the claim step.
struct Claim {
  enum class Outcome {
    claimed,    // attempt is ours: run_dir/config.json is written, launch it
    finished,   // it ended meanwhile (its journal had a finish line, or another runner ran it)
    elsewhere,  // another runner or Slurm job holds it now
  } outcome = Outcome::finished;
  int attempt = 0;                 // with claimed: the fencing token for heartbeat/finish
  RunStatus status = RunStatus::queued;  // the run's status when the step ended
  std::vector<std::string> notes;  // what the step did that the user should know
};

// The claim step for run `run`, chosen in status `seen` (RunChoice::seen), into folder `run_dir`:
//  1. --rerun all of a final run: claim it, then wipe its folder and results (claimed first, so
//     no other runner can be writing that folder while it is wiped);
//  2. otherwise, a lost run whose worker outlived its dead runner on this host: kill that worker;
//     then ingest the journal, since a worker may have finished after its runner died;
//     then claim it from queued or lost (or from `seen` when --rerun asks for that final status:
//     a result another runner produced while this call ran is kept);
//  3. write run_dir/config.json.
// `who` identifies the claimant (run_dir is filled in here). Throws StoreError and
// std::system_error (the folder).
Claim claim_for_execution(Store& store, const PlannedRun& run, RunStatus seen, Rerun rerun, ClaimInfo who,
                          const std::filesystem::path& run_dir);

// The line the claim step wrote into worker log `log` when it killed worker `pid` as a leftover of
// a dead runner (what was sent, by which ablate process, why), or "" when there is none.
std::string leftover_kill_note(const std::filesystem::path& log, int64_t pid);

}  // namespace ablate
