// The small expression language of experiment files: predicates in matrix `exclude` / `when` and
// the values of `derived` keys. Values are numbers (double), 'strings', booleans and lists;
// identifiers are dotted config paths (method.mask_ratio) looked up through a resolver, so the
// language knows nothing about RunConfig. The grammar and semantics are documented in
// experiments/README.md ("Expressions"). Every error is a ConfigError whose `where` is
// file:line:col of the offending character, so a typo in a predicate points at itself.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ablate {

struct Value {
  using List = std::vector<Value>;
  std::variant<double, std::string, bool, List> data;

  Value() : data(0.0) {}
  Value(double x) : data(x) {}
  Value(int x) : data(double(x)) {}
  Value(std::string s) : data(std::move(s)) {}
  Value(const char* s) : data(std::string(s)) {}
  Value(bool b) : data(b) {}
  Value(List l) : data(std::move(l)) {}

  bool is_number() const { return std::holds_alternative<double>(data); }
  bool is_string() const { return std::holds_alternative<std::string>(data); }
  bool is_bool() const { return std::holds_alternative<bool>(data); }
  bool is_list() const { return std::holds_alternative<List>(data); }
  double number() const { return std::get<double>(data); }
  const std::string& string() const { return std::get<std::string>(data); }
  bool boolean() const { return std::get<bool>(data); }
  const List& list() const { return std::get<List>(data); }

  // "number", "string", "bool" or "list", for error messages.
  const char* kind() const;
  // Display form used by {path} interpolation: integral numbers without a fraction (256, not
  // 256.0), other numbers in shortest round-trip form, strings unquoted, lists as [a, b].
  std::string str() const;
  bool operator==(const Value& other) const = default;
};

// Where an expression's text sits in its file; line and col (1-based) are those of its first
// character. `key` names what the expression is for (e.g. "derived.train.lr") in errors.
struct ExprSource {
  std::string file = "<expr>";
  int line = 1;
  int col = 1;
  std::string key;
};

// Looks up a dotted identifier; std::nullopt means "no such identifier". It may itself throw a
// ConfigError (e.g. when the value it reads is malformed).
using ExprResolver = std::function<std::optional<Value>(const std::string& path)>;

class Expr {
 public:
  // Parses `text`; ConfigError on a syntax error.
  static Expr parse(std::string_view text, const ExprSource& source);

  // Evaluates against `resolve`; ConfigError on an unknown identifier, a type mismatch, division
  // by zero or an index out of range.
  Value eval(const ExprResolver& resolve) const;
  // eval() that must yield a bool (predicates).
  bool test(const ExprResolver& resolve) const;

  // ConfigError at the first identifier for which `known(path)` is false: finds typos in branches
  // that short-circuiting would never evaluate.
  void check_identifiers(const std::function<bool(const std::string&)>& known) const;

  const std::string& text() const { return text_; }
  // Every dotted path the expression reads (identifiers and {path} interpolations), in order.
  std::vector<std::string> identifiers() const;

 private:
  struct Node {
    enum class Kind { Literal, Ident, Concat, List, Unary, Binary, Call, Index } kind;
    std::string op;  // operator, function name or identifier path
    Value literal;
    std::vector<int> kids;  // indices into nodes_
    int offset = 0;         // 0-based character offset in text_, for error locations
  };
  class Parser;

  Value eval_node(int index, const ExprResolver& resolve) const;
  Value eval_binary(const Node& n, const ExprResolver& resolve) const;
  Value eval_call(const Node& n, const ExprResolver& resolve) const;
  [[noreturn]] void fail(int offset, const std::string& problem, const std::string& hint = "") const;

  std::string text_;
  ExprSource source_;
  std::vector<Node> nodes_;
  int root_ = -1;
};

}  // namespace ablate
