// The per-run journal (run_dir/journal.jsonl): the only channel from a worker process to the
// results database. Workers never open the database: they may run on other machines (Slurm tasks
// on NFS) and may be killed at any moment, so they append one JSON object per line and the runner
// ingests the lines into the database.
//
// Line format (one object per line, keys in this order):
//   {"seq":N,"t":<unix s>,"type":"open","pid":P,"host":"h"}          written by the constructor
//   {"seq":N,"t":..,"type":"metric","step":S,"epoch":E,"name":"loss","value":V}
//   {"seq":N,"t":..,"type":"eval","protocol":"knn","dataset":"eurosat","scale":1,"metric":"top1","value":V}
//   {"seq":N,"t":..,"type":"artifact","kind":"ckpt","path":"ckpt/last.pt","sha256":"..."}
//   {"seq":N,"t":..,"type":"env","key":"torch","value":"2.11.0"}
//   {"seq":N,"t":..,"type":"progress","step":S,"total_steps":T,"loss":L,"images_per_s":R}
//   {"seq":N,"t":..,"type":"finish","status":"done|failed|diverged","exit_reason":"..","step":S}
// seq increases by one per line over the whole file, across worker restarts. Non-finite numbers
// are written as the strings "nan", "inf", "-inf".
//
// Durability: each line is one write(2) on an O_APPEND descriptor, so a killed worker leaves at
// most one torn (newline-less) last line. The reader never consumes a line without its newline; the
// next writer truncates the torn tail before appending. finish() and artifact() fsync, so the
// metrics logged before a checkpoint survive a power cut together with the checkpoint.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace ablate {

class Store;

std::filesystem::path journal_path(const std::filesystem::path& run_dir);

class JournalWriter {
 public:
  // Opens (creating run_dir and the journal when missing) and appends an "open" line. Throws
  // std::system_error naming the file on I/O failure.
  explicit JournalWriter(std::filesystem::path run_dir);
  ~JournalWriter();
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  void metric(int64_t step, double epoch, std::string_view name, double value);
  void eval(std::string_view protocol, std::string_view dataset, double scale,
            std::string_view metric, double value);
  void artifact(std::string_view kind, const std::filesystem::path& path, std::string_view sha256);
  void env(std::string_view key, std::string_view value);
  void progress(int64_t step, int64_t total_steps, double loss, double images_per_s);
  void finish(std::string_view status /*done|failed|diverged*/, std::string_view exit_reason,
              int64_t step);
  // Makes every line written so far durable (fsync). Lines reach the file (and the runner) at each
  // call already; this only matters for machine crashes.
  void flush();

  const std::filesystem::path& path() const { return path_; }

 private:
  template <class Fill>
  void append(const char* type, Fill&& fill);

  std::filesystem::path path_;
  int fd_ = -1;
  int64_t seq_ = 0;  // seq of the last line in the file
  std::mutex mutex_;  // the trainer may log from its loader or eval threads
};

struct JournalProgress {
  int64_t step = 0, total_steps = 0;
  double loss = 0, images_per_s = 0;
};

struct JournalFinish {
  std::string status, exit_reason;
  int64_t step = 0;
};

struct IngestResult {
  int64_t lines = 0;      // lines applied by this call
  int64_t bad_lines = 0;  // complete lines that were not valid journal records (skipped)
  std::optional<JournalProgress> progress;  // the last progress line applied
  std::optional<JournalFinish> finish;      // the finish line applied, if any
  bool finish_changed_status = false;       // the finish line moved the run out of running/lost
};

// Whose journal it is: a pre-training run's, or an evaluation worker's (`ablate worker --eval`),
// whose eval lines are the results of its one eval task and whose finish line ends that task.
enum class JournalOf { run, eval };

// Applies the journal lines of run (or eval task) `id` written since the stored offset,
// idempotently, in one transaction together with the new offset. A missing journal is not an error
// (nothing to do).
IngestResult ingest_journal(Store& store, std::string_view id, const std::filesystem::path& run_dir,
                            JournalOf of = JournalOf::run);

}  // namespace ablate
