// RunConfig <-> YAML / JSON, generic over the visit_fields() descriptions of harness/config.h:
// one templated walk (for_each_field) yields every leaf with its dotted key, its C++ type and its
// FieldSpec, and each reader/writer below is written once per C++ type.
#include "harness/config_io.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <type_traits>

#include <fmt/format.h>

#include "harness/expr.h"
#include "harness/hash.h"
#include "harness/model_sizes.h"

namespace ablate {
namespace {

template <class T>
struct ChoiceList : std::false_type {};
template <Choice E>
struct ChoiceList<std::vector<E>> : std::true_type {
  using Element = E;
};

// The spec of a field as the readers see it: a choice field's words are its enum's.
template <class T>
FieldSpec with_choices(FieldSpec spec) {
  if constexpr (Choice<T>) spec.choices = choice_words<T>();
  else if constexpr (ChoiceList<T>::value) spec.choices = choice_words<typename ChoiceList<T>::Element>();
  return spec;
}

// Calls f(dotted_key, field&, spec) for every leaf of `c` in canonical order. The top-level `seed`
// is the one field outside the sections, so it is described here.
template <class F>
void for_each_field(RunConfig& c, F&& f) {
  f(std::string("seed"), c.seed, FieldSpec{.doc = "seed of every RNG the run owns, e.g. 0", .min = 0, .max = 2147483647});
  visit_sections(c, [&](const char* section, auto& s) {
    visit_fields(s, [&](const char* name, auto& field, const FieldSpec& spec) {
      f(std::string(section) + "." + name, field, with_choices<std::decay_t<decltype(field)>>(spec));
    });
  });
}

template <class T>
constexpr FieldType type_of() {
  if constexpr (std::is_same_v<T, int>) return FieldType::Int;
  else if constexpr (std::is_same_v<T, double>) return FieldType::Double;
  else if constexpr (std::is_same_v<T, bool>) return FieldType::Bool;
  else if constexpr (std::is_same_v<T, std::string> || Choice<T>) return FieldType::String;
  else if constexpr (std::is_same_v<T, std::vector<std::string>> || ChoiceList<T>::value) return FieldType::StringList;
  else {
    static_assert(std::is_same_v<T, std::vector<double>>, "config field of an unsupported type");
    return FieldType::DoubleList;
  }
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string parent_of(const std::string& key) {
  size_t dot = key.rfind('.');
  return dot == std::string::npos ? "" : key.substr(0, dot);
}

// Full dotted keys and section names directly under `parent` ("" = the top level).
std::vector<std::string> children_of(const std::vector<FieldInfo>& fields, const std::string& parent) {
  std::vector<std::string> out;
  for (const FieldInfo& f : fields) {
    std::string key = f.key;
    // Walk up until the key's parent is `parent`, so sections appear once as "model", not per field.
    while (!key.empty() && parent_of(key) != parent) key = parent_of(key);
    if (!key.empty() && std::find(out.begin(), out.end(), key) == out.end()) out.push_back(key);
  }
  return out;
}

bool is_section(const std::vector<FieldInfo>& fields, const std::string& key) {
  return std::any_of(fields.begin(), fields.end(), [&](const FieldInfo& f) { return f.key.rfind(key + ".", 0) == 0; });
}

// ---- scalar parsing: strict, so "0.5" is not an int and "yes" is not a bool ----

std::optional<long long> parse_int(const std::string& s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i == s.size() || s.size() > 19) return std::nullopt;
  for (size_t k = i; k < s.size(); ++k)
    if (!std::isdigit(static_cast<unsigned char>(s[k]))) return std::nullopt;
  return std::strtoll(s.c_str(), nullptr, 10);
}

std::optional<double> parse_double(const std::string& s) {
  // strtod also reads hex, inf and nan; configs only take finite decimal numbers.
  if (s.empty() || std::any_of(s.begin(), s.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)) && c != 'e' && c != 'E'; }))
    return std::nullopt;
  char* end = nullptr;
  double x = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(x)) return std::nullopt;
  return x;
}

std::optional<bool> parse_bool(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

const char* node_kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Scalar: return "a scalar";
    default: return "nothing";
  }
}

std::string range_text(const FieldSpec& spec) {
  bool lo = std::isfinite(spec.min), hi = std::isfinite(spec.max);
  std::string s = "allowed: ";
  if (lo) s += Value(spec.min).str() + (spec.min_open ? " < " : " <= ");
  s += "value";
  if (hi) s += (spec.max_open ? " < " : " <= ") + Value(spec.max).str();
  return s;
}

void check_range(double x, const std::string& key, const FieldSpec& spec, const std::string& where) {
  bool ok = (spec.min_open ? x > spec.min : x >= spec.min) && (spec.max_open ? x < spec.max : x <= spec.max);
  if (!ok) throw ConfigError(where, key, fmt::format("{} is out of range", Value(x).str()), range_text(spec));
}

void check_choice(const std::string& s, const std::string& key, const FieldSpec& spec, const std::string& where) {
  if (!spec.choices.empty() && std::find(spec.choices.begin(), spec.choices.end(), s) == spec.choices.end())
    throw ConfigError(where, key, fmt::format("'{}' is not allowed", s), choices_hint(s, spec.choices));
}

// ---- typed reads of one YAML leaf ----

std::string scalar_of(const YAML::Node& n, const std::string& key, FieldType type, const std::string& where) {
  if (!n.IsScalar())
    throw ConfigError(where, key, fmt::format("expected {}, got {}", field_type_name(type), node_kind(n)));
  if (invalid_utf8_at(n.Scalar()) != std::string::npos) throw ConfigError(where, key, "the value is not valid UTF-8");
  return n.Scalar();
}

void read_value(const SourcedValue& sv, const std::string& key, const FieldSpec& spec, int& out) {
  std::string s = scalar_of(sv.value, key, FieldType::Int, sv.where);
  std::optional<long long> v = parse_int(s);
  if (!v) throw ConfigError(sv.where, key, fmt::format("expected an integer, got '{}'", s), range_text(spec));
  check_range(double(*v), key, spec, sv.where);
  if (*v < std::numeric_limits<int>::min() || *v > std::numeric_limits<int>::max())
    throw ConfigError(sv.where, key, fmt::format("{} does not fit a 32-bit integer", s));
  out = int(*v);
}

void read_value(const SourcedValue& sv, const std::string& key, const FieldSpec& spec, double& out) {
  std::string s = scalar_of(sv.value, key, FieldType::Double, sv.where);
  std::optional<double> v = parse_double(s);
  if (!v) throw ConfigError(sv.where, key, fmt::format("expected a number, got '{}'", s), range_text(spec));
  check_range(*v, key, spec, sv.where);
  out = *v;
}

void read_value(const SourcedValue& sv, const std::string& key, const FieldSpec&, bool& out) {
  std::string s = scalar_of(sv.value, key, FieldType::Bool, sv.where);
  std::optional<bool> v = parse_bool(s);
  if (!v) throw ConfigError(sv.where, key, fmt::format("expected true or false, got '{}'", s));
  out = *v;
}

void read_value(const SourcedValue& sv, const std::string& key, const FieldSpec& spec, std::string& out) {
  out = scalar_of(sv.value, key, FieldType::String, sv.where);
  check_choice(out, key, spec, sv.where);
}

// A choice is read as its word (checked against spec.choices, the enum's words) and parsed.
template <Choice E>
void read_value(const SourcedValue& sv, const std::string& key, const FieldSpec& spec, E& out) {
  std::string word;
  read_value(sv, key, spec, word);
  out = *parse_choice<E>(word);
}

template <class T>
void read_list(const SourcedValue& sv, const std::string& key, const FieldSpec& spec, std::vector<T>& out) {
  constexpr FieldType type = type_of<std::vector<T>>();
  if (!sv.value.IsSequence())
    throw ConfigError(sv.where, key, fmt::format("expected {}, got {}", field_type_name(type), node_kind(sv.value)));
  out.clear();
  for (const YAML::Node& item : sv.value) {
    T element{};
    read_value(SourcedValue{item, sv.where}, key, spec, element);
    out.push_back(element);
  }
}
void read_value(const SourcedValue& sv, const std::string& key, const FieldSpec& spec, std::vector<std::string>& out) {
  read_list(sv, key, spec, out);
}
void read_value(const SourcedValue& sv, const std::string& key, const FieldSpec& spec, std::vector<double>& out) {
  read_list(sv, key, spec, out);
}
template <Choice E>
void read_value(const SourcedValue& sv, const std::string& key, const FieldSpec& spec, std::vector<E>& out) {
  read_list(sv, key, spec, out);
}

// ---- typed reads of one JSON leaf (stored configs) ----

void read_json(const nlohmann::json& j, const std::string& key, const FieldSpec& spec, int& out) {
  if (!j.is_number_integer()) throw ConfigError("<json>", key, "expected an integer", "got " + j.dump());
  long long v = j.get<long long>();
  check_range(double(v), key, spec, "<json>");
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
    throw ConfigError("<json>", key, fmt::format("{} does not fit a 32-bit integer", v));
  out = int(v);
}
void read_json(const nlohmann::json& j, const std::string& key, const FieldSpec& spec, double& out) {
  if (!j.is_number()) throw ConfigError("<json>", key, "expected a number", "got " + j.dump());
  out = j.get<double>();
  check_range(out, key, spec, "<json>");
}
void read_json(const nlohmann::json& j, const std::string& key, const FieldSpec&, bool& out) {
  if (!j.is_boolean()) throw ConfigError("<json>", key, "expected true or false", "got " + j.dump());
  out = j.get<bool>();
}
void read_json(const nlohmann::json& j, const std::string& key, const FieldSpec& spec, std::string& out) {
  if (!j.is_string()) throw ConfigError("<json>", key, "expected a string", "got " + j.dump());
  out = j.get<std::string>();
  check_choice(out, key, spec, "<json>");
}
template <Choice E>
void read_json(const nlohmann::json& j, const std::string& key, const FieldSpec& spec, E& out) {
  std::string word;
  read_json(j, key, spec, word);
  out = *parse_choice<E>(word);
}
template <class T>
void read_json(const nlohmann::json& j, const std::string& key, const FieldSpec& spec, std::vector<T>& out) {
  if (!j.is_array()) throw ConfigError("<json>", key, "expected a list", "got " + j.dump());
  out.clear();
  for (const nlohmann::json& item : j) {
    T element{};
    read_json(item, key, spec, element);
    out.push_back(element);
  }
}

// ---- one field as JSON: choices as their words ----

template <class T>
nlohmann::json json_of(const T& field) {
  if constexpr (Choice<T>) {
    return name_of(field);
  } else if constexpr (ChoiceList<T>::value) {
    nlohmann::json words = nlohmann::json::array();
    for (auto e : field) words.push_back(name_of(e));
    return words;
  } else {
    return field;
  }
}

// `path` is the key path of `n` for `marks` (harness/config_io.h); each value is recorded at the
// mark of its key (list items at their own), so block lists and mappings point at their key's line.
nlohmann::json yaml_to_json_at(const YAML::Node& n, const std::string& file, int depth, SourceMarks* marks,
                               const std::string& path) {
  if (depth > 64) throw ConfigError(mark_where(file, n.Mark()), "", "data nested more than 64 levels deep");
  switch (n.Type()) {
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (invalid_utf8_at(s) != std::string::npos) throw ConfigError(mark_where(file, n.Mark()), "", "text is not valid UTF-8");
      if (n.Tag() == "!") return s;  // quoted: always a string
      if (s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
      if (std::optional<bool> b = parse_bool(s)) return *b;
      if (std::optional<long long> i = parse_int(s)) return *i;
      if (std::optional<double> x = parse_double(s)) return *x;
      return s;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const YAML::Node& item : n) {
        const std::string item_path = fmt::format("{}[{}]", path, a.size());
        if (marks && !item.Mark().is_null()) (*marks)[item_path] = mark_where(file, item.Mark());
        a.push_back(yaml_to_json_at(item, file, depth + 1, marks, item_path));
      }
      return a;
    }
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (auto it = n.begin(); it != n.end(); ++it) {
        if (!it->first.IsScalar()) throw ConfigError(mark_where(file, it->first.Mark()), "", "a key must be a plain name");
        const std::string key = it->first.Scalar();
        if (invalid_utf8_at(key) != std::string::npos) throw ConfigError(mark_where(file, it->first.Mark()), "", "a key is not valid UTF-8");
        if (o.contains(key)) throw ConfigError(mark_where(file, it->first.Mark()), key, "key given twice in the same mapping");
        const std::string key_path = path.empty() ? key : path + "." + key;
        if (marks) (*marks)[key_path] = mark_where(file, it->first.Mark());
        o[key] = yaml_to_json_at(it->second, file, depth + 1, marks, key_path);
      }
      return o;
    }
    default:
      return nullptr;
  }
}

}  // namespace

nlohmann::json yaml_to_json(const YAML::Node& node, const std::string& file, SourceMarks* marks,
                            const std::string& path) {
  if (marks && !path.empty() && !node.Mark().is_null()) marks->emplace(path, mark_where(file, node.Mark()));
  return yaml_to_json_at(node, file, 0, marks, path);
}

std::string mark_where(const std::string& file, const YAML::Mark& mark) {
  if (mark.is_null()) return file;
  return fmt::format("{}:{}:{}", file, mark.line + 1, mark.column + 1);
}

std::vector<FieldInfo> config_fields() {
  std::vector<FieldInfo> fields;
  RunConfig c;
  for_each_field(c, [&](const std::string& key, auto& field, const FieldSpec& spec) {
    fields.push_back(FieldInfo{key, type_of<std::decay_t<decltype(field)>>(), spec});
  });
  return fields;
}

const FieldInfo* find_field(const std::vector<FieldInfo>& fields, std::string_view key) {
  for (const FieldInfo& f : fields)
    if (f.key == key) return &f;
  return nullptr;
}

const char* field_type_name(FieldType type) {
  switch (type) {
    case FieldType::Int: return "an integer";
    case FieldType::Double: return "a number";
    case FieldType::Bool: return "true or false";
    case FieldType::String: return "a string";
    case FieldType::StringList: return "a list of strings";
    case FieldType::DoubleList: return "a list of numbers";
  }
  return "?";
}

size_t invalid_utf8_at(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    // Sequence length from the lead byte; overlong 2-byte leads (0xC0, 0xC1) and leads past
    // U+10FFFF (> 0xF4) are invalid.
    size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (len == 0 || i + len > text.size()) return i;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return i;
    i += len;
  }
  return std::string_view::npos;
}

std::string choices_hint(std::string_view given, const std::vector<std::string>& allowed) {
  std::string closest, list;
  size_t best = std::max<size_t>(3, given.size() / 3 + 1);  // suggest only near misses
  for (const std::string& a : allowed) {
    list += (list.empty() ? "" : ", ") + a;
    if (size_t d = edit_distance(given, a); d < best) best = d, closest = a;
  }
  return (closest.empty() ? "" : "did you mean '" + closest + "'? ") + "allowed: " + list;
}

namespace {

// flatten_config with the set of dotted keys seen so far, so {model: {size: a}, model.size: b}
// is caught as a key given twice.
void flatten_into(const YAML::Node& node, const std::string& file, FlatConfig& out, const std::string& prefix,
                  std::vector<std::string>* order, std::set<std::string>& seen, const std::vector<FieldInfo>& fields) {
  if (!node.IsMap())
    throw ConfigError(mark_where(file, node.Mark()), prefix, fmt::format("expected a mapping of config keys, got {}", node_kind(node)));
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key_node = it->first;  // copies: `it->` yields a temporary proxy
    const YAML::Node value = it->second;
    std::string key_where = mark_where(file, key_node.Mark());
    if (!key_node.IsScalar()) throw ConfigError(key_where, prefix, "a config key must be a plain name");
    std::string full = prefix.empty() ? key_node.Scalar() : prefix + "." + key_node.Scalar();
    if (!seen.insert(full).second) throw ConfigError(key_where, full, "key given twice");
    if (find_field(fields, full)) {
      // A key with no value has a null mark on some yaml-cpp paths; then point at the key.
      out[full] = SourcedValue{value, value.Mark().is_null() ? key_where : mark_where(file, value.Mark())};
      if (order) order->push_back(full);
    } else if (is_section(fields, full)) {
      if (!value.IsMap())
        throw ConfigError(key_where, full, fmt::format("'{}' is a section: expected a mapping of its keys, got {}", full, node_kind(value)),
                          choices_hint("", children_of(fields, full)));
      flatten_into(value, file, out, full, order, seen, fields);
    } else {
      throw ConfigError(key_where, full, "unknown config key", choices_hint(full, children_of(fields, parent_of(full))));
    }
  }
}

}  // namespace

void flatten_config(const YAML::Node& node, const std::string& file, FlatConfig& out, const std::string& prefix,
                    std::vector<std::string>* order) {
  std::set<std::string> seen;
  flatten_into(node, file, out, prefix, order, seen, config_fields());
}

RunConfig read_config(const FlatConfig& flat) {
  RunConfig c;
  size_t used = 0;
  for_each_field(c, [&](const std::string& key, auto& field, const FieldSpec& spec) {
    auto it = flat.find(key);
    if (it == flat.end()) return;
    ++used;
    read_value(it->second, key, spec, field);
  });
  if (used != flat.size()) {
    const std::vector<FieldInfo> fields = config_fields();
    for (const auto& [key, sv] : flat)
      if (!find_field(fields, key))
        throw ConfigError(sv.where, key, "unknown config key", choices_hint(key, children_of(fields, parent_of(key))));
  }
  return c;
}

namespace {

// Throws the ConfigError of a failed cross-field check at the first of `keys` that was written
// somewhere (sources), so the error points at a line.
struct Fail {
  const FlatConfig& sources;
  [[noreturn]] void operator()(std::initializer_list<const char*> keys, const std::string& problem,
                               const std::string& hint = "") const {
    for (const char* k : keys)
      if (auto it = sources.find(k); it != sources.end()) throw ConfigError(it->second.where, k, problem, hint);
    throw ConfigError("", *keys.begin(), problem, hint);
  }
};

void check_model(const ModelConfig& m, const Fail& fail) {
  if (!find_vit_size(m.size)) {
    std::vector<std::string> names;
    for (const VitSize& s : vit_sizes()) names.push_back(s.name);
    fail({"model.size"}, fmt::format("unknown model size '{}'", m.size), choices_hint(m.size, names));
  }
  if (m.img_size % m.patch_size != 0)
    fail({"model.patch_size", "model.img_size"}, fmt::format("img_size {} is not a multiple of patch_size {}", m.img_size, m.patch_size));
  if (m.dec_dim % m.dec_heads != 0)
    fail({"model.dec_heads", "model.dec_dim"}, fmt::format("dec_dim {} is not divisible by dec_heads {}", m.dec_dim, m.dec_heads));
}

// The visible, masked and reconstructed token counts the ratios give on this patch grid.
void check_token_counts(const ModelConfig& m, const MethodConfig& me, const Fail& fail) {
  const TokenCounts n = token_counts(m, me);
  if (n.visible < 1)
    fail({"method.mask_ratio"}, fmt::format("no patch stays visible: int({} * (1 - {})) = 0", n.patches, me.mask_ratio),
         "lower mask_ratio or use more patches");
  if (n.masked < 1)
    fail({"method.mask_ratio"}, fmt::format("no patch is masked: int({} * (1 - {})) = {}", n.patches, me.mask_ratio, n.visible),
         "raise mask_ratio or use more patches");
  if (me.recon_ratio > me.mask_ratio)
    fail({"method.recon_ratio", "method.mask_ratio"},
         fmt::format("recon_ratio {} exceeds mask_ratio {}", me.recon_ratio, me.mask_ratio),
         "both are fractions of all patches; only masked patches can be reconstructed");
  if (me.recon_ratio > 0 && (n.recon < 1 || n.recon > n.masked))
    fail({"method.recon_ratio"}, fmt::format("reconstructs {} of {} masked patches", n.recon, n.masked),
         "int(L * recon_ratio) must be between 1 and the masked count");
}

// Schedules and ranges that span fields: InfoBatch's pruned epochs, PSTS stages, warm-up, crops,
// and the batch's split over data-parallel ranks.
void check_schedule(const RunConfig& c, const Fail& fail) {
  const MethodConfig& me = c.method;
  // InfoBatch that can prune no epoch would only reshuffle the data: refused rather than run as a no-op.
  if (me.infobatch && infobatch_stop_epoch(c) < 2)
    fail({"method.infobatch_stop", "train.epochs", "method.infobatch"},
         fmt::format("InfoBatch prunes no epoch: epoch 0 only scores the samples and pruning stops at epoch "
                     "floor({} * {}) = {}", me.infobatch_stop, c.train.epochs, infobatch_stop_epoch(c)),
         "pruned epochs are 1 .. floor(infobatch_stop * epochs) - 1: raise train.epochs or "
         "method.infobatch_stop, or set method.infobatch: false");
  std::vector<PstsStage> order = me.psts_order;
  std::sort(order.begin(), order.end());
  if (order != std::vector<PstsStage>{PstsStage::near, PstsStage::far, PstsStage::random})
    fail({"method.psts_order"}, "must be a permutation of near, far, random (3 entries, each once)");
  if (me.psts_bounds.size() != 4 || !std::is_sorted(me.psts_bounds.begin(), me.psts_bounds.end()))
    fail({"method.psts_bounds"}, "must be 4 non-decreasing fractions of training", "e.g. [0.35, 0.375, 0.725, 0.75]");
  if (!(me.scale_min < me.scale_max))
    fail({"method.scale_min", "method.scale_max"}, fmt::format("scale_min {} must be below scale_max {}", me.scale_min, me.scale_max));
  // The lr warms up linearly to its peak over warmup_epochs; a longer warm-up than the run would
  // train at a fraction of the configured lr throughout.
  if (c.train.warmup_epochs > c.train.epochs)
    fail({"train.warmup_epochs", "train.epochs"},
         fmt::format("warmup_epochs {} is longer than the run ({} epochs): the lr would never reach its peak",
                     c.train.warmup_epochs, c.train.epochs),
         "shorten train.warmup_epochs (0 = no warm-up) or train for more epochs");
  if (!(c.data.crop_min <= c.data.crop_max))
    fail({"data.crop_min", "data.crop_max"}, fmt::format("crop_min {} exceeds crop_max {}", c.data.crop_min, c.data.crop_max));
  // Each of the resources.gpus data-parallel ranks trains on an equal share of the global batch.
  // (gpus: 0 is resolved from the memory estimate to a power of two that divides the batch.)
  if (c.resources.gpus > 0 && c.train.batch % c.resources.gpus != 0)
    fail({"train.batch", "resources.gpus"},
         fmt::format("batch {} does not split evenly over {} data-parallel ranks (resources.gpus)", c.train.batch, c.resources.gpus),
         "make train.batch a multiple of resources.gpus");
}

// Method-specific consistency. CrossMAE and SelectiveMAE reconstruct a subset of patches from
// cross-attention queries, so they need the cross decoder; nothing is switched silently.
void check_method(const ModelConfig& m, const MethodConfig& me, const Fail& fail) {
  const bool cross_method = me.name == MethodKind::crossmae || me.name == MethodKind::selectivemae;
  if (cross_method && m.decoder != DecoderKind::cross)
    fail({"model.decoder", "method.name"}, fmt::format("method {} needs the cross-attention decoder", name_of(me.name)), "set model.decoder: cross");
  if (me.name == MethodKind::selectivemae && me.recon_ratio <= 0)
    fail({"method.recon_ratio", "method.name"}, "selectivemae reconstructs a selected subset: recon_ratio must be > 0", "e.g. 0.25");
  // The official score is ~0 for every patch (a mean of standardised values): the public code
  // samples from its ~uniform softmax; top-k would rank float rounding residue instead.
  if (me.hog_mode == HogMode::official && me.hog_select == HogSelect::topk)
    fail({"method.hog_select", "method.hog_mode"},
         "hog_mode official with hog_select topk ranks rounding noise (every official score is ~0)",
         "the public code samples: set method.hog_select: multinomial (or hog_mode: paper to rank by HOG energy)");
  if (me.psts && me.name != MethodKind::selectivemae)
    fail({"method.psts", "method.name"}, fmt::format("psts is part of selectivemae, not {}", name_of(me.name)));
  if ((m.dec_self_attn || m.dec_feature_map) && m.decoder != DecoderKind::cross)
    fail({m.dec_self_attn ? "model.dec_self_attn" : "model.dec_feature_map", "model.decoder"},
         "dec_self_attn and dec_feature_map belong to the cross decoder", "set model.decoder: cross or turn them off");
  if (me.name != MethodKind::crossscale) return;
  if (!me.multiscale && (me.loss_cc || me.loss_cp))
    fail({"method.multiscale", me.loss_cc ? "method.loss_cc" : "method.loss_cp"},
         "loss_cc and loss_cp compare the two views: they need multiscale: true");
  if (!me.loss_re && !me.loss_cc && !me.loss_cp) fail({"method.loss_re"}, "every crossscale loss is off");
  if (!me.multiscale || !me.loss_cp) return;
  if (me.cp_tokens == CpTokens::masked && me.view_masks != ViewMasks::shared)
    fail({"method.cp_tokens", "method.view_masks"}, "predicting the masked tokens needs one mask for both views",
         "set method.view_masks: shared, or method.cp_tokens: all");
  if (me.cp_tokens == CpTokens::all && m.decoder != DecoderKind::mae)
    fail({"method.cp_tokens", "model.decoder"}, "the cross decoder has no token for every patch",
         "set model.decoder: mae, or method.cp_tokens: masked with method.view_masks: shared");
  if (me.cp_head == CpHead::bn && me.cp_tokens != CpTokens::all)
    fail({"method.cp_head", "method.cp_tokens"}, "the BatchNorm1d predictor normalises all L token positions",
         "set method.cp_tokens: all, or method.cp_head: gelu");
}

void check_eval(const EvalConfig& e, const ModelConfig& m, const Fail& fail) {
  if (e.protocols.empty()) fail({"eval.protocols"}, "needs at least one protocol");
  const std::set<Protocol> unique(e.protocols.begin(), e.protocols.end());
  if (unique.size() != e.protocols.size()) fail({"eval.protocols"}, "lists a protocol twice");
  if (e.scales.empty()) fail({"eval.scales"}, "needs at least one scale", "e.g. [1.0]");
  // Scale-MAE's protocol encodes a reduced image at its own size: it must hold one patch.
  for (double scale : e.scales)
    if (e.knn_resize == KnnResize::encode && std::llround(scale * m.img_size) < m.patch_size)
      fail({"eval.scales", "eval.knn_resize"},
           fmt::format("scale {} of img_size {} is {} px, less than one {} px patch", scale, m.img_size,
                       std::llround(scale * m.img_size), m.patch_size),
           "raise the scale, or set eval.knn_resize: upsample");
}

}  // namespace

void validate(const RunConfig& c, const FlatConfig& sources) {
  const Fail fail{sources};
  check_model(c.model, fail);
  check_token_counts(c.model, c.method, fail);
  check_schedule(c, fail);
  check_method(c.model, c.method, fail);
  check_eval(c.eval, c.model, fail);
}

RunConfig config_from_yaml(const YAML::Node& resolved, const std::string& file) {
  FlatConfig flat;
  flatten_config(resolved, file, flat);
  RunConfig c = read_config(flat);
  validate(c, flat);
  return c;
}

nlohmann::json config_to_json(const RunConfig& config) {
  nlohmann::json j = nlohmann::json::object();
  RunConfig c = config;  // visit_fields takes non-const references
  for_each_field(c, [&](const std::string& key, auto& field, const FieldSpec&) {
    size_t dot = key.find('.');
    nlohmann::json& slot = dot == std::string::npos ? j[key] : j[key.substr(0, dot)][key.substr(dot + 1)];
    slot = json_of(field);
  });
  return j;
}

std::string canonical_dump(const nlohmann::json& j) {
  // nlohmann::json keeps object keys in a std::map (sorted) and prints doubles in shortest
  // round-trip form, so equal configs give equal bytes whatever order they were written in.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
}

RunConfig config_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw ConfigError("<json>", "", "a config must be a JSON object");
  const std::vector<FieldInfo> fields = config_fields();
  for (const auto& [name, value] : j.items()) {
    if (find_field(fields, name)) continue;
    if (!is_section(fields, name)) throw ConfigError("<json>", name, "unknown config key", choices_hint(name, children_of(fields, "")));
    if (!value.is_object()) throw ConfigError("<json>", name, "a section must be a JSON object");
    for (const auto& [field, unused] : value.items())
      if (!find_field(fields, name + "." + field))
        throw ConfigError("<json>", name + "." + field, "unknown config key", choices_hint(name + "." + field, children_of(fields, name)));
  }
  RunConfig c;
  for_each_field(c, [&](const std::string& key, auto& field, const FieldSpec& spec) {
    size_t dot = key.find('.');
    const nlohmann::json* v = nullptr;
    if (dot == std::string::npos) {
      if (j.contains(key)) v = &j.at(key);
    } else if (const auto& s = key.substr(0, dot); j.contains(s) && j.at(s).contains(key.substr(dot + 1))) {
      v = &j.at(s).at(key.substr(dot + 1));
    }
    if (v) read_json(*v, key, spec, field);
  });
  return c;
}

nlohmann::json config_id(const RunConfig& config) {
  nlohmann::json j = config_to_json(config);
  const nlohmann::json defaults = config_to_json(RunConfig{});
  for (const FieldInfo& f : config_fields()) {
    if (!f.spec.id_omits_default) continue;
    std::string path = "/" + f.key;
    std::replace(path.begin(), path.end(), '.', '/');
    const nlohmann::json::json_pointer ptr(path);
    if (j.at(ptr) == defaults.at(ptr)) j[ptr.parent_pointer()].erase(ptr.back());
  }
  // Evaluation is its own record (harness/eval_task.h): a run's id covers what pre-training
  // computes, so adding or changing an evaluation never re-trains. eval.random_init stays: it
  // decides whether the run pre-trains at all (its weights are the seeded initialisation).
  j.erase("eval");
  if (config.eval.random_init) j["eval"] = {{"random_init", true}};
  return j;
}

std::string config_id_json(const RunConfig& config) { return canonical_dump(config_id(config)); }

std::string config_hash(const RunConfig& config) { return sha256_hex(config_id_json(config)).substr(0, 12); }

std::pair<std::string, YAML::Node> parse_override(const std::string& assignment) {
  const std::string where = "<command line>";
  size_t eq = assignment.find('=');
  if (eq == std::string::npos)
    throw ConfigError(where, "", fmt::format("override '{}' is not key=value", assignment), "e.g. train.epochs=5");
  std::string key = assignment.substr(0, eq);
  key.erase(0, key.find_first_not_of(" \t"));
  key.erase(key.find_last_not_of(" \t") + 1);
  const std::vector<FieldInfo> fields = config_fields();
  if (!find_field(fields, key))
    throw ConfigError(where, key, "unknown config key", choices_hint(key, children_of(fields, parent_of(key))));
  try {
    YAML::Node value = YAML::Load(assignment.substr(eq + 1));
    if (value.IsMap()) throw ConfigError(where, key, "an override value must be a scalar or a [list]");
    return {key, value};
  } catch (const YAML::Exception& e) {
    throw ConfigError(where, key, fmt::format("cannot parse the value: {}", e.msg));
  }
}

void apply_override(YAML::Node& config, const std::string& assignment) {
  auto [key, value] = parse_override(assignment);
  try {
    const YAML::Node& lookup = config;  // const: a non-const operator[] would insert the key
    if (config.IsMap() && lookup[key]) {  // written as a dotted key at the top level
      config[key] = value;
      return;
    }
    YAML::Node cur;
    cur.reset(config);
    size_t start = 0;
    for (size_t dot; (dot = key.find('.', start)) != std::string::npos; start = dot + 1) {
      std::string part = key.substr(start, dot - start);
      if (!cur[part].IsMap()) cur[part] = YAML::Node(YAML::NodeType::Map);
      YAML::Node next = cur[part];
      cur.reset(next);
    }
    cur[key.substr(start)] = value;
  } catch (const YAML::Exception& e) {
    throw ConfigError("<command line>", key, fmt::format("cannot apply the override: {}", e.msg));
  }
}

void apply_override(FlatConfig& config, const std::string& assignment) {
  auto [key, value] = parse_override(assignment);
  config[key] = SourcedValue{value, "<command line>"};
}

}  // namespace ablate
