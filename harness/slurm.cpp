// Slurm backend (see slurm.h): sbatch script generation, submission with claims in the database,
// squeue/sacct parsing, and reconciling the database with Slurm's view of the jobs.
#include "harness/slurm.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "harness/check.h"
#include "harness/config_io.h"
#include "harness/env_info.h"
#include "harness/eval_task.h"
#include "harness/hash.h"
#include "harness/journal.h"
#include "harness/lifecycle.h"
#include "harness/process.h"
#include "harness/store.h"
#include "harness/sys_util.h"

namespace ablate {
namespace {

namespace fs = std::filesystem;

// Slurm's default MaxArraySize is 1001 (task ids 0..1000): larger sweeps use several arrays.
constexpr int kMaxArrayTasks = 1000;
// Job ids per squeue/sacct/scancel call: keeps command lines short on big sweeps.
constexpr size_t kIdsPerCall = 200;

// "what failed: rc N: <stderr>" for errors from a Slurm command.
std::string command_failure(const std::vector<std::string>& argv, const CommandResult& r) {
  std::string cmd;
  for (size_t i = 0; i < argv.size() && i < 4; ++i) cmd += (i ? " " : "") + argv[i];
  if (argv.size() > 4) cmd += " ...";
  const std::string err = trim(r.err.empty() ? r.out : r.err);
  return fmt::format("`{}` exited with code {}{}", cmd, r.rc, err.empty() ? "" : ": " + err);
}

std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    const fs::path p = fs::path(dir) / name;
    if (::access(p.c_str(), X_OK) == 0 && !fs::is_directory(p)) return p.string();
  }
  return "";
}

// A value for an #SBATCH line: sbatch splits those lines on whitespace and treats '%' in file
// names as a pattern, so such values cannot be written there.
const std::string& sbatch_value(const std::string& value, const char* what) {
  if (value.empty() || value.find_first_of(" \t\n\r\"'\\%") != std::string::npos)
    throw ConfigError("<command line>", what,
                      fmt::format("'{}' cannot be written into an #SBATCH line", value),
                      "no whitespace, quotes, backslashes or '%'");
  return value;
}

// `name` with every character outside [A-Za-z0-9_.-] replaced by '_' (job names, folder names).
std::string sanitized(const std::string& name) {
  std::string n;
  for (char c : name) n += std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ? c : '_';
  return n;
}

void check_options(const SlurmOptions& o, const RunnerOptions& r) {
  if (o.throttle < 0)
    throw ConfigError("<command line>", "--throttle", fmt::format("{} is negative", o.throttle),
                      "0 = no limit");
  if (o.gpus_per_task < 0)
    throw ConfigError("<command line>", "--gpus-per-task", fmt::format("{} is negative", o.gpus_per_task));
  if (o.cpus_per_task < 0)
    throw ConfigError("<command line>", "--cpus-per-task", fmt::format("{} is negative", o.cpus_per_task));
  if (o.signal_lead_s < 0)
    throw ConfigError("<command line>", "signal lead", fmt::format("{} s is negative", o.signal_lead_s));
  check_runner_options(r);  // --rerun, --dist-timeout, the worker executable, ...
}

// A run claimed for submission.
struct Claimed {
  std::string id;
  int attempt = 0;
  fs::path dir;
  int64_t journal_offset = 0;
  int gpus = 1;
};

// One sbatch call: its script and the runs it starts, in task order.
struct Job {
  SlurmJobSpec spec;
  std::string file_stem;  // <jobs dir>/<stem>.sbatch (and .list for arrays)
  std::vector<const Claimed*> runs;
  std::string job_id;     // as sbatch printed it
};

// Applies Slurm's view to running rows (journals ingested after `states` was read, so a job that
// Slurm says has ended has written all it will).
SlurmSyncResult reconcile(Store& store, const std::vector<RunRow>& rows,
                          const std::map<std::string, SlurmJobState>& states, std::ostream& log) {
  SlurmSyncResult res;
  std::vector<std::pair<std::string, int>> alive;
  for (const RunRow& row : rows) {
    const IngestResult in = ingest_journal(store, row.id, row.run_dir);
    res.journal_lines += static_cast<int>(in.lines);
    if (in.bad_lines > 0)
      log << fmt::format("run {}: skipped {} malformed journal line(s) in {}\n", row.id, in.bad_lines,
                         journal_path(row.run_dir).string());
    if (in.finish_changed_status) {
      ++res.finished;
      continue;
    }
    const std::optional<RunRow> now = store.run(row.id);
    if (!now || status_of(*now) != RunStatus::running || now->attempts != row.attempts) continue;
    const auto st = states.find(row.slurm_job_id);
    if (st != states.end() && !slurm_state_final(st->second.state)) {
      alive.emplace_back(row.id, row.attempts);
      continue;
    }
    RunStatus status = RunStatus::lost;
    std::string reason;
    if (st == states.end()) {
      reason = fmt::format("Slurm job {} is no longer known to Slurm and the run wrote no finish line",
                           row.slurm_job_id);
    } else {
      const std::string& s = st->second.state;
      if (s == "FAILED" || s == "OUT_OF_MEMORY" || s == "COMPLETED") status = RunStatus::failed;
      reason = fmt::format("Slurm job {} ended {}{} without a finish line", row.slurm_job_id, s,
                           st->second.reason.empty() || st->second.reason == "None"
                               ? ""
                               : " (" + st->second.reason + ")");
    }
    reason += fmt::format("; see {}", (fs::path(row.run_dir) / "worker.log").string());
    if (store.finish(row.id, row.attempts, status_name(status), reason)) {
      if (status == RunStatus::failed) ++res.failed;
      else ++res.lost;
      log << fmt::format("run {} {}: {}\n", row.id, status_name(status), reason);
    }
  }
  store.heartbeat(alive);
  return res;
}

std::vector<RunRow> running_slurm_rows(Store& store, const std::string& experiment) {
  std::vector<RunRow> rows;
  for (RunRow& r : store.runs(experiment))
    if (status_of(r) == RunStatus::running && !r.slurm_job_id.empty()) rows.push_back(std::move(r));
  return rows;
}

std::vector<std::string> job_ids_of(const std::vector<RunRow>& rows) {
  std::vector<std::string> ids;
  for (const RunRow& r : rows) ids.push_back(r.slurm_job_id);
  return ids;
}

std::string utc_stamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

// A new folder <parent>/<stem>[-N] for one submission's scripts and logs.
fs::path new_jobs_dir(const fs::path& parent, const std::string& stem) {
  fs::create_directories(parent);
  for (int n = 1;; ++n) {
    const fs::path p = parent / (n == 1 ? stem : fmt::format("{}-{}", stem, n));
    if (fs::create_directory(p)) return p;
  }
}

// The evaluation tasks of `experiment` (all experiments when "") that run under Slurm.
std::vector<EvalTaskRow> running_slurm_evals(Store& store, const std::string& experiment) {
  std::vector<EvalTaskRow> rows;
  for (const RunRow& r : store.runs(experiment))
    for (EvalTaskRow& t : store.eval_tasks_of(r.id))
      if (t.status == "running" && !t.slurm_job_id.empty()) rows.push_back(std::move(t));
  return rows;
}

// reconcile() for evaluation tasks: journals ingested, ended jobs without a finish line failed or
// lost; a job waiting on a pre-training job that failed can never start: cancelled, task lost
// (queued again by the next submission once its run is done).
void reconcile_evals(Store& store, const SlurmTools& tools, const std::vector<EvalTaskRow>& rows, std::ostream& log) {
  std::vector<std::string> ids;
  for (const EvalTaskRow& t : rows) ids.push_back(t.slurm_job_id);
  const std::map<std::string, SlurmJobState> states = query_slurm_jobs(tools, ids);
  for (const EvalTaskRow& t : rows) {
    if (ingest_journal(store, t.id, t.run_dir, JournalOf::eval).finish_changed_status) continue;
    const auto st = states.find(t.slurm_job_id);
    const bool never = st != states.end() && st->second.reason == "DependencyNeverSatisfied";
    if (st != states.end() && !slurm_state_final(st->second.state) && !never) continue;
    if (never) run_command({tools.scancel, t.slurm_job_id});
    const std::string state = st == states.end() ? "" : st->second.state;
    const std::string status = state == "FAILED" || state == "OUT_OF_MEMORY" || state == "COMPLETED" ? "failed" : "lost";
    const std::string reason =
        never ? fmt::format("Slurm job {} waited on a pre-training job that did not complete: cancelled", t.slurm_job_id)
              : fmt::format("Slurm job {} {} without a finish line; see {}", t.slurm_job_id,
                            state.empty() ? "is no longer known to Slurm" : "ended " + state,
                            (fs::path(t.run_dir) / "worker.log").string());
    if (store.finish_eval(t.id, t.attempts, status, reason)) log << fmt::format("evaluation {} {}: {}\n", t.id, status, reason);
  }
}

// Submits the due evaluations of `experiment` (see slurm.h): one job array per run.
int submit_evals(Store& store, const Experiment& experiment, const RunnerOptions& runner, const SlurmOptions& options,
                 const SlurmTools& tools, const SlurmJobSpec& base, const fs::path& runs_root,
                 const fs::path& jobs_parent, std::ostream& log) {
  std::vector<EvalTask> all;
  for (const PlannedRun& r : experiment.runs)
    for (EvalTask& t : eval_tasks_of(r)) all.push_back(std::move(t));
  store.upsert_eval_tasks(all);
  std::vector<std::string> from = {"queued", "lost"};
  if (runner.rerun != "") from.push_back("failed");
  ClaimInfo who;
  who.host = "slurm:" + host_name();
  who.code_version = code_version(build_source_dir());
  fs::path jobs_dir;
  int submitted = 0;
  for (const PlannedRun& r : experiment.runs) {
    const RunRow run = *store.run(r.id);
    const bool after_job = run.status == "running" && !run.slurm_job_id.empty();
    if (run.status != "done" && !after_job) continue;  // waits for its run
    std::vector<std::pair<std::string, int>> claimed;  // eval id, attempt
    SlurmJobSpec spec = base;
    spec.worker_flag = "--eval";
    spec.after_ok = after_job ? run.slurm_job_id : "";
    std::string list;
    for (const EvalTask& t : eval_tasks_of(r)) {
      const fs::path dir = runs_root / "evals" / t.id;
      who.run_dir = dir.string();
      const std::optional<int> attempt = store.claim_eval(t.id, from, who);
      if (!attempt) continue;
      fs::remove_all(dir);
      fs::create_directories(dir);
      EvalJob job{t.id, t.weights, r.config, {}};
      job.weights.path = run.run_dir.empty() ? (runs_root / r.id).string() : run.run_dir;
      job.config.eval = t.config;
      write_file_atomically(dir / "eval.json", canonical_dump(eval_job_json(job)) + "\n");
      list += slurm_list_line(dir, 0);
      claimed.emplace_back(t.id, *attempt);
    }
    if (claimed.empty()) continue;
    if (jobs_dir.empty()) jobs_dir = new_jobs_dir(jobs_parent, sanitized(experiment.name) + "-evals-" + utc_stamp());
    spec.job_name = base.job_name + "-eval";
    spec.log_dir = jobs_dir;
    spec.array_size = static_cast<int>(claimed.size());
    spec.list_file = jobs_dir / (r.id + ".list");
    const fs::path script_path = jobs_dir / (r.id + ".sbatch");
    std::string failure, job_id;
    try {
      write_file_atomically(spec.list_file, list);
      write_file_atomically(script_path, sbatch_script(spec, options));
      const std::vector<std::string> argv = {tools.sbatch, "--parsable", script_path.string()};
      const CommandResult res = run_command(argv);
      if (res.rc != 0) failure = command_failure(argv, res);
      else job_id = parse_sbatch_job_id(res.out);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!failure.empty()) {
      for (const auto& [id, attempt] : claimed) store.finish_eval(id, attempt, "lost", "not submitted: " + failure);
      throw std::runtime_error(fmt::format("submitting the evaluations of run {} to Slurm failed: {}", r.id, failure));
    }
    for (size_t i = 0; i < claimed.size(); ++i)
      store.set_eval_slurm_job_id(claimed[i].first, claimed[i].second, fmt::format("{}_{}", job_id, i));
    submitted += static_cast<int>(claimed.size());
    log << fmt::format("submitted {} evaluation(s) of run {} as Slurm job array {}{}: {}\n", claimed.size(), r.id, job_id,
                       spec.after_ok.empty() ? "" : " (after job " + spec.after_ok + ")", script_path.string());
  }
  return submitted;
}

}  // namespace

// ---- tools ----

SlurmTools SlurmTools::from_path() {
  return {find_on_path("sbatch"), find_on_path("squeue"), find_on_path("sacct"), find_on_path("scancel"),
          find_on_path("scontrol")};
}

void SlurmTools::require() const {
  const std::pair<const char*, const std::string*> required[] = {
      {"sbatch", &sbatch}, {"squeue", &squeue}, {"scancel", &scancel}, {"scontrol", &scontrol}};
  std::string missing;
  for (const auto& [name, path] : required)
    if (path->empty()) missing += std::string(missing.empty() ? "" : ", ") + name;
  if (!missing.empty())
    throw std::runtime_error(fmt::format("Slurm backend: {} not found on PATH (run on a Slurm login node, "
                                         "or put the Slurm client programs on PATH)",
                                         missing));
}

// ---- scripts ----

std::string slurm_list_line(const fs::path& run_dir, int64_t journal_offset) {
  const std::string dir = run_dir.string();
  ABLATE_CHECK(dir.find_first_of("\t\n") == std::string::npos, "run folder '{}' has a tab or newline", dir);
  return fmt::format("{}\t{}\n", dir, journal_offset);
}

namespace {

// The script's opening comment: what the job runs and how it reports, stops and resumes.
std::string script_comment(const SlurmJobSpec& job, const SlurmOptions& o, bool array) {
  std::string s = "#!/bin/bash\n";
  if (array) {
    s += fmt::format(
        "# ablate: {} run(s) as a Slurm job array, one task per run. Task i runs the run folder on\n"
        "# line i+1 of {}.\n",
        job.array_size, job.list_file.string());
  } else {
    s += fmt::format("# ablate: one run of {} ranks (srun, one task per rank) in {}.\n", job.ntasks,
                     job.run_dir.string());
  }
  s += fmt::format(
      "# The worker reports only through <run folder>/journal.jsonl (`ablate sync` ingests it).\n"
      "# Preemption or `scontrol requeue` (SIGTERM), or USR1 {} s before the time limit, make the worker\n"
      "# checkpoint and exit 99; the task is requeued and resumes from <run folder>/ckpt/last.pt.\n",
      o.signal_lead_s);
  return s;
}

// The #SBATCH lines: job name, dependency, array or ranks, resources, log, requeue and signal.
std::string sbatch_directives(const SlurmJobSpec& job, const SlurmOptions& o, bool array) {
  std::string s;
  auto line = [&](const std::string& opt) { s += "#SBATCH " + opt + "\n"; };
  line("--job-name=" + sbatch_value(job.job_name, "job name"));
  if (!job.after_ok.empty()) line("--dependency=afterok:" + sbatch_value(job.after_ok, "dependency"));
  if (array) {
    line(fmt::format("--array=0-{}{}", job.array_size - 1, o.throttle > 0 ? fmt::format("%{}", o.throttle) : ""));
    line("--ntasks=1");
  } else {
    line(fmt::format("--ntasks={}", job.ntasks));
  }
  if (o.gpus_per_task > 0) line(fmt::format("--gpus-per-task={}", o.gpus_per_task));
  if (o.cpus_per_task > 0) line(fmt::format("--cpus-per-task={}", o.cpus_per_task));
  if (!o.partition.empty()) line("--partition=" + sbatch_value(o.partition, "--partition"));
  if (!o.time.empty()) line("--time=" + sbatch_value(o.time, "--time"));
  if (!o.account.empty()) line("--account=" + sbatch_value(o.account, "--account"));
  line("--output=" + sbatch_value(job.log_dir.string(), "Slurm log folder") + (array ? "/%A_%a.out" : "/%j.out"));
  line("--open-mode=append");
  line("--requeue");
  line(fmt::format("--signal=B:USR1@{}", o.signal_lead_s));
  line("--chdir=" + sbatch_value(job.workdir.string(), "working directory"));
  for (const std::string& extra : o.extra_sbatch) {
    if (extra.find('\n') != std::string::npos)
      throw ConfigError("<command line>", "--extra-sbatch", fmt::format("'{}' spans several lines", extra));
    line(extra);
  }
  return s;
}

// Shell variables run_dir, journal_offset and task: an array task reads its line of the list
// file; a multi-rank run also exports the rendezvous of its ranks.
std::string task_variables(const SlurmJobSpec& job, bool array) {
  std::string s = "set -u\n";
  if (array) {
    s += fmt::format(
        "line=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {})\n"
        "run_dir=${{line%%$'\\t'*}}\n"
        "journal_offset=${{line##*$'\\t'}}\n"
        "task=${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}\n"
        "if [ -z \"$run_dir\" ]; then\n"
        "  echo \"ablate: no line $((SLURM_ARRAY_TASK_ID + 1)) in {}\" >&2\n"
        "  exit 2\n"
        "fi\n",
        shell_quote(job.list_file.string()), job.list_file.string());
  } else {
    s += fmt::format(
        "run_dir={}\n"
        "journal_offset={}\n"
        "task=$SLURM_JOB_ID\n"
        "# Rendezvous of the ranks: the first node of the allocation, a port derived from the job id.\n"
        "MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)\n"
        "export MASTER_ADDR\n"
        "export MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))\n"
        "export WORLD_SIZE=$SLURM_NTASKS\n"
        "export ABLATE_DIST_TIMEOUT_S={}\n",
        shell_quote(job.run_dir.string()), job.journal_offset, job.dist_timeout_s);
  }
  return s;
}

// A requeued task whose run wrote a finish line since its submission ends here; otherwise the
// start is logged.
const char* const kSkipFinished =
    "log=$run_dir/worker.log\n"
    "# Whether the run wrote a finish line since its submission: a late requeue must not run it again.\n"
    "finished() {\n"
    "  tail -c \"+$((journal_offset + 1))\" \"$run_dir/journal.jsonl\" 2>/dev/null | grep -q '\"type\":\"finish\"'\n"
    "}\n"
    "if finished; then\n"
    "  echo \"==== ablate slurm: job $task: the run has finished since its submission ====\" >>\"$log\"\n"
    "  exit 0\n"
    "fi\n"
    "echo \"==== ablate slurm: job $task on $(hostname), start $((${SLURM_RESTART_COUNT:-0} + 1)) ====\" >>\"$log\"\n";

// The worker in the background: one process (array task), or one srun task per rank.
std::string launch_worker(const SlurmJobSpec& job, bool array) {
  if (array)
    return fmt::format("{} worker {} \"$run_dir\" >>\"$log\" 2>&1 &\n", shell_quote(job.ablate_exe), job.worker_flag);
  // --wait: once one rank ends, the others get the data-parallel timeout plus 60 s (to notice,
  // and for rank 0 to write the finish line) before srun ends them, so a crashed rank cannot
  // leave the rest blocked in a collective until the time limit.
  return fmt::format(
      "srun --kill-on-bad-exit=0 --wait={} bash -c 'export RANK=$SLURM_PROCID LOCAL_RANK=$SLURM_LOCALID; "
      "exec \"$0\" worker --run-dir \"$1\"' {} \"$run_dir\" >>\"$log\" 2>&1 &\n",
      static_cast<int64_t>(std::ceil(job.dist_timeout_s)) + 60, shell_quote(job.ablate_exe));
}

// Slurm SIGTERMs every process of the job itself, the worker included: the script ignores it
// and outlives the worker, so the job ends only once the checkpoint is written. USR1 (time
// limit) reaches the script alone and is forwarded. The decision to requeue rests on the journal,
// not on the exit code: bash may lose the status of a child that ends while a trap runs.
const char* const kWaitAndRequeue =
    "worker=$!\n"
    "at_time_limit=0\n"
    "trap 'at_time_limit=1; kill -USR1 \"$worker\" 2>/dev/null' USR1\n"
    "trap ':' TERM\n"
    "while kill -0 \"$worker\" 2>/dev/null; do\n"
    "  wait \"$worker\"\n"
    "done\n"
    "wait \"$worker\"\n"
    "rc=$?\n"
    "echo \"==== ablate slurm: job $task: worker exit code $rc ====\" >>\"$log\"\n"
    "if [ \"$at_time_limit\" -eq 1 ] && ! finished; then\n"
    "  echo \"==== ablate slurm: job $task stopped before its time limit: requeued ====\" >>\"$log\"\n"
    "  scontrol requeue \"$task\"\n"
    "fi\n"
    "exit \"$rc\"\n";

}  // namespace

std::string sbatch_script(const SlurmJobSpec& job, const SlurmOptions& o) {
  const bool array = job.array_size > 0;
  ABLATE_CHECK(job.worker_flag == "--run-dir" || (array && job.worker_flag == "--eval"), "worker flag '{}'", job.worker_flag);
  if (!array && job.ntasks < 1)
    throw ConfigError("<command line>", "resources.gpus", fmt::format("{} tasks", job.ntasks), "at least 1");
  std::string s = script_comment(job, o, array);
  s += sbatch_directives(job, o, array);
  s += task_variables(job, array);
  s += kSkipFinished;
  s += launch_worker(job, array);
  s += kWaitAndRequeue;
  return s;
}

// ---- parsing ----

bool slurm_state_final(const std::string& state) {
  static const std::set<std::string> kFinal = {"COMPLETED", "CANCELLED", "FAILED",        "TIMEOUT",
                                               "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",     "DEADLINE",
                                               "OUT_OF_MEMORY", "REVOKED"};
  return kFinal.count(state) > 0;
}

std::string parse_sbatch_job_id(const std::string& out) {
  const std::string t = trim(out);
  const std::string id = t.substr(0, t.find(';'));
  if (id.empty() || !std::all_of(id.begin(), id.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    throw std::runtime_error(fmt::format("sbatch printed '{}', not a job id", t));
  return id;
}

std::map<std::string, SlurmJobState> parse_slurm_jobs(const std::string& out) {
  std::map<std::string, SlurmJobState> jobs;
  std::stringstream in(out);
  for (std::string l; std::getline(in, l);) {
    l = trim(l);
    const size_t bar1 = l.find('|');
    if (bar1 == std::string::npos || bar1 == 0) continue;
    const size_t bar2 = l.find('|', bar1 + 1);
    const std::string id = l.substr(0, bar1);
    SlurmJobState st;
    st.state = l.substr(bar1 + 1, bar2 == std::string::npos ? std::string::npos : bar2 - bar1 - 1);
    st.state = st.state.substr(0, st.state.find(' '));  // sacct: "CANCELLED by 0"
    if (bar2 != std::string::npos) st.reason = l.substr(bar2 + 1);
    if (st.state.empty()) continue;
    const size_t open = id.find("_[");
    if (open == std::string::npos) {
      jobs[id] = st;
      continue;
    }
    // "12_[3-5,7%2]": tasks 3, 4, 5 and 7 of array 12 (the %N throttle is not a task).
    const size_t close = id.find(']', open);
    if (close == std::string::npos) continue;
    std::string list = id.substr(open + 2, close - open - 2);
    list = list.substr(0, list.find('%'));
    std::stringstream parts(list);
    for (std::string part; std::getline(parts, part, ',');) {
      try {
        const size_t dash = part.find('-');
        const long a = std::stol(part.substr(0, dash));
        const long b = dash == std::string::npos ? a : std::stol(part.substr(dash + 1));
        for (long t = a; t <= b && t - a <= 1000000; ++t) jobs[fmt::format("{}_{}", id.substr(0, open), t)] = st;
      } catch (const std::exception&) {
        // A range that is not numbers: not a line this parser understands; skip it.
      }
    }
  }
  return jobs;
}

std::map<std::string, SlurmJobState> query_slurm_jobs(const SlurmTools& tools,
                                                      const std::vector<std::string>& job_ids) {
  std::map<std::string, SlurmJobState> states;
  if (job_ids.empty()) return states;
  ABLATE_CHECK(!tools.squeue.empty(), "query_slurm_jobs without squeue");
  auto joined = [&](size_t from) {
    std::string s;
    for (size_t i = from; i < std::min(job_ids.size(), from + kIdsPerCall); ++i) s += (s.empty() ? "" : ",") + job_ids[i];
    return s;
  };
  for (size_t from = 0; from < job_ids.size(); from += kIdsPerCall) {
    const std::vector<std::string> argv = {tools.squeue, "-h", "-r", "-t", "all", "-o", "%i|%T|%r", "-j", joined(from)};
    const CommandResult r = run_command(argv);
    // squeue fails on a list of only unknown ids: that is an answer (all gone), not an error.
    if (r.rc != 0 && r.err.find("Invalid job id") == std::string::npos)
      throw std::runtime_error("cannot read Slurm job states: " + command_failure(argv, r));
    if (r.rc == 0)
      for (auto& [id, st] : parse_slurm_jobs(r.out)) states[id] = st;
  }
  std::vector<std::string> unknown;
  for (const std::string& id : job_ids)
    if (!states.count(id)) unknown.push_back(id);
  if (unknown.empty() || tools.sacct.empty()) return states;
  for (size_t from = 0; from < unknown.size(); from += kIdsPerCall) {
    std::string ids;
    for (size_t i = from; i < std::min(unknown.size(), from + kIdsPerCall); ++i) ids += (ids.empty() ? "" : ",") + unknown[i];
    // Accounting is optional on a cluster: a failing sacct only means the ids stay unknown.
    const CommandResult r = run_command({tools.sacct, "-n", "-P", "-X", "-o", "JobID,State,ExitCode", "-j", ids});
    if (r.rc != 0) break;
    for (auto& [id, st] : parse_slurm_jobs(r.out))
      if (std::find(unknown.begin(), unknown.end(), id) != unknown.end()) states[id] = st;
  }
  return states;
}

namespace {

// The runs to submit, claimed through the shared lifecycle (lifecycle.h): those choose_runs picks,
// unless Slurm still holds their previous job (a cancelled task finishing its checkpoint, a lost run
// requeued by Slurm): a second job must not write the same folder.
std::vector<Claimed> claim_for_slurm(Store& store, const Experiment& experiment, const RunnerOptions& runner,
                                     const SlurmTools& tools, const fs::path& runs_root, std::ostream& log) {
  const Rerun rerun = parse_rerun(runner.rerun);
  std::vector<RunChoice> candidates;
  for (RunChoice& c : choose_runs(store, experiment, rerun)) {
    if (c.action == RunChoice::Action::elsewhere)
      log << fmt::format("run {} is running ({}{}): not submitted\n", c.row.id, c.row.host,
                         c.row.slurm_job_id.empty() ? "" : ", Slurm job " + c.row.slurm_job_id);
    if (c.action == RunChoice::Action::execute) candidates.push_back(std::move(c));
  }
  std::vector<std::string> previous;
  for (const RunChoice& c : candidates)
    if (!c.row.slurm_job_id.empty()) previous.push_back(c.row.slurm_job_id);
  const std::map<std::string, SlurmJobState> previous_states = query_slurm_jobs(tools, previous);

  ClaimInfo who;
  who.host = "slurm:" + host_name();  // not a local runner: mark_lost_stale never probes a pid
  who.code_version = code_version(build_source_dir());
  std::vector<Claimed> claimed;
  for (const RunChoice& c : candidates) {
    const std::string& id = c.run->id;
    const auto prev = previous_states.find(c.row.slurm_job_id);
    if (prev != previous_states.end() && !slurm_state_final(prev->second.state)) {
      log << fmt::format("run {}: its previous Slurm job {} is still {}: not submitted\n", id, c.row.slurm_job_id,
                         prev->second.state);
      continue;
    }
    const fs::path dir = runs_root / id;
    const Claim claim = claim_for_execution(store, *c.run, c.seen, rerun, who, dir);
    for (const std::string& note : claim.notes) log << note << "\n";
    if (claim.outcome == Claim::Outcome::elsewhere) {
      log << fmt::format("run {} was taken by another runner: not submitted\n", id);
    } else if (claim.outcome == Claim::Outcome::finished) {
      if (claim.notes.empty())
        log << fmt::format("run {} {} under another runner: not submitted\n", id, status_name(claim.status));
    } else {
      std::error_code ec;
      const auto size = fs::file_size(journal_path(dir), ec);
      claimed.push_back({id, claim.attempt, dir, ec ? 0 : static_cast<int64_t>(size), c.run->config.resources.gpus});
    }
  }
  return claimed;
}

// The sbatch calls for the claimed runs: one multi-task job per multi-GPU run, then the single-GPU
// runs in job arrays of at most kMaxArrayTasks tasks.
std::vector<Job> group_into_jobs(const std::vector<Claimed>& claimed, const SlurmJobSpec& base,
                                 const fs::path& jobs_dir) {
  std::vector<Job> jobs;
  std::vector<const Claimed*> singles;
  for (const Claimed& c : claimed) {
    if (c.gpus > 1) {
      Job j{base, c.id, {&c}, ""};
      j.spec.run_dir = c.dir;
      j.spec.ntasks = c.gpus;
      j.spec.journal_offset = c.journal_offset;
      jobs.push_back(std::move(j));
    } else {
      singles.push_back(&c);
    }
  }
  for (size_t from = 0; from < singles.size(); from += kMaxArrayTasks) {
    Job j{base, fmt::format("array-{}", from / kMaxArrayTasks), {}, ""};
    j.runs.assign(singles.begin() + static_cast<std::ptrdiff_t>(from),
                  singles.begin() + static_cast<std::ptrdiff_t>(std::min(singles.size(), from + kMaxArrayTasks)));
    j.spec.array_size = static_cast<int>(j.runs.size());
    j.spec.list_file = jobs_dir / (j.file_stem + ".list");
    jobs.push_back(std::move(j));
  }
  return jobs;
}

// A submitted job's script goes into each of its run folders (an artifact of kind "sbatch") and
// each run gets its Slurm job id ("<array job>_<task>" or "<job>").
void record_submission(Store& store, const Job& job, const std::string& script) {
  const std::string sha = sha256_hex(script);
  for (const Claimed* c : job.runs) write_file_atomically(c->dir / "sbatch.sh", script);
  store.transaction("registering sbatch scripts", [&] {
    for (const Claimed* c : job.runs) store.put_artifact(c->id, {"sbatch", "sbatch.sh", sha});
  });
  for (size_t t = 0; t < job.runs.size(); ++t)
    store.set_slurm_job_id(job.runs[t]->id, job.runs[t]->attempt,
                           job.spec.array_size > 0 ? fmt::format("{}_{}", job.job_id, t) : job.job_id);
}

}  // namespace

// ---- submission ----

int slurm_submit(const Experiment& experiment, const RunnerOptions& runner, const SlurmOptions& options,
                 const SlurmTools& tools, std::ostream& log) {
  check_options(options, runner);
  tools.require();
  const fs::path db_dir = fs::absolute(runner.db).parent_path();
  const fs::path runs_root = fs::absolute(runner.runs_root.empty() ? db_dir / "runs" : fs::path(runner.runs_root));
  const fs::path jobs_parent = options.jobs_dir.empty() ? db_dir / "slurm" : fs::absolute(options.jobs_dir);
  SlurmJobSpec base;
  base.job_name = "ablate-" + sanitized(experiment.name);
  base.ablate_exe = fs::absolute(runner.ablate_exe).string();
  base.workdir = fs::current_path();
  base.dist_timeout_s = runner.dist_timeout_s;
  base.log_dir = jobs_parent / "x";
  base.array_size = 1;
  sbatch_script(base, options);  // options and paths that cannot be scripted fail before any claim
  base.array_size = 0;

  Store store(runner.db);
  store.upsert_planned(experiment.name, experiment.runs);
  // Slurm runs first (their heartbeats refreshed from squeue), then the local runners' leftovers.
  slurm_sync(store, tools, "", log);
  for (const LostRun& l : store.mark_lost_stale(runner.lease_s))
    log << fmt::format("run {} lost: {}\n", l.id, l.reason);

  const std::vector<Claimed> claimed = claim_for_slurm(store, experiment, runner, tools, runs_root, log);
  if (claimed.empty()) {
    const int evals = submit_evals(store, experiment, runner, options, tools, base, runs_root, jobs_parent, log);
    log << fmt::format("{}: no run to submit, {} evaluation(s) submitted\n", experiment.name, evals);
    return 0;
  }

  const fs::path jobs_dir = new_jobs_dir(jobs_parent, sanitized(experiment.name) + "-" + utc_stamp());
  base.log_dir = jobs_dir;
  std::vector<Job> jobs = group_into_jobs(claimed, base, jobs_dir);

  int submitted = 0;
  for (size_t ji = 0; ji < jobs.size(); ++ji) {
    Job& job = jobs[ji];
    const fs::path script_path = jobs_dir / (job.file_stem + ".sbatch");
    std::string script, failure;
    try {
      script = sbatch_script(job.spec, options);
      if (job.spec.array_size > 0) {
        std::string list;
        for (const Claimed* c : job.runs) list += slurm_list_line(c->dir, c->journal_offset);
        write_file_atomically(job.spec.list_file, list);
      }
      write_file_atomically(script_path, script);
      const std::vector<std::string> argv = {tools.sbatch, "--parsable", script_path.string()};
      const CommandResult r = run_command(argv);
      if (r.rc != 0) failure = command_failure(argv, r);
      else job.job_id = parse_sbatch_job_id(r.out);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!failure.empty()) {
      // This job and the ones not yet submitted: lost, so the next submission picks them up.
      for (size_t k = ji; k < jobs.size(); ++k)
        for (const Claimed* c : jobs[k].runs)
          store.finish(c->id, c->attempt, status_name(RunStatus::lost), "not submitted: " + failure);
      throw std::runtime_error(fmt::format("submitting {} to Slurm failed ({} run(s) submitted before): {}",
                                           script_path.string(), submitted, failure));
    }
    record_submission(store, job, script);
    const std::string& job_id = job.job_id;
    submitted += static_cast<int>(job.runs.size());
    if (job.spec.array_size > 0)
      log << fmt::format("submitted {} run(s) as Slurm job array {} (tasks 0-{}{}): {}\n", job.runs.size(), job_id,
                         job.runs.size() - 1, options.throttle > 0 ? fmt::format(", {} at once", options.throttle) : "",
                         script_path.string());
    else
      log << fmt::format("submitted run {} ({} ranks) as Slurm job {}: {}\n", job.runs[0]->id, job.spec.ntasks,
                         job_id, script_path.string());
  }
  const int evals = submit_evals(store, experiment, runner, options, tools, base, runs_root, jobs_parent, log);
  log << fmt::format("{}: {} run(s) and {} evaluation(s) submitted; `ablate status` shows their Slurm states, "
                     "`ablate sync` ingests their journals\n",
                     experiment.name, submitted, evals);
  return submitted;
}

// ---- reconciliation, status, cancel ----

SlurmSyncResult slurm_sync(Store& store, const SlurmTools& tools, const std::string& experiment,
                           std::ostream& log) {
  if (const std::vector<EvalTaskRow> evals = running_slurm_evals(store, experiment); !evals.empty() && !tools.squeue.empty())
    reconcile_evals(store, tools, evals, log);
  const std::vector<RunRow> rows = running_slurm_rows(store, experiment);
  if (rows.empty()) return {};
  if (tools.squeue.empty()) {
    // Journals still tell which runs finished; only the fate of the others stays open.
    SlurmSyncResult res;
    for (const RunRow& row : rows) {
      const IngestResult in = ingest_journal(store, row.id, row.run_dir);
      res.journal_lines += static_cast<int>(in.lines);
      res.finished += in.finish_changed_status;
    }
    log << "squeue is not on PATH: the Slurm job states of running runs were not checked\n";
    return res;
  }
  return reconcile(store, rows, query_slurm_jobs(tools, job_ids_of(rows)), log);
}

std::vector<SlurmRunStatus> slurm_status(Store& store, const Experiment& experiment, const SlurmTools& tools,
                                         std::ostream& log) {
  slurm_sync(store, tools, experiment.name, log);
  std::vector<SlurmRunStatus> out;
  std::vector<std::string> ids;
  for (const PlannedRun& r : experiment.runs) {
    const std::optional<RunRow> row = store.run(r.id);
    if (!row || row->slurm_job_id.empty()) continue;
    out.push_back({row->id, row->status, row->slurm_job_id, {}});
    ids.push_back(row->slurm_job_id);
  }
  if (tools.squeue.empty()) return out;
  const std::map<std::string, SlurmJobState> states = query_slurm_jobs(tools, ids);
  for (SlurmRunStatus& s : out) {
    const auto st = states.find(s.slurm_job_id);
    if (st != states.end()) s.job = st->second;
  }
  return out;
}

std::string format_slurm_status(const std::vector<SlurmRunStatus>& rows) {
  if (rows.empty()) return "no run of this experiment was submitted to Slurm\n";
  std::string s = fmt::format("{:<14} {:<9} {:<16} {:<14} {}\n", "run", "status", "slurm job", "slurm state",
                              "reason");
  for (const SlurmRunStatus& r : rows)
    s += fmt::format("{:<14} {:<9} {:<16} {:<14} {}\n", r.run_id, r.run_status, r.slurm_job_id,
                     r.job.state.empty() ? "(gone)" : r.job.state, r.job.reason == "None" ? "" : r.job.reason);
  return s;
}

int slurm_cancel(Store& store, const Experiment& experiment, const SlurmTools& tools, std::ostream& log) {
  tools.require();
  std::vector<RunRow> rows;
  for (const PlannedRun& r : experiment.runs) {
    std::optional<RunRow> row = store.run(r.id);
    if (row && !row->slurm_job_id.empty() && (status_of(*row) == RunStatus::running || status_of(*row) == RunStatus::lost))
      rows.push_back(std::move(*row));
  }
  const std::map<std::string, SlurmJobState> states = query_slurm_jobs(tools, job_ids_of(rows));
  std::vector<const RunRow*> live;
  for (const RunRow& r : rows) {
    const auto st = states.find(r.slurm_job_id);
    if (st != states.end() && !slurm_state_final(st->second.state)) live.push_back(&r);
  }
  for (size_t from = 0; from < live.size(); from += kIdsPerCall) {
    std::vector<std::string> argv = {tools.scancel};
    for (size_t i = from; i < std::min(live.size(), from + kIdsPerCall); ++i) argv.push_back(live[i]->slurm_job_id);
    const CommandResult r = run_command(argv);
    if (r.rc != 0) throw std::runtime_error("cancelling Slurm jobs failed: " + command_failure(argv, r));
  }
  int cancelled = 0;
  for (const RunRow* r : live) {
    if (status_of(*r) == RunStatus::running)
      store.finish(r->id, r->attempts, status_name(RunStatus::lost),
                   fmt::format("Slurm job {} cancelled by `ablate cancel`; resumes from its checkpoint on the "
                               "next `ablate run --backend slurm`",
                               r->slurm_job_id));
    log << fmt::format("run {}: Slurm job {} cancelled\n", r->id, r->slurm_job_id);
    ++cancelled;
  }
  log << fmt::format("{}: {} Slurm job(s) cancelled\n", experiment.name, cancelled);
  return cancelled;
}

}  // namespace ablate
