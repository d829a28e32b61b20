// Internal invariant checks that stay on in release builds, and the user-facing error types.
//
// ABLATE_CHECK is for bugs in ablate itself (a violated invariant): it throws InternalError with the
// source location. Problems with user input (experiment files, data, databases) are reported with
// ConfigError / DataError / StoreError, which carry the context a user needs to fix them.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace ablate {

// A broken internal invariant: a bug in ablate, not in the user's input.
struct InternalError : std::logic_error {
  using std::logic_error::logic_error;
};

// Bad experiment file, override or config value. `where` is "file:line:col" (or "<override>"),
// `key` the dotted key path, `hint` what is allowed.
struct ConfigError : std::runtime_error {
  std::string where, key, problem, hint;
  ConfigError(std::string where_, std::string key_, std::string problem_, std::string hint_ = "")
      : std::runtime_error(format(where_, key_, problem_, hint_)),
        where(std::move(where_)),
        key(std::move(key_)),
        problem(std::move(problem_)),
        hint(std::move(hint_)) {}
  static std::string format(const std::string& w, const std::string& k, const std::string& p,
                            const std::string& h) {
    std::string s = w.empty() ? std::string() : w + ": ";
    if (!k.empty()) s += "'" + k + "': ";
    s += p;
    if (!h.empty()) s += " (" + h + ")";
    return s;
  }
};

// A dataset, image or shard problem; the message names the file.
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An SQLite failure: the result code, SQLite's message and what ablate was doing.
struct StoreError : std::runtime_error {
  int code;
  StoreError(int code_, const std::string& msg) : std::runtime_error(msg), code(code_) {}
};

}  // namespace ablate

#define ABLATE_CHECK(cond, ...)                                                              \
  do {                                                                                       \
    if (!(cond)) [[unlikely]]                                                                \
      throw ::ablate::InternalError(::fmt::format("{}:{}: check failed: {}: {}", __FILE__,   \
                                                  __LINE__, #cond,                           \
                                                  ::fmt::format("" __VA_ARGS__)));           \
  } while (0)
