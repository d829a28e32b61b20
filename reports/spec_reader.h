// Typed access to one object of an experiment file's `tables`, `claims` or `compare` section
// (handed over as JSON by the experiment parser), with errors that name the file and the key path
// ("exp.yaml: 'tables[0].metrics[1].scale': expected a number"). Unknown keys are errors too, so
// a typo such as `beter: higher` does not silently fall back to a default.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/choice.h"

namespace ablate {

class SpecReader {
 public:
  // `where` is the file (for ConfigError::where); `path` the key path of `obj` ("tables[0]").
  SpecReader(const nlohmann::json& obj, std::string where, std::string path);

  std::string string(const char* key, const std::optional<std::string>& fallback = {}) const;
  double number(const char* key, const std::optional<double>& fallback = {}) const;
  std::vector<std::string> strings(const char* key) const;  // absent = empty
  // An object of axis key -> value; absent = empty object.
  nlohmann::json selector(const char* key) const;
  // The list at `key` (absent = empty), for nested readers.
  const nlohmann::json& list(const char* key) const;
  // Throws on keys outside `allowed`.
  void only(std::initializer_list<const char*> allowed) const;
  // One of E's words (harness/choice.h), parsed here once; `fallback` when absent. Any other word
  // fails at the key, naming the nearest word and the allowed ones.
  template <Choice E>
  E choice(const char* key, E fallback) const {
    const std::string word = string(key, std::string(name_of(fallback)));
    if (const std::optional<E> e = parse_choice<E>(word)) return *e;
    unknown_choice(key, word, choice_words<E>());
  }

  std::string key_path(const char* key) const { return path_ + "." + key; }
  const std::string& where() const { return where_; }
  const std::string& path() const { return path_; }
  [[noreturn]] void fail(const char* key, const std::string& problem,
                         const std::string& hint = "") const;

 private:
  [[noreturn]] void unknown_choice(const char* key, const std::string& word,
                                   const std::vector<std::string>& words) const;

  const nlohmann::json& obj_;
  std::string where_, path_;
};

}  // namespace ablate
