// Journal writer (worker side) and ingestion (runner side); the format is described in journal.h.
#include "harness/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/check.h"
#include "harness/env_info.h"
#include "harness/lifecycle.h"
#include "harness/store.h"
#include "harness/sys_util.h"

namespace ablate {
namespace {

using ojson = nlohmann::ordered_json;  // keeps "seq","t","type" first on each line

[[noreturn]] void io_error(const std::string& what, const std::filesystem::path& path) {
  throw std::system_error(errno, std::generic_category(),
                          fmt::format("{} {}", what, path.string()));
}

ojson encode(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

double decode(const nlohmann::json& v) {
  if (v.is_number()) return v.get<double>();
  const std::string s = v.get<std::string>();
  if (s == "nan") return std::nan("");
  if (s == "inf") return HUGE_VAL;
  if (s == "-inf") return -HUGE_VAL;
  throw nlohmann::json::type_error::create(302, "not a journal number: " + s, &v);
}

// Reads [offset, offset + size) of fd into a string (fewer bytes at end of file).
std::string read_at(int fd, int64_t offset, size_t size, const std::filesystem::path& path) {
  std::string buf(size, '\0');
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd, buf.data() + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) io_error("reading", path);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  buf.resize(got);
  return buf;
}

// seq of the last line of the file (which ends at `end`, just after a newline) that parses, or 0.
// Reads backwards in growing windows: journals can be tens of MB, the answer is in the last line.
int64_t last_seq(int fd, int64_t end, const std::filesystem::path& path) {
  for (int64_t window = 1 << 16;; window *= 4) {
    const int64_t begin = std::max<int64_t>(0, end - window);
    const std::string text = read_at(fd, begin, static_cast<size_t>(end - begin), path);
    // Lines wholly inside the window, newest first; the first one may be cut unless begin == 0.
    size_t line_end = text.size();
    while (line_end > 0) {
      size_t nl = line_end >= 2 ? text.rfind('\n', line_end - 2) : std::string::npos;
      size_t line_begin = nl == std::string::npos ? 0 : nl + 1;
      if (nl == std::string::npos && begin > 0) break;  // cut line: widen the window
      auto j = nlohmann::json::parse(text.substr(line_begin, line_end - line_begin), nullptr,
                                     /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("seq") && j["seq"].is_number_integer())
        return j["seq"].get<int64_t>();
      line_end = line_begin;
    }
    if (begin == 0) return 0;
  }
}

}  // namespace

std::filesystem::path journal_path(const std::filesystem::path& run_dir) {
  return run_dir / "journal.jsonl";
}

JournalWriter::JournalWriter(std::filesystem::path run_dir) : path_(journal_path(run_dir)) {
  std::filesystem::create_directories(run_dir);
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) io_error("opening journal", path_);
  struct stat st {};
  if (::fstat(fd_, &st) != 0) io_error("inspecting journal", path_);
  if (st.st_size > 0) {
    // Cut a torn last line (a killed writer) so the next line starts on its own.
    int64_t end = st.st_size;
    for (;;) {
      const int64_t begin = std::max<int64_t>(0, end - (1 << 16));
      const std::string tail = read_at(fd_, begin, static_cast<size_t>(end - begin), path_);
      size_t nl = tail.rfind('\n');
      if (nl != std::string::npos) {
        end = begin + static_cast<int64_t>(nl) + 1;
        break;
      }
      end = begin;
      if (begin == 0) break;
    }
    if (end < st.st_size && ::ftruncate(fd_, end) != 0) io_error("truncating torn journal line", path_);
    seq_ = last_seq(fd_, end, path_);
  } else {
    // Make the new file's directory entry durable too; the data is fsynced at finish/artifact.
    int dir = ::open(run_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
  }
  append("open", [](ojson& j) {
    j["pid"] = static_cast<int64_t>(::getpid());
    j["host"] = host_name();
  });
}

JournalWriter::~JournalWriter() {
  if (fd_ >= 0) ::close(fd_);
}

template <class Fill>
void JournalWriter::append(const char* type, Fill&& fill) {
  std::lock_guard lock(mutex_);
  ojson j;
  j["seq"] = seq_ + 1;
  j["t"] = now_s();
  j["type"] = type;
  fill(j);
  const std::string line = j.dump() + "\n";
  // One write(2) per line: with O_APPEND the line lands whole at the end of the file. Only a
  // full disk or a kill mid-call splits it, which the torn-line handling covers.
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) io_error("appending to journal", path_);
    done += static_cast<size_t>(n);
  }
  ++seq_;
}

void JournalWriter::metric(int64_t step, double epoch, std::string_view name, double value) {
  append("metric", [&](ojson& j) {
    j["step"] = step;
    j["epoch"] = encode(epoch);
    j["name"] = name;
    j["value"] = encode(value);
  });
}

void JournalWriter::eval(std::string_view protocol, std::string_view dataset, double scale,
                         std::string_view metric, double value) {
  append("eval", [&](ojson& j) {
    j["protocol"] = protocol;
    j["dataset"] = dataset;
    j["scale"] = scale;
    j["metric"] = metric;
    j["value"] = encode(value);
  });
}

void JournalWriter::artifact(std::string_view kind, const std::filesystem::path& path,
                             std::string_view sha256) {
  append("artifact", [&](ojson& j) {
    j["kind"] = kind;
    j["path"] = path.string();
    j["sha256"] = sha256;
  });
  flush();
}

void JournalWriter::env(std::string_view key, std::string_view value) {
  append("env", [&](ojson& j) {
    j["key"] = key;
    j["value"] = value;
  });
}

void JournalWriter::progress(int64_t step, int64_t total_steps, double loss, double images_per_s) {
  append("progress", [&](ojson& j) {
    j["step"] = step;
    j["total_steps"] = total_steps;
    j["loss"] = encode(loss);
    j["images_per_s"] = encode(images_per_s);
  });
}

void JournalWriter::finish(std::string_view status, std::string_view exit_reason, int64_t step) {
  const std::optional<RunStatus> s = parse_run_status(status);
  ABLATE_CHECK(s && is_final(*s), "journal finish status '{}'", status);
  append("finish", [&](ojson& j) {
    j["status"] = status;
    j["exit_reason"] = exit_reason;
    j["step"] = step;
  });
  flush();
}

void JournalWriter::flush() {
  std::lock_guard lock(mutex_);
  if (::fsync(fd_) != 0) io_error("syncing journal", path_);
}

// ---- ingestion ----

namespace {

// Applies one line of an evaluation worker's journal: its results and its end. Environment lines
// are read but not stored (the eval record keeps its settings; the log keeps the rest).
bool apply_eval_record(Store& store, std::string_view id, const nlohmann::json& j, IngestResult& res) {
  const std::string type = j.at("type").get<std::string>();
  if (type == "eval") {
    store.put_eval_metric(id, j.at("metric").get<std::string>(), decode(j.at("value")));
  } else if (type == "finish") {
    JournalFinish f{j.at("status").get<std::string>(), j.at("exit_reason").get<std::string>(),
                    j.at("step").get<int64_t>()};
    const std::optional<RunStatus> s = parse_run_status(f.status);
    if (s != RunStatus::done && s != RunStatus::failed) return false;  // evaluations do not diverge
    res.finish_changed_status |= store.apply_eval_finish(id, f.status, f.exit_reason);
    res.finish = std::move(f);
  } else if (type == "open") {
    store.set_eval_worker(id, j.at("host").get<std::string>(), j.at("pid").get<int64_t>());
  } else if (type == "env") {
    store.put_eval_env(id, j.at("key").get<std::string>(), j.at("value").get<std::string>());
  } else {
    return false;
  }
  return true;
}

// Applies one parsed journal record; false when it is not a record this version understands.
bool apply_record(Store& store, std::string_view id, const nlohmann::json& j, IngestResult& res) {
  const std::string type = j.at("type").get<std::string>();
  if (type == "metric") {
    store.put_metric(id, j.at("step").get<int64_t>(), decode(j.at("epoch")),
                     j.at("name").get<std::string>(), decode(j.at("value")));
  } else if (type == "eval") {
    store.put_eval(id, EvalRow{j.at("protocol").get<std::string>(), j.at("dataset").get<std::string>(),
                               j.at("scale").get<double>(), j.at("metric").get<std::string>(),
                               decode(j.at("value"))});
  } else if (type == "artifact") {
    store.put_artifact(id, ArtifactRow{j.at("kind").get<std::string>(), j.at("path").get<std::string>(),
                                       j.at("sha256").get<std::string>()});
  } else if (type == "env") {
    store.put_env(id, j.at("key").get<std::string>(), j.at("value").get<std::string>());
  } else if (type == "progress") {
    JournalProgress p{j.at("step").get<int64_t>(), j.at("total_steps").get<int64_t>(),
                      decode(j.at("loss")), decode(j.at("images_per_s"))};
    store.set_progress(id, p.step, p.total_steps);
    res.progress = p;
  } else if (type == "finish") {
    JournalFinish f{j.at("status").get<std::string>(), j.at("exit_reason").get<std::string>(),
                    j.at("step").get<int64_t>()};
    const std::optional<RunStatus> s = parse_run_status(f.status);
    if (!s || !is_final(*s)) return false;
    res.finish_changed_status |= store.apply_finish(id, f.status, f.exit_reason, f.step);
    res.finish = std::move(f);
  } else if (type == "open") {
    store.set_worker(id, j.at("host").get<std::string>(), j.at("pid").get<int64_t>());
  } else {
    return false;
  }
  return true;
}

}  // namespace

IngestResult ingest_journal(Store& store, std::string_view run_id, const std::filesystem::path& run_dir,
                            JournalOf of) {
  auto offset = [&] { return of == JournalOf::run ? store.journal_offset(run_id) : store.eval_journal_offset(run_id); };
  IngestResult res;
  const std::filesystem::path path = journal_path(run_dir);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return res;
    io_error("opening journal", path);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) io_error("inspecting journal", path);
  const int64_t size = st.st_size;
  if (offset().offset == size) return res;  // nothing new: no write lock

  store.transaction(fmt::format("ingesting journal {}", path.string()), [&] {
    JournalOffset at = offset();  // re-read under the write lock
    if (size < at.offset) at = {};  // the journal was replaced (run folder wiped): start over
    constexpr size_t kChunk = 16 << 20;
    while (at.offset < size) {
      const std::string text =
          read_at(fd, at.offset, std::min<size_t>(kChunk, static_cast<size_t>(size - at.offset)), path);
      size_t pos = 0;
      for (size_t nl; (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1) {
        auto j = nlohmann::json::parse(text.begin() + static_cast<std::ptrdiff_t>(pos),
                                       text.begin() + static_cast<std::ptrdiff_t>(nl), nullptr,
                                       /*allow_exceptions=*/false);
        int64_t seq = j.is_object() && j.contains("seq") && j["seq"].is_number_integer()
                          ? j["seq"].get<int64_t>()
                          : -1;
        if (seq < 0) {
          ++res.bad_lines;
        } else if (seq > at.seq) {  // lower seq: already applied (defence against rewrites)
          bool ok = false;
          try {
            ok = of == JournalOf::run ? apply_record(store, run_id, j, res) : apply_eval_record(store, run_id, j, res);
          } catch (const nlohmann::json::exception&) {
            ok = false;  // a record with missing or mistyped fields
          }
          ok ? ++res.lines : ++res.bad_lines;
          at.seq = seq;
        }
      }
      if (pos == 0) break;  // no complete line in this chunk: a torn tail (or a giant line)
      at.offset += static_cast<int64_t>(pos);
    }
    if (of == JournalOf::run) store.set_journal_offset(run_id, path.string(), at);
    else store.set_eval_journal_offset(run_id, at);
  });
  return res;
}

}  // namespace ablate
