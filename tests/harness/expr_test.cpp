// The expression language: arithmetic, logic, lists, functions and interpolation checked against
// hand-computed values, and every error class with its exact column.
#include "harness/expr.h"

#include <cmath>
#include <map>

#include "harness/check.h"
#include "tests/support/catch.h"
#include "tests/support/errors.h"

using namespace ablate;

namespace {

const std::map<std::string, Value> kVars = {
    {"train.blr", 1.5e-4},
    {"train.batch", 512},
    {"data.dataset", "eurosat"},
    {"model.img_size", 64},
    {"method.name", "selectivemae"},
    {"method.mask_ratio", 0.85},
    {"method.psts", true},
    {"method.psts_order", Value::List{"far", "near", "random"}},
};

std::optional<Value> vars(const std::string& path) {
  auto it = kVars.find(path);
  return it == kVars.end() ? std::nullopt : std::optional<Value>(it->second);
}

Value eval(const std::string& text) { return Expr::parse(text, ExprSource{}).eval(vars); }

// Equal up to floating-point rounding (Approx is unusable with the shared Catch2 v2 header).
bool nearly_equal(double a, double b) { return std::fabs(a - b) <= 1e-12 * std::fabs(b); }

// The ConfigError thrown by parsing and evaluating `text` (test fails if none).
ConfigError expr_error(const std::string& text, const ExprSource& src = ExprSource{}) {
  INFO("expression: " << text);
  return error_of([&] { Expr::parse(text, src).eval(vars); });
}

}  // namespace

TEST_CASE("arithmetic follows the usual precedence", "[expr]") {
  CHECK(eval("1 + 2 * 3").number() == 7);
  CHECK(eval("(1 + 2) * 3").number() == 9);
  CHECK(eval("-2 * 3").number() == -6);
  CHECK(eval("2 - 3 - 4").number() == -5);  // left-associative
  CHECK(eval("10 / 4").number() == 2.5);
  CHECK(eval("7 % 3").number() == 1);
  CHECK(nearly_equal(eval("1.5e-4 * 2").number(), 3e-4));
  CHECK(eval("- -3").number() == 3);
}

TEST_CASE("comparisons, logic and membership", "[expr]") {
  CHECK(eval("1 < 2 and not (3 == 4)").boolean());
  CHECK(eval("2 <= 2 and 3 >= 4 or true").boolean());  // and binds tighter than or
  CHECK_FALSE(eval("not true or false").boolean());
  CHECK(eval("'abc' < 'abd'").boolean());
  CHECK(eval("method.name in ['mae', 'selectivemae']").boolean());
  CHECK(eval("method.name not in ['mae']").boolean());
  CHECK(eval("0.85 in [0.75, 0.85]").boolean());
  CHECK(eval("[1, 2] == [1, 2]").boolean());
  CHECK(eval("[1, 2] != [2, 1]").boolean());
  CHECK(eval("method.psts == true").boolean());
}

TEST_CASE("identifiers, {path} references and string interpolation", "[expr]") {
  CHECK(nearly_equal(eval("{train.blr} * {train.batch} / 256").number(), 3e-4));
  CHECK(nearly_equal(eval("train.blr * train.batch / 256").number(), 3e-4));
  CHECK(eval("'shards/{data.dataset}_{model.img_size}'").string() == "shards/eurosat_64");
  CHECK(eval("'{{literal}}'").string() == "{literal}");
  CHECK(eval("'it\\'s'").string() == "it's");
  CHECK(eval("\"double\" + 'single'").string() == "doublesingle");
  CHECK(eval("'{method.mask_ratio}'").string() == "0.85");
}

TEST_CASE("functions and indexing", "[expr]") {
  CHECK(eval("min(3, 1, 2)").number() == 1);
  CHECK(eval("max([1, 5, 2])").number() == 5);
  CHECK(eval("floor(2.7)").number() == 2);
  CHECK(eval("floor(-2.5)").number() == -3);
  CHECK(eval("int(-2.7)").number() == -2);
  CHECK(eval("int({train.batch} / 3)").number() == 170);
  CHECK(eval("method.psts_order[0] == 'far'").boolean());
  CHECK(eval("method.psts_order[-1]").string() == "random");
  CHECK(eval("[1, 2] + [3]") == Value(Value::List{1, 2, 3}));
}

TEST_CASE("Value::str formats integral numbers without a fraction", "[expr]") {
  CHECK(Value(256.0).str() == "256");
  CHECK(Value(0.1).str() == "0.1");
  CHECK(Value(Value::List{"a", 1}).str() == "[a, 1]");
}

TEST_CASE("identifiers() lists every path read", "[expr]") {
  Expr e = Expr::parse("a.b + {c.d} + min(e, 1) > 0 and 'x{f.g}' == ''", ExprSource{});
  std::vector<std::string> ids = e.identifiers();
  std::sort(ids.begin(), ids.end());
  CHECK(ids == std::vector<std::string>{"a.b", "c.d", "e", "f.g"});
}

TEST_CASE("errors carry the column of the offending character", "[expr]") {
  ConfigError e = expr_error("1 + * 2");
  CHECK(e.where == "<expr>:1:5");
  e = expr_error("train.blr + trian.batch");
  CHECK(e.where == "<expr>:1:13");
  CHECK(e.problem.find("unknown identifier 'trian.batch'") != std::string::npos);
  e = expr_error("{train.batch} / (2 - 2)");
  CHECK(e.where == "<expr>:1:15");
  CHECK(e.problem.find("division by zero") != std::string::npos);
  e = expr_error("7 % 0");
  CHECK(e.problem.find("division by zero") != std::string::npos);
  e = expr_error("'a' + 1");
  CHECK(e.where == "<expr>:1:5");
  CHECK(e.problem.find("string") != std::string::npos);
  e = expr_error("1 < 'a'");
  CHECK(e.where == "<expr>:1:3");
  e = expr_error("method.name == 1");
  CHECK(e.problem.find("cannot combine") != std::string::npos);
  e = expr_error("'open");
  CHECK(e.problem.find("unterminated") != std::string::npos);
  e = expr_error("1 2");
  CHECK(e.where == "<expr>:1:3");
  e = expr_error("method.psts_order[3]");
  CHECK(e.problem.find("out of range") != std::string::npos);
  e = expr_error("sqrt(2)");
  CHECK(e.problem.find("unknown function") != std::string::npos);
  e = expr_error("1 and true");
  CHECK(e.problem.find("'and'") != std::string::npos);
  e = expr_error("0x10");
  CHECK(e.problem.find("malformed number") != std::string::npos);
  e = expr_error("'{oops'");
  CHECK(e.problem.find("expected '}'") != std::string::npos);
  e = expr_error(std::string(500, '(') + "1" + std::string(500, ')'));
  CHECK(e.problem.find("nested too deeply") != std::string::npos);
}

TEST_CASE("error columns are shifted by the expression's position in its file", "[expr]") {
  ExprSource src{"exp.yaml", 12, 20, "matrix.exclude"};
  ConfigError e = expr_error("x == ", src);
  CHECK(e.where == "exp.yaml:12:25");
  CHECK(e.key == "matrix.exclude");
}

TEST_CASE("test() demands a boolean", "[expr]") {
  Expr e = Expr::parse("1 + 1", ExprSource{});
  CHECK_THROWS_AS(e.test(vars), ConfigError);
  CHECK(Expr::parse("train.batch > 256", ExprSource{}).test(vars));
}

TEST_CASE("check_identifiers finds typos in branches never evaluated", "[expr]") {
  Expr e = Expr::parse("true or trian.batch > 1", ExprSource{});
  CHECK(e.test(vars));  // short-circuit: the typo is never looked up
  try {
    e.check_identifiers([](const std::string& p) { return kVars.count(p) > 0; });
    FAIL("no error");
  } catch (const ConfigError& err) {
    CHECK(err.where == "<expr>:1:9");
  }
}
