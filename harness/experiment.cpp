// Expansion of an experiment file into planned runs. The order (README, "Expansion"):
//   1. start = defaults <- base <- scale profile
//   2. cells = product axes x zip groups (first axis slowest); no axes = one empty cell
//   3. drop cells matching an `exclude` rule (seen: start <- cell)
//   4. append the `include` cells
//   5. each cell x each seed (seeds / repeats; none = the seed of start)
//   6. config = start <- cell <- seed, then `when` rules in order, then the command-line overrides,
//      then `derived` keys in order (a key set on the command line is not derived)
//   7. read + validate; run id = config_hash; equal ids collapse to the first, with a note (and
//      the evaluations of both). Each `evals:` entry is read over the run's config (step 6).
// Every value keeps the location it was written at, so errors in step 7 point into the file.
#include "harness/experiment.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "harness/check.h"
#include "harness/config_io.h"
#include "harness/expr.h"
#include "harness/hash.h"
#include "harness/memory_estimate.h"

namespace ablate {
namespace {

constexpr size_t kMaxRuns = 100000;  // more is a typo (an axis with a huge list), not an experiment

// One matrix dimension: its alternatives, each a set of assignments (one key for a product axis,
// the keys of a group for zip).
using Dimension = std::vector<FlatConfig>;

struct ExcludeRule {
  std::optional<Expr> predicate;                            // string form
  std::vector<std::pair<std::string, nlohmann::json>> match;  // mapping form: key -> typed value
};

struct WhenRule {
  Expr condition;
  FlatConfig set;
};

struct DerivedKey {
  std::string key;
  FieldType type;
  Expr expr;
  std::string where;
};

struct Matrix {
  std::vector<Dimension> dims;
  std::vector<std::string> axis_keys;
  std::vector<FlatConfig> includes;
  std::vector<ExcludeRule> excludes;
  std::string exclude_where;
  std::vector<WhenRule> when;
  std::vector<SourcedValue> seeds;  // empty: keep the configured seed
  std::string where;
};

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)), fields_(config_fields()) {}

  Experiment load(const std::string& text, const std::string& scale, const std::vector<std::string>& overrides);

 private:
  std::string where(const YAML::Node& n) const { return mark_where(file_, n.Mark()); }

  // `map` must be a mapping with scalar, unique keys, each one of `allowed`.
  void check_keys(const YAML::Node& map, const std::string& section, const std::vector<std::string>& allowed) const {
    if (!map.IsMap()) throw ConfigError(where(map), section, "expected a mapping", "allowed keys: " + fmt::format("{}", fmt::join(allowed, ", ")));
    std::vector<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (!it->first.IsScalar()) throw ConfigError(where(it->first), section, "a key must be a plain name");
      const std::string k = it->first.Scalar();
      std::string path = section.empty() ? k : section + "." + k;
      if (std::find(allowed.begin(), allowed.end(), k) == allowed.end())
        throw ConfigError(where(it->first), path, "unknown key", choices_hint(k, allowed));
      if (std::find(seen.begin(), seen.end(), k) != seen.end()) throw ConfigError(where(it->first), path, "key given twice");
      seen.push_back(k);
    }
  }

  std::string scalar(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) throw ConfigError(where(n), key, "expected a single value (a string)");
    return n.Scalar();
  }

  Expr expression(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) throw ConfigError(where(n), key, "expected an expression (a string)");
    // Columns of a quoted scalar start one past the quote.
    ExprSource src{file_, n.Mark().line + 1, n.Mark().column + 1 + (n.Tag() == "!" ? 1 : 0), key};
    Expr e = Expr::parse(n.Scalar(), src);
    e.check_identifiers([&](const std::string& path) { return find_field(fields_, path) != nullptr; });
    return e;
  }

  FlatConfig flat(const YAML::Node& n, const std::string& key, std::vector<std::string>* order = nullptr) const {
    if (!n.IsMap()) throw ConfigError(where(n), key, "expected a mapping of config keys");
    FlatConfig out;
    flatten_config(n, file_, out, "", order);
    return out;
  }

  // The value `sv` of `key` read with the type of that field, as canonical JSON.
  nlohmann::json typed(const std::string& key, const SourcedValue& sv) const {
    return at_key(config_to_json(read_config(FlatConfig{{key, sv}})), key);
  }

  static const nlohmann::json& at_key(const nlohmann::json& config, const std::string& key) {
    size_t dot = key.find('.');
    return dot == std::string::npos ? config.at(key) : config.at(key.substr(0, dot)).at(key.substr(dot + 1));
  }

  void add_axis(Matrix& m, const std::string& key, const YAML::Node& key_node) const {
    if (std::find(m.axis_keys.begin(), m.axis_keys.end(), key) != m.axis_keys.end())
      throw ConfigError(where(key_node), key, "this key is already a matrix axis");
    m.axis_keys.push_back(key);
  }

  // The alternatives of one axis: a non-empty list, each item sourced at itself.
  std::vector<SourcedValue> alternatives(const std::string& key, const SourcedValue& sv) const {
    if (!sv.value.IsSequence() || sv.value.size() == 0)
      throw ConfigError(sv.where, key, "a matrix axis needs a non-empty list of values", "e.g. [0.75, 0.85]");
    std::vector<SourcedValue> out;
    for (const YAML::Node& item : sv.value) out.push_back(SourcedValue{item, item.Mark().is_null() ? sv.where : where(item)});
    return out;
  }

  // `matrix:` and its sections, each read into `m` by the function named after it.
  Matrix matrix(const YAML::Node& n) const;
  void product_axes(Matrix& m, const YAML::Node& product) const;
  void zip_axes(Matrix& m, const YAML::Node& zip) const;
  void include_cells(Matrix& m, const YAML::Node& include) const;
  void exclude_rules(Matrix& m, const YAML::Node& exclude) const;
  void when_rules(Matrix& m, const YAML::Node& when) const;
  void seed_list(Matrix& m, const YAML::Node& seeds, const YAML::Node& repeats) const;
  std::vector<DerivedKey> derived(const YAML::Node& n) const;
  std::vector<FlatConfig> eval_entries(const YAML::Node& n) const;
  std::vector<ExternalWeights> external_weights(const YAML::Node& n, const FlatConfig& base,
                                                const std::vector<FlatConfig>& evals) const;
  // What every run of the matrix is planned from (Loader::load's pieces, in order).
  struct RunInputs {
    const FlatConfig& start;  // defaults <- base <- scale profile
    const Matrix& m;
    const FlatConfig& command_line;
    const std::vector<DerivedKey>& derive;
    const std::vector<FlatConfig>& evals;  // `evals:` entries; none = the run's own eval section
  };
  void header(const YAML::Node& root, Experiment& ex) const;
  FlatConfig scale_profile(const YAML::Node& root, const std::string& scale, Experiment& ex) const;
  std::vector<FlatConfig> cells(const Matrix& m, const FlatConfig& start) const;
  bool excluded(const Matrix& m, const FlatConfig& config) const;
  PlannedRun planned_run(const RunInputs& in, const FlatConfig& labelled) const;
  void plan_runs(const RunInputs& in, const std::vector<FlatConfig>& cells, Experiment& ex) const;
  // Resolves identifiers against `config` read with field types (read once, on first use).
  ExprResolver resolver(const FlatConfig& config) const;
  YAML::Node to_node(const Value& v, const DerivedKey& d) const;

  std::string file_;
  std::vector<FieldInfo> fields_;
};

Value json_to_value(const nlohmann::json& j) {
  if (j.is_boolean()) return j.get<bool>();
  if (j.is_number()) return j.get<double>();
  if (j.is_string()) return j.get<std::string>();
  Value::List items;
  for (const nlohmann::json& item : j) items.push_back(json_to_value(item));
  return items;
}

// "k=v, k2=v2": names a cell in notes and errors.
std::string cell_label(const FlatConfig& cell, const std::string& file) {
  std::string label;
  for (const auto& [key, sv] : cell) label += (label.empty() ? "" : ", ") + key + "=" + yaml_to_json(sv.value, file).dump();
  return label.empty() ? "the base config" : label;
}

void overlay(FlatConfig& dst, const FlatConfig& src) {
  for (const auto& [key, sv] : src) dst[key] = sv;
}

// `matrix.product`: one dimension per key, in the order written.
void Loader::product_axes(Matrix& m, const YAML::Node& product) const {
  std::vector<std::string> order;
  FlatConfig axes = flat(product, "matrix.product", &order);
  for (const std::string& key : order) {
    add_axis(m, key, product);
    Dimension dim;
    for (const SourcedValue& alt : alternatives(key, axes.at(key))) dim.push_back(FlatConfig{{key, alt}});
    m.dims.push_back(std::move(dim));
  }
}

// `matrix.zip`: one dimension per group, whose axes advance together (equal lengths).
void Loader::zip_axes(Matrix& m, const YAML::Node& zip) const {
  if (!zip.IsSequence()) throw ConfigError(where(zip), "matrix.zip", "expected a list of groups", "e.g. [{model.size: [vit_b, vit_l], train.batch: [256, 128]}]");
  for (const YAML::Node& group : zip) {
    std::vector<std::string> order;
    FlatConfig axes = flat(group, "matrix.zip", &order);
    if (order.empty()) throw ConfigError(where(group), "matrix.zip", "a zip group needs at least one axis");
    Dimension dim;
    for (const std::string& key : order) {
      add_axis(m, key, group);
      std::vector<SourcedValue> alts = alternatives(key, axes.at(key));
      if (key != order[0] && alts.size() != dim.size())
        throw ConfigError(axes.at(key).where, key, fmt::format("zip axes must have equal lengths: {} has {}, {} has {}", order[0], dim.size(), key, alts.size()));
      dim.resize(alts.size());
      for (size_t i = 0; i < alts.size(); ++i) dim[i][key] = alts[i];
    }
    m.dims.push_back(std::move(dim));
  }
}

// `matrix.include`: extra cells; their keys become axes too.
void Loader::include_cells(Matrix& m, const YAML::Node& include) const {
  if (!include.IsSequence()) throw ConfigError(where(include), "matrix.include", "expected a list of mappings", "e.g. [{method.name: mae, method.mask_ratio: 0.75}]");
  for (const YAML::Node& cell : include) {
    std::vector<std::string> order;
    m.includes.push_back(flat(cell, "matrix.include", &order));
    for (const std::string& key : order)
      if (std::find(m.axis_keys.begin(), m.axis_keys.end(), key) == m.axis_keys.end()) m.axis_keys.push_back(key);
  }
}

// `matrix.exclude`: predicates (strings) or mappings of key -> value, read with the field's type.
void Loader::exclude_rules(Matrix& m, const YAML::Node& exclude) const {
  m.exclude_where = where(exclude);
  if (!exclude.IsSequence()) throw ConfigError(where(exclude), "matrix.exclude", "expected a list of predicates or mappings");
  for (const YAML::Node& rule : exclude) {
    ExcludeRule r;
    if (rule.IsScalar()) {
      r.predicate = expression(rule, "matrix.exclude");
    } else {
      for (const auto& [key, sv] : flat(rule, "matrix.exclude")) r.match.emplace_back(key, typed(key, sv));
    }
    m.excludes.push_back(std::move(r));
  }
}

// `matrix.when`: {if: predicate, set: {...}} rules, applied in order.
void Loader::when_rules(Matrix& m, const YAML::Node& when) const {
  if (!when.IsSequence()) throw ConfigError(where(when), "matrix.when", "expected a list of {if: ..., set: {...}}");
  for (const YAML::Node& rule : when) {
    check_keys(rule, "matrix.when", {"if", "set"});
    if (!rule["if"] || !rule["set"]) throw ConfigError(where(rule), "matrix.when", "a rule needs both 'if' and 'set'");
    m.when.push_back(WhenRule{expression(rule["if"], "matrix.when.if"), flat(rule["set"], "matrix.when.set")});
  }
}

// `matrix.seeds` (a list) or `matrix.repeats` (N: seeds 0..N-1), not both.
void Loader::seed_list(Matrix& m, const YAML::Node& seeds, const YAML::Node& repeats) const {
  if (seeds && repeats) throw ConfigError(where(repeats), "matrix.repeats", "give either seeds or repeats, not both");
  if (seeds) {
    for (const SourcedValue& s : alternatives("matrix.seeds", SourcedValue{seeds, where(seeds)})) {
      typed("seed", s);  // checks the type and range at the item
      m.seeds.push_back(s);
    }
  } else if (repeats) {
    std::string text = scalar(repeats, "matrix.repeats");
    bool digits = !text.empty() && text.size() <= 5 && text.find_first_not_of("0123456789") == std::string::npos;
    int count = digits ? std::stoi(text) : 0;
    if (count < 1) throw ConfigError(where(repeats), "matrix.repeats", fmt::format("expected a whole number >= 1, got '{}'", text), "seeds 0..repeats-1 are run");
    for (int i = 0; i < count; ++i) m.seeds.push_back(SourcedValue{YAML::Node(std::to_string(i)), where(repeats)});
  }
}

Matrix Loader::matrix(const YAML::Node& n) const {
  Matrix m;
  m.where = n ? where(n) : file_;
  if (!n) return m;
  check_keys(n, "matrix", {"product", "zip", "include", "exclude", "when", "seeds", "repeats"});
  if (const YAML::Node product = n["product"]) product_axes(m, product);
  if (const YAML::Node zip = n["zip"]) zip_axes(m, zip);
  if (const YAML::Node include = n["include"]) include_cells(m, include);
  if (const YAML::Node exclude = n["exclude"]) exclude_rules(m, exclude);
  if (const YAML::Node when = n["when"]) when_rules(m, when);
  seed_list(m, n["seeds"], n["repeats"]);
  for (const std::string& key : m.axis_keys)
    if (key == "seed" && !m.seeds.empty()) throw ConfigError(m.where, "seed", "seed is a matrix axis and seeds/repeats are given too");
  return m;
}

std::vector<DerivedKey> Loader::derived(const YAML::Node& n) const {
  std::vector<DerivedKey> out;
  if (!n) return out;
  if (!n.IsMap()) throw ConfigError(where(n), "derived", "expected a mapping of config keys to expressions", "e.g. {train.lr: \"{train.blr} * {train.batch} / 256\"}");
  std::vector<std::string> order;
  FlatConfig keys = flat(n, "derived", &order);  // checks the keys; values are expressions
  for (const std::string& key : order) {
    const SourcedValue& sv = keys.at(key);
    out.push_back(DerivedKey{key, find_field(fields_, key)->type, expression(sv.value, "derived." + key), sv.where});
  }
  return out;
}

ExprResolver Loader::resolver(const FlatConfig& config) const {
  auto resolved = std::make_shared<std::optional<nlohmann::json>>();
  return [this, &config, resolved](const std::string& path) -> std::optional<Value> {
    if (!find_field(fields_, path)) return std::nullopt;
    if (!*resolved) *resolved = config_to_json(read_config(config));
    return json_to_value(at_key(**resolved, path));
  };
}

// A derived value as the YAML scalar/list its field's reader accepts, after checking its type.
YAML::Node Loader::to_node(const Value& v, const DerivedKey& d) const {
  auto wrong = [&](const char* wanted) {
    return ConfigError(d.where, d.key, fmt::format("the expression gives a {} ({}), the key needs {}", v.kind(), v.str(), wanted),
                       d.type == FieldType::Int ? "wrap it in int() or floor()" : "");
  };
  switch (d.type) {
    case FieldType::Int:
      if (!v.is_number() || v.number() != std::floor(v.number())) throw wrong("an integer");
      return YAML::Node(v.str());
    case FieldType::Double:
      if (!v.is_number()) throw wrong("a number");
      return YAML::Node(fmt::format("{}", v.number()));
    case FieldType::Bool:
      if (!v.is_bool()) throw wrong("true or false");
      return YAML::Node(v.str());
    case FieldType::String:
      if (!v.is_string()) throw wrong("a string");
      return YAML::Node(v.string());
    case FieldType::StringList:
    case FieldType::DoubleList: {
      bool strings = d.type == FieldType::StringList;
      if (!v.is_list()) throw wrong(strings ? "a list of strings" : "a list of numbers");
      YAML::Node seq(YAML::NodeType::Sequence);
      for (const Value& item : v.list()) {
        if (strings ? !item.is_string() : !item.is_number()) throw wrong(strings ? "a list of strings" : "a list of numbers");
        seq.push_back(YAML::Node(strings ? item.string() : fmt::format("{}", item.number())));
      }
      return seq;
    }
  }
  ABLATE_CHECK(false, "unhandled field type");
  return {};
}

// `evals:` - a non-empty list of eval sections. Each entry takes the keys of `eval` (plus the
// shorthands `protocol: knn` for `protocols: [knn]` and `train_ratio` for `ft_train_ratio`), read
// over the run's own eval section; random_init belongs to the run, not to one evaluation.
std::vector<FlatConfig> Loader::eval_entries(const YAML::Node& n) const {
  if (!n.IsSequence() || n.size() == 0)
    throw ConfigError(where(n), "evals", "expected a non-empty list of evaluations",
                      "e.g. [{protocol: knn, dataset: eurosat}, {protocol: finetune, dataset: aid, train_ratio: 0.2}]");
  std::vector<std::string> allowed = {"protocol", "train_ratio"};
  for (const FieldInfo& f : fields_)
    if (f.key.rfind("eval.", 0) == 0 && f.key != "eval.random_init") allowed.push_back(f.key.substr(5));
  std::vector<FlatConfig> entries;
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node entry = n[i];
    const std::string section = fmt::format("evals[{}]", i);
    check_keys(entry, section, allowed);
    FlatConfig e;
    for (auto it = entry.begin(); it != entry.end(); ++it) {
      std::string key = it->first.Scalar();
      // A fresh node for the shorthand: assigning to a yaml-cpp node would rewrite the file's.
      YAML::Node value(YAML::NodeType::Sequence);
      if (key == "protocol") {
        if (entry["protocols"]) throw ConfigError(where(it->first), section + ".protocol", "give protocol or protocols, not both");
        key = "protocols";
        value.push_back(it->second);
      } else {
        if (key == "train_ratio") {
          if (entry["ft_train_ratio"]) throw ConfigError(where(it->first), section + ".train_ratio", "give train_ratio or ft_train_ratio, not both");
          key = "ft_train_ratio";
        }
        value.reset(it->second);
      }
      e["eval." + key] = SourcedValue{value, where(it->second)};
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

// The sha256 of a weights file's bytes; ConfigError at `at` when it cannot be read.
std::string weights_sha256(const std::filesystem::path& file, const std::string& at, const std::string& key) {
  std::error_code ec;  // an unreadable path is a config error, not a filesystem_error
  std::ifstream in(file, std::ios::binary);
  if (!std::filesystem::is_regular_file(file, ec) || !in)
    throw ConfigError(at, key, fmt::format("weights file '{}' not found", file.string()),
                      "relative paths are read from the experiment file's folder");
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return h.final_hex();
}

// `weights:` - external checkpoints as rows beside the runs. Each entry's config is `base` (start,
// scale profile, command line) with its `model` keys; its evaluations are the file's `evals:`
// entries read over that config, as for a run.
std::vector<ExternalWeights> Loader::external_weights(const YAML::Node& n, const FlatConfig& base,
                                                      const std::vector<FlatConfig>& evals) const {
  if (!n.IsSequence() || n.size() == 0)
    throw ConfigError(where(n), "weights", "expected a non-empty list of checkpoint files",
                      "e.g. [{name: released, file: mae_pretrain_vit_base.pth, layout: mae}]");
  static const std::vector<std::string> layouts = {"mae", "selectivemae", "crossmae", "crossscale", "timm"};
  std::vector<ExternalWeights> out;
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node entry = n[i];
    const std::string section = fmt::format("weights[{}]", i);
    if (!entry.IsMap()) throw ConfigError(where(entry), section, "expected a mapping {name, file, layout, ...}");
    check_keys(entry, section, {"name", "file", "layout", "model", "heads", "norm_eps", "axes"});
    for (const char* required : {"name", "file"})
      if (!entry[required]) throw ConfigError(where(entry), section + "." + required, "missing required key");
    ExternalWeights w;
    w.name = scalar(entry["name"], section + ".name");
    if (w.name.empty() || w.name == "ours")
      throw ConfigError(where(entry["name"]), section + ".name", fmt::format("'{}' cannot name a checkpoint row", w.name),
                        "\"ours\" is the label of the experiment's own runs");
    for (const ExternalWeights& other : out)
      if (other.name == w.name) throw ConfigError(where(entry["name"]), section + ".name", fmt::format("'{}' is given twice", w.name));
    std::filesystem::path file = scalar(entry["file"], section + ".file");
    if (file.is_relative()) file = std::filesystem::path(file_).parent_path() / file;
    std::error_code ec;
    w.path = std::filesystem::absolute(file, ec).lexically_normal().string();  // independent of a worker's cwd
    w.sha256 = weights_sha256(w.path, where(entry["file"]), section + ".file");
    w.layout = entry["layout"] ? scalar(entry["layout"], section + ".layout") : "mae";
    if (std::find(layouts.begin(), layouts.end(), w.layout) == layouts.end())
      throw ConfigError(where(entry["layout"]), section + ".layout", fmt::format("unknown layout '{}'", w.layout),
                        choices_hint(w.layout, layouts));
    try {
      if (entry["heads"]) w.heads = entry["heads"].as<int>();
      if (entry["norm_eps"]) w.norm_eps = entry["norm_eps"].as<double>();
    } catch (const YAML::Exception&) {
      throw ConfigError(where(entry), section, "heads must be a whole number and norm_eps a number");
    }
    if (w.heads < 0 || !(w.norm_eps > 0))
      throw ConfigError(where(entry), section, "heads must be >= 0 (0: inferred) and norm_eps > 0");
    FlatConfig config = base;
    if (entry["model"]) {
      FlatConfig model;
      flatten_config(entry["model"], file_, model, "model");
      overlay(config, model);
      w.model_declared = true;
    }
    w.config = read_config(config);
    if (w.config.model.img_size % w.config.model.patch_size != 0)
      throw ConfigError(where(entry), section + ".model", "model.img_size must be a multiple of model.patch_size");
    if (evals.empty()) w.evals = {w.config.eval};
    for (const FlatConfig& e : evals) {
      FlatConfig with_entry = config;
      overlay(with_entry, e);
      w.evals.push_back(read_config(with_entry).eval);
    }
    w.axes = nlohmann::json::object();
    if (entry["axes"]) {
      w.axes = yaml_to_json(entry["axes"], file_);
      if (!w.axes.is_object()) throw ConfigError(where(entry["axes"]), section + ".axes", "expected a mapping of axis keys to values");
    }
    w.axes["weights"] = w.name;
    out.push_back(std::move(w));
  }
  return out;
}

// ConfigError at the first byte of `text` that is not UTF-8, with its line and column.
void check_utf8(const std::string& text, const std::string& file) {
  const size_t bad = invalid_utf8_at(text);
  if (bad == std::string::npos) return;
  size_t line_start = text.rfind('\n', bad == 0 ? 0 : bad - 1);
  line_start = line_start == std::string::npos ? 0 : line_start + 1;
  int line = 1 + int(std::count(text.begin(), text.begin() + long(bad), '\n'));
  throw ConfigError(fmt::format("{}:{}:{}", file, line, bad - line_start + 1), "", "the file is not valid UTF-8");
}

// Runs body(); a ConfigError it throws also names the matrix cell it was thrown for.
template <class Body>
auto in_cell(const FlatConfig& cell, const std::string& file, Body&& body) {
  try {
    return body();
  } catch (const ConfigError& e) {
    throw ConfigError(e.where, e.key, e.problem + " (in the cell " + cell_label(cell, file) + ")", e.hint);
  }
}

// name, description and paper; the report sections (tables, claims, compare) as JSON with the
// place of every value, checked against the runs later (reports/spec_check.h).
void Loader::header(const YAML::Node& root, Experiment& ex) const {
  if (!root["name"]) throw ConfigError(file_, "name", "missing required key", "a name of [a-z0-9_] characters");
  ex.name = scalar(root["name"], "name");
  if (ex.name.empty() || ex.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
    throw ConfigError(where(root["name"]), "name", fmt::format("'{}' is not a valid name", ex.name), "use only a-z, 0-9 and _");
  if (!root["description"]) throw ConfigError(file_, "description", "missing required key", "one sentence on what the experiment tests");
  ex.description = scalar(root["description"], "description");
  if (root["paper"]) ex.paper = scalar(root["paper"], "paper");
  auto section = [&](const char* name) {
    return root[name] ? yaml_to_json(root[name], file_, &ex.section_marks, name) : nlohmann::json();
  };
  ex.tables = section("tables");
  ex.claims = section("claims");
  ex.compare = section("compare");
}

// The keys of the scale profile that applies (`scale`, else default_scale, else none: {}); sets
// ex.scale to its name.
FlatConfig Loader::scale_profile(const YAML::Node& root, const std::string& scale, Experiment& ex) const {
  std::map<std::string, FlatConfig> profiles;
  std::vector<std::string> profile_names;
  const YAML::Node scales = root["scales"];
  if (scales) {
    if (!scales.IsMap()) throw ConfigError(where(scales), "scales", "expected a mapping of profile names to config keys");
    for (auto it = scales.begin(); it != scales.end(); ++it) {
      std::string name = scalar(it->first, "scales");
      if (profiles.count(name)) throw ConfigError(where(it->first), "scales." + name, "profile given twice");
      profiles[name] = flat(it->second, "scales." + name);
      profile_names.push_back(name);
    }
  }
  std::string default_scale;
  if (root["default_scale"]) {
    default_scale = scalar(root["default_scale"], "default_scale");
    if (!profiles.count(default_scale))
      throw ConfigError(where(root["default_scale"]), "default_scale", fmt::format("no scale profile '{}'", default_scale), choices_hint(default_scale, profile_names));
  }
  ex.scale = scale.empty() ? default_scale : scale;
  if (ex.scale.empty()) return {};
  if (!profiles.count(ex.scale))
    throw ConfigError(scales ? where(scales) : file_, "scales", fmt::format("no scale profile '{}'", ex.scale),
                      profile_names.empty() ? "this file defines no scales" : choices_hint(ex.scale, profile_names));
  return profiles.at(ex.scale);
}

// Steps 2-4: the matrix cells (start <- cell decides the exclusions), then the includes.
std::vector<FlatConfig> Loader::cells(const Matrix& m, const FlatConfig& start) const {
  size_t total = 1;
  for (const Dimension& dim : m.dims) {
    total *= dim.size();
    if (total > kMaxRuns) throw ConfigError(m.where, "matrix", fmt::format("the matrix has more than {} cells", kMaxRuns));
  }
  std::vector<FlatConfig> cells;
  for (size_t index = 0; index < total; ++index) {
    FlatConfig cell;
    size_t rest = index;
    for (size_t d = m.dims.size(); d-- > 0;) {  // mixed radix, last dimension fastest
      overlay(cell, m.dims[d][rest % m.dims[d].size()]);
      rest /= m.dims[d].size();
    }
    FlatConfig config = start;
    overlay(config, cell);
    if (!in_cell(cell, file_, [&] { return excluded(m, config); })) cells.push_back(std::move(cell));
  }
  if (cells.empty() && m.includes.empty())
    throw ConfigError(m.exclude_where.empty() ? m.where : m.exclude_where, "matrix.exclude", "every cell of the matrix is excluded");
  cells.insert(cells.end(), m.includes.begin(), m.includes.end());
  if (cells.size() * std::max<size_t>(1, m.seeds.size()) > kMaxRuns)
    throw ConfigError(m.where, "matrix", fmt::format("the matrix has more than {} runs", kMaxRuns));
  return cells;
}

// Whether an exclude rule matches `config` (a predicate, or every key of a mapping rule).
bool Loader::excluded(const Matrix& m, const FlatConfig& config) const {
  for (const ExcludeRule& rule : m.excludes) {
    if (rule.predicate && rule.predicate->test(resolver(config))) return true;
    if (!rule.predicate) {
      nlohmann::json resolved = config_to_json(read_config(config));
      bool all = std::all_of(rule.match.begin(), rule.match.end(), [&](const auto& kv) { return at_key(resolved, kv.first) == kv.second; });
      if (all) return true;
    }
  }
  return false;
}

// Steps 6-7 for one cell with its seed (`labelled`): the config (start <- cell <- seed, `when`
// rules, command line, derived keys) read and validated, its GPU count, id, evaluations and axes.
PlannedRun Loader::planned_run(const RunInputs& in, const FlatConfig& labelled) const {
  FlatConfig config = in.start;
  overlay(config, labelled);
  for (const WhenRule& rule : in.m.when)
    if (rule.condition.test(resolver(config))) overlay(config, rule.set);
  overlay(config, in.command_line);
  for (const DerivedKey& d : in.derive) {
    if (in.command_line.count(d.key)) continue;  // the command line has the last word
    Value v = d.expr.eval(resolver(config));
    config[d.key] = SourcedValue{to_node(v, d), d.where};
  }
  PlannedRun r;
  r.config = read_config(config);
  validate(r.config, config);
  if (r.config.resources.gpus == 0) {  // derived from the memory estimate, before the id
    try {
      r.config.resources.gpus = derive_gpu_count(r.config);
    } catch (const ConfigError& e) {
      const auto it = config.find("resources.gpus");
      throw ConfigError(it != config.end() ? it->second.where : e.where, e.key, e.problem, e.hint);
    }
  }
  r.id = config_hash(r.config);
  r.seed = r.config.seed;
  if (in.evals.empty()) r.evals = {r.config.eval};
  for (const FlatConfig& entry : in.evals) {
    FlatConfig with_entry = config;
    overlay(with_entry, entry);
    const RunConfig c = read_config(with_entry);
    validate(c, with_entry);
    r.evals.push_back(c.eval);
  }
  nlohmann::json resolved = config_to_json(r.config);
  r.axes = nlohmann::json::object();
  for (const std::string& key : in.m.axis_keys) r.axes[key] = at_key(resolved, key);
  return r;
}

// Steps 5-7: each cell x each seed, equal ids collapsed to the first (with a note and the
// evaluations of both).
void Loader::plan_runs(const RunInputs& in, const std::vector<FlatConfig>& cells, Experiment& ex) const {
  std::map<std::string, std::string> first_cell_of_id;
  std::vector<std::optional<SourcedValue>> seeds(in.m.seeds.begin(), in.m.seeds.end());
  if (seeds.empty()) seeds.push_back(std::nullopt);
  for (const FlatConfig& cell : cells) {
    for (const std::optional<SourcedValue>& seed : seeds) {
      FlatConfig labelled = cell;
      if (seed) labelled["seed"] = *seed;
      PlannedRun run = in_cell(labelled, file_, [&] { return planned_run(in, labelled); });
      auto [it, fresh] = first_cell_of_id.emplace(run.id, cell_label(labelled, file_));
      if (!fresh) {  // e.g. cells differing only in eval keys: one run, the evaluations of both
        PlannedRun& first = *std::find_if(ex.runs.begin(), ex.runs.end(), [&](const PlannedRun& r) { return r.id == run.id; });
        first.evals.insert(first.evals.end(), run.evals.begin(), run.evals.end());
        ex.notes.push_back(fmt::format("the cell {} gives the same config as {} (run {}); planned once",
                                       cell_label(labelled, file_), it->second, run.id));
        continue;
      }
      ex.runs.push_back(std::move(run));
    }
  }
}

Experiment Loader::load(const std::string& text, const std::string& scale, const std::vector<std::string>& overrides) {
  check_utf8(text, file_);
  const YAML::Node root = YAML::Load(text);  // const: operator[] must never insert keys
  if (!root.IsMap())
    throw ConfigError(root.Mark().is_null() ? file_ + ":1:1" : where(root), "", "an experiment file must be a mapping",
                      "keys: name, description, base, matrix, ...");
  check_keys(root, "", {"name", "description", "paper", "base", "matrix", "derived", "scales", "default_scale", "tables", "claims", "compare", "evals", "weights"});

  Experiment ex;
  ex.file = file_;
  header(root, ex);
  // Step 1: start = defaults <- base <- scale profile.
  FlatConfig start;
  if (root["base"]) start = flat(root["base"], "base");
  const FlatConfig profile = scale_profile(root, scale, ex);
  overlay(start, profile);

  FlatConfig command_line;
  for (const std::string& o : overrides) apply_override(command_line, o);

  const Matrix m = matrix(root["matrix"]);
  const std::vector<DerivedKey> derive = derived(root["derived"]);
  const std::vector<FlatConfig> evals = root["evals"] ? eval_entries(root["evals"]) : std::vector<FlatConfig>{};
  ex.axis_keys = m.axis_keys;
  for (const auto& [key, unused] : profile)
    for (const Dimension& dim : m.dims)
      if (dim.front().count(key))
        ex.notes.push_back(fmt::format("scale '{}' sets {}, but it is a matrix axis: the axis values win", ex.scale, key));

  plan_runs(RunInputs{start, m, command_line, derive, evals}, cells(m, start), ex);
  if (root["weights"]) {
    FlatConfig base = start;
    overlay(base, command_line);
    ex.weights = external_weights(root["weights"], base, evals);
    for (PlannedRun& r : ex.runs) r.axes["weights"] = "ours";
    ex.axis_keys.push_back("weights");  // tables and claims may address the rows by it
  }
  return ex;
}

}  // namespace

std::string Experiment::where(const std::string& key_path) const {
  for (std::string path = key_path; !path.empty();) {
    if (auto it = section_marks.find(path); it != section_marks.end()) return it->second;
    const size_t cut = path.find_last_of(".[");
    path.resize(cut == std::string::npos ? 0 : cut);
  }
  return file;
}

Experiment parse_experiment(const std::string& text, const std::string& file, const std::string& scale,
                            const std::vector<std::string>& overrides) {
  try {
    return Loader(file).load(text, scale, overrides);
  } catch (const YAML::Exception& e) {
    // Parse errors, and anything yaml-cpp rejects while we read nodes (e.g. DeepRecursion).
    throw ConfigError(mark_where(file, e.mark), "", "YAML error: " + e.msg);
  }
}

Experiment load_experiment(const std::string& path, const std::string& scale, const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, "", "cannot open the experiment file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_experiment(text.str(), path, scale, overrides);
}

}  // namespace ablate
