// Small operating-system helpers shared by the environment capture, the journal, the store, the
// local runner, the Slurm backend and the shard packer: the wall clock, shell quoting, whitespace
// trimming, crash-safe file replacement and a free loopback port. One implementation each, so e.g. every file another node reads is fsync'ed before rename.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace ablate {

// Wall-clock time as Unix seconds (UTC, fractional): the times journals and the store record.
double now_s();

// A single-quoted shell word that expands to exactly `s`.
std::string shell_quote(const std::string& s);

// `s` without leading and trailing whitespace.
std::string trim(std::string s);

// Replaces `path` with `text` atomically: written to path.tmp, fsync'ed, renamed over `path`, so a
// reader (another process, another node over NFS) sees the old file or the whole new one. Throws
// std::system_error.
void write_file_atomically(const std::filesystem::path& path, std::string_view text);

// A TCP port on 127.0.0.1 that was free a moment ago (e.g. a data-parallel rendezvous, which rank
// 0 then binds). Throws std::system_error.
int free_loopback_port();

}  // namespace ablate
