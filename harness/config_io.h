// Reading, checking, serialising and hashing RunConfig, generically over the field descriptions
// in harness/config.h (visit_fields / visit_sections), so a new field needs no code here.
//
// Values travel as a FlatConfig: dotted key -> (YAML value, where it was written). The experiment
// matrix merges values from the base section, a scale profile, axes, `when` rules, derived keys and
// the command line; keeping the source of every leaf lets an error point at the line where the
// offending value was written, whichever place that was.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "harness/check.h"
#include "harness/config.h"

namespace ablate {

// "file:line:col" (1-based) of a YAML mark; just "file" for a null mark.
std::string mark_where(const std::string& file, const YAML::Mark& mark);

struct SourcedValue {
  YAML::Node value;
  std::string where;  // "file:line:col" or "<command line>"
};
// Leaf values by dotted key ("seed", "method.mask_ratio"); absent keys keep their defaults.
using FlatConfig = std::map<std::string, SourcedValue>;

enum class FieldType { Int, Double, Bool, String, StringList, DoubleList };
struct FieldInfo {
  std::string key;  // dotted, e.g. "method.mask_ratio"
  FieldType type;
  FieldSpec spec;
};
// Every leaf of RunConfig in canonical order: "seed", then the sections of visit_sections().
std::vector<FieldInfo> config_fields();
const FieldInfo* find_field(const std::vector<FieldInfo>& fields, std::string_view key);
const char* field_type_name(FieldType type);  // "an integer", "a number", ...

// Byte offset of the first invalid UTF-8 sequence in `text`, or npos. Config strings end up in
// JSON (run ids, the store), which must be UTF-8.
size_t invalid_utf8_at(std::string_view text);

// Hint for a name that is not one of `allowed`: "did you mean 'x'? allowed: a, b, c".
std::string choices_hint(std::string_view given, const std::vector<std::string>& allowed);

// Adds the leaves of a mapping to `out` (a later call replaces earlier values). Keys may be nested
// ({method: {mask_ratio: 0.8}}) or dotted ({method.mask_ratio: 0.8}); `prefix` is the dotted path
// of `node` itself ("" at the top). ConfigError at the key for unknown, duplicate or non-scalar
// keys, and for a section given a non-mapping. `order`, if given, receives the keys in file order.
void flatten_config(const YAML::Node& node, const std::string& file, FlatConfig& out,
                    const std::string& prefix = "", std::vector<std::string>* order = nullptr);

// Builds a RunConfig from defaults plus `flat`, checking types and the per-field ranges/choices
// of FieldSpec. ConfigError at the value's `where`. No cross-field checks (see validate()).
RunConfig read_config(const FlatConfig& flat);

// Cross-field consistency (documented in experiments/README.md, "Validation"). `sources` is used
// only to locate the error: it names the first involved key that was written somewhere.
void validate(const RunConfig& config, const FlatConfig& sources = {});

// flatten_config + read_config + validate on a nested config mapping from `file`.
RunConfig config_from_yaml(const YAML::Node& resolved, const std::string& file);

// Canonical JSON: every field (defaults included), objects with sorted keys.
nlohmann::json config_to_json(const RunConfig& config);
// Compact dump with sorted keys and shortest round-trip numbers.
std::string canonical_dump(const nlohmann::json& j);
// Inverse of config_to_json; missing keys keep defaults, unknown keys and wrong types are
// ConfigError (where "<json>"), per-field ranges are checked.
RunConfig config_from_json(const nlohmann::json& j);
// A run's identity: config_to_json(config) without the fields marked FieldSpec::id_omits_default
// that are at their default, and without the eval section (evaluations are records of their own,
// harness/eval_task.h) except eval.random_init when true (such a run does not pre-train).
nlohmann::json config_id(const RunConfig& config);
// The bytes the run id hashes: canonical_dump(config_id(config)).
std::string config_id_json(const RunConfig& config);
// First 12 hex digits of sha256(config_id_json(config)): the run id.
std::string config_hash(const RunConfig& config);

// Plain YAML data as JSON (experiment `tables` / `claims`, table cells): quoted scalars are
// strings; plain scalars become null (~, null, empty), booleans (true/false), integers, numbers or
// strings, in that order of preference. ConfigError at the node for non-scalar keys, duplicate
// keys, or nesting deeper than 64 levels (which also stops alias cycles).
nlohmann::json yaml_to_json(const YAML::Node& node, const std::string& file);

// Splits "train.epochs=5" into the key and its value parsed as a YAML scalar or flow list
// ("method.psts_order=[far,near,random]"). ConfigError with where "<command line>" for a
// malformed assignment, an unknown key or a value YAML cannot parse.
std::pair<std::string, YAML::Node> parse_override(const std::string& assignment);
// Applies an override to a nested config mapping (what config_from_yaml reads).
void apply_override(YAML::Node& config, const std::string& assignment);
// Applies an override to a FlatConfig, sourced at "<command line>".
void apply_override(FlatConfig& config, const std::string& assignment);

}  // namespace ablate
