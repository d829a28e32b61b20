// A whole report from a hand-made database: claim verdicts, plots through gnuplot (when
// installed), a PNG figure embedded as a data: URI, and the report still rendering when gnuplot
// is missing. The HTML is also written to $TMPDIR/ablate_report_test.html for
// tests/scripts/html_screenshot.sh, which opens it in headless Chromium.
#include "reports/report.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "reports/render.h"
#include "tests/reports/results_fixture.h"

using namespace ablate;
using ablate::test::Near;
using nlohmann::json;

namespace {

// A minimal PNG (8-bit RGB, stored deflate blocks): the test makes its own figure bytes.
std::string make_png(int w, int h) {
  std::uint32_t crc_table[256];
  for (std::uint32_t n = 0; n < 256; ++n) {
    std::uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    crc_table[n] = c;
  }
  auto be32 = [](std::uint32_t v) {
    return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  };
  auto chunk = [&](const std::string& type, const std::string& data) {
    std::uint32_t c = 0xffffffffu;
    for (unsigned char b : type + data) c = crc_table[(c ^ b) & 0xff] ^ (c >> 8);
    return be32(static_cast<std::uint32_t>(data.size())) + type + data + be32(c ^ 0xffffffffu);
  };
  std::string raw;  // filter byte 0 + RGB per row: a red-blue gradient
  for (int y = 0; y < h; ++y) {
    raw += '\0';
    for (int x = 0; x < w; ++x) raw += {char(255 * x / w), char(80), char(255 * y / h)};
  }
  std::string z = "\x78\x01";
  std::uint32_t s1 = 1, s2 = 0;
  for (unsigned char b : raw) s1 = (s1 + b) % 65521, s2 = (s2 + s1) % 65521;
  for (std::size_t pos = 0; pos < raw.size(); pos += 65535) {
    const std::size_t n = std::min<std::size_t>(65535, raw.size() - pos);
    z += char(pos + n == raw.size() ? 1 : 0);
    z += {char(n & 0xff), char(n >> 8), char(~n & 0xff), char((~n >> 8) & 0xff)};
    z += raw.substr(pos, n);
  }
  z += be32((s2 << 16) | s1);
  const std::string ihdr = be32(w) + be32(h) + std::string{8, 2, 0, 0, 0};
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", z) + chunk("IEND", "");
}

// SelectiveMAE vs MAE (3 seeds each) and a PSTS variant with a diverged seed; KNN at four scales.
void fill(test::ResultsFixture& f) {
  const char* methods[] = {"mae", "selectivemae", "selectivemae_psts"};
  const double knn[] = {0.80, 0.84, 0.83};
  const double ips[] = {500, 1200, 1150};
  for (int m = 0; m < 3; ++m)
    for (int s = 0; s < 3; ++s) {
      const std::string id = std::string(methods[m]) + "_" + std::to_string(s);
      const bool diverged = m == 2 && s == 2;
      f.run(id, "selective", {{"method.name", methods[m]}, {"seed", s}}, diverged ? "diverged" : "done",
            diverged ? "grad norm spike" : "", diverged ? std::optional<long>(1234) : std::nullopt);
      for (int step = 0; step <= 200; step += 20) {
        f.metric(id, step, "loss", 1.2 * std::exp(-step / (100.0 + 20 * m)) + 0.1 + 0.01 * s);
        f.metric(id, step, "images_per_s", ips[m] * (1 + 0.01 * s) + (step == 0 ? -200 : 0));
      }
      if (diverged) continue;
      for (double scale : {0.125, 0.25, 0.5, 1.0})
        f.eval(id, "knn", "eurosat", scale, "top1", knn[m] - 0.3 * (1 - scale) * (1 - 0.2 * m) + 0.003 * s);
    }
}

ReportRequest request(const test::ResultsFixture& f) {
  ReportRequest req;
  req.db_path = f.path();
  req.experiment = "selective";
  req.source = "experiments/selective.yaml";
  req.out_dir = (f.dir() / "report").string();
  req.tables = json::parse(R"J([{
    "name": "main", "caption": "SelectiveMAE vs MAE (ViT-T, EuroSAT)", "rows": ["method.name"],
    "metrics": [
      {"name": "knn", "label": "KNN top-1 (%)", "source": "eval:knn:eurosat:1.0:top1", "scale": 100,
       "better": "higher", "digits": 1},
      {"name": "ips", "label": "img/s", "source": "metric:images_per_s:median", "better": "higher", "digits": 0}],
    "paper": [{"row": {"method.name": "selectivemae"}, "metric": "knn", "value": 85.0}]}])J");
  req.claims = json::parse(R"J([
    {"id": "sel_beats_mae", "text": "SelectiveMAE beats MAE on KNN top-1", "metric": "eval:knn:eurosat:1.0:top1",
     "a": {"method.name": "selectivemae"}, "b": {"method.name": "mae"}, "relation": "greater"},
    {"id": "sel_2x_faster", "text": "SelectiveMAE trains at least 2x faster", "metric": "metric:images_per_s:median",
     "a": {"method.name": "selectivemae"}, "b": {"method.name": "mae"}, "relation": "ratio_at_least", "ratio": 2.0},
    {"id": "sel_3x_faster", "text": "SelectiveMAE trains at least 3x faster", "metric": "metric:images_per_s:median",
     "a": {"method.name": "selectivemae"}, "b": {"method.name": "mae"}, "relation": "ratio_at_least", "ratio": 3.0},
    {"id": "psts_worse", "text": "PSTS loses accuracy", "metric": "eval:knn:eurosat:1.0:top1",
     "a": {"method.name": "selectivemae_psts"}, "b": {"method.name": "selectivemae"}, "relation": "less"},
    {"id": "mae_beats_sel", "text": "MAE beats SelectiveMAE", "metric": "eval:knn:eurosat:1.0:top1",
     "a": {"method.name": "mae"}, "b": {"method.name": "selectivemae"}}])J");
  return req;
}

const ClaimResult& claim(const Report& r, const std::string& id) {
  for (const ClaimResult& c : r.claims)
    if (c.spec.id == id) return c;
  FAIL("no claim " << id);
  throw;
}

std::size_t count(const std::string& s, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t pos = s.find(needle); pos != std::string::npos; pos = s.find(needle, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("claims get verdicts from the seeds", "[reports][report]") {
  test::ResultsFixture f("claims");
  fill(f);
  ReportRequest req = request(f);
  req.gnuplot = "";
  const Report r = build_report(req);
  REQUIRE(r.claims.size() == 5);
  // KNN@1.0: 0.840/0.843/0.846 vs 0.800/0.803/0.806: a 4-point gap over 0.3-point seed noise.
  const ClaimResult& sel = claim(r, "sel_beats_mae");
  CHECK(sel.stats.verdict == Verdict::reproduced);
  CHECK(sel.stats.n_a == 3);
  CHECK(sel.stats.mean_a - sel.stats.mean_b == Near(0.04));
  // Medians per run 1200 (1 + 0.01 s) vs 500 (1 + 0.01 s): ratio 2.4, so >= 2x holds and >= 3x fails.
  CHECK(claim(r, "sel_2x_faster").stats.verdict == Verdict::reproduced);
  CHECK(claim(r, "sel_3x_faster").stats.verdict == Verdict::contradicted);
  // PSTS: 0.830/0.833 (seed 2 diverged) vs 0.840/0.843/0.846: a < b holds, with n = 2 vs 3.
  const ClaimResult& psts = claim(r, "psts_worse");
  CHECK(psts.stats.verdict == Verdict::reproduced);
  CHECK(psts.stats.n_a == 2);
  CHECK(psts.stats.n_b == 3);
  CHECK(psts.stats.mean_a == Near(0.8315));
  CHECK(psts.a.problems == std::vector<std::string>{"diverged @ step 1234"});
  CHECK(claim(r, "mae_beats_sel").stats.verdict == Verdict::contradicted);

  const std::string md = render(r, Format::markdown);
  CHECK(count(md, "**reproduced**") == 3);
  CHECK(count(md, "**contradicted**") == 2);
  CHECK(md.find("| `selectivemae_psts_2` | method.name=selectivemae_psts | diverged | diverged @ step 1234 |") !=
        std::string::npos);
}

TEST_CASE("claim spec errors and selectors that mix configurations", "[reports][report]") {
  test::ResultsFixture f("claim_errors");
  fill(f);
  ReportRequest req = request(f);
  req.gnuplot = "";
  req.claims[0]["relation"] = "bigger";
  CHECK(test::error_message([&] { build_report(req); })
            .find("experiments/selective.yaml: 'claims[0].relation': unknown value 'bigger'") == 0);
  req = request(f);
  req.gnuplot = "";
  req.claims[0]["b"] = json::object({{"seed", 0}});  // all three methods at seed 0
  CHECK(test::error_message([&] { build_report(req); }).find("differ in axis 'method.name'") !=
        std::string::npos);
}

TEST_CASE("planned runs missing from the database show as not run", "[reports][report]") {
  test::ResultsFixture f("planned");
  fill(f);
  ReportRequest req = request(f);
  req.gnuplot = "";
  req.claims = nullptr;
  for (const char* m : {"mae", "selectivemae", "selectivemae_psts", "crossmae"})
    for (int s = 0; s < 3; ++s)
      req.runs.push_back({std::string(m) + "_" + std::to_string(s), {{"method.name", m}, {"seed", s}}});
  const Report r = build_report(req);
  REQUIRE(r.tables.size() == 1);
  const Table& t = r.tables[0];
  REQUIRE(t.row_keys.size() == 4);
  CHECK(t.row_keys[3]["method.name"] == "crossmae");  // planned order is kept
  CHECK(t.at(3, 0, 0).state == TableCell::State::no_value);
  CHECK(t.at(3, 0, 0).problem == "3 × not run");
  CHECK(t.at(1, 0, 0).best);
  CHECK(*t.at(1, 0, 0).delta == Near(84.3 - 85.0));
  REQUIRE(r.notes.size() == 1);
  CHECK(r.notes[0] == "3 of 12 planned runs are not in the database yet.");
}

TEST_CASE("HTML report: self-contained, plots inline, PNG as data URI", "[reports][report][html]") {
  test::ResultsFixture f("html");
  fill(f);
  ReportRequest req = request(f);
  const auto png = f.dir() / "recon.png";
  std::ofstream(png, std::ios::binary) << make_png(96, 48);
  req.figures.push_back({png.string(), "Reconstruction sample"});
  req.formats = {"md", "tex", "csv", "html"};
  std::ostringstream log;
  REQUIRE(report_main(req, log) == 0);
  for (const char* ext : {"md", "tex", "csv", "html"})
    CHECK(std::filesystem::exists(std::filesystem::path(req.out_dir) / (std::string("report.") + ext)));
  std::ifstream in(std::filesystem::path(req.out_dir) / "report.html");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string html = ss.str();

  CHECK(html.find("<table class=\"results\" id=\"table-main\">") != std::string::npos);
  CHECK(html.find("<table class=\"claims\">") != std::string::npos);
  CHECK(html.find("src=\"data:image/png;base64," + base64_encode(make_png(96, 48)) + "\"") != std::string::npos);
  // No reference leaves the file: every src/href is a data: URI or an in-document anchor.
  for (const char* attr : {"src=\"", "href=\""})
    for (std::size_t pos = html.find(attr); pos != std::string::npos; pos = html.find(attr, pos + 1)) {
      const std::string target = html.substr(pos + std::strlen(attr), 6);
      CHECK((target.rfind("data:", 0) == 0 || target[0] == '#'));
    }
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("<script") == std::string::npos);

  const bool have_gnuplot = !find_executable("gnuplot").empty();
  if (have_gnuplot) {
    CHECK(count(html, "<svg") >= 3);  // loss, throughput, KNN vs scale
    for (const char* id : {"plot-loss", "plot-throughput", "plot-knn_scale_eurosat"})
      CHECK(html.find(id) != std::string::npos);
    CHECK(html.find("<?xml") == std::string::npos);
    CHECK(log.str().find("skipped") == std::string::npos);
  } else {
    CHECK(html.find("gnuplot not found") != std::string::npos);
  }
  const char* tmp = std::getenv("TMPDIR");
  const std::filesystem::path shot = std::filesystem::path(tmp && *tmp ? tmp : "/tmp") / "ablate_report_test.html";
  std::ofstream(shot) << html;
  CHECK(std::filesystem::file_size(shot) == html.size());
  if (!have_gnuplot) ABLATE_SKIP("gnuplot not installed: plots not checked");
}

TEST_CASE("without gnuplot the report renders and names the skipped plots", "[reports][report]") {
  test::ResultsFixture f("nognuplot");
  fill(f);
  ReportRequest req = request(f);
  req.gnuplot = "/nonexistent/gnuplot";
  const Report r = build_report(req);
  REQUIRE(r.plots.size() == 3);
  for (const Plot& p : r.plots) {
    CHECK(p.path.empty());
    CHECK(p.skipped.find("gnuplot not found") != std::string::npos);
  }
  const std::string md = render(r, Format::markdown);
  CHECK(md.find("- plot `loss` skipped: gnuplot not found") != std::string::npos);
  CHECK(md.find("## Table: main") != std::string::npos);
  CHECK(render(r, Format::html).find("<svg") == std::string::npos);
}
