// Tables from a hand-made results database: layout, mean/std/n by hand, best-cell bolding, paper
// deltas, failed/diverged/not-run cells, spec errors; and the Markdown / LaTeX / CSV renderings
// (pdflatex is used when installed, otherwise the LaTeX structure is checked).
#include "reports/table.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "harness/check.h"
#include "reports/render.h"
#include "tests/reports/results_fixture.h"

using namespace ablate;
using ablate::test::Near;
using nlohmann::json;

namespace {

const json kNfr = json::array({"near", "far", "random"});
const json kFnr = json::array({"far", "near", "random"});
const json kRnf = json::array({"random", "near", "far"});
const json kFrn = json::array({"far", "random", "near"});

// Three orders x three seeds. near-far-random: KNN 0.90/0.92/0.94 (mean 92, sd 2 in %), final
// loss 0.50/0.52/0.54; far-near-random: 0.88/0.89 and seed 2 diverged at step 1234;
// random-near-far: every seed failed (OOM).
void fill(test::ResultsFixture& f) {
  const double knn_nfr[] = {0.90, 0.92, 0.94}, loss_nfr[] = {0.50, 0.52, 0.54};
  for (int s = 0; s < 3; ++s) {
    const std::string id = "nfr" + std::to_string(s);
    f.run(id, "psts", {{"method.psts_order", kNfr}, {"seed", s}});
    f.eval(id, "knn", "eurosat", 1.0, "top1", knn_nfr[s]);
    // Inserted out of step order: "last" must follow the step, not the insertion.
    f.metric(id, 20, "loss", loss_nfr[s]);
    f.metric(id, 0, "loss", 2.0);
    f.metric(id, 10, "loss", 1.0);
    f.metric(id, 0, "images_per_s", 100 + s);
    f.metric(id, 10, "images_per_s", 300 + s);
    f.metric(id, 20, "images_per_s", 200 + s);  // median over steps: 200 + s
  }
  const double knn_fnr[] = {0.88, 0.89};
  for (int s = 0; s < 2; ++s) {
    const std::string id = "fnr" + std::to_string(s);
    f.run(id, "psts", {{"method.psts_order", kFnr}, {"seed", s}});
    f.eval(id, "knn", "eurosat", 1.0, "top1", knn_fnr[s]);
    f.metric(id, 20, "loss", 0.6);
  }
  f.run("fnr2", "psts", {{"method.psts_order", kFnr}, {"seed", 2}}, "diverged", "loss spike", 1234);
  f.metric("fnr2", 20, "loss", 9.0);  // logged before diverging: must not enter the mean
  for (int s = 0; s < 3; ++s)
    f.run("rnf" + std::to_string(s), "psts", {{"method.psts_order", kRnf}, {"seed", s}}, "failed",
          "CUDA out of memory\ntraceback ...");
}

json psts_table() {
  return json::parse(R"J({
    "name": "psts_order",
    "caption": "PSTS stage order (SelectiveMAE, EuroSAT) & 100% of data",
    "rows": ["method.psts_order"],
    "labels": {"method.psts_order": "Stage order"},
    "metrics": [
      {"name": "knn", "label": "KNN top-1 (%)", "source": "eval:knn:eurosat:1.0:top1", "scale": 100,
       "better": "higher", "digits": 1},
      {"name": "final_loss", "label": "final loss", "source": "metric:loss:last", "better": "lower",
       "digits": 2},
      {"name": "throughput", "label": "img/min", "source": "metric:images_per_s:median", "scale": 60,
       "digits": 0}
    ],
    "paper": [
      {"row": {"method.psts_order": ["near", "far", "random"]}, "metric": "knn", "value": 92.4},
      {"row": {"method.psts_order": ["far", "random", "near"]}, "metric": "knn", "value": 90.0}
    ]
  })J");
}

Table build(const test::ResultsFixture& f, const json& spec) {
  const ResultsDb db(f.path());
  const auto specs = parse_tables(json::array({spec}), "exp.yaml");
  REQUIRE(specs.size() == 1);
  return build_table(specs[0], db, db.runs("psts"), /*ordered=*/false, "exp.yaml");
}

std::size_t row_of(const Table& t, const json& order) {
  for (std::size_t r = 0; r < t.row_keys.size(); ++r)
    if (t.row_keys[r]["method.psts_order"] == order) return r;
  FAIL("row not found: " << order.dump());
  return 0;
}

std::size_t count(const std::string& s, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t pos = s.find(needle); pos != std::string::npos; pos = s.find(needle, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("table cells aggregate seeds by hand", "[reports][table]") {
  test::ResultsFixture f("table");
  fill(f);
  const Table t = build(f, psts_table());
  // Three orders that ran plus the paper-only far-random-near.
  REQUIRE(t.row_keys.size() == 4);
  REQUIRE(t.col_keys.size() == 1);
  const std::size_t nfr = row_of(t, kNfr), fnr = row_of(t, kFnr), rnf = row_of(t, kRnf),
                    frn = row_of(t, kFrn);

  const TableCell& knn = t.at(nfr, 0, 0);
  CHECK(knn.state == TableCell::State::value);
  CHECK(knn.n == 3);
  CHECK(knn.mean == Near(92.0));
  CHECK(knn.std == Near(2.0));  // sqrt(((-2)^2 + 0 + 2^2) / 2)
  CHECK(knn.best);
  REQUIRE(knn.paper);
  CHECK(*knn.paper == Near(92.4));
  REQUIRE(knn.delta);
  CHECK(*knn.delta == Near(-0.4));

  CHECK(t.at(nfr, 0, 1).mean == Near(0.52));  // last-step losses 0.50, 0.52, 0.54
  CHECK(t.at(nfr, 0, 2).mean == Near(201 * 60));  // medians 200, 201, 202 per second, x60

  const TableCell& fknn = t.at(fnr, 0, 0);
  CHECK(fknn.n == 2);
  CHECK(fknn.runs == 3);
  CHECK(fknn.mean == Near(88.5));
  CHECK(fknn.std == Near(std::sqrt(0.5)));
  CHECK(fknn.problem == "diverged @ step 1234");
  CHECK_FALSE(fknn.best);
  CHECK(t.at(fnr, 0, 1).mean == Near(0.6));  // the diverged run's 9.0 is left out

  const TableCell& failed = t.at(rnf, 0, 0);
  CHECK(failed.state == TableCell::State::no_value);
  CHECK(failed.problem == "3 × failed: CUDA out of memory");
  CHECK(cell_text(failed, 1) == "3 × failed: CUDA out of memory");

  const TableCell& missing = t.at(frn, 0, 0);
  CHECK(missing.state == TableCell::State::not_run);
  CHECK(cell_text(missing, 1) == "— (not run)");
  REQUIRE(missing.paper);
  CHECK_FALSE(missing.delta);

  CHECK(t.at(nfr, 0, 1).best);  // lower loss is better: 0.52 < 0.60
  CHECK_FALSE(t.at(fnr, 0, 1).best);
  CHECK_FALSE(t.at(nfr, 0, 2).best);  // better: none
  CHECK(t.metric_has_paper == std::vector<bool>{true, false, false});
  CHECK(cell_text(knn, 1) == "92.0 ± 2.0 (n=3)");
  CHECK(cell_text(fknn, 1) == "88.5 ± 0.7 (n=2; diverged @ step 1234)");
}

TEST_CASE("ties at display precision are all bold", "[reports][table]") {
  test::ResultsFixture f("ties");
  f.run("a", "psts", {{"method.psts_order", kNfr}, {"seed", 0}});
  f.run("b", "psts", {{"method.psts_order", kFnr}, {"seed", 0}});
  f.run("c", "psts", {{"method.psts_order", kRnf}, {"seed", 0}});
  f.eval("a", "knn", "eurosat", 1.0, "top1", 0.9012);
  f.eval("b", "knn", "eurosat", 1.0, "top1", 0.9009);  // 90.1 at one digit, like a
  f.eval("c", "knn", "eurosat", 1.0, "top1", 0.8);
  json spec = psts_table();
  spec.erase("paper");
  const Table t = build(f, spec);
  CHECK(t.at(row_of(t, kNfr), 0, 0).best);
  CHECK(t.at(row_of(t, kFnr), 0, 0).best);
  CHECK_FALSE(t.at(row_of(t, kRnf), 0, 0).best);
  CHECK(t.at(row_of(t, kNfr), 0, 0).n == 1);
  CHECK(cell_text(t.at(row_of(t, kNfr), 0, 0), 1) == "90.1 (n=1)");
}

TEST_CASE("column groups and cells that would mix configurations", "[reports][table]") {
  test::ResultsFixture f("cols");
  for (const char* size : {"vit_t", "vit_b"})
    for (const char* ds : {"eurosat", "ucmerced"})
      for (int s = 0; s < 2; ++s) {
        const std::string id = std::string(size) + ds + std::to_string(s);
        f.run(id, "psts", {{"model.size", size}, {"data.dataset", ds}, {"seed", s}});
        f.eval(id, "knn", "eurosat", 1.0, "top1", (size[4] == 'b' ? 0.8 : 0.7) + 0.01 * s);
      }
  json spec = json::parse(R"({"name": "grid", "rows": ["model.size"], "cols": ["data.dataset"],
    "metrics": [{"name": "knn", "source": "eval:knn:eurosat:1.0:top1", "scale": 100, "better": "higher"}]})");
  const Table t = build(f, spec);
  CHECK(t.row_keys.size() == 2);
  CHECK(t.col_keys.size() == 2);
  for (std::size_t c = 0; c < 2; ++c) {
    const std::size_t b = t.row_keys[0]["model.size"] == "vit_b" ? 0 : 1;
    CHECK(t.at(b, c, 0).mean == Near(80.5));
    CHECK(t.at(b, c, 0).best);
    CHECK(t.at(1 - b, c, 0).mean == Near(70.5));
  }
  const std::string html = render_table(t, Format::html);
  CHECK(count(html, "colspan=\"1\"") == 2);
  CHECK(html.find("data.dataset = ucmerced") != std::string::npos);
  const std::string tex = render_table(t, Format::latex);
  CHECK(count(tex, "\\multicolumn{1}{c}") == 2);
  CHECK(tex.find("\\cmidrule(lr){2-2}\\cmidrule(lr){3-3}") != std::string::npos);

  spec.erase("cols");
  CHECK(test::error_message([&] { build(f, spec); }).find("differ in axis 'data.dataset'") !=
        std::string::npos);
  spec["where"] = {{"data.dataset", "eurosat"}};
  CHECK(build(f, spec).at(0, 0, 0).n == 2);  // the filter leaves one dataset
}

TEST_CASE("table spec errors name the key", "[reports][table]") {
  json spec = psts_table();
  spec["metrics"][1]["beter"] = "lower";
  auto error = [&] { return test::error_message([&] { parse_tables(json::array({spec}), "exp.yaml"); }); };
  CHECK(error().find("tables[0].metrics[1].beter': unknown key") != std::string::npos);
  spec = psts_table();
  spec["metrics"][0]["source"] = "eval:knn:eurosat:top1";
  CHECK(error().rfind("exp.yaml: 'tables[0].metrics[0].source': cannot parse metric source", 0) == 0);
  spec = psts_table();
  spec["paper"][0]["metric"] = "knn20";
  CHECK_THROWS_AS(parse_tables(json::array({spec}), "exp.yaml"), ConfigError);
  spec = psts_table();
  spec["metrics"][2]["source"] = "metric:images_per_s:p90";
  CHECK(error().find("unknown aggregation 'p90'") != std::string::npos);
}

TEST_CASE("each better word parses to its enumerator and prints back", "[reports][table]") {
  const std::vector<std::pair<std::string, Better>> words = {
      {"higher", Better::higher}, {"lower", Better::lower}, {"none", Better::none}};
  CHECK(words.size() == choice_words<Better>().size());
  for (const auto& [word, better] : words) {
    json spec = psts_table();
    spec["metrics"][0]["better"] = word;
    const MetricSpec m = parse_tables(json::array({spec}), "exp.yaml").at(0).metrics.at(0);
    CHECK(m.better == better);
    CHECK(name_of(m.better) == word);
  }
  json spec = psts_table();
  spec["metrics"][0].erase("better");
  CHECK(parse_tables(json::array({spec}), "exp.yaml").at(0).metrics.at(0).better == Better::none);
  spec["metrics"][0]["better"] = "hihger";
  const std::string e = test::error_message([&] { parse_tables(json::array({spec}), "exp.yaml"); });
  CHECK(e.rfind("exp.yaml: 'tables[0].metrics[0].better': unknown value 'hihger'", 0) == 0);
  CHECK(e.find("did you mean 'higher'? allowed: higher, lower, none") != std::string::npos);
}

TEST_CASE("Markdown, CSV and LaTeX renderings", "[reports][render]") {
  test::ResultsFixture f("render");
  fill(f);
  const Table t = build(f, psts_table());

  const std::string md = render_table(t, Format::markdown);
  CHECK(md.find("| Stage order | KNN top-1 (%) | paper | Δ | final loss | img/min |") != std::string::npos);
  CHECK(md.find("| near-far-random | **92.0 ± 2.0** (n=3) | 92.4 | −0.4 | **0.52 ± 0.02** (n=3) |") !=
        std::string::npos);
  CHECK(md.find("| random-near-far | 3 × failed: CUDA out of memory |") != std::string::npos);
  CHECK(md.find("| far-random-near | — (not run) | 90.0 | — |") != std::string::npos);
  CHECK(count(md, "\n") == 2 + 4 + 2);  // caption + blank, header + rule, 4 rows

  const std::string csv = render_table(t, Format::csv);
  std::istringstream lines(csv);
  std::string line;
  std::vector<std::string> rows;
  while (std::getline(lines, line)) rows.push_back(line);
  REQUIRE(rows.size() == 1 + 4 * 3);  // header + rows x metrics
  CHECK(rows[0] == "table,row,col,metric,mean,std,n,runs,state,problem,best,paper,delta");
  bool found = false;
  for (const std::string& r : rows)
    if (r.rfind("psts_order,near-far-random,,knn,", 0) == 0) {
      found = true;
      CHECK(r.find(",3,3,value,,1,92.4,") != std::string::npos);
      CHECK(std::stod(r.substr(r.rfind(',') + 1)) == Near(-0.4));
    }
  CHECK(found);
  CHECK(csv.find("psts_order,random-near-far,,knn,,,0,3,no value,3 × failed: CUDA out of memory,0,,") !=
        std::string::npos);

  const std::string tex = render_table(t, Format::latex);
  CHECK(tex.find("\\begin{tabular}{lccccc}") != std::string::npos);
  for (const char* s : {"\\toprule", "\\midrule", "\\bottomrule", "\\end{tabular}", "\\label{tab:psts_order}"})
    CHECK(count(tex, s) == 1);
  CHECK(tex.find("KNN top-1 (\\%)") != std::string::npos);
  CHECK(tex.find("\\& 100\\% of data") != std::string::npos);
  CHECK(tex.find("$\\mathbf{92.0 \\pm 2.0}$") != std::string::npos);
  CHECK(tex.find("$-0.4$") != std::string::npos);
  CHECK(tex.find("\\textit{diverged @ step 1234}") == std::string::npos);  // a partial cell keeps its mean
  CHECK(tex.find("\\textit{3 × failed") == std::string::npos);           // Unicode × is escaped
  CHECK(tex.find("\\textit{3 $\\times$ failed: CUDA out of memory}") != std::string::npos);
  // Balanced braces, 4 body rows + 1 header row ending in \\.
  int depth = 0, min_depth = 0;
  for (std::size_t i = 0; i < tex.size(); ++i) {
    if (tex[i] == '\\' && i + 1 < tex.size() && (tex[i + 1] == '{' || tex[i + 1] == '}')) {
      ++i;
      continue;
    }
    depth += tex[i] == '{' ? 1 : tex[i] == '}' ? -1 : 0;
    min_depth = std::min(min_depth, depth);
  }
  CHECK(min_depth == 0);
  CHECK(depth == 0);
  CHECK(count(tex, "\\\\\n") == 5);

  // pdflatex, where installed, must compile the table as pasted into a booktabs document.
  if (std::system("command -v pdflatex > /dev/null 2>&1") != 0) ABLATE_SKIP("pdflatex not installed");
  const auto doc = f.dir() / "doc.tex";
  std::ofstream(doc) << "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage[utf8]{inputenc}\n"
                        "\\begin{document}\n" << tex << "\\end{document}\n";
  const std::string cmd = "cd '" + f.dir().string() +
                          "' && pdflatex -interaction=nonstopmode -halt-on-error doc.tex > /dev/null 2>&1";
  CHECK(std::system(cmd.c_str()) == 0);
}

TEST_CASE("escaping", "[reports][render]") {
  CHECK(latex_escape("a_b & 50% #1 {x} ~ ^ \\") ==
        "a\\_b \\& 50\\% \\#1 \\{x\\} \\textasciitilde{} \\textasciicircum{} \\textbackslash{}");
  CHECK(latex_escape("± — Δ") == "$\\pm$ --- $\\Delta$");
  CHECK(html_escape("<a href=\"x\">&'") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
  // RFC 4648 test vectors.
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(format_number(-0.04, 1) == "0.0");
  CHECK(format_number(2.25, 1) == "2.2");  // round-half-even of the binary value 2.25
}
