// The `ablate` subcommands that live in the app layer because they need LibTorch (the worker that
// executes one run, benchmarks, model listing) or compose several layers (data preparation).
// main.cpp parses the command line and calls these; each returns the process exit code.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "harness/config.h"
#include "harness/runner.h"
#include "reports/compare.h"

namespace ablate {

class Store;
class PretrainMethod;

// Executes one planned run in this process: reads run_dir/config.json, pre-trains (resuming from
// run_dir/ckpt when present) and reports everything through run_dir/journal.jsonl.
int worker_main(const std::filesystem::path& run_dir);
// Executes one evaluation task (harness/eval_task.h): reads eval_dir/eval.json, loads the weights
// it names (a run's final checkpoint) and reports its results through eval_dir/journal.jsonl.
int eval_worker_main(const std::filesystem::path& eval_dir);

// `ablate models`: every named ViT size with parameter counts and FLOPs per image.
struct ModelsOptions {
  bool json = false;       // machine-readable output
  int img_size = 224;      // input side in pixels
  int patch_size = 16;     // patch side
  double mask_ratio = 0.75;
  std::string decoder = "mae";  // "mae" | "cross"
  double recon_ratio = 0.0;     // CrossMAE / SelectiveMAE: fraction of all patches reconstructed
};
int models_main(const ModelsOptions& opt);

// `ablate bench`: train-step throughput of one method/model on this machine's device.
struct BenchOptions {
  std::string method = "mae";   // mae | selectivemae | crossmae | crossscale
  std::string model = "vit_b";
  int batch = 256;
  int steps = 60;               // timed steps (median reported), after warm-up
  int warmup = 10;
  int img_size = 224;
  std::string input = "synthetic";  // synthetic | shards (packed EuroSAT, see --shards)
  std::string shards;               // shard folder for --input shards
  bool cuda_graph = true;
  std::string precision = "auto";
  std::string db;                   // record results here when set
  std::string json_out;             // write the result JSON here when set
};
int bench_main(const BenchOptions& opt);

// `ablate bench loader`: images/s from packed shards vs decoding JPEGs with OpenCV.
int bench_loader_main(const std::string& shards, const std::string& jpeg_dir, int images, int workers);

// `ablate data pack|crop|dedup` and `ablate sync` (journals -> database, e.g. after Slurm tasks).
int data_pack_main(const std::string& src, const std::string& out, int size, const std::string& dataset);
int data_crop_main(const std::string& src, const std::string& out, int min_side, int max_side, int per_image,
                   uint64_t seed);
int data_dedup_main(const std::string& src, int threshold, const std::string& out_json);
int sync_main(Store& store);
// `ablate compare --rerun-borderline N`: runs the extra seeds of borderline cells (each repeating
// its cell's stored config, harness/reseed.h) into options.db with the local runner.
Rerunner local_rerunner(const RunnerOptions& options);
// A recorded run's method with the weights of its last checkpoint, in eval mode on the CPU. Throws
// ConfigError for an unknown run, DataError when it has no checkpoint yet.
struct TrainedRun {
  RunConfig config;
  std::shared_ptr<PretrainMethod> method;
  int64_t step = 0;  // optimizer steps the checkpoint holds
};
TrainedRun load_trained_run(const std::string& db, const std::string& run_id);
// `ablate export RUN --format timm|pth -o OUT` (app/export_model.cpp): the run's encoder as a timm
// folder (model.safetensors + config.json) or MAE's {'model': state_dict} .pth.
int export_model_main(const std::string& db, const std::string& run_id, const std::string& format,
                      const std::string& out);
// `ablate figure RUN_ID`: PNG grid original | masked | reconstruction | selected patches.
int figure_main(const std::string& db, const std::string& run_id, const std::string& out_png, int count);

}  // namespace ablate
