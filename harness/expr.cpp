// Tokenizer, recursive-descent parser and tree-walking evaluator of the expression language.
// Precedence, lowest first: or, and, not, comparisons / in (non-associative), + -, * / %, unary -,
// indexing x[i]; see experiments/README.md. Expressions are parsed once per experiment file and
// evaluated once per matrix cell, so the tree is a flat vector of nodes that is cheap to copy.
#include "harness/expr.h"

#include <cctype>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "harness/check.h"

namespace ablate {
namespace {

constexpr int kMaxDepth = 256;  // parser recursion limit (about 64 parentheses): deeper input is rejected, not a stack overflow

bool is_ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool is_integral(double x) { return std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 9e15; }

}  // namespace

const char* Value::kind() const {
  static constexpr const char* kNames[] = {"number", "string", "bool", "list"};
  return kNames[data.index()];
}

std::string Value::str() const {
  if (is_number()) {
    double x = number();
    return is_integral(x) ? fmt::format("{}", static_cast<long long>(x)) : fmt::format("{}", x);
  }
  if (is_string()) return string();
  if (is_bool()) return boolean() ? "true" : "false";
  std::string s = "[";
  for (const Value& v : list()) s += (s.size() > 1 ? ", " : "") + v.str();
  return s + "]";
}

// ---- parsing ----

class Expr::Parser {
 public:
  Parser(Expr& e) : e_(e), t_(e.text_) {}

  int parse_all() {
    int root = parse_or();
    skip_space();
    if (pos_ < t_.size()) e_.fail(int(pos_), fmt::format("unexpected '{}'", t_[pos_]), "expected an operator or the end");
    return root;
  }

 private:
  struct DepthGuard {
    Parser& p;
    DepthGuard(Parser& p_) : p(p_) {
      if (++p.depth_ > kMaxDepth) p.e_.fail(int(p.pos_), "expression nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };

  void skip_space() {
    while (pos_ < t_.size() && std::isspace(static_cast<unsigned char>(t_[pos_]))) ++pos_;
  }
  // Consumes `word` if it comes next as a whole keyword (not a prefix of an identifier).
  bool keyword(std::string_view word) {
    skip_space();
    if (t_.compare(pos_, word.size(), word) != 0) return false;
    size_t end = pos_ + word.size();
    if (end < t_.size() && (is_ident_char(t_[end]) || t_[end] == '.')) return false;
    pos_ = end;
    return true;
  }
  bool symbol(std::string_view s) {
    skip_space();
    if (t_.compare(pos_, s.size(), s) != 0) return false;
    pos_ += s.size();
    return true;
  }
  void expect(std::string_view s, const char* what) {
    if (!symbol(s)) e_.fail(int(pos_), fmt::format("expected '{}' {}", s, what), found());
  }
  std::string found() const {
    return pos_ < t_.size() ? fmt::format("found '{}'", t_[pos_]) : "found the end of the expression";
  }

  int add(Node n) {
    e_.nodes_.push_back(std::move(n));
    return int(e_.nodes_.size()) - 1;
  }
  int binary(std::string op, int lhs, int rhs, size_t at) {
    return add(Node{Node::Kind::Binary, std::move(op), {}, {lhs, rhs}, int(at)});
  }

  int parse_or() {
    DepthGuard g(*this);
    int lhs = parse_and();
    for (size_t at = pos_; keyword("or"); at = pos_) lhs = binary("or", lhs, parse_and(), at);
    return lhs;
  }
  int parse_and() {
    int lhs = parse_not();
    for (size_t at = pos_; keyword("and"); at = pos_) lhs = binary("and", lhs, parse_not(), at);
    return lhs;
  }
  int parse_not() {
    DepthGuard g(*this);
    skip_space();
    size_t at = pos_;
    if (keyword("not")) return add(Node{Node::Kind::Unary, "not", {}, {parse_not()}, int(at)});
    return parse_comparison();
  }
  int parse_comparison() {
    int lhs = parse_sum();
    skip_space();
    size_t at = pos_;
    static constexpr std::string_view kOps[] = {"==", "!=", "<=", ">=", "<", ">"};
    for (std::string_view op : kOps)
      if (symbol(op)) return binary(std::string(op), lhs, parse_sum(), at);
    if (keyword("in")) return binary("in", lhs, parse_sum(), at);
    size_t before_not = pos_;
    if (keyword("not")) {
      if (keyword("in")) return binary("not in", lhs, parse_sum(), at);
      pos_ = before_not;
    }
    return lhs;
  }
  int parse_sum() {
    int lhs = parse_product();
    for (;;) {
      skip_space();
      size_t at = pos_;
      if (symbol("+")) lhs = binary("+", lhs, parse_product(), at);
      else if (symbol("-")) lhs = binary("-", lhs, parse_product(), at);
      else return lhs;
    }
  }
  int parse_product() {
    int lhs = parse_unary();
    for (;;) {
      skip_space();
      size_t at = pos_;
      if (symbol("*")) lhs = binary("*", lhs, parse_unary(), at);
      else if (symbol("/")) lhs = binary("/", lhs, parse_unary(), at);
      else if (symbol("%")) lhs = binary("%", lhs, parse_unary(), at);
      else return lhs;
    }
  }
  int parse_unary() {
    DepthGuard g(*this);
    skip_space();
    size_t at = pos_;
    if (symbol("-")) return add(Node{Node::Kind::Unary, "-", {}, {parse_unary()}, int(at)});
    return parse_postfix();
  }
  int parse_postfix() {
    int base = parse_primary();
    for (;;) {
      skip_space();
      size_t at = pos_;
      if (!symbol("[")) return base;
      int index = parse_or();
      expect("]", "to close the index");
      base = add(Node{Node::Kind::Index, "[]", {}, {base, index}, int(at)});
    }
  }

  // A dotted path a.b.c starting at pos_ (already known to start with an identifier character).
  std::string path() {
    size_t start = pos_;
    for (;;) {
      while (pos_ < t_.size() && is_ident_char(t_[pos_])) ++pos_;
      if (pos_ + 1 < t_.size() && t_[pos_] == '.' && is_ident_start(t_[pos_ + 1])) {
        ++pos_;
        continue;
      }
      return std::string(t_.substr(start, pos_ - start));
    }
  }

  int parse_primary() {
    DepthGuard g(*this);
    skip_space();
    size_t at = pos_;
    if (pos_ >= t_.size()) e_.fail(int(pos_), "expected a value", "found the end of the expression");
    char c = t_[pos_];
    if (std::isdigit(static_cast<unsigned char>(c)) || (c == '.' && pos_ + 1 < t_.size() && std::isdigit(static_cast<unsigned char>(t_[pos_ + 1]))))
      return parse_number();
    if (c == '\'' || c == '"') return parse_string();
    if (symbol("(")) {
      int inner = parse_or();
      expect(")", "to close '('");
      return inner;
    }
    if (symbol("[")) {
      Node list{Node::Kind::List, "[]", {}, {}, int(at)};
      if (!symbol("]")) {
        do list.kids.push_back(parse_or());
        while (symbol(","));
        expect("]", "to close the list");
      }
      return add(std::move(list));
    }
    if (symbol("{")) {  // {path}: the same as path, so derived templates read naturally
      skip_space();
      if (pos_ >= t_.size() || !is_ident_start(t_[pos_])) e_.fail(int(pos_), "expected a config path after '{'", found());
      std::string p = path();
      expect("}", "to close '{'");
      return add(Node{Node::Kind::Ident, std::move(p), {}, {}, int(at)});
    }
    if (keyword("true")) return add(Node{Node::Kind::Literal, "", Value(true), {}, int(at)});
    if (keyword("false")) return add(Node{Node::Kind::Literal, "", Value(false), {}, int(at)});
    if (is_ident_start(c)) {
      std::string name = path();
      skip_space();
      if (symbol("(")) {
        static constexpr std::string_view kFunctions[] = {"min", "max", "floor", "int"};
        bool known = false;
        for (std::string_view f : kFunctions) known |= f == name;
        if (!known) e_.fail(int(at), fmt::format("unknown function '{}'", name), "functions: min, max, floor, int");
        Node call{Node::Kind::Call, name, {}, {}, int(at)};
        if (!symbol(")")) {
          do call.kids.push_back(parse_or());
          while (symbol(","));
          expect(")", "to close the argument list");
        }
        return add(std::move(call));
      }
      static constexpr std::string_view kReserved[] = {"and", "or", "not", "in"};
      for (std::string_view r : kReserved)
        if (name == r) e_.fail(int(at), fmt::format("'{}' needs an operand before it", name));
      return add(Node{Node::Kind::Ident, std::move(name), {}, {}, int(at)});
    }
    e_.fail(int(pos_), fmt::format("unexpected '{}'", c), "expected a number, 'string', true, false, a config path, '(' or '['");
  }

  int parse_number() {
    size_t at = pos_;
    const std::string s(t_.substr(pos_));
    char* end = nullptr;
    double x = std::strtod(s.c_str(), &end);
    size_t len = size_t(end - s.c_str());
    // strtod also reads hex, inf and nan; the language only has decimal literals.
    for (size_t i = 0; i < len; ++i)
      if (std::isalpha(static_cast<unsigned char>(s[i])) && s[i] != 'e' && s[i] != 'E')
        e_.fail(int(at), "malformed number", "decimal literals only, e.g. 0.75 or 1.5e-4");
    pos_ += len;
    if (pos_ < t_.size() && (is_ident_char(t_[pos_]) || t_[pos_] == '.')) e_.fail(int(at), "malformed number");
    return add(Node{Node::Kind::Literal, "", Value(x), {}, int(at)});
  }

  // 'text' or "text" with \\ \' \" escapes; {path} inside interpolates (literal braces: {{ and }}).
  int parse_string() {
    size_t at = pos_;
    char quote = t_[pos_++];
    Node concat{Node::Kind::Concat, "", {}, {}, int(at)};
    std::string piece;
    auto flush = [&] {
      if (!piece.empty()) concat.kids.push_back(add(Node{Node::Kind::Literal, "", Value(piece), {}, int(at)}));
      piece.clear();
    };
    for (;;) {
      if (pos_ >= t_.size()) e_.fail(int(at), "unterminated string", fmt::format("close it with {}", quote));
      char c = t_[pos_];
      if (c == quote) {
        ++pos_;
        break;
      }
      if (c == '\\' && pos_ + 1 < t_.size()) {
        piece += t_[pos_ + 1];
        pos_ += 2;
      } else if ((c == '{' || c == '}') && pos_ + 1 < t_.size() && t_[pos_ + 1] == c) {
        piece += c;
        pos_ += 2;
      } else if (c == '{') {
        size_t brace = pos_++;
        if (pos_ >= t_.size() || !is_ident_start(t_[pos_])) e_.fail(int(brace), "expected a config path after '{' in a string", "write {{ for a literal brace");
        flush();
        std::string p = path();
        if (pos_ >= t_.size() || t_[pos_] != '}') e_.fail(int(pos_), "expected '}' to close the interpolation");
        ++pos_;
        concat.kids.push_back(add(Node{Node::Kind::Ident, std::move(p), {}, {}, int(brace)}));
      } else if (c == '}') {
        e_.fail(int(pos_), "unmatched '}' in a string", "write }} for a literal brace");
      } else {
        piece += c;
        ++pos_;
      }
    }
    flush();
    if (concat.kids.size() == 1 && e_.nodes_[concat.kids[0]].kind == Node::Kind::Literal) return concat.kids[0];
    if (concat.kids.empty()) return add(Node{Node::Kind::Literal, "", Value(std::string()), {}, int(at)});
    return add(std::move(concat));
  }

  Expr& e_;
  std::string_view t_;
  size_t pos_ = 0;
  int depth_ = 0;
};

Expr Expr::parse(std::string_view text, const ExprSource& source) {
  Expr e;
  e.text_ = std::string(text);
  e.source_ = source;
  Parser parser(e);
  e.root_ = parser.parse_all();
  return e;
}

void Expr::fail(int offset, const std::string& problem, const std::string& hint) const {
  throw ConfigError(fmt::format("{}:{}:{}", source_.file, source_.line, source_.col + offset), source_.key,
                    fmt::format("{} in expression \"{}\"", problem, text_), hint);
}

std::vector<std::string> Expr::identifiers() const {
  std::vector<std::string> paths;
  for (const Node& n : nodes_)
    if (n.kind == Node::Kind::Ident) paths.push_back(n.op);
  return paths;
}

void Expr::check_identifiers(const std::function<bool(const std::string&)>& known) const {
  for (const Node& n : nodes_)
    if (n.kind == Node::Kind::Ident && !known(n.op))
      fail(n.offset, fmt::format("unknown identifier '{}'", n.op), "identifiers are dotted config paths, e.g. method.mask_ratio");
}

// ---- evaluation ----

Value Expr::eval(const ExprResolver& resolve) const {
  ABLATE_CHECK(root_ >= 0, "evaluating an expression that was never parsed");
  return eval_node(root_, resolve);
}

bool Expr::test(const ExprResolver& resolve) const {
  Value v = eval(resolve);
  if (!v.is_bool()) fail(0, fmt::format("a condition must be true or false, this one is a {} ({})", v.kind(), v.str()));
  return v.boolean();
}

Value Expr::eval_node(int index, const ExprResolver& resolve) const {
  const Node& n = nodes_[index];
  switch (n.kind) {
    case Node::Kind::Literal:
      return n.literal;
    case Node::Kind::Ident: {
      std::optional<Value> v = resolve(n.op);
      if (!v) fail(n.offset, fmt::format("unknown identifier '{}'", n.op), "identifiers are dotted config paths, e.g. method.mask_ratio");
      return *v;
    }
    case Node::Kind::Concat: {
      std::string s;
      for (int k : n.kids) s += eval_node(k, resolve).str();
      return s;
    }
    case Node::Kind::List: {
      Value::List items;
      for (int k : n.kids) items.push_back(eval_node(k, resolve));
      return items;
    }
    case Node::Kind::Unary: {
      Value v = eval_node(n.kids[0], resolve);
      if (n.op == "-") {
        if (!v.is_number()) fail(n.offset, fmt::format("unary '-' needs a number, got a {}", v.kind()));
        return -v.number();
      }
      if (!v.is_bool()) fail(n.offset, fmt::format("'not' needs true or false, got a {}", v.kind()));
      return !v.boolean();
    }
    case Node::Kind::Binary:
      return eval_binary(n, resolve);
    case Node::Kind::Call:
      return eval_call(n, resolve);
    case Node::Kind::Index: {
      Value base = eval_node(n.kids[0], resolve), at = eval_node(n.kids[1], resolve);
      if (!base.is_list()) fail(n.offset, fmt::format("only lists can be indexed, this is a {}", base.kind()));
      if (!at.is_number() || !is_integral(at.number())) fail(n.offset, "a list index must be a whole number");
      long long i = static_cast<long long>(at.number()), size = static_cast<long long>(base.list().size());
      if (i < 0) i += size;  // negative indices count from the end
      if (i < 0 || i >= size) fail(n.offset, fmt::format("index {} is out of range for a list of {}", at.str(), size));
      return base.list()[size_t(i)];
    }
  }
  ABLATE_CHECK(false, "unhandled expression node kind");
  return {};
}

Value Expr::eval_binary(const Node& n, const ExprResolver& resolve) const {
  Value lhs = eval_node(n.kids[0], resolve);
  const std::string& op = n.op;
  if (op == "and" || op == "or") {
    if (!lhs.is_bool()) fail(n.offset, fmt::format("'{}' needs true or false on its left, got a {}", op, lhs.kind()));
    if (lhs.boolean() == (op == "or")) return lhs.boolean();  // short-circuit
    Value rhs = eval_node(n.kids[1], resolve);
    if (!rhs.is_bool()) fail(n.offset, fmt::format("'{}' needs true or false on its right, got a {}", op, rhs.kind()));
    return rhs.boolean();
  }
  Value rhs = eval_node(n.kids[1], resolve);
  auto mismatch = [&] {
    fail(n.offset, fmt::format("'{}' cannot combine a {} ({}) with a {} ({})", op, lhs.kind(), lhs.str(), rhs.kind(), rhs.str()));
  };
  if (op == "in" || op == "not in") {
    if (!rhs.is_list()) fail(n.offset, fmt::format("'{}' needs a list on its right, got a {}", op, rhs.kind()));
    bool found = false;
    for (const Value& item : rhs.list()) found |= item == lhs;
    return found == (op == "in");
  }
  if (op == "==" || op == "!=") {
    if (lhs.data.index() != rhs.data.index()) mismatch();
    return (lhs == rhs) == (op == "==");
  }
  if (op == "<" || op == "<=" || op == ">" || op == ">=") {
    int cmp = 0;
    if (lhs.is_number() && rhs.is_number()) cmp = lhs.number() < rhs.number() ? -1 : lhs.number() > rhs.number() ? 1 : 0;
    else if (lhs.is_string() && rhs.is_string()) cmp = lhs.string().compare(rhs.string());
    else mismatch();
    if (op == "<") return cmp < 0;
    if (op == "<=") return cmp <= 0;
    if (op == ">") return cmp > 0;
    return cmp >= 0;
  }
  if (op == "+") {
    if (lhs.is_string() && rhs.is_string()) return lhs.string() + rhs.string();
    if (lhs.is_list() && rhs.is_list()) {
      Value::List joined = lhs.list();
      joined.insert(joined.end(), rhs.list().begin(), rhs.list().end());
      return joined;
    }
  }
  if (!lhs.is_number() || !rhs.is_number()) mismatch();
  double a = lhs.number(), b = rhs.number();
  if (op == "+") return a + b;
  if (op == "-") return a - b;
  if (op == "*") return a * b;
  if (b == 0) fail(n.offset, fmt::format("division by zero ('{}' by {})", op, rhs.str()));
  if (op == "/") return a / b;
  ABLATE_CHECK(op == "%", "unknown operator '{}'", op);
  return std::fmod(a, b);
}

Value Expr::eval_call(const Node& n, const ExprResolver& resolve) const {
  std::vector<Value> args;
  for (int k : n.kids) args.push_back(eval_node(k, resolve));
  auto number_arg = [&](const Value& v) {
    if (!v.is_number()) fail(n.offset, fmt::format("{}() needs numbers, got a {} ({})", n.op, v.kind(), v.str()));
    return v.number();
  };
  if (n.op == "min" || n.op == "max") {
    // min(a, b, ...) or min(list)
    const std::vector<Value>& items = args.size() == 1 && args[0].is_list() ? args[0].list() : args;
    if (items.empty()) fail(n.offset, fmt::format("{}() needs at least one number", n.op));
    double best = number_arg(items[0]);
    for (const Value& v : items) best = n.op == "min" ? std::min(best, number_arg(v)) : std::max(best, number_arg(v));
    return best;
  }
  if (args.size() != 1) fail(n.offset, fmt::format("{}() takes one argument, got {}", n.op, args.size()));
  double x = number_arg(args[0]);
  if (n.op == "floor") return std::floor(x);
  ABLATE_CHECK(n.op == "int", "unknown function '{}'", n.op);
  return std::trunc(x);
}

}  // namespace ablate
