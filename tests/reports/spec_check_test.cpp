// Load-time checks of report sections against the plan: each kind of typo in a table or claim
// fails at the file:line:col it was written (located by hand in the text below), the experiment
// files in experiments/ pass at every scale, and a correct section passes.
#include "reports/spec_check.h"

#include <filesystem>

#include "harness/check.h"
#include "tests/support/catch.h"
#include "tests/support/errors.h"

using namespace ablate;
namespace fs = std::filesystem;

namespace {

// Lines 1-10: a two-order PSTS matrix evaluated by KNN at scales 0.5 and 1.
const std::string kHead =
    "name: psts\n"
    "description: d\n"
    "base:\n"
    "  model: {size: vit_micro, img_size: 32, patch_size: 8, decoder: cross, dec_depth: 1, dec_dim: 32, dec_heads: 4}\n"
    "  method: {name: selectivemae, recon_ratio: 0.25, psts: true}\n"
    "  eval: {protocols: [knn], scales: [0.5, 1.0]}\n"
    "matrix:\n"
    "  product:\n"
    "    method.psts_order: [[near, far, random], [far, near, random]]\n"
    "  seeds: [0, 1]\n";

// Line 11 onwards: one table, one claim.
std::string sections(const std::string& rows, const std::string& source, const std::string& claim_metric,
                     const std::string& side_a) {
  return "tables:\n"                                                      // 11
         "  - name: psts\n"                                               // 12
         "    rows: [" + rows + "]\n"                                     // 13, rows[0] at col 12
         "    metrics:\n"                                                 // 14
         "      - {name: knn, source: \"" + source + "\"}\n"              // 15, source key at col 21
         "claims:\n"                                                      // 16
         "  - id: order\n"                                                // 17
         "    metric: \"" + claim_metric + "\"\n"                         // 18, col 5
         "    a: {method.psts_order: " + side_a + "}\n"                   // 19, the key at col 9
         "    b: {method.psts_order: [far, near, random]}\n";             // 20
}

const std::string kRows = "method.psts_order", kSource = "eval:knn:eurosat:0.5:top1",
                  kMetric = "eval:knn:eurosat:1.0:top5", kSideA = "[near, far, random]";

ConfigError check_error(const std::string& text) {
  return error_of([&] { check_report_sections(parse_experiment(text, "exp.yaml", "", {})); });
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("spec check: correct sections pass", "[reports][spec_check]") {
  CHECK_NOTHROW(check_report_sections(parse_experiment(kHead + sections(kRows, kSource, kMetric, kSideA), "exp.yaml", "", {})));
  CHECK_NOTHROW(check_report_sections(parse_experiment(kHead, "exp.yaml", "", {})));  // no sections
}

TEST_CASE("spec check: a table's row axis typo fails at its line and column", "[reports][spec_check]") {
  const ConfigError e = check_error(kHead + sections("method.psts_ordr", kSource, kMetric, kSideA));
  CHECK(e.where == "exp.yaml:13:12");
  CHECK(e.key == "tables[0].rows[0]");
  CHECK(contains(e.problem, "'method.psts_ordr' is not an axis"));
  CHECK(contains(e.hint, "did you mean 'method.psts_order'"));
}

TEST_CASE("spec check: a claim's metric typo fails at its line and column", "[reports][spec_check]") {
  // The planned runs record top1/top5 at scales 0.5 and 1: "top2" is no result of theirs.
  ConfigError e = check_error(kHead + sections(kRows, kSource, "eval:knn:eurosat:1.0:top2", kSideA));
  CHECK(e.where == "exp.yaml:18:5");
  CHECK(e.key == "claims[0].metric");
  CHECK(contains(e.problem, "no planned run records 'eval:knn:eurosat:1.0:top2'"));
  CHECK(contains(e.hint, "eval:knn:eurosat:0.5:top1"));
  // A scale the runs do not evaluate, in a table's source.
  e = check_error(kHead + sections(kRows, "eval:knn:eurosat:0.25:top1", kMetric, kSideA));
  CHECK(e.where == "exp.yaml:15:21");
  CHECK(e.key == "tables[0].metrics[0].source");
  // Bad syntax is located too (the parser's own error).
  e = check_error(kHead + sections(kRows, kSource, "eval:knn:eurosat:top1", kSideA));
  CHECK(e.where == "exp.yaml:18:5");
  CHECK(contains(e.problem, "cannot parse metric source"));
}

TEST_CASE("spec check: a claim side naming a value no run has fails at the value", "[reports][spec_check]") {
  const ConfigError e = check_error(kHead + sections(kRows, kSource, kMetric, "[near, random, far]"));
  CHECK(e.where == "exp.yaml:19:9");
  CHECK(e.key == "claims[0].a.method.psts_order");
  CHECK(contains(e.problem, "no planned run has method.psts_order"));
  CHECK(contains(e.hint, "near-far-random, far-near-random"));
}

TEST_CASE("spec check: unknown keys of a section are located", "[reports][spec_check]") {
  const ConfigError e = check_error(kHead + sections(kRows, kSource, kMetric, kSideA) + "    alhpa: 0.05\n");
  CHECK(e.where == "exp.yaml:21:5");
  CHECK(e.key == "claims[0].alhpa");
  CHECK(contains(e.problem, "unknown key"));
}

TEST_CASE("spec check: an unknown relation or better word fails at its key with a hint", "[reports][spec_check]") {
  const std::string ok = kHead + sections(kRows, kSource, kMetric, kSideA);
  ConfigError e = check_error(ok + "    relation: gretaer\n");  // line 21
  CHECK(e.where == "exp.yaml:21:5");
  CHECK(e.key == "claims[0].relation");
  CHECK(e.problem == "unknown value 'gretaer'");
  CHECK(contains(e.hint, "did you mean 'greater'?"));
  // A table metric's better, inside the flow mapping of line 15: `better` at col 58.
  std::string table = ok;
  const std::string metric = "source: \"" + kSource + "\"}";
  table.replace(table.find(metric), metric.size(), "source: \"" + kSource + "\", better: hihger}");
  e = check_error(table);
  CHECK(e.where == "exp.yaml:15:58");
  CHECK(e.key == "tables[0].metrics[0].better");
  CHECK(e.problem == "unknown value 'hihger'");
  CHECK(e.hint == "did you mean 'higher'? allowed: higher, lower, none");
  // A compared metric's better (lines 21-23): `none` marks table cells, it is no direction.
  e = check_error(ok + "compare:\n  metrics:\n    - {source: \"" + kMetric + "\", better: none}\n");
  CHECK(e.where == "exp.yaml:23:45");
  CHECK(e.key == "compare.metrics[0].better");
  CHECK(e.problem == "unknown value 'none'");
  CHECK(contains(e.hint, "allowed: higher, lower"));
}

TEST_CASE("spec check: the experiment files pass at every scale", "[reports][spec_check]") {
  const fs::path dir = fs::path(ABLATE_TEST_SOURCE_DIR) / "experiments";
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    std::vector<std::string> scales = {""};
    for (const auto& profile : YAML::LoadFile(entry.path().string())["scales"]) scales.push_back(profile.first.Scalar());
    for (const std::string& scale : scales) {
      INFO(entry.path().string() << " at scale '" << scale << "'");
      CHECK_NOTHROW(check_report_sections(load_experiment(entry.path().string(), scale, {})));
    }
  }
  CHECK(files > 0);
}
