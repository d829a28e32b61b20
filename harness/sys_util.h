// Small operating-system helpers shared by the environment capture, the local runner and the Slurm
// backend: shell quoting, whitespace trimming, crash-safe file replacement and a free loopback
// port. One implementation each, so e.g. every file another node reads is fsync'ed before rename.
#pragma once

#include <filesystem>
#include <string>

namespace ablate {

// A single-quoted shell word that expands to exactly `s`.
std::string shell_quote(const std::string& s);

// `s` without leading and trailing whitespace.
std::string trim(std::string s);

// Replaces `path` with `text` atomically: written to path.tmp, fsync'ed, renamed over `path`, so a
// reader (another process, another node over NFS) sees the old file or the whole new one. Throws
// std::system_error.
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

// A TCP port on 127.0.0.1 that was free a moment ago (e.g. a data-parallel rendezvous, which rank
// 0 then binds). Throws std::system_error.
int free_loopback_port();

}  // namespace ablate
