// The packed-shard cache is keyed by its source: two data roots holding different images get
// different packs, each reading back its own root's pixels; an image edited in place gets a new
// pack; a missing root is an error naming where it looked; the cache root never depends on the
// working directory.
#include "datasets/shard_cache.h"

#include <chrono>
#include <cstdlib>
#include <optional>

#include "harness/check.h"
#include "tests/datasets/test_data.h"
#include "tests/support/catch.h"

using namespace ablate;
using namespace ablate::test;

namespace {

constexpr int kSide = 16;

// A MillionAID-style corpus folder under `root`: 2 subfolders of 3 random kSide x kSide PNGs.
void write_corpus(const fs::path& root, uint64_t seed) { write_synthetic_classes(root / "millionaid", 2, 3, kSide, seed); }

// Pixels of packed image `i` (HWC) and of the source image it came from, decoded directly.
std::pair<std::vector<uint8_t>, std::vector<uint8_t>> packed_and_source(const ShardSet& set, const fs::path& root,
                                                                        size_t i) {
  std::vector<uint8_t> packed(set.image_bytes());
  set.read(i, packed.data());
  return {packed, read_image(root / "millionaid" / set.paths()[i]).pixels};
}

// Sets an environment variable for the lifetime of the guard, restoring the old value after.
struct EnvGuard {
  std::string name;
  std::optional<std::string> old;
  EnvGuard(std::string n, const char* value) : name(std::move(n)) {
    if (const char* v = std::getenv(name.c_str())) old = v;
    value ? ::setenv(name.c_str(), value, 1) : ::unsetenv(name.c_str());
  }
  ~EnvGuard() { old ? ::setenv(name.c_str(), old->c_str(), 1) : ::unsetenv(name.c_str()); }
};

}  // namespace

TEST_CASE("two data roots with different images get different caches, each read back from its own root",
          "[datasets][shard_cache]") {
  TempDir tmp("shard-cache-roots");
  const fs::path a = tmp.path / "root_a", b = tmp.path / "root_b", cache = tmp.path / "cache";
  write_corpus(a, 1);
  write_corpus(b, 2);
  const DatasetSpec spec = dataset_spec("millionaid");

  const CachedShards ca = cached_shards(spec, a, kSide, false, cache);
  const CachedShards cb = cached_shards(spec, b, kSide, false, cache);
  REQUIRE(ca.pack);
  REQUIRE(cb.pack);
  CHECK(ca.dir != cb.dir);
  CHECK(ca.dir.parent_path() == cache);
  CHECK(ca.source_fingerprint != cb.source_fingerprint);

  for (const auto& [c, root] : {std::pair{ca, a}, std::pair{cb, b}}) {
    const ShardSet set = ShardSet::open(c.dir, /*verify=*/true);
    CHECK(set.source_fingerprint() == c.source_fingerprint);
    CHECK(set.source() == fs::canonical(root / "millionaid").string());
    REQUIRE(set.size() == 6);
    for (size_t i = 0; i < set.size(); ++i) {
      const auto [packed, source] = packed_and_source(set, root, i);
      CHECK(packed == source);
    }
  }
  // The same source again: the existing pack, not a new one.
  const CachedShards again = cached_shards(spec, a, kSide, false, cache);
  CHECK_FALSE(again.pack);
  CHECK(again.dir == ca.dir);
  CHECK(again.source_fingerprint == ca.source_fingerprint);
  // Another side of the same source: another folder.
  CHECK(cached_shards(spec, a, 8, false, cache).dir != ca.dir);
}

TEST_CASE("an image edited in place gets a new pack with the new pixels", "[datasets][shard_cache]") {
  TempDir tmp("shard-cache-edit");
  const fs::path root = tmp.path / "root", cache = tmp.path / "cache";
  write_corpus(root, 3);
  const DatasetSpec spec = dataset_spec("millionaid");
  const CachedShards before = cached_shards(spec, root, kSide, false, cache);

  // Same name, same byte size (a PNG of other random pixels usually differs in size; the mtime is
  // moved explicitly so the test does not depend on the file system's timestamp resolution).
  const fs::path edited = root / "millionaid" / "class0" / "img0.png";
  RgbImage img = read_image(edited);
  for (auto& p : img.pixels) p = static_cast<uint8_t>(255 - p);
  write_image(edited, img);
  fs::last_write_time(edited, fs::last_write_time(edited) + std::chrono::seconds(10));

  const CachedShards after = cached_shards(spec, root, kSide, false, cache);
  REQUIRE(after.pack);
  CHECK(after.dir != before.dir);
  CHECK(after.source_fingerprint != before.source_fingerprint);
  const ShardSet set = ShardSet::open(after.dir, true);
  const auto [packed, source] = packed_and_source(set, root, 0);
  REQUIRE(set.paths()[0] == "class0/img0.png");
  CHECK(packed == img.pixels);
  CHECK(source == img.pixels);
}

TEST_CASE("a missing data root is an error that says where it looked", "[datasets][shard_cache]") {
  TempDir tmp("shard-cache-missing");
  const fs::path cache = tmp.path / "cache";
  const std::string err = error_of([&] {
    cached_shards(dataset_spec("millionaid"), tmp.path / "nonexistent", kSide, false, cache);
  });
  INFO(err);
  CHECK(err.find((tmp.path / "nonexistent" / "millionaid").string()) != std::string::npos);
  CHECK(err.find("data.root") != std::string::npos);
  CHECK_FALSE(fs::exists(cache));  // nothing packed, nothing left behind
}

TEST_CASE("the cache root comes from the environment, never from the working directory", "[datasets][shard_cache]") {
  {
    EnvGuard dir("ABLATE_CACHE_DIR", "/tmp/ablate-cache-test");
    CHECK(shard_cache_root() == fs::path("/tmp/ablate-cache-test"));
  }
  EnvGuard none("ABLATE_CACHE_DIR", nullptr);
  {
    EnvGuard xdg("XDG_CACHE_HOME", "/tmp/xdg");
    CHECK(shard_cache_root() == fs::path("/tmp/xdg/ablate/shards"));
  }
  EnvGuard no_xdg("XDG_CACHE_HOME", nullptr);
  {
    EnvGuard home("HOME", "/home/someone");
    CHECK(shard_cache_root() == fs::path("/home/someone/.cache/ablate/shards"));
  }
  EnvGuard no_home("HOME", nullptr);
  CHECK_THROWS_AS(shard_cache_root(), ConfigError);
}
