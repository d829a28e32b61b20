// Typed, located reads of experiment-file sections (reports/spec_reader.h).
#include "reports/spec_reader.h"

#include <algorithm>

#include "harness/check.h"
#include "harness/config_io.h"  // choices_hint

namespace ablate {

SpecReader::SpecReader(const nlohmann::json& obj, std::string where, std::string path)
    : obj_(obj), where_(std::move(where)), path_(std::move(path)) {
  if (!obj_.is_object()) throw ConfigError(where_, path_, "expected a mapping");
}

void SpecReader::fail(const char* key, const std::string& problem, const std::string& hint) const {
  throw ConfigError(where_, key ? key_path(key) : path_, problem, hint);
}

std::string SpecReader::string(const char* key, const std::optional<std::string>& fallback) const {
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) {
    if (!fallback) fail(key, "missing");
    return *fallback;
  }
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  fail(key, "expected a string");
}

double SpecReader::number(const char* key, const std::optional<double>& fallback) const {
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) {
    if (!fallback) fail(key, "missing");
    return *fallback;
  }
  if (!it->is_number()) fail(key, "expected a number, got " + it->dump());
  return it->get<double>();
}

std::vector<std::string> SpecReader::strings(const char* key) const {
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return {};
  if (it->is_string()) return {it->get<std::string>()};
  if (!it->is_array()) fail(key, "expected a list of strings");
  std::vector<std::string> out;
  for (const auto& e : *it) {
    if (!e.is_string()) fail(key, "expected a list of strings, got element " + e.dump());
    out.push_back(e.get<std::string>());
  }
  return out;
}

nlohmann::json SpecReader::selector(const char* key) const {
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nlohmann::json::object();
  if (!it->is_object())
    fail(key, "expected a mapping of axis key to value", "e.g. {method.psts_order: [near, far, random]}");
  return *it;
}

const nlohmann::json& SpecReader::list(const char* key) const {
  static const nlohmann::json empty = nlohmann::json::array();
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return empty;
  if (!it->is_array()) fail(key, "expected a list");
  return *it;
}

void SpecReader::only(std::initializer_list<const char*> allowed) const {
  for (auto it = obj_.begin(); it != obj_.end(); ++it) {
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* k) { return it.key() == k; })) {
      std::string hint = "allowed:";
      for (const char* k : allowed) hint += std::string(" ") + k;
      throw ConfigError(where_, path_ + "." + it.key(), "unknown key", hint);
    }
  }
}

void SpecReader::unknown_choice(const char* key, const std::string& word,
                                const std::vector<std::string>& words) const {
  fail(key, "unknown value '" + word + "'", choices_hint(word, words));
}

}  // namespace ablate
