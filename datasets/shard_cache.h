// The cache of packed shards that runs read when their config names no shard folder (data.shards):
// one folder per dataset source and image side, keyed by the source's identity, so a run never
// trains or evaluates on images other than those its data.root holds now.
//
// Location: $ABLATE_CACHE_DIR when set, else $XDG_CACHE_HOME/ablate/shards, else
// $HOME/.cache/ablate/shards; never relative to the working directory, so a runner, its workers
// and later runs started from other folders find the same packs (and identical sources share one).
// Folder: <root>/<dataset>-<side>-<key>, key = 16 hex digits of SHA-256 over the shard format, the
// resolved source folder (symlinks followed), its source_fingerprint (datasets/shards.h: names,
// labels, sizes, mtimes), the side and skip_corrupt. An image added, removed or edited, or the same
// dataset at another path, gets a new folder; old folders stay until the user deletes them.
// Concurrency: packing holds an exclusive flock on <folder>.lock, and a folder is used only once
// its .complete marker exists, so concurrent workers pack a source once.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "datasets/registry.h"
#include "datasets/shards.h"

namespace ablate {

// The cache root as above (absolute). ConfigError when neither variable nor HOME is set.
std::filesystem::path shard_cache_root();

struct CachedShards {
  std::filesystem::path dir;       // the complete packed folder
  std::string source_fingerprint;  // of spec's folder under the data root, as listed now
  std::optional<PackResult> pack;  // set when this call packed it
};

// Opens `spec` under data_root (DataError saying where it looked when the folder is missing, or
// naming what differs from the registry) and returns its cache folder under cache_root at `side`,
// packing it first when there is none.
CachedShards cached_shards(const DatasetSpec& spec, const std::filesystem::path& data_root, int side,
                           bool skip_corrupt, const std::filesystem::path& cache_root);

}  // namespace ablate
