// Markdown, LaTeX, CSV and HTML renderings of a Report (reports/render.h). Every renderer walks
// the same column layout (ours / paper / delta per metric and column group), so the formats show
// identical numbers.
#include "reports/render.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "harness/check.h"
#include "reports/cells.h"

namespace ablate {
namespace {

namespace fs = std::filesystem;

struct Column {
  enum Part { ours, paper, delta };
  std::size_t c, m;
  Part part;
};

std::vector<Column> layout(const Table& t) {
  std::vector<Column> cols;
  for (std::size_t c = 0; c < t.col_keys.size(); ++c)
    for (std::size_t m = 0; m < t.spec.metrics.size(); ++m) {
      cols.push_back({c, m, Column::ours});
      if (t.metric_has_paper[m]) {
        cols.push_back({c, m, Column::paper});
        cols.push_back({c, m, Column::delta});
      }
    }
  return cols;
}

std::string part_header(const Table& t, const Column& col) {
  switch (col.part) {
    case Column::ours: return t.spec.metrics[col.m].label;
    case Column::paper: return "paper";
    case Column::delta: return "Δ";
  }
  return "";
}

std::string rows_header(const Table& t) {
  std::string s;
  for (const std::string& k : t.spec.rows) s += (s.empty() ? "" : " / ") + t.spec.axis_label(k);
  return s;
}

// "92.13 ± 0.41" and " (n=3; 1 × diverged @ step 10)" of a cell with a value.
std::pair<std::string, std::string> value_parts(const TableCell& c, int digits) {
  std::string main = format_number(c.mean, digits);
  if (c.n >= 2) main += " ± " + format_number(c.std, digits);
  std::string suffix = fmt::format(" (n={}", c.n);
  if (!c.problem.empty()) suffix += "; " + c.problem;
  return {main, suffix + ")"};
}

// Signed difference with a real minus sign.
std::string signed_number(double v, int digits) {
  const std::string s = format_number(v, digits);
  if (s.front() == '-') return "−" + s.substr(1);
  return "+" + s;
}

std::string aux_text(const TableCell& cell, const Column& col, int digits) {
  if (col.part == Column::paper) return cell.paper ? format_number(*cell.paper, digits) : "—";
  return cell.delta ? signed_number(*cell.delta, digits) : "—";
}

std::string side_text(const Sample& s) {
  std::string t = s.values.empty()
                      ? std::string("no values")
                      : fmt::format("{:.4g}{} (n={})", mean(s.values),
                                    s.values.size() > 1 ? fmt::format(" ± {:.2g}", sample_std(s.values))
                                                        : std::string(),
                                    s.values.size());
  if (!s.problems.empty()) t += "; " + summarize_problems(s.problems);
  return t;
}

// A claim's side: its per-seed numbers, or for fewer_diverged its divergence count.
std::string side_text(const ClaimResult& c, bool side_a) {
  if (c.spec.relation == Relation::fewer_diverged) {
    const DivergenceCount& d = side_a ? c.diverged_a : c.diverged_b;
    return fmt::format("{} of {} finished runs diverged", d.diverged, d.finished);
  }
  return side_text(side_a ? c.a : c.b);
}

std::string devices_text(const ClaimResult& c) {
  std::string s;
  for (const std::string& d : c.devices) s += (s.empty() ? "" : "; ") + d;
  return s.empty() ? "—" : s;
}

std::string p_text(double p) { return p < 1e-4 ? fmt::format("{:.1e}", p) : fmt::format("{:.4f}", p); }

std::string ci_text(const ClaimResult& c) {
  if (c.stats.n_a < 2 || c.stats.n_b < 2 || c.spec.relation == Relation::fewer_diverged) return "—";  // counts: no interval
  return fmt::format("[{:.4g}, {:.4g}]", c.stats.ci.lo, c.stats.ci.hi);
}

std::string claim_note(const ClaimResult& c) {
  std::string n = c.stats.note;
  if (c.spec.relation == Relation::ratio_at_least)
    n += fmt::format("{}tested as a vs {:g} × b", n.empty() ? "" : "; ", c.spec.ratio);
  return n;
}

std::map<std::string, int> status_counts(const std::vector<RunRecord>& runs) {
  std::map<std::string, int> m;
  for (const RunRecord& r : runs) ++m[r.status];
  return m;
}

std::string counts_text(const std::vector<RunRecord>& runs) {
  std::string s = fmt::format("{} runs", runs.size());
  std::string parts;
  for (const auto& [status, n] : status_counts(runs))
    parts += (parts.empty() ? "" : ", ") + fmt::format("{} {}", n, status);
  return parts.empty() ? s : s + " (" + parts + ")";
}

std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw DataError(fmt::format("{}: cannot read", p));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string relative_to(const std::string& path, const std::string& dir) {
  if (dir.empty()) return path;
  std::error_code ec;
  const fs::path rel = fs::relative(path, dir, ec);
  return ec || rel.empty() ? path : rel.string();
}

// ---------------------------------------------------------------- Markdown

std::string md_escape(std::string s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

std::string md_table(const Table& t) {
  const std::vector<Column> cols = layout(t);
  std::string out;
  if (!t.spec.caption.empty()) out += "*" + md_escape(t.spec.caption) + "*\n\n";
  std::string head = "| " + md_escape(rows_header(t).empty() ? "cell" : rows_header(t)) + " |";
  std::string rule = "|---|";
  for (const Column& col : cols) {
    std::string h = part_header(t, col);
    if (!t.spec.cols.empty()) h = t.col_label(col.c) + " · " + h;
    head += " " + md_escape(h) + " |";
    rule += col.part == Column::ours ? "---|" : "--:|";
  }
  out += head + "\n" + rule + "\n";
  for (std::size_t r = 0; r < t.row_keys.size(); ++r) {
    std::string line = "| " + md_escape(t.row_label(r)) + " |";
    for (const Column& col : cols) {
      const TableCell& cell = t.at(r, col.c, col.m);
      const int digits = t.spec.metrics[col.m].digits;
      std::string text;
      if (col.part != Column::ours) {
        text = aux_text(cell, col, digits);
      } else if (cell.state == TableCell::State::value) {
        auto [main, suffix] = value_parts(cell, digits);
        text = (cell.best ? "**" + main + "**" : main) + suffix;
      } else {
        text = cell_text(cell, digits);
      }
      line.append(" ").append(md_escape(text)).append(" |");
    }
    out += line + "\n";
  }
  return out;
}

std::string render_markdown(const Report& rep) {
  std::string out = "# Report: " + rep.experiment + "\n\n";
  out += fmt::format("Database `{}`; {}{}.\n\n", rep.db_path,
                     rep.scale.empty() ? "" : "scale profile `" + rep.scale + "`; ", counts_text(rep.runs));
  for (const std::string& n : rep.notes) out += "> " + n + "\n\n";
  if (!rep.claims.empty()) {
    out += "## Claims\n\n| claim | statement | metric | a | b | relation | test | p | 95% CI (a−b) | "
           "d | paper | device | verdict |\n|---|---|---|---|---|---|---|--:|---|--:|---|---|---|\n";
    for (const ClaimResult& c : rep.claims) {
      out += fmt::format("| {} | {} | `{}` | {}: {} | {}: {} | {} | {} | {} | {} | {:.2f} | {} | {} | **{}** |\n",
                         md_escape(c.spec.id), md_escape(c.spec.text),
                         c.spec.source.text.empty() ? "run status" : c.spec.source.text,
                         md_escape(cell_label(c.spec.a)), md_escape(side_text(c, true)),
                         md_escape(cell_label(c.spec.b)), md_escape(side_text(c, false)),
                         md_escape(relation_text(c.spec)),
                         c.stats.test.test.empty() ? "—" : c.stats.test.test,
                         c.stats.test.test.empty() ? "—" : p_text(c.stats.p_claimed), ci_text(c),
                         c.stats.effect_size, md_escape(c.spec.paper.empty() ? "—" : c.spec.paper),
                         md_escape(devices_text(c)), verdict_label(c, rep.scale));
    }
    out += "\n";
    for (const ClaimResult& c : rep.claims)
      if (const std::string n = claim_note(c); !n.empty()) out += "- " + c.spec.id + ": " + n + "\n";
    out += "\n";
  }
  for (const Table& t : rep.tables) out += "## Table: " + t.spec.name + "\n\n" + md_table(t) + "\n";
  bool heading = false;
  for (const Plot& p : rep.plots) {
    if (!p.path.empty()) {
      if (!heading) out += "## Plots\n\n", heading = true;
      out += "![" + p.title + "](" + relative_to(p.path, rep.out_dir) + ")\n\n";
    }
  }
  for (const Plot& p : rep.plots)
    if (!p.skipped.empty()) out += "- plot `" + p.name + "` skipped: " + p.skipped + "\n";
  std::string problems;
  for (const RunRecord& r : rep.runs)
    if (!is_done(r))
      problems += fmt::format("| `{}` | {} | {} | {} |\n", r.id, md_escape(cell_label(r.axes)),
                              r.status, md_escape(describe_outcome(r)));
  if (!problems.empty())
    out += "\n## Runs without results\n\n| run | cell | status | detail |\n|---|---|---|---|\n" +
           problems;
  return out;
}

// ---------------------------------------------------------------- LaTeX

std::string tex_number(const std::string& s) {
  // Unicode minus and ± from the shared formatting become math.
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    if (s.compare(i, 3, "−") == 0) out += "-", i += 3;
    else if (s.compare(i, 2, "±") == 0) out += "\\pm", i += 2;
    else out += s[i++];
  }
  return "$" + out + "$";
}

std::string tex_cell(const Table& t, std::size_t r, const Column& col) {
  const TableCell& cell = t.at(r, col.c, col.m);
  const int digits = t.spec.metrics[col.m].digits;
  if (col.part != Column::ours) {
    const std::string s = aux_text(cell, col, digits);
    return s == "—" ? "---" : tex_number(s);
  }
  switch (cell.state) {
    case TableCell::State::not_run: return "--- {\\scriptsize (not run)}";
    case TableCell::State::no_value: return "\\textit{" + latex_escape(cell.problem) + "}";
    case TableCell::State::value: break;
  }
  auto [main, suffix] = value_parts(cell, digits);
  std::string m = tex_number(main);
  if (cell.best) m = "$\\mathbf{" + m.substr(1, m.size() - 2) + "}$";
  return m + "\\,{\\scriptsize " + latex_escape(suffix.substr(1)) + "}";
}

std::string tex_table(const Table& t) {
  const std::vector<Column> cols = layout(t);
  std::string out = "% ablate table '" + t.spec.name + "' (needs \\usepackage{booktabs})\n";
  out += "\\begin{table}[ht]\n\\centering\n";
  if (!t.spec.caption.empty()) out += "\\caption{" + latex_escape(t.spec.caption) + "}\n";
  out += "\\label{tab:" + t.spec.name + "}\n";
  out += "\\begin{tabular}{l" + std::string(cols.size(), 'c') + "}\n\\toprule\n";
  if (!t.spec.cols.empty()) {
    const std::size_t per_group = cols.size() / t.col_keys.size();
    std::string groups, rules;
    for (std::size_t c = 0; c < t.col_keys.size(); ++c) {
      groups += fmt::format(" & \\multicolumn{{{}}}{{c}}{{{}}}", per_group,
                            latex_escape(t.col_label(c)));
      rules += fmt::format("\\cmidrule(lr){{{}-{}}}", 2 + c * per_group, 1 + (c + 1) * per_group);
    }
    out += groups + " \\\\\n" + rules + "\n";
  }
  out += latex_escape(rows_header(t));
  for (const Column& col : cols) out += " & " + latex_escape(part_header(t, col));
  out += " \\\\\n\\midrule\n";
  for (std::size_t r = 0; r < t.row_keys.size(); ++r) {
    out += latex_escape(t.row_label(r));
    for (const Column& col : cols) out += " & " + tex_cell(t, r, col);
    out += " \\\\\n";
  }
  out += "\\bottomrule\n\\end{tabular}\n\\end{table}\n";
  return out;
}

std::string render_latex(const Report& rep) {
  std::string out = "% ablate report for experiment '" + rep.experiment +
                    "'. Paste into a document that loads booktabs.\n\n";
  for (const Table& t : rep.tables) out += tex_table(t) + "\n";
  if (!rep.claims.empty()) {
    out += "\\begin{table}[ht]\n\\centering\n\\caption{Claims checked for " +
           latex_escape(rep.experiment) + "}\n\\label{tab:claims-" + rep.experiment +
           "}\n\\begin{tabular}{llllc}\n\\toprule\nClaim & a & b & $p$ & Verdict \\\\\n\\midrule\n";
    for (const ClaimResult& c : rep.claims)
      out += latex_escape(c.spec.text) + " & " + latex_escape(side_text(c, true)) + " & " +
             latex_escape(side_text(c, false)) + " & " +
             (c.stats.test.test.empty() ? "---" : tex_number(p_text(c.stats.p_claimed))) + " & " +
             latex_escape(verdict_label(c, rep.scale)) + " \\\\\n";
    out += "\\bottomrule\n\\end{tabular}\n\\end{table}\n";
  }
  return out;
}

// ---------------------------------------------------------------- CSV


std::string csv_rows(const Table& t) {
  std::string out;
  for (std::size_t r = 0; r < t.row_keys.size(); ++r)
    for (std::size_t c = 0; c < t.col_keys.size(); ++c)
      for (std::size_t m = 0; m < t.spec.metrics.size(); ++m) {
        const TableCell& cell = t.at(r, c, m);
        const bool has = cell.state == TableCell::State::value;
        const char* state = has ? "value" : cell.state == TableCell::State::not_run ? "not run"
                                                                                      : "no value";
        const std::vector<std::string> fields = {
            t.spec.name, t.row_label(r), t.col_label(c), t.spec.metrics[m].name,
            has ? fmt::format("{:.10g}", cell.mean) : "", has ? fmt::format("{:.10g}", cell.std) : "",
            std::to_string(cell.n), std::to_string(cell.runs), state, cell.problem,
            cell.best ? "1" : "0", cell.paper ? fmt::format("{:.10g}", *cell.paper) : "",
            cell.delta ? fmt::format("{:.10g}", *cell.delta) : ""};
        out += csv_row(fields);
      }
  return out;
}

const char* kCsvHeader = "table,row,col,metric,mean,std,n,runs,state,problem,best,paper,delta\n";

// ---------------------------------------------------------------- HTML

const char* kCss = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{font-size:1.6rem;border-bottom:2px solid #4477aa;padding-bottom:.3rem}
h2{font-size:1.25rem;margin-top:2rem;color:#234}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
table.claims{width:100%}
table.claims td:first-child{max-width:16rem}
table.claims code{word-break:break-all;font-size:.8rem}
table.claims td.num{white-space:nowrap}
caption{caption-side:top;text-align:left;font-style:italic;padding-bottom:.4rem}
th,td{padding:.35rem .7rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
thead th{border-bottom:2px solid #444;background:#f4f6f8}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.best b{color:#0a5}
span.n{color:#777;font-size:.85em}
td.problem{color:#b22;font-style:italic}
td.missing{color:#999}
.verdict{padding:.1rem .5rem;border-radius:.6rem;font-weight:600;font-size:.85rem}
.reproduced{background:#d7f5df;color:#11652c}
.contradicted{background:#fbdada;color:#8c1d1d}
.inconclusive{background:#eee;color:#555}
figure{margin:1.5rem 0}
figure svg,figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9rem;color:#555}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.4rem .8rem}
code{background:#f4f4f4;padding:0 .2rem}
)";

std::string html_table(const Table& t) {
  const std::vector<Column> cols = layout(t);
  std::string out = "<table class=\"results\" id=\"table-" + html_escape(t.spec.name) + "\">\n";
  if (!t.spec.caption.empty()) out += "<caption>" + html_escape(t.spec.caption) + "</caption>\n";
  out += "<thead>\n";
  if (!t.spec.cols.empty()) {
    const std::size_t per_group = cols.size() / t.col_keys.size();
    out += "<tr><th></th>";
    for (std::size_t c = 0; c < t.col_keys.size(); ++c)
      out += fmt::format("<th colspan=\"{}\">{}</th>", per_group, html_escape(t.col_label(c)));
    out += "</tr>\n";
  }
  out += "<tr><th>" + html_escape(rows_header(t)) + "</th>";
  for (const Column& col : cols) out += "<th>" + html_escape(part_header(t, col)) + "</th>";
  out += "</tr>\n</thead>\n<tbody>\n";
  for (std::size_t r = 0; r < t.row_keys.size(); ++r) {
    out += "<tr><th>" + html_escape(t.row_label(r)) + "</th>";
    for (const Column& col : cols) {
      const TableCell& cell = t.at(r, col.c, col.m);
      const int digits = t.spec.metrics[col.m].digits;
      if (col.part != Column::ours) {
        out += "<td class=\"num\">" + html_escape(aux_text(cell, col, digits)) + "</td>";
      } else if (cell.state == TableCell::State::value) {
        auto [main, suffix] = value_parts(cell, digits);
        const std::string m = cell.best ? "<b>" + html_escape(main) + "</b>" : html_escape(main);
        out += std::string("<td class=\"num") + (cell.best ? " best" : "") + "\">" + m +
               "<span class=\"n\">" + html_escape(suffix) + "</span></td>";
      } else if (cell.state == TableCell::State::no_value) {
        out += "<td class=\"problem\">" + html_escape(cell.problem) + "</td>";
      } else {
        out += "<td class=\"missing\">— <span class=\"n\">(not run)</span></td>";
      }
    }
    out += "</tr>\n";
  }
  out += "</tbody>\n</table>\n";
  return out;
}

// The <svg> element of a gnuplot file, without the XML prolog and DOCTYPE.
std::string inline_svg(const std::string& path) {
  const std::string s = read_file(path);
  const std::size_t start = s.find("<svg");
  ABLATE_CHECK(start != std::string::npos, "{} holds no <svg> element", path);
  return s.substr(start);
}

std::string render_html(const Report& rep) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
                    html_escape("ablate report: " + rep.experiment) + "</title>\n<style>" + kCss +
                    "</style>\n</head>\n<body>\n";
  out += "<h1>Report: " + html_escape(rep.experiment) + "</h1>\n";
  out += "<p>Database <code>" + html_escape(rep.db_path) + "</code>; " +
         html_escape(counts_text(rep.runs)) + ".</p>\n";
  for (const std::string& n : rep.notes) out += "<p class=\"note\">" + html_escape(n) + "</p>\n";
  if (!rep.claims.empty()) {
    out += "<h2>Claims</h2>\n<table class=\"claims\">\n<thead><tr><th>claim</th><th>metric</th>"
           "<th>a</th><th>b</th><th>relation</th><th>p (test)</th><th>95% CI (a−b)</th>"
           "<th>d</th><th>paper</th><th>device</th><th>verdict</th></tr></thead>\n<tbody>\n";
    for (const ClaimResult& c : rep.claims) {
      const char* v = to_string(c.stats.verdict);
      const std::string note = claim_note(c);
      out += "<tr><td><b>" + html_escape(c.spec.id) + "</b><br>" + html_escape(c.spec.text) +
             (note.empty() ? "" : "<br><span class=\"n\">" + html_escape(note) + "</span>") +
             "</td><td><code>" + html_escape(c.spec.source.text) + "</code></td><td>" +
             html_escape(cell_label(c.spec.a)) + "<br>" + html_escape(side_text(c, true)) + "</td><td>" +
             html_escape(cell_label(c.spec.b)) + "<br>" + html_escape(side_text(c, false)) + "</td><td>" +
             html_escape(relation_text(c.spec)) + "</td><td class=\"num\">" +
             (c.stats.test.test.empty()
                  ? std::string("—")
                  : p_text(c.stats.p_claimed) + "<br><span class=\"n\">" + c.stats.test.test + "</span>") +
             "</td><td>" +
             ci_text(c) + "</td><td class=\"num\">" + fmt::format("{:.2f}", c.stats.effect_size) +
             "</td><td>" + html_escape(c.spec.paper.empty() ? "—" : c.spec.paper) + "</td><td>" +
             html_escape(devices_text(c)) + "</td><td><span class=\"verdict " + v + "\">" +
             html_escape(verdict_label(c, rep.scale)) + "</span></td></tr>\n";
    }
    out += "</tbody>\n</table>\n";
  }
  for (const Table& t : rep.tables)
    out += "<h2>Table: " + html_escape(t.spec.name) + "</h2>\n" + html_table(t);
  bool any_plot = std::any_of(rep.plots.begin(), rep.plots.end(),
                              [](const Plot& p) { return !p.path.empty(); });
  if (any_plot || !rep.figures.empty()) out += "<h2>Figures</h2>\n";
  for (const Plot& p : rep.plots)
    if (!p.path.empty())
      out += "<figure id=\"plot-" + html_escape(p.name) + "\">\n" + inline_svg(p.path) +
             "\n<figcaption>" + html_escape(p.title) + "</figcaption>\n</figure>\n";
  for (const FigureFile& f : rep.figures)
    out += "<figure>\n<img alt=\"" + html_escape(f.caption) + "\" src=\"data:image/png;base64," +
           base64_encode(read_file(f.path)) + "\">\n<figcaption>" + html_escape(f.caption) +
           "</figcaption>\n</figure>\n";
  std::string skipped;
  for (const Plot& p : rep.plots)
    if (!p.skipped.empty())
      skipped += "<li><code>" + html_escape(p.name) + "</code>: " + html_escape(p.skipped) + "</li>\n";
  if (!skipped.empty()) out += "<p>Plots not drawn:</p>\n<ul>\n" + skipped + "</ul>\n";
  std::string problems;
  for (const RunRecord& r : rep.runs)
    if (!is_done(r))
      problems += "<tr><td><code>" + html_escape(r.id) + "</code></td><td>" +
                  html_escape(cell_label(r.axes)) + "</td><td>" + html_escape(r.status) +
                  "</td><td>" + html_escape(describe_outcome(r)) + "</td></tr>\n";
  if (!problems.empty())
    out += "<h2>Runs without results</h2>\n<table>\n<thead><tr><th>run</th><th>cell</th>"
           "<th>status</th><th>detail</th></tr></thead>\n<tbody>\n" +
           problems + "</tbody>\n</table>\n";
  out += "</body>\n</html>\n";
  return out;
}

}  // namespace

Format parse_format(const std::string& name) {
  if (name == "md" || name == "markdown") return Format::markdown;
  if (name == "tex" || name == "latex") return Format::latex;
  if (name == "csv") return Format::csv;
  if (name == "html") return Format::html;
  throw ConfigError("<command line>", "format", "unknown report format '" + name + "'",
                    "md, tex, csv or html");
}

const char* file_extension(Format f) {
  switch (f) {
    case Format::markdown: return "md";
    case Format::latex: return "tex";
    case Format::csv: return "csv";
    case Format::html: return "html";
  }
  return "txt";
}

std::string render(const Report& report, Format f) {
  switch (f) {
    case Format::markdown: return render_markdown(report);
    case Format::latex: return render_latex(report);
    case Format::html: return render_html(report);
    case Format::csv: {
      std::string out = kCsvHeader;
      for (const Table& t : report.tables) out += csv_rows(t);
      return out;
    }
  }
  return "";
}

std::string render_table(const Table& table, Format f) {
  switch (f) {
    case Format::markdown: return md_table(table);
    case Format::latex: return tex_table(table);
    case Format::csv: return kCsvHeader + csv_rows(table);
    case Format::html: return html_table(table);
  }
  return "";
}

std::string csv_row(const std::vector<std::string>& fields) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    const std::string& f = fields[i];
    if (f.find_first_of(",\"\n\r") == std::string::npos) {
      out += f;
      continue;
    }
    out += '"';
    for (char c : f) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    out += '"';
  }
  return out + "\n";
}

std::string latex_escape(const std::string& text) {
  static const std::pair<const char*, const char*> kUnicode[] = {
      {"±", "$\\pm$"}, {"—", "---"}, {"–", "--"}, {"×", "$\\times$"}, {"Δ", "$\\Delta$"},
      {"≥", "$\\geq$"}, {"≤", "$\\leq$"}, {"−", "$-$"}, {"→", "$\\rightarrow$"}};
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    bool replaced = false;
    for (const auto& [from, to] : kUnicode) {
      const std::size_t n = std::char_traits<char>::length(from);
      if (text.compare(i, n, from) == 0) {
        out += to;
        i += n;
        replaced = true;
        break;
      }
    }
    if (replaced) continue;
    const char c = text[i++];
    switch (c) {
      case '\\': out += "\\textbackslash{}"; break;
      case '&': case '%': case '$': case '#': case '_': case '{': case '}':
        out += '\\';
        out += c;
        break;
      case '~': out += "\\textasciitilde{}"; break;
      case '^': out += "\\textasciicircum{}"; break;
      case '<': out += "\\textless{}"; break;
      case '>': out += "\\textgreater{}"; break;
      default: out += c;
    }
  }
  return out;
}

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64_encode(const std::string& bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < bytes.size()) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace ablate
