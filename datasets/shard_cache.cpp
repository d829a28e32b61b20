// The packed-shard cache keyed by source identity (see shard_cache.h).
#include "datasets/shard_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "harness/check.h"
#include "harness/hash.h"
#include "harness/sys_util.h"

namespace ablate {
namespace fs = std::filesystem;
namespace {

// Holds an exclusive flock on `path` while alive: concurrent workers pack a source only once.
class FileLock {
 public:
  explicit FileLock(const fs::path& path) {
    fs::create_directories(path.parent_path());
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw DataError(fmt::format("{}: cannot create lock file: {}", path.string(), std::strerror(errno)));
    ::flock(fd_, LOCK_EX);
  }
  ~FileLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

fs::path env_path(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? fs::path(v) : fs::path();
}

}  // namespace

fs::path shard_cache_root() {
  fs::path root = env_path("ABLATE_CACHE_DIR");
  if (root.empty() && !env_path("XDG_CACHE_HOME").empty()) root = env_path("XDG_CACHE_HOME") / "ablate" / "shards";
  if (root.empty() && !env_path("HOME").empty()) root = env_path("HOME") / ".cache" / "ablate" / "shards";
  if (root.empty())
    throw ConfigError("environment", "ABLATE_CACHE_DIR", "unset, and neither XDG_CACHE_HOME nor HOME is set",
                      "set ABLATE_CACHE_DIR to a folder for packed datasets");
  return fs::absolute(root).lexically_normal();
}

CachedShards cached_shards(const DatasetSpec& spec, const fs::path& data_root, int side, bool skip_corrupt,
                           const fs::path& cache_root) {
  const DatasetIndex index = open_dataset(spec, data_root);  // DataError saying where it looked
  CachedShards c;
  c.source_fingerprint = source_fingerprint(index);
  const fs::path source = fs::canonical(index.dir);
  const std::string key = sha256_hex(fmt::format("{}\n{}\n{}\n{}\n{}\n", kShardFormat, source.string(),
                                                 c.source_fingerprint, side, skip_corrupt));
  c.dir = cache_root / fmt::format("{}-{}-{}", spec.name, side, key.substr(0, 16));
  const fs::path done = c.dir / ".complete";
  if (fs::exists(done)) return c;
  FileLock lock(c.dir.string() + ".lock");
  if (fs::exists(done)) return c;  // another process packed it meanwhile
  PackOptions po;
  po.out = c.dir;
  po.size = side;
  po.skip_corrupt = skip_corrupt;
  c.pack = pack_index(index, po);
  write_file_atomically(done, fmt::format("{}\n", c.pack->packed));
  return c;
}

}  // namespace ablate
