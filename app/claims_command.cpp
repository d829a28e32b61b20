// `ablate claims [FILE...]`: every claim of the experiment files with its latest verdict, n per
// side, scale, device and database, on one page (reports/claims_overview.h). Each file is planned
// at every scale profile it declares, so the run ids tell which scale a database's runs belong to.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "app/commands.h"
#include "harness/check.h"
#include "harness/experiment.h"
#include "reports/claims_overview.h"

namespace ablate {
namespace {

namespace fs = std::filesystem;

struct ClaimsOptions {
  std::vector<std::string> files;  // experiment files; empty = experiments/*.yaml
  std::vector<std::string> dbs;    // databases to look in; empty = the default database
  std::string format = "md";       // md | json
  std::string out;                 // file to write; "" = stdout
};

// The profiles of the file's `scales:` mapping, or "" (no profile) when it declares none.
std::vector<std::string> scale_names(const std::string& file) {
  YAML::Node scales;
  try {
    scales = YAML::LoadFile(file)["scales"];
  } catch (const YAML::Exception& e) {
    throw ConfigError(file, "", std::string("cannot read: ") + e.what());
  }
  std::vector<std::string> out;
  if (scales && scales.IsMap())
    for (const auto& kv : scales) out.push_back(kv.first.as<std::string>());
  if (out.empty()) out.push_back("");
  return out;
}

std::vector<std::string> default_files() {
  std::vector<std::string> files;
  if (fs::is_directory("experiments"))
    for (const auto& e : fs::directory_iterator("experiments"))
      if (e.path().extension() == ".yaml") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

std::string command_line(const std::vector<std::string>& files, const std::vector<std::string>& dbs) {
  std::string s = "ablate claims";
  for (const std::string& f : files) s += " " + f;
  for (const std::string& d : dbs) s += " --db " + d;
  return s;
}

int claims_main(const ClaimsOptions& opt) {
  const std::vector<std::string> files = opt.files.empty() ? default_files() : opt.files;
  const std::vector<std::string> dbs = opt.dbs.empty() ? std::vector<std::string>{kDefaultDb} : opt.dbs;
  std::vector<ClaimsPlan> plans;
  for (const std::string& file : files)
    for (const std::string& scale : scale_names(file)) {
      const Experiment exp = load_experiment(file, scale, {});
      plans.push_back(ClaimsPlan{file, exp.name, exp.scale, exp.claims, planned_report_runs(exp)});
    }
  // The command as written (files only when named: the default list is long and implied).
  const std::string page =
      render_claims_overview(claims_overview(plans, dbs), opt.format, command_line(opt.files, dbs));
  if (opt.out.empty()) {
    std::cout << page;
    return 0;
  }
  if (const fs::path parent = fs::path(opt.out).parent_path(); !parent.empty()) fs::create_directories(parent);
  std::ofstream f(opt.out, std::ios::binary);
  f << page;
  if (!f) throw DataError(opt.out + ": cannot write");
  std::cerr << "wrote " << opt.out << "\n";
  return 0;
}

}  // namespace

void add_claims_command(CLI::App& app, Commands& commands) {
  auto opt = std::make_shared<ClaimsOptions>();
  CLI::App* cmd = app.add_subcommand("claims", "every claim of the experiment files with its latest verdict");
  cmd->add_option("files", opt->files, "experiment YAML files (default: experiments/*.yaml)");
  cmd->add_option("--db", opt->dbs, "results databases to look in (repeatable; default results/ablate.sqlite)");
  cmd->add_option("--format", opt->format, "md | json")->check(CLI::IsMember({"md", "json"}));
  cmd->add_option("-o,--out", opt->out, "write the page here (e.g. results/CLAIMS.md) instead of stdout");
  commands.push_back({cmd, [opt] { return claims_main(*opt); }});
}

}  // namespace ablate
