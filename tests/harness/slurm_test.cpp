// Slurm backend without a Slurm cluster: the generated sbatch scripts are executed with bash the
// way slurmd would (SLURM_* variables set, fake srun/scontrol on PATH, a fake worker), and the
// submission / reconciliation / cancel flow runs against fake sbatch, squeue, sacct and scancel
// programs that record their arguments and print what the test dictates. Parsing is checked on
// output copied from a real Slurm 22.05 (squeue, sacct, sbatch --parsable). The real cluster path
// is tests/scripts/slurm_e2e.sh and slurm_requeue.sh.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "harness/check.h"
#include "harness/env_info.h"
#include "harness/hash.h"
#include "harness/journal.h"
#include "harness/slurm.h"
#include "harness/store.h"
#include "tests/harness/run_fixtures.h"
#include "tests/support/catch.h"
#include "tests/support/errors.h"

extern char** environ;

using namespace ablate;
using ablate::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_executable(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
  ::chmod(p.c_str(), 0755);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const std::string& l : lines_of(text))
    if (l == line) return true;
  return false;
}

int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Fake Slurm programs in <tmp>/bin. Each appends its arguments to <tmp>/<name>.calls; squeue prints
// <tmp>/squeue.out (or fails like Slurm on unknown ids when that file is absent), sbatch prints
// job ids 100, 101, ... (or fails when <tmp>/sbatch.fail exists), sacct fails like a cluster without
// accounting, scontrol knows `show hostnames` and records `requeue`, srun starts its command
// SLURM_NTASKS times with SLURM_PROCID / SLURM_LOCALID (2 tasks per node) set.
struct FakeSlurm {
  explicit FakeSlurm(const TempDir& tmp) : dir(tmp.path()), bin(tmp / "bin") {
    fs::create_directories(bin);
    const std::string d = dir.string();
    write_executable(bin / "sbatch", "#!/bin/bash\necho \"$@\" >> " + d + "/sbatch.calls\n"
                     "[ -f " + d + "/sbatch.fail ] && { echo 'sbatch: error: invalid partition specified: nope' >&2; exit 1; }\n"
                     "n=$(cat " + d + "/sbatch.next 2>/dev/null || echo 100)\n"
                     "echo $((n + 1)) > " + d + "/sbatch.next\necho \"$n;cluster\"\n");
    write_executable(bin / "squeue", "#!/bin/bash\necho \"$@\" >> " + d + "/squeue.calls\n"
                     "[ -f " + d + "/squeue.out ] || { echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1; }\n"
                     "cat " + d + "/squeue.out\n");
    write_executable(bin / "sacct", "#!/bin/bash\necho 'Slurm accounting storage is disabled' >&2\nexit 1\n");
    write_executable(bin / "scancel", "#!/bin/bash\necho \"$@\" >> " + d + "/scancel.calls\n");
    write_executable(bin / "scontrol", "#!/bin/bash\necho \"$@\" >> " + d + "/scontrol.calls\n"
                     "[ \"$1 $2\" = 'show hostnames' ] && printf 'node7\\nnode8\\n'\nexit 0\n");
    write_executable(bin / "srun", "#!/bin/bash\nfor ((p = 0; p < SLURM_NTASKS; p++)); do\n"
                     "  SLURM_PROCID=$p SLURM_LOCALID=$((p % 2)) \"${@:3}\" &\ndone\nwait\n");
    tools = {(bin / "sbatch").string(), (bin / "squeue").string(), (bin / "sacct").string(),
             (bin / "scancel").string(), (bin / "scontrol").string()};
  }
  void squeue_says(const std::string& out) const { std::ofstream(dir / "squeue.out") << out; }
  std::string calls(const std::string& tool) const { return slurp(dir / (tool + ".calls")); }

  fs::path dir, bin;
  SlurmTools tools;
};

// Starts `bash script` in its own process group with `vars` added to the environment and the fake
// programs first on PATH, as slurmd would start a batch step.
pid_t start_script(const fs::path& script, const FakeSlurm& fake, const std::map<std::string, std::string>& vars) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (std::string_view(*e).rfind("PATH=", 0) != 0) env.emplace_back(*e);
  const char* path = std::getenv("PATH");
  env.push_back("PATH=" + fake.bin.string() + ":" + (path ? path : "/usr/bin:/bin"));
  for (const auto& [k, v] : vars) env.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string bash = "/bin/bash", file = script.string();
  char* argv[] = {bash.data(), file.data(), nullptr};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::execve(argv[0], argv, envp.data());
    ::_exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int run_script(const fs::path& script, const FakeSlurm& fake, const std::map<std::string, std::string>& vars) {
  return wait_exit(start_script(script, fake, vars));
}

bool wait_for_file(const fs::path& p, double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!fs::exists(p)) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// Whether process `pid` has a handler for `sig` (SigCgt in /proc/<pid>/status), polled for up to
// `seconds`: the batch script installs its traps just after starting the worker.
bool wait_for_trap(pid_t pid, int sig, double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  do {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string l; std::getline(in, l);)
      if (l.rfind("SigCgt:", 0) == 0 && (std::stoull(l.substr(7), nullptr, 16) >> (sig - 1) & 1)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (std::chrono::steady_clock::now() < until);
  return false;
}

SlurmOptions gpu_options() {
  SlurmOptions o;
  o.partition = "gpu";
  o.time = "01:00:00";
  o.account = "proj42";
  o.throttle = 2;
  o.gpus_per_task = 1;
  o.cpus_per_task = 8;
  o.extra_sbatch = {"--mem=64G", "--qos=high"};
  return o;
}

// A job array over `dirs` (list file written) whose worker is `worker`.
SlurmJobSpec array_spec(const TempDir& tmp, const std::vector<fs::path>& dirs, const std::string& worker,
                        const std::vector<int64_t>& offsets = {}) {
  SlurmJobSpec j;
  j.job_name = "ablate-test";
  j.ablate_exe = worker;
  j.workdir = tmp.path();
  j.log_dir = tmp.path();
  j.array_size = static_cast<int>(dirs.size());
  j.list_file = tmp / "runs.list";
  std::string list;
  for (size_t i = 0; i < dirs.size(); ++i) {
    fs::create_directories(dirs[i]);
    list += slurm_list_line(dirs[i], offsets.empty() ? 0 : offsets[i]);
  }
  std::ofstream(j.list_file) << list;
  return j;
}

// A worker that records its arguments and environment in <run dir>/seen and exits 0.
std::string recording_worker(const TempDir& tmp) {
  const fs::path p = tmp / "recording_worker.sh";
  write_executable(p, "#!/bin/bash\necho \"$* RANK=${RANK:-} LOCAL_RANK=${LOCAL_RANK:-} WORLD_SIZE=${WORLD_SIZE:-} "
                      "MASTER_ADDR=${MASTER_ADDR:-} MASTER_PORT=${MASTER_PORT:-}\" >> \"$3/seen\"\n");
  return p.string();
}

}  // namespace

TEST_CASE("slurm: array script options, and task i runs the folder on line i + 1", "[slurm]") {
  TempDir tmp("slurm");
  FakeSlurm fake(tmp);
  const std::vector<fs::path> dirs = {tmp / "runs" / "a", tmp / "runs" / "b", tmp / "runs" / "c"};
  const SlurmJobSpec job = array_spec(tmp, dirs, recording_worker(tmp));
  const std::string script = sbatch_script(job, gpu_options());
  CHECK(script.rfind("#!/bin/bash\n", 0) == 0);
  for (const char* l :
       {"#SBATCH --job-name=ablate-test", "#SBATCH --array=0-2%2", "#SBATCH --ntasks=1", "#SBATCH --gpus-per-task=1",
        "#SBATCH --cpus-per-task=8", "#SBATCH --partition=gpu", "#SBATCH --time=01:00:00", "#SBATCH --account=proj42",
        "#SBATCH --requeue", "#SBATCH --signal=B:USR1@120", "#SBATCH --open-mode=append", "#SBATCH --mem=64G",
        "#SBATCH --qos=high"})
    CHECK(has_line(script, l));
  CHECK(has_line(script, "#SBATCH --output=" + tmp.path().string() + "/%A_%a.out"));
  CHECK(has_line(script, "#SBATCH --chdir=" + tmp.path().string()));
  // sbatch reads options only up to the first command: every #SBATCH line precedes it.
  const std::vector<std::string> ls = lines_of(script);
  size_t last_sbatch = 0, first_command = ls.size();
  for (size_t i = 1; i < ls.size(); ++i) {
    if (ls[i].rfind("#SBATCH ", 0) == 0) last_sbatch = i;
    else if (!ls[i].empty() && ls[i][0] != '#' && first_command == ls.size()) first_command = i;
  }
  CHECK(last_sbatch < first_command);
  CHECK(script.find("srun") == std::string::npos);

  const fs::path path = tmp / "job.sbatch";
  std::ofstream(path) << script;
  CHECK(run_script(path, fake, {{"SLURM_ARRAY_JOB_ID", "77"}, {"SLURM_ARRAY_TASK_ID", "1"}, {"SLURM_JOB_ID", "79"}}) == 0);
  CHECK_FALSE(fs::exists(dirs[0] / "seen"));
  CHECK_FALSE(fs::exists(dirs[2] / "seen"));
  const std::vector<std::string> seen = lines_of(slurp(dirs[1] / "seen"));
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].rfind("worker --run-dir " + dirs[1].string() + " RANK= ", 0) == 0);
  const std::string log = slurp(dirs[1] / "worker.log");
  CHECK(log.find("job 77_1 on ") != std::string::npos);
  CHECK(log.find("worker exit code 0") != std::string::npos);

  // A task beyond the list fails loudly instead of running something else.
  CHECK(run_script(path, fake, {{"SLURM_ARRAY_JOB_ID", "77"}, {"SLURM_ARRAY_TASK_ID", "3"}, {"SLURM_JOB_ID", "81"}}) == 2);

  // Without throttle and GPUs: no %N, no GPU request.
  SlurmOptions cpu;
  cpu.gpus_per_task = 0;
  const std::string plain = sbatch_script(job, cpu);
  CHECK(has_line(plain, "#SBATCH --array=0-2"));
  CHECK(plain.find("--gpus-per-task") == std::string::npos);
  CHECK(plain.find("--partition") == std::string::npos);
}

TEST_CASE("slurm: multi-GPU run: one srun task per rank with rank, world size and rendezvous", "[slurm]") {
  TempDir tmp("slurm");
  FakeSlurm fake(tmp);
  SlurmJobSpec job;
  job.job_name = "ablate-ddp";
  job.ablate_exe = recording_worker(tmp);
  job.workdir = tmp.path();
  job.log_dir = tmp.path();
  job.run_dir = tmp / "runs" / "big";
  job.ntasks = 4;
  job.dist_timeout_s = 45;
  fs::create_directories(job.run_dir);
  const std::string script = sbatch_script(job, gpu_options());
  CHECK(has_line(script, "#SBATCH --ntasks=4"));
  // The ranks' collective timeout, and srun's grace after one rank ends: the timeout plus 60 s.
  CHECK(has_line(script, "export ABLATE_DIST_TIMEOUT_S=45"));
  CHECK(script.find("srun --kill-on-bad-exit=0 --wait=105 ") != std::string::npos);
  CHECK(has_line(script, "#SBATCH --gpus-per-task=1"));
  CHECK(script.find("--array") == std::string::npos);
  CHECK(has_line(script, "#SBATCH --output=" + tmp.path().string() + "/%j.out"));

  const fs::path path = tmp / "job.sbatch";
  std::ofstream(path) << script;
  CHECK(run_script(path, fake, {{"SLURM_JOB_ID", "12345"}, {"SLURM_NTASKS", "4"}, {"SLURM_JOB_NODELIST", "node[7-8]"}}) == 0);
  std::vector<std::string> seen = lines_of(slurp(job.run_dir / "seen"));
  std::sort(seen.begin(), seen.end());
  REQUIRE(seen.size() == 4);
  for (int r = 0; r < 4; ++r)
    CHECK(seen[r] == fmt::format("worker --run-dir {} RANK={} LOCAL_RANK={} WORLD_SIZE=4 MASTER_ADDR=node7 "
                                 "MASTER_PORT={}",
                                 job.run_dir.string(), r, r % 2, 20000 + 12345 % 20000));
  CHECK(fake.calls("scontrol").find("show hostnames node[7-8]") != std::string::npos);
}

TEST_CASE("slurm: USR1 before the time limit requeues the task; SIGTERM (preemption) does not", "[slurm]") {
  TempDir tmp("slurm");
  FakeSlurm fake(tmp);
  // Checkpoints and exits 99 on USR1 or TERM, like the trainer; otherwise trains for 20 s (the
  // checks below would then fail on the missing checkpoint).
  const fs::path worker = tmp / "ckpt_worker.sh";
  write_executable(worker, "#!/bin/bash\nd=$3\nstop() { echo \"$1\" > \"$d/ckpt\"; exit 99; }\n"
                           "trap 'stop usr1' USR1\ntrap 'stop term' TERM\ntouch \"$d/started\"\n"
                           "for ((i = 0; i < 400; i++)); do sleep 0.05; done\n");
  const std::vector<fs::path> dirs = {tmp / "runs" / "a"};
  const fs::path path = tmp / "job.sbatch";
  std::ofstream(path) << sbatch_script(array_spec(tmp, dirs, worker.string()), gpu_options());
  const std::map<std::string, std::string> vars = {{"SLURM_ARRAY_JOB_ID", "77"}, {"SLURM_ARRAY_TASK_ID", "0"},
                                                   {"SLURM_JOB_ID", "78"}};

  pid_t pid = start_script(path, fake, vars);
  REQUIRE(wait_for_file(dirs[0] / "started", 10));
  REQUIRE(wait_for_trap(pid, SIGUSR1, 10));
  ::kill(pid, SIGUSR1);  // --signal=B:USR1: the batch shell alone
  wait_exit(pid);  // not checked: bash may lose the status of a child ending during a trap
  CHECK(slurp(dirs[0] / "ckpt") == "usr1\n");
  CHECK(has_line(fake.calls("scontrol"), "requeue 77_0"));

  fs::remove(dirs[0] / "started");
  fs::remove(fake.dir / "scontrol.calls");
  pid = start_script(path, fake, vars);
  REQUIRE(wait_for_file(dirs[0] / "started", 10));
  REQUIRE(wait_for_trap(pid, SIGTERM, 10));
  ::kill(-pid, SIGTERM);  // preemption / scancel: every process of the job
  wait_exit(pid);
  CHECK(slurp(dirs[0] / "ckpt") == "term\n");
  CHECK_FALSE(fs::exists(fake.dir / "scontrol.calls"));  // Slurm requeues (or cancels) by itself
}

TEST_CASE("slurm: a task whose run finished since submission does not run it again", "[slurm]") {
  TempDir tmp("slurm");
  FakeSlurm fake(tmp);
  const std::vector<fs::path> dirs = {tmp / "runs" / "old", tmp / "runs" / "new"};
  fs::create_directories(dirs[0]);
  fs::create_directories(dirs[1]);
  // "old" failed before it was resubmitted (its finish line precedes the offset); "new" finished
  // after its submission, then was requeued.
  const std::string failed = R"({"seq":1,"t":0,"type":"finish","status":"failed","exit_reason":"x","step":2})" "\n";
  std::ofstream(dirs[0] / "journal.jsonl") << failed;
  const std::string opened = R"({"seq":1,"t":0,"type":"open","pid":1,"host":"h"})" "\n";
  std::ofstream(dirs[1] / "journal.jsonl") << opened << failed;
  const auto open_line = static_cast<int64_t>(opened.size());
  const fs::path path = tmp / "job.sbatch";
  std::ofstream(path) << sbatch_script(
      array_spec(tmp, dirs, recording_worker(tmp), {static_cast<int64_t>(failed.size()), open_line}), SlurmOptions{});
  for (int task = 0; task < 2; ++task)
    CHECK(run_script(path, fake, {{"SLURM_ARRAY_JOB_ID", "5"}, {"SLURM_ARRAY_TASK_ID", std::to_string(task)},
                                  {"SLURM_JOB_ID", "9"}}) == 0);
  CHECK(fs::exists(dirs[0] / "seen"));
  CHECK_FALSE(fs::exists(dirs[1] / "seen"));
  CHECK(slurp(dirs[1] / "worker.log").find("has finished since its submission") != std::string::npos);
}

TEST_CASE("slurm: parsing sbatch, squeue and sacct output", "[slurm]") {
  CHECK(parse_sbatch_job_id("4242\n") == "4242");
  CHECK(parse_sbatch_job_id("4242;cluster\n") == "4242");
  CHECK_THROWS_AS(parse_sbatch_job_id("Submitted batch job 5\n"), std::runtime_error);
  CHECK_THROWS_AS(parse_sbatch_job_id(""), std::runtime_error);

  // squeue -h -t all -o '%i|%T|%r' from Slurm 22.05 (without -r the pending tasks collapse).
  const auto q = parse_slurm_jobs("1_[1-3%1]|PENDING|JobArrayTaskLimit\n1_0|RUNNING|None\n"
                                  "4|PENDING|BeginTime\n7_[2,5-6]|CANCELLED|None\ngarbage line\n|X|\n");
  CHECK(q.size() == 8);
  for (const char* id : {"1_1", "1_2", "1_3"}) {
    REQUIRE(q.count(id));
    CHECK(q.at(id).state == "PENDING");
    CHECK(q.at(id).reason == "JobArrayTaskLimit");
  }
  CHECK(q.at("1_0").state == "RUNNING");
  CHECK(q.at("4").reason == "BeginTime");
  CHECK(q.count("7_2") + q.count("7_5") + q.count("7_6") == 3);
  CHECK(q.count("7_3") == 0);

  // sacct -n -P -X -o JobID,State,ExitCode
  const auto a = parse_slurm_jobs("5|CANCELLED by 0|0:15\n6_1|COMPLETED|0:0\n6_2|FAILED|3:0\n");
  CHECK(a.at("5").state == "CANCELLED");
  CHECK(a.at("5").reason == "0:15");
  CHECK(a.at("6_2").state == "FAILED");

  CHECK(slurm_state_final("COMPLETED"));
  CHECK(slurm_state_final("PREEMPTED"));
  CHECK_FALSE(slurm_state_final("PENDING"));
  CHECK_FALSE(slurm_state_final("COMPLETING"));  // the worker may still be writing
  CHECK_FALSE(slurm_state_final("REQUEUE_HOLD"));
}

TEST_CASE("slurm: options that cannot be written into #SBATCH lines are rejected", "[slurm]") {
  TempDir tmp("slurm");
  SlurmJobSpec j = array_spec(tmp, {tmp / "r"}, "/bin/true");
  SlurmOptions o;
  o.partition = "gpu a100";
  CHECK_THROWS_AS(sbatch_script(j, o), ConfigError);
  o.partition = "";
  j.log_dir = tmp / "100%";
  CHECK_THROWS_AS(sbatch_script(j, o), ConfigError);
  j.log_dir = tmp.path();
  o.extra_sbatch = {"--mem=1G\nrm -rf /"};
  CHECK_THROWS_AS(sbatch_script(j, o), ConfigError);

  RunnerOptions r;
  r.db = (tmp / "db.sqlite").string();
  r.ablate_exe = "/bin/true";
  SlurmOptions neg;
  neg.throttle = -1;
  std::ostringstream log;
  CHECK_THROWS_AS(slurm_submit(test::experiment_of("x", {0}), r, neg, SlurmTools{}, log), ConfigError);
  CHECK_THROWS_AS(slurm_submit(test::experiment_of("x", {0}), r, SlurmOptions{}, SlurmTools{}, log),
                  std::runtime_error);  // no sbatch on "PATH"
  FakeSlurm fake(tmp);
  SlurmOptions spaced;
  spaced.account = "my account";
  CHECK_THROWS_AS(slurm_submit(test::experiment_of("x", {0}), r, spaced, fake.tools, log), ConfigError);
  RunnerOptions no_wait = r;  // the runner's own option checks apply to Slurm jobs too
  no_wait.dist_timeout_s = 0;
  const ConfigError e =
      error_of([&] { slurm_submit(test::experiment_of("x", {0}), no_wait, SlurmOptions{}, fake.tools, log); });
  CHECK(e.key == "--dist-timeout");
  CHECK_FALSE(fs::exists(tmp / "db.sqlite"));  // nothing claimed, nothing created
  CHECK_FALSE(fs::exists(fake.dir / "sbatch.calls"));
}

TEST_CASE("slurm: submit, execute tasks, sync, resubmit, status and cancel against fake Slurm", "[slurm]") {
  TempDir tmp("slurm");
  FakeSlurm fake(tmp);
  // Seed 1 crashes (exit 3) and seed 2 is killed (exit 137) before a finish line; the rest finish.
  const fs::path worker = tmp / "worker.sh";
  write_executable(worker, "#!/bin/bash\nd=$3; j=$d/journal.jsonl\n"
                           "seed=$(grep -o '\"seed\":[0-9]*' \"$d/config.json\" | head -1 | cut -d: -f2)\n"
                           "seq=0; [ -f \"$j\" ] && seq=$(grep -c '' \"$j\")\n"
                           "echo '{\"seq\":'$((seq+1))',\"t\":0,\"type\":\"open\",\"pid\":'$$',\"host\":\"n1\"}' >> \"$j\"\n"
                           "[ \"$seed\" = 1 ] && { echo boom >&2; exit 3; }\n[ \"$seed\" = 2 ] && exit 137\n"
                           "echo '{\"seq\":'$((seq+2))',\"t\":0,\"type\":\"finish\",\"status\":\"done\",\"exit_reason\":\"\",\"step\":4}' >> \"$j\"\n");
  RunnerOptions r;
  r.db = (tmp / "results" / "db.sqlite").string();
  r.ablate_exe = worker.string();
  SlurmOptions o;
  o.throttle = 2;
  o.gpus_per_task = 0;
  Experiment e = test::experiment_of("sweep", {0, 1, 2});
  e.runs.push_back(test::planned_run(3, /*gpus=*/2));
  std::ostringstream log;

  REQUIRE(slurm_submit(e, r, o, fake.tools, log) == 4);
  CHECK(count_of(fake.calls("sbatch"), "--parsable") == 2);  // one array, one 2-rank job
  std::vector<RunRow> rows;
  {
    Store store(r.db);
    for (const PlannedRun& p : e.runs) rows.push_back(*store.run(p.id));
    // The multi-task job is submitted first, then the array of the other three in experiment order.
    CHECK(rows[3].slurm_job_id == "100");
    for (int i = 0; i < 3; ++i) CHECK(rows[i].slurm_job_id == fmt::format("101_{}", i));
    for (const RunRow& row : rows) {
      CHECK(row.status == "running");
      CHECK(row.attempts == 1);
      CHECK(row.host.rfind("slurm:", 0) == 0);
      CHECK(row.run_dir == (fs::absolute(tmp / "results" / "runs") / row.id).string());
      const std::vector<ArtifactRow> arts = store.artifacts(row.id);
      REQUIRE(arts.size() == 1);
      CHECK(arts[0].kind == "sbatch");
      CHECK(arts[0].sha256 == sha256_hex(slurp(fs::path(row.run_dir) / arts[0].path)));
      CHECK(fs::exists(fs::path(row.run_dir) / "config.json"));
    }
  }
  // The list file maps task i to run i; every array run holds the array's script.
  const std::string array_script = slurp(fs::path(rows[0].run_dir) / "sbatch.sh");
  CHECK(has_line(array_script, "#SBATCH --array=0-2%2"));
  CHECK(slurp(fs::path(rows[2].run_dir) / "sbatch.sh") == array_script);
  const fs::path jobs_dir = fs::path(lines_of(fake.calls("sbatch")).back().substr(11)).parent_path();
  CHECK(jobs_dir.parent_path() == fs::absolute(tmp / "results" / "slurm"));
  const std::vector<std::string> list = lines_of(slurp(jobs_dir / "array-0.list"));
  REQUIRE(list.size() == 3);
  for (int i = 0; i < 3; ++i) CHECK(list[i] == rows[i].run_dir + "\t0");
  CHECK(has_line(slurp(fs::path(rows[3].run_dir) / "sbatch.sh"), "#SBATCH --ntasks=2"));

  // Slurm runs the tasks (the multi-task job through the fake srun, ranks writing one journal).
  for (int i = 0; i < 3; ++i)
    run_script(jobs_dir / "array-0.sbatch", fake,
               {{"SLURM_ARRAY_JOB_ID", "101"}, {"SLURM_ARRAY_TASK_ID", std::to_string(i)}, {"SLURM_JOB_ID", "20"}});
  run_script(jobs_dir / (rows[3].id + ".sbatch"), fake,
             {{"SLURM_JOB_ID", "100"}, {"SLURM_NTASKS", "1"}, {"SLURM_JOB_NODELIST", "n1"}});
  fake.squeue_says("100|COMPLETED|None\n101_0|COMPLETED|None\n101_1|FAILED|NonZeroExitCode\n101_2|RUNNING|None\n");
  {
    Store store(r.db);
    const SlurmSyncResult s = slurm_sync(store, fake.tools, "", log);
    CHECK(s.finished == 2);
    CHECK(s.failed == 1);
    CHECK(s.lost == 0);
    CHECK(store.run(rows[0].id)->status == "done");
    CHECK(store.run(rows[3].id)->status == "done");
    const RunRow crashed = *store.run(rows[1].id);
    CHECK(crashed.status == "failed");
    CHECK(crashed.exit_reason.find("Slurm job 101_1 ended FAILED (NonZeroExitCode)") == 0);
    CHECK(crashed.exit_reason.find(rows[1].run_dir + "/worker.log") != std::string::npos);
    CHECK(store.run(rows[2].id)->status == "running");  // Slurm still runs it
    CHECK(*store.run(rows[2].id)->heartbeat_at >= *rows[2].heartbeat_at);
  }
  const std::string first_query = lines_of(fake.calls("squeue")).at(0);
  CHECK(first_query.rfind("-h -r -t all -o %i|%T|%r -j ", 0) == 0);
  for (const char* id : {"100", "101_0", "101_1", "101_2"}) CHECK(count_of(first_query, id) == 1);

  // 101_2 vanishes from Slurm without a finish line: lost, and the next submission takes it
  // (and only it: the failed run needs --rerun failed).
  fake.squeue_says("100|COMPLETED|None\n101_0|COMPLETED|None\n101_1|FAILED|NonZeroExitCode\n");
  REQUIRE(slurm_submit(e, r, o, fake.tools, log) == 1);
  {
    Store store(r.db);
    const RunRow again = *store.run(rows[2].id);
    CHECK(again.status == "running");
    CHECK(again.attempts == 2);
    CHECK(again.slurm_job_id == "102_0");
    CHECK(store.run(rows[1].id)->status == "failed");
    CHECK(log.str().find("Slurm job 101_2 is no longer known to Slurm") != std::string::npos);

    fake.squeue_says("102_0|PENDING|Priority\n");
    const std::vector<SlurmRunStatus> st = slurm_status(store, e, fake.tools, log);
    REQUIRE(st.size() == 4);
    CHECK(st[2].slurm_job_id == "102_0");
    CHECK(st[2].job.state == "PENDING");
    CHECK(st[0].job.state == "");  // Slurm has forgotten it
    const std::string table = format_slurm_status(st);
    CHECK(table.find(rows[2].id) != std::string::npos);
    CHECK(table.find("Priority") != std::string::npos);

    // Cancel: scancel of the live job only; the run becomes lost.
    CHECK(slurm_cancel(store, e, fake.tools, log) == 1);
    CHECK(lines_of(fake.calls("scancel")) == std::vector<std::string>{"102_0"});
    CHECK(store.run(rows[2].id)->status == "lost");
  }
  // Slurm still holds the cancelled task (finishing its checkpoint): not submitted again yet.
  fake.squeue_says("102_0|COMPLETING|None\n");
  CHECK(slurm_submit(e, r, o, fake.tools, log) == 0);
  CHECK(log.str().find("previous Slurm job 102_0 is still COMPLETING") != std::string::npos);

  // --rerun failed brings the crashed run back; sbatch failing leaves the claimed runs lost.
  fake.squeue_says("");
  std::ofstream(fake.dir / "sbatch.fail") << "";
  r.rerun = "failed";
  std::string error;
  try {
    slurm_submit(e, r, o, fake.tools, log);
  } catch (const std::runtime_error& x) {
    error = x.what();
  }
  CHECK(error.find("invalid partition specified") != std::string::npos);
  Store store(r.db);
  CHECK(store.run(rows[1].id)->status == "lost");
  CHECK(store.run(rows[1].id)->exit_reason.find("not submitted: `") == 0);
  CHECK(store.run(rows[2].id)->status == "lost");
  CHECK(store.run(rows[0].id)->status == "done");
}

TEST_CASE("slurm: submitting beside a working local runner takes only the runs it does not hold",
          "[slurm][concurrent]") {
  TempDir tmp("slurm");
  FakeSlurm fake(tmp);
  const fs::path worker = tmp / "worker.sh";  // every launch journals an open line; done after 0.4 s
  write_executable(worker, "#!/bin/bash\nd=$3; j=$d/journal.jsonl\n"
                           "seq=0; [ -f \"$j\" ] && seq=$(grep -c '' \"$j\")\n"
                           "echo '{\"seq\":'$((seq+1))',\"t\":0,\"type\":\"open\",\"pid\":'$$',\"host\":\"n1\"}' >> \"$j\"\n"
                           "sleep 0.4\n"
                           "echo '{\"seq\":'$((seq+2))',\"t\":0,\"type\":\"finish\",\"status\":\"done\",\"exit_reason\":\"\",\"step\":4}' >> \"$j\"\n");
  RunnerOptions r;
  r.db = (tmp / "results" / "db.sqlite").string();
  r.ablate_exe = worker.string();
  r.jobs = 1;
  SlurmOptions o;
  o.gpus_per_task = 0;
  const Experiment e = test::experiment_of("shared", {0, 10, 20, 30, 40, 50});

  const fs::path runner_log = tmp / "runner.log";
  const pid_t runner = ::fork();
  REQUIRE(runner >= 0);
  if (runner == 0) {
    const int fd = ::open(runner_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, STDERR_FILENO);
    int rc = 2;
    try {
      rc = run_experiment(e, r);
    } catch (const std::exception& x) {
      std::fprintf(stderr, "error: %s\n", x.what());
    }
    std::fflush(stderr);
    ::_exit(rc);
  }
  // Submit once the local runner has launched its first worker.
  auto launched_locally = [&](Store& store) {
    std::vector<std::string> ids;
    for (const PlannedRun& p : e.runs) {
      const std::optional<RunRow> row = store.run(p.id);
      if (row && row->host == host_name()) ids.push_back(p.id);
    }
    return ids;
  };
  for (int i = 0; i < 500; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!fs::exists(r.db)) continue;
    Store store(r.db);
    if (!launched_locally(store).empty()) break;
  }
  std::ostringstream log;
  const int submitted = slurm_submit(e, r, o, fake.tools, log);
  INFO(log.str());
  CHECK(submitted >= 1);
  CHECK(log.str().find(fmt::format("is running ({}): not submitted", host_name())) != std::string::npos);

  // Slurm runs the array's tasks.
  const fs::path jobs_dir = fs::path(lines_of(fake.calls("sbatch")).back().substr(11)).parent_path();
  for (int t = 0; t < submitted; ++t)
    run_script(jobs_dir / "array-0.sbatch", fake,
               {{"SLURM_ARRAY_JOB_ID", "100"}, {"SLURM_ARRAY_TASK_ID", std::to_string(t)}, {"SLURM_JOB_ID", "20"}});
  int status = 0;
  REQUIRE(::waitpid(runner, &status, 0) == runner);
  INFO(slurp(runner_log));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);  // the runs held by Slurm jobs were skipped, not waited for
  CHECK(slurp(runner_log).find("SIGKILL") == std::string::npos);
  CHECK(count_of(slurp(runner_log), "is running as Slurm job") >= 1);

  std::string squeue;
  for (int t = 0; t < submitted; ++t) squeue += fmt::format("100_{}|COMPLETED|None\n", t);
  fake.squeue_says(squeue);
  Store store(r.db);
  slurm_sync(store, fake.tools, "", log);
  const int local = static_cast<int>(launched_locally(store).size());
  CHECK(local + submitted == static_cast<int>(e.runs.size()));  // each run taken by exactly one of them
  for (const PlannedRun& p : e.runs) {
    const RunRow row = *store.run(p.id);
    INFO(row.id << " " << row.host << " " << row.exit_reason);
    CHECK(row.status == "done");
    CHECK(row.attempts == 1);
    const std::string journal = slurp(journal_path(row.run_dir));
    CHECK(count_of(journal, R"("type":"open")") == 1);  // one worker launch
    CHECK(count_of(journal, R"("type":"finish")") == 1);
  }
}

TEST_CASE("slurm: evaluations are a job array per run, after its pre-training job", "[slurm]") {
  TempDir tmp("slurm");
  FakeSlurm fake(tmp);
  // Pre-training: finish done. Evaluation (worker --eval DIR): one result, then finish done.
  const fs::path worker = tmp / "worker.sh";
  write_executable(worker, "#!/bin/bash\nd=$3; j=$d/journal.jsonl\n"
                           "echo '{\"seq\":1,\"t\":0,\"type\":\"open\",\"pid\":'$$',\"host\":\"n1\"}' >> \"$j\"\n"
                           "[ \"$2\" = --eval ] && echo '{\"seq\":2,\"t\":0,\"type\":\"eval\",\"protocol\":\"knn\",\"dataset\":\"x\","
                           "\"scale\":1,\"metric\":\"top1\",\"value\":0.5}' >> \"$j\"\n"
                           "echo '{\"seq\":3,\"t\":0,\"type\":\"finish\",\"status\":\"done\",\"exit_reason\":\"\",\"step\":0}' >> \"$j\"\n");
  RunnerOptions r;
  r.db = (tmp / "results" / "db.sqlite").string();
  r.ablate_exe = worker.string();
  SlurmOptions o;
  o.gpus_per_task = 0;
  Experiment e = test::experiment_of("ev", {0});
  EvalConfig knn;
  knn.scales = {0.5, 1.0};
  e.runs[0].evals = {knn};
  const std::vector<EvalTask> tasks = eval_tasks_of(e.runs[0]);
  REQUIRE(tasks.size() == 2);
  std::ostringstream log;

  REQUIRE(slurm_submit(e, r, o, fake.tools, log) == 1);
  const std::vector<std::string> sbatch = lines_of(fake.calls("sbatch"));
  REQUIRE(sbatch.size() == 2);  // the run's array (job 100), then its evaluations' (job 101)
  const std::string eval_script = slurp(sbatch[1].substr(11));
  CHECK(has_line(eval_script, "#SBATCH --dependency=afterok:100_0"));
  CHECK(has_line(eval_script, "#SBATCH --array=0-1"));
  CHECK(eval_script.find(" worker --eval \"$run_dir\"") != std::string::npos);
  {
    Store store(r.db);
    for (size_t i = 0; i < tasks.size(); ++i) {
      const EvalTaskRow t = *store.eval_task(tasks[i].id);
      CHECK(t.status == "running");
      CHECK(t.slurm_job_id == fmt::format("101_{}", i));
      CHECK(fs::exists(fs::path(t.run_dir) / "eval.json"));
    }
  }
  // Task 0 runs; task 1 waits on a dependency Slurm says can never be satisfied.
  run_script(sbatch[1].substr(11), fake, {{"SLURM_ARRAY_JOB_ID", "101"}, {"SLURM_ARRAY_TASK_ID", "0"}, {"SLURM_JOB_ID", "21"}});
  fake.squeue_says("100_0|RUNNING|None\n101_0|COMPLETED|None\n101_1|PENDING|DependencyNeverSatisfied\n");
  {
    Store store(r.db);
    slurm_sync(store, fake.tools, "", log);
    CHECK(store.eval_task(tasks[0].id)->status == "done");
    const std::vector<EvalRow> evals = store.evals(e.runs[0].id);
    REQUIRE(evals.size() == 1);
    CHECK(evals[0].scale == 0.5);
    CHECK(evals[0].value == 0.5);
    CHECK(store.eval_task(tasks[1].id)->status == "lost");
    CHECK(lines_of(fake.calls("scancel")) == std::vector<std::string>{"101_1"});
  }
  // Once the run is done, the next submission re-submits the lost evaluation without a dependency.
  fake.squeue_says("100_0|COMPLETED|None\n");
  run_script(fs::path(sbatch[0].substr(11)), fake, {{"SLURM_ARRAY_JOB_ID", "100"}, {"SLURM_ARRAY_TASK_ID", "0"}, {"SLURM_JOB_ID", "20"}});
  CHECK(slurm_submit(e, r, o, fake.tools, log) == 0);
  const std::vector<std::string> again = lines_of(fake.calls("sbatch"));
  REQUIRE(again.size() == 3);
  const std::string resubmitted = slurp(again[2].substr(11));
  CHECK(resubmitted.find("--dependency") == std::string::npos);
  CHECK(has_line(resubmitted, "#SBATCH --array=0-0"));
  Store store(r.db);
  CHECK(store.eval_task(tasks[1].id)->attempts == 2);
}
