// `ablate`: the command line. Parses arguments with CLI11 and dispatches to the harness (plan, run,
// status, show, export, sync), reports (report, compare), datasets (data pack/crop/dedup) and the
// LibTorch commands of the app layer (worker, bench, models). Every user-facing error becomes one
// line on stderr and a non-zero exit code; nothing already recorded is lost.
#include <unistd.h>

#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/data_source.h"
#include "app/version.h"
#include "harness/check.h"
#include "harness/config_io.h"
#include "harness/env_info.h"
#include "harness/experiment.h"
#include "harness/memory_estimate.h"
#include "harness/model_sizes.h"
#include "harness/runner.h"
#include "harness/slurm.h"
#include "harness/store.h"
#include "reports/compare.h"
#include "reports/report.h"

namespace {

using namespace ablate;

std::string self_exe(const char* argv0) {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(argv0) : p.string();
}

// `ablate plan`: the expanded runs with ids, configs and cost estimates.
int plan_main(const Experiment& exp, bool json) {
  nlohmann::json out = nlohmann::json::array();
  double total_flops = 0, total_gpu_h = 0;
  for (const auto& r : exp.runs) {
    const double flops = train_flops_per_image(r.config);
    const double images = static_cast<double>(r.config.train.epochs) *
                          (r.config.data.max_images > 0 ? r.config.data.max_images : 0);
    // GPU-hours at 40% of an H100's ~800 TFLOP/s bf16 matmul rate (what `ablate bench` measures),
    // the same however many GPUs share the run; 0 when the corpus size is unknown until the dataset
    // is opened (max_images = 0).
    const double run_flops = flops * images;
    const double gpu_h = run_flops / (0.4 * 800e12) / 3600.0;
    total_flops += run_flops;
    total_gpu_h += gpu_h;
    const auto& size = vit_size(r.config.model.size);
    out.push_back({{"id", r.id},
                   {"axes", r.axes},
                   {"seed", r.seed},
                   {"params", encoder_params(size, r.config.model.patch_size, r.config.model.qkv_bias) +
                                  decoder_params(r.config.model)},
                   {"encoder_params", encoder_params(size, r.config.model.patch_size, r.config.model.qkv_bias)},
                   {"train_flops_per_image", flops},
                   {"train_flops", run_flops},
                   {"gpus", r.config.resources.gpus},
                   {"gpu_hours_h100_est", gpu_h},
                   {"peak_mem_gib_est", planned_peak_gib(r.config)},
                   {"evals", [&] {
                      nlohmann::json tasks = nlohmann::json::array();
                      for (const EvalTask& t : eval_tasks_of(r)) {
                        tasks.push_back(t.key_json());
                        tasks.back()["id"] = t.id;
                      }
                      return tasks;
                    }()},
                   {"config", config_to_json(r.config)}});
  }
  // External checkpoint rows (`weights:`): evaluated only, nothing to pre-train.
  nlohmann::json files = nlohmann::json::array();
  for (const auto& w : exp.weights) {
    nlohmann::json tasks = nlohmann::json::array();
    for (const EvalTask& t : eval_tasks_of(w)) {
      tasks.push_back(t.key_json());
      tasks.back()["id"] = t.id;
    }
    files.push_back({{"name", w.name}, {"file", w.path}, {"sha256", w.sha256}, {"layout", w.layout},
                     {"axes", w.axes}, {"evals", tasks}});
  }
  if (json) {
    nlohmann::json plan{{"experiment", exp.name}, {"scale", exp.scale}, {"runs", out},
                        {"total_train_flops", total_flops}, {"total_gpu_hours_h100_est", total_gpu_h}};
    if (!files.empty()) plan["weights"] = files;
    std::cout << plan.dump(2) << "\n";
    return 0;
  }
  fmt::print("{} ({} scale): {} runs\n", exp.name, exp.scale, exp.runs.size());
  for (const auto& r : out)
    fmt::print("  {}  {:>9.2f}M params  {:>8.2f} GFLOP/img  {:>9.3f} GPU-h  {:>2} GPU x {:>6.1f} GiB  {}\n",
               r["id"].get<std::string>(), r["params"].get<double>() / 1e6,
               r["train_flops_per_image"].get<double>() / 1e9, r["gpu_hours_h100_est"].get<double>(),
               r["gpus"].get<int>(), r["peak_mem_gib_est"].get<double>(), r["axes"].dump());
  for (const auto& f : files)
    fmt::print("  {}  checkpoint {} ({}, sha256 {}), {} evaluation(s)  {}\n", f["name"].get<std::string>(),
               f["file"].get<std::string>(), f["layout"].get<std::string>(), f["sha256"].get<std::string>().substr(0, 12),
               f["evals"].size(), f["axes"].dump());
  fmt::print("total: {:.3g} train FLOPs, {:.3f} H100 GPU-hours (estimate at 40% MFU; 0 where the corpus "
             "size is only known at run time)\n",
             total_flops, total_gpu_h);
  return 0;
}

std::vector<int> parse_gpu_list(const std::string& s) {
  std::vector<int> gpus;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    const std::string part = s.substr(i, j - i);
    const auto dash = part.find('-');
    try {
      if (dash != std::string::npos) {
        const int a = std::stoi(part.substr(0, dash)), b = std::stoi(part.substr(dash + 1));
        if (b < a) throw std::invalid_argument("range");
        for (int g = a; g <= b; ++g) gpus.push_back(g);
      } else {
        gpus.push_back(std::stoi(part));
      }
    } catch (const std::exception&) {
      throw ConfigError("<command line>", "--gpus", fmt::format("cannot parse '{}'", part),
                        "a list like 0,1,2 or a range like 0-7");
    }
    i = j + 1;
  }
  return gpus;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ablate: reproducibility harness and ablation runner for remote-sensing MIM models"};
  app.require_subcommand(0, 1);
  bool show_version = false;
  app.add_flag("--version", show_version, "print versions of ablate and its libraries");

  std::string file, scale, db = "results/ablate.sqlite", format, out_path, rerun, gpus, backend = "local";
  std::vector<std::string> overrides;
  bool json = false;
  int jobs = 1;

  auto* plan = app.add_subcommand("plan", "expand an experiment file into runs with cost estimates");
  plan->add_option("file", file, "experiment YAML")->required();
  plan->add_option("--scale", scale, "smoke | small | paper (default: the file's default_scale)");
  plan->add_flag("--json", json, "JSON output");
  plan->add_option("overrides", overrides, "key=value overrides (dotted paths)");

  auto* run = app.add_subcommand("run", "plan, execute and record an experiment's runs");
  run->add_option("file", file, "experiment YAML")->required();
  run->add_option("--scale", scale, "smoke | small | paper");
  run->add_option("--db", db, "results database");
  run->add_option("--gpus", gpus, "GPUs to use, e.g. 0,1 or 0-7 (packed largest run first)");
  double gpu_mem_gib = 0;
  run->add_option("--gpu-mem-gib", gpu_mem_gib, "memory of each GPU in GiB for the fit check (default: nvidia-smi)")
      ->check(CLI::NonNegativeNumber);
  run->add_option("--jobs", jobs, "concurrent CPU runs when no GPUs are given");
  double dist_timeout = RunnerOptions{}.dist_timeout_s;
  run->add_option("--dist-timeout", dist_timeout,
                  "seconds a data-parallel rank waits for the others in a collective before the run fails");
  run->add_option("--rerun", rerun, "also re-run finished runs: failed | all")
      ->check(CLI::IsMember({"failed", "all"}));
  run->add_option("overrides", overrides, "key=value overrides (dotted paths)");
  run->add_option("--backend", backend, "local | slurm")->check(CLI::IsMember({"local", "slurm"}));
  SlurmOptions so;
  run->add_option("--partition", so.partition, "Slurm partition");
  run->add_option("--time", so.time, "Slurm time limit per task, e.g. 04:00:00");
  run->add_option("--account", so.account, "Slurm account");
  run->add_option("--throttle", so.throttle, "Slurm array throttle (%N): tasks running at once");
  run->add_option("--gpus-per-task", so.gpus_per_task, "GPUs per Slurm task (rank)");
  run->add_option("--cpus-per-task", so.cpus_per_task, "CPUs per Slurm task");
  run->add_option("--extra-sbatch", so.extra_sbatch, "extra #SBATCH line (repeatable)");

  auto* status = app.add_subcommand("status", "counts of runs per status");
  status->add_option("file", file, "experiment YAML")->required();
  status->add_option("--scale", scale, "smoke | small | paper");
  status->add_option("--db", db, "results database");
  status->add_flag("--json", json, "JSON output");
  status->add_option("overrides", overrides, "the key=value overrides the runs were made with");

  std::string run_id;
  auto* show = app.add_subcommand("show", "one run: config, status, metrics, evaluations");
  show->add_option("run_id", run_id, "run id (config hash)")->required();
  show->add_option("--db", db, "results database");

  auto* exportc = app.add_subcommand("export", "dump the database as CSV or JSON, or a run's encoder for timm / MAE");
  exportc->add_option("run_id", run_id, "run whose encoder to export (--format timm | pth)");
  exportc->add_option("--db", db, "results database");
  exportc->add_option("--format", format, "csv | json (database), timm | pth (a run's encoder)")
      ->required()->check(CLI::IsMember({"csv", "json", "timm", "pth"}));
  exportc->add_option("-o,--out", out_path, "timm: folder for model.safetensors + config.json; pth: file");

  auto* sync = app.add_subcommand("sync", "ingest run journals (e.g. from Slurm tasks) into the database");
  sync->add_option("--db", db, "results database");

  auto* cancel = app.add_subcommand("cancel", "cancel an experiment's Slurm jobs");
  cancel->add_option("file", file, "experiment YAML")->required();
  cancel->add_option("--scale", scale, "smoke | small | paper");
  cancel->add_option("--db", db, "results database");

  auto* report = app.add_subcommand("report", "paper-style tables and claim verdicts from the database");
  report->add_option("file", file, "experiment YAML")->required();
  report->add_option("--scale", scale, "smoke | small | paper");
  report->add_option("--db", db, "results database");
  report->add_option("--format", format, "md | tex | html | csv")->check(CLI::IsMember({"md", "tex", "html", "csv"}));
  report->add_option("overrides", overrides, "the key=value overrides the runs were made with");
  report->add_option("-o,--out-dir", out_path, "folder for report.<ext> and figures/ (default results/reports/<experiment>)");

  std::vector<std::string> figures;
  report->add_option("--figure", figures, "PNG to embed in the HTML report (e.g. from `ablate figure`)");

  std::string fig_out = "reconstruction.png";
  int fig_count = 8;
  auto* figure = app.add_subcommand("figure", "reconstruction figure of a finished run (PNG)");
  figure->add_option("run_id", run_id, "run id")->required();
  figure->add_option("--db", db, "results database");
  figure->add_option("-o,--out", fig_out, "PNG to write");
  figure->add_option("--images", fig_count, "validation images (rows)");

  std::string against;
  auto* compare = app.add_subcommand("compare", "compare two result databases; non-zero exit on regression");
  compare->add_option("--db", db, "the new results")->required();
  compare->add_option("--against", against, "the baseline results")->required();
  compare->add_option("file", file, "experiment YAML (its tables name the tracked metrics)");
  compare->add_option("--scale", scale, "smoke | small | paper");
  int rerun_borderline = 0;
  compare->add_option("--rerun-borderline", rerun_borderline,
                      "run N more seeds of each borderline cell into --db, then judge (default 0)");
  compare->add_option("--jobs", jobs, "concurrent CPU re-runs when no GPUs are given");
  compare->add_option("--gpus", gpus, "GPUs for the re-runs, e.g. 0,1 or 0-7 (one run per GPU)");

  ModelsOptions mopt;
  auto* models = app.add_subcommand("models", "named ViT sizes with parameter counts and FLOPs");
  models->add_flag("--json", mopt.json, "JSON output");
  models->add_option("--img", mopt.img_size, "input size in pixels");
  models->add_option("--patch", mopt.patch_size, "patch size");
  models->add_option("--mask", mopt.mask_ratio, "mask ratio");
  models->add_option("--decoder", mopt.decoder, "mae | cross")->check(CLI::IsMember({"mae", "cross"}));
  models->add_option("--recon", mopt.recon_ratio, "reconstruction ratio (cross decoder)");

  BenchOptions bopt;
  auto* bench = app.add_subcommand("bench", "train-step throughput (median over timed steps)");
  bench->add_option("--method", bopt.method, "mae | selectivemae | crossmae | crossscale");
  bench->add_option("--model", bopt.model, "named size");
  bench->add_option("--batch", bopt.batch, "batch size");
  bench->add_option("--steps", bopt.steps, "timed steps (>= 50 for reported numbers)");
  bench->add_option("--warmup", bopt.warmup, "untimed warm-up steps");
  bench->add_option("--img", bopt.img_size, "input size");
  bench->add_option("--input", bopt.input, "synthetic | shards")->check(CLI::IsMember({"synthetic", "shards"}));
  bench->add_option("--shards", bopt.shards, "packed shard folder for --input shards");
  bench->add_option("--precision", bopt.precision, "auto | fp32 | bf16");
  bench->add_option("--db", bopt.db, "also record the result in this database");
  bench->add_option("--json-out", bopt.json_out, "write the result as JSON here");
  bool no_graph = false;
  bench->add_flag("--no-graph", no_graph, "run the step eagerly (no CUDA graph)");
  std::string loader_shards, loader_jpegs;
  int loader_images = 4000, loader_workers = 2;
  auto* bench_loader = bench->add_subcommand("loader", "images/s: packed shards vs OpenCV JPEG decoding");
  bench_loader->add_option("--shards", loader_shards, "packed shard folder")->required();
  bench_loader->add_option("--jpegs", loader_jpegs, "dataset folder of JPEGs")->required();
  bench_loader->add_option("--images", loader_images, "images to read");
  bench_loader->add_option("--workers", loader_workers, "reader threads");

  std::string run_dir, eval_dir;
  auto* worker = app.add_subcommand("worker", "(internal) execute one run in this process");
  auto* worker_run = worker->add_option("--run-dir", run_dir, "run folder holding config.json");
  auto* worker_eval = worker->add_option("--eval", eval_dir, "evaluation folder holding eval.json");
  worker_run->excludes(worker_eval);
  worker->require_option(1);
  worker->group("");  // hidden from --help

  auto* data = app.add_subcommand("data", "dataset tools: pack, crop, dedup");
  data->require_subcommand(1);
  std::string src, out_dir;
  int pack_size = 0;
  auto* pack = data->add_subcommand("pack", "decode a dataset once into checksummed uint8 shards");
  pack->add_option("src", src, "dataset folder (class sub-folders)")->required();
  pack->add_option("--out", out_dir, "output folder")->required();
  pack->add_option("--size", pack_size, "side in pixels of the packed images")->required();
  std::string dataset_name;
  pack->add_option("--dataset", dataset_name, "registry name (default: inferred from the folder)");
  int crop_min = 64, crop_max = 128, crop_per_image = 4;
  uint64_t crop_seed = 0;
  auto* crop = data->add_subcommand("crop", "random sub-images between a min and max side");
  crop->add_option("src", src, "image folder")->required();
  crop->add_option("--out", out_dir, "output folder")->required();
  crop->add_option("--min", crop_min, "min side (px)");
  crop->add_option("--max", crop_max, "max side (px)");
  crop->add_option("--per-image", crop_per_image, "crops per source image");
  crop->add_option("--seed", crop_seed, "seed");
  int dedup_threshold = 6;
  auto* dedup = data->add_subcommand("dedup", "perceptual-hash duplicate groups");
  dedup->add_option("src", src, "image folder")->required();
  dedup->add_option("--threshold", dedup_threshold, "max Hamming distance of 64-bit pHashes");
  dedup->add_option("--out", out_path, "write the groups as JSON here");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    if (show_version) {
      for (const auto& [k, v] : library_versions()) fmt::print("{:<9} {}\n", k, v);
      return 0;
    }
    if (*worker) return eval_dir.empty() ? worker_main(run_dir) : eval_worker_main(eval_dir);
    if (*models) return models_main(mopt);
    if (*plan) return plan_main(load_experiment(file, scale, overrides), json);
    // The local runner's settings, shared by `run` and `compare --rerun-borderline` (whose re-runs
    // go into --db, the new database, only).
    auto runner_options = [&] {
      RunnerOptions ro;
      ro.db = db;
      if (!gpus.empty()) ro.gpus = parse_gpu_list(gpus);
      ro.gpu_mem_gib = gpu_mem_gib;
      ro.jobs = jobs;
      ro.dist_timeout_s = dist_timeout;
      ro.ablate_exe = self_exe(argv[0]);
      ro.progress_tty = isatty(STDERR_FILENO);
      return ro;
    };
    if (*run) {
      RunnerOptions ro = runner_options();
      ro.rerun = rerun;
      const auto exp = load_experiment(file, scale, overrides);
      pack_datasets(exp.runs);
      if (backend == "slurm") {
        slurm_submit(exp, ro, so, SlurmTools::from_path(), std::cerr);  // returns the number submitted
        return 0;
      }
      return run_experiment(exp, ro);
    }
    if (*status) {
      const auto exp = load_experiment(file, scale, overrides);
      Store store(db);
      const auto slurm = slurm_status(store, exp, SlurmTools::from_path(), std::cerr);
      const auto s = status_json(store, exp);
      if (!slurm.empty()) std::cerr << format_slurm_status(slurm);
      if (json) {
        std::cout << s.dump(2) << "\n";
      } else {
        for (const auto& [k, v] : s.items()) fmt::print("{:<9} {}\n", k, v.dump());
      }
      return 0;
    }
    if (*show) {
      Store store(db, Store::Mode::existing);
      std::cout << show_run(store, run_id);
      return 0;
    }
    if (*exportc) {
      if (format == "timm" || format == "pth") return export_model_main(db, run_id, format, out_path);
      Store store(db, Store::Mode::existing);
      export_db(store, format, std::cout);
      return 0;
    }
    if (*sync) {
      Store store(db, Store::Mode::existing);
      slurm_sync(store, SlurmTools::from_path(), "", std::cerr);
      return sync_main(store);
    }
    if (*cancel) {
      const auto exp = load_experiment(file, scale, {});
      Store store(db, Store::Mode::existing);
      slurm_cancel(store, exp, SlurmTools::from_path(), std::cerr);  // returns the number cancelled
      return 0;
    }
    if (*report) {
      const auto exp = load_experiment(file, scale, overrides);
      ReportRequest req;
      req.db_path = db;
      req.experiment = exp.name;
      req.source = file;
      req.tables = exp.tables;
      req.claims = exp.claims;
      for (const auto& r : exp.runs) req.runs.push_back(ReportRun{r.id, r.axes});
      for (const auto& w : exp.weights) req.runs.push_back(ReportRun{w.label(), w.axes});
      if (!format.empty()) req.formats = {format};
      if (!out_path.empty()) req.out_dir = out_path;
      for (const auto& f : figures) req.figures.push_back(FigureFile{f, "reconstructions: original | masked | reconstruction | reconstructed patches"});
      Store(db, Store::Mode::existing);  // a clear error when the database is missing
      return report_main(req);
    }
    if (*compare) {
      CompareRequest req;
      req.db = db;
      req.against = against;
      if (!file.empty()) {
        const auto exp = load_experiment(file, scale, {});
        req.experiment = exp.name;
        req.source = file;
        req.tracked = exp.compare;
      }
      req.rerun_borderline = rerun_borderline;
      return compare_main(req, std::cout, local_rerunner(runner_options()));
    }
    if (*figure) return figure_main(db, run_id, fig_out, fig_count);
    if (*bench_loader) return bench_loader_main(loader_shards, loader_jpegs, loader_images, loader_workers);
    if (*bench) {
      bopt.cuda_graph = !no_graph;
      return bench_main(bopt);
    }
    if (*pack) return data_pack_main(src, out_dir, pack_size, dataset_name);
    if (*crop) return data_crop_main(src, out_dir, crop_min, crop_max, crop_per_image, crop_seed);
    if (*dedup) return data_dedup_main(src, dedup_threshold, out_path);
    std::cout << app.help();
    return 0;
  } catch (const ConfigError& e) {
    fmt::print(stderr, "ablate: config error: {}\n", e.what());
    return 2;
  } catch (const StoreError& e) {
    fmt::print(stderr, "ablate: database error: {}\n", e.what());
    return 3;
  } catch (const DataError& e) {
    fmt::print(stderr, "ablate: data error: {}\n", e.what());
    return 4;
  } catch (const std::exception& e) {
    fmt::print(stderr, "ablate: error: {}\n", e.what());
    return 1;
  }
}
