// gnuplot scripts and data files for the report's figures (reports/plots.h).
#include "reports/plots.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "harness/check.h"
#include "reports/cells.h"
#include "reports/stats.h"

extern char** environ;

namespace ablate {
namespace {

namespace fs = std::filesystem;

// A string inside single quotes in a gnuplot script.
std::string gp_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// A label inside double quotes in a gnuplot data file.
std::string dat_quote(std::string s) {
  std::replace(s.begin(), s.end(), '"', '\'');
  return "\"" + s + "\"";
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
  if (!out) throw DataError(fmt::format("{}: cannot write", p.string()));
}

const char* kPreamble =
    "set terminal svg size 820,460 dynamic noenhanced font 'sans,12' background '#ffffff'\n"
    "set grid lc rgb '#dddddd'\n"
    "set border lc rgb '#444444'\n"
    "set key below\n";

// Runs gnuplot on `script`; returns "" on success, else what went wrong.
std::string run_gnuplot(const std::string& exe, const fs::path& script) {
  const fs::path log = fs::path(script).replace_extension(".log");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  const std::string script_s = script.string();
  char* argv[] = {const_cast<char*>(exe.c_str()), const_cast<char*>(script_s.c_str()), nullptr};
  pid_t pid;
  const int rc = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return fmt::format("cannot start {}: {}", exe, std::strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  std::string msg = read_file(log);
  msg = msg.substr(0, std::min<std::size_t>(msg.size(), 300));
  std::replace(msg.begin(), msg.end(), '\n', ' ');
  return fmt::format("gnuplot failed ({}): {}", WIFEXITED(status) ? WEXITSTATUS(status) : -1, msg);
}

struct PlotJob {
  Plot plot;
  std::string data;    // contents of <name>.dat
  std::string script;  // gnuplot commands after the preamble and `set output`
};

std::string run_label(const RunRecord& r) {
  std::string s = cell_label(cell_key(r.axes));
  s += fmt::format(" seed={}", r.seed);
  if (!is_done(r)) s += " [" + r.status + "]";
  return s;
}

// Runs grouped into cells in first-seen order.
std::vector<std::pair<nlohmann::json, std::vector<const RunRecord*>>> by_cell(
    const std::vector<RunRecord>& runs) {
  std::vector<std::pair<nlohmann::json, std::vector<const RunRecord*>>> cells;
  for (const RunRecord& r : runs) {
    const nlohmann::json k = cell_key(r.axes);
    auto it = std::find_if(cells.begin(), cells.end(), [&](const auto& c) { return c.first == k; });
    if (it == cells.end()) cells.push_back({k, {&r}});
    else it->second.push_back(&r);
  }
  return cells;
}

PlotJob loss_job(const ResultsDb& db, const std::vector<RunRecord>& runs) {
  PlotJob job;
  job.plot = {"loss", "Training loss per run", "", ""};
  std::string plot_cmd;
  bool all_positive = true;
  int block = 0;
  for (const RunRecord& r : runs) {
    const auto& s = db.series(r.id, "loss");
    std::string lines;
    for (const auto& [step, v] : s) {
      if (!std::isfinite(v)) continue;
      all_positive = all_positive && v > 0;
      lines += fmt::format("{} {:.9g}\n", step, v);
    }
    if (lines.empty()) continue;
    job.data += lines + "\n\n";
    plot_cmd += fmt::format("{}@DATA@ index {} using 1:2 with lines lw 1.5 title {}",
                            plot_cmd.empty() ? "plot " : ", \\\n     ", block++,
                            gp_quote(run_label(r)));
  }
  if (block == 0) {
    job.plot.skipped = "no run logged 'loss'";
    return job;
  }
  job.script = "set title 'Training loss'\nset xlabel 'step'\nset ylabel 'loss'\n";
  if (all_positive) job.script += "set logscale y\n";
  job.script += plot_cmd + "\n";
  return job;
}

PlotJob throughput_job(const ResultsDb& db, const std::vector<RunRecord>& runs) {
  PlotJob job;
  job.plot = {"throughput", "Training throughput (median images/s per run, mean ± std over seeds)",
              "", ""};
  const MetricSource src = MetricSource::parse("metric:images_per_s:median", "throughput plot");
  for (const auto& [key, cell_runs] : by_cell(runs)) {
    const Sample s = collect_sample(db, cell_runs, src);
    if (s.values.empty()) continue;
    job.data += fmt::format("{} {:.6g} {:.6g}\n", dat_quote(cell_label(key)), mean(s.values),
                            sample_std(s.values));
  }
  if (job.data.empty()) {
    job.plot.skipped = "no finished run logged 'images_per_s'";
    return job;
  }
  job.script =
      "set title 'Throughput'\nset ylabel 'images/s'\nset yrange [0:*]\nunset key\n"
      "set style data histograms\nset style histogram errorbars gap 1 lw 1\n"
      "set style fill solid 0.7 border -1\nset boxwidth 0.8\nset xtics rotate by -25 left\n"
      "plot @DATA@ using 2:3:xtic(1) lc rgb '#4477aa'\n";
  return job;
}

std::vector<PlotJob> knn_scale_jobs(const ResultsDb& db, const std::vector<RunRecord>& runs) {
  // dataset -> cell index -> scale -> per-seed values
  std::map<std::string, std::map<std::size_t, std::map<double, std::vector<double>>>> acc;
  const auto cells = by_cell(runs);
  for (std::size_t ci = 0; ci < cells.size(); ++ci)
    for (const RunRecord* r : cells[ci].second) {
      if (!is_done(*r)) continue;
      for (const EvalRecord& e : db.evals(*r))
        if (e.protocol == "knn" && e.metric == "top1" && std::isfinite(e.value))
          acc[e.dataset][ci][e.scale].push_back(e.value);
    }
  std::vector<PlotJob> jobs;
  for (const auto& [dataset, per_cell] : acc) {
    PlotJob job;
    job.plot = {"knn_scale_" + dataset, "KNN top-1 vs input scale (" + dataset + ")", "", ""};
    std::string plot_cmd;
    int block = 0;
    bool fractions = true;
    for (const auto& [ci, per_scale] : per_cell)
      for (const auto& [scale, vals] : per_scale)
        for (double v : vals) fractions = fractions && v <= 1.0;
    const double to_pct = fractions ? 100.0 : 1.0;
    for (const auto& [ci, per_scale] : per_cell) {
      if (per_scale.size() < 2) continue;
      for (const auto& [scale, vals] : per_scale)
        job.data += fmt::format("{:g} {:.6g} {:.6g}\n", scale, mean(vals) * to_pct,
                                sample_std(vals) * to_pct);
      job.data += "\n\n";
      plot_cmd += fmt::format("{}@DATA@ index {} using 1:2:3 with yerrorlines lw 1.5 title {}",
                              plot_cmd.empty() ? "plot " : ", \\\n     ", block++,
                              gp_quote(cell_label(cells[ci].first)));
    }
    if (block == 0) {
      job.plot.skipped = "KNN top-1 on " + dataset + " was evaluated at a single input scale";
    } else {
      job.script = "set title " + gp_quote("KNN top-1 vs input scale, " + dataset) +
                   "\nset xlabel 'input scale'\nset ylabel 'top-1 (%)'\nset logscale x 2\n" +
                   "set xrange [*:*]\nset offsets graph 0.05, graph 0.05, 0, 0\n" + plot_cmd + "\n";
    }
    jobs.push_back(std::move(job));
  }
  return jobs;
}

}  // namespace

std::string find_executable(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    const fs::path p = fs::path(dir.empty() ? "." : dir) / name;
    if (::access(p.c_str(), X_OK) == 0 && !fs::is_directory(p)) return p.string();
  }
  return "";
}

std::vector<Plot> make_plots(const ResultsDb& db, const std::vector<RunRecord>& runs,
                             const PlotOptions& opt) {
  std::vector<PlotJob> jobs;
  jobs.push_back(loss_job(db, runs));
  jobs.push_back(throughput_job(db, runs));
  for (PlotJob& j : knn_scale_jobs(db, runs)) jobs.push_back(std::move(j));

  const std::string exe = find_executable(opt.gnuplot);
  std::vector<Plot> plots;
  for (PlotJob& job : jobs) {
    if (job.plot.skipped.empty() && exe.empty())
      job.plot.skipped = "gnuplot not found ('" + opt.gnuplot + "'; install gnuplot-nox)";
    if (job.plot.skipped.empty()) {
      ABLATE_CHECK(!opt.dir.empty(), "plots need an output folder");
      fs::create_directories(opt.dir);
      const fs::path base = fs::path(opt.dir) / job.plot.name;
      const fs::path svg = fs::path(base).replace_extension(".svg");
      const fs::path dat = fs::path(base).replace_extension(".dat");
      const fs::path gp = fs::path(base).replace_extension(".gp");
      write_file(dat, job.data);
      std::string script = job.script;
      for (std::size_t pos; (pos = script.find("@DATA@")) != std::string::npos;)
        script.replace(pos, 6, gp_quote(dat.string()));
      write_file(gp, std::string(kPreamble) + "set output " + gp_quote(svg.string()) + "\n" + script);
      fs::remove(svg);
      const std::string err = run_gnuplot(exe, gp);
      if (err.empty() && fs::exists(svg) && fs::file_size(svg) > 0)
        job.plot.path = svg.string();
      else
        job.plot.skipped = err.empty() ? "gnuplot wrote no SVG" : err;
    }
    plots.push_back(std::move(job.plot));
  }
  return plots;
}

}  // namespace ablate
