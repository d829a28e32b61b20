// `ablate worker --run-dir DIR`: executes one planned run in this process. The runner (or a Slurm
// task) starts it; it reads DIR/config.json, pre-trains (resuming from DIR/ckpt when present) and
// reports everything - environment, metrics, artifacts and the final status - through
// DIR/journal.jsonl, the only channel back to the results database.
//
// `ablate worker --eval DIR`: executes one evaluation task (harness/eval_task.h) of a finished run.
// It reads DIR/eval.json (written by the runner: the task id, the weights source and the run's
// config narrowed to the task's eval section), loads the run's final checkpoint (the seeded
// initialisation for eval.random_init runs), evaluates, and journals the results and its end to
// DIR/journal.jsonl. Evaluations are separate processes so that one pre-training serves any number
// of them, several at once, added at any later time.
//
// Data protocol: the pre-training images are the train split (data.train_fraction, split seed 0)
// of data.dataset, so evaluation on the same dataset never sees its validation images during
// pre-training; evaluations use eval.dataset's split with the same fixed seed, so every run of a
// sweep is evaluated on identical images. Split hashes are journaled with the run / evaluation.
//
// Data-parallel runs (resources.gpus = k > 1): k worker processes share the run folder, started
// with the rank environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) by `ablate
// run`, srun or torchrun. Each rank trains on cuda:LOCAL_RANK (or the CPU, with Gloo) on train.batch
// / k images per step. Rank 0 alone writes the journal - metrics, finish line - and checkpoints;
// the other ranks leave when pre-training ends and report
// failures only on stderr, exiting non-zero. A rank that dies or hangs makes rank 0's next
// collective fail within ABLATE_DIST_TIMEOUT_S, and rank 0 finishes the run as failed.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/data_source.h"
#include "app/version.h"
#include "harness/check.h"
#include "harness/config_io.h"
#include "harness/env_info.h"
#include "harness/eval_task.h"
#include "harness/hash.h"
#include "harness/journal.h"
#include "methods/checkpoint.h"
#include "methods/distributed.h"
#include "methods/features.h"
#include "methods/finetune.h"
#include "methods/knn.h"
#include "methods/linear_probe.h"
#include "methods/method.h"
#include "methods/pretrained.h"
#include "methods/stop_signal.h"
#include "methods/trainer.h"
#include "methods/vit.h"
#include "pch/torch_pch.h"

namespace ablate {
namespace {

constexpr uint64_t kEvalSplitSeed = 0;

nlohmann::json read_json_file(const std::filesystem::path& file, const char* what) {
  std::ifstream in(file);
  if (!in) throw DataError(fmt::format("{}: cannot read {}", file.string(), what));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("{}: {}", file.string(), e.what()));
  }
}

// The run's config, checked as at load (types, ranges and the cross-field rules of validate()), so
// the methods can take it as valid: a config.json edited or written by another version fails here,
// naming the file, not somewhere inside training.
RunConfig read_run_config(const std::filesystem::path& run_dir) {
  const auto file = run_dir / "config.json";
  try {
    const RunConfig cfg = config_from_json(read_json_file(file, "the run's config"));
    validate(cfg);
    return cfg;
  } catch (const ConfigError& e) {
    throw ConfigError(file.string(), e.key, e.problem, e.hint);
  }
}

// Hash of the encoder weights: the key of the per-run feature cache.
std::string weights_hash(VisionTransformer& enc) {
  Sha256 h;
  for (const auto& p : enc->parameters()) {
    const auto c = p.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    h.update(std::string_view(static_cast<const char*>(c.data_ptr()), c.numel() * sizeof(float)));
  }
  return h.final_hex();
}

// Runs the evaluations cfg.eval names (an eval task's config names one) on `encoder`; features are
// cached in cache_dir.
void evaluate(const RunConfig& cfg, VisionTransformer& encoder, const std::filesystem::path& cache_dir,
              JournalWriter& journal, torch::Device device) {
  if (cfg.eval.protocols.empty()) return;
  const EvalImages ev = load_eval_images(cfg, kEvalSplitSeed);
  journal.env("eval_split_hash", ev.split_hash);
  for (const auto& [k, v] : ev.provenance.env("eval")) journal.env(k, v);
  journal.env("eval_train_images", std::to_string(ev.train_images.size(0)));
  journal.env("eval_val_images", std::to_string(ev.val_images.size(0)));

  encoder->eval();
  const EmbedFn embed = [&](const torch::Tensor& x) { return encoder->forward_features(x, cfg.eval.knn_gsd); };
  const std::string wh = weights_hash(encoder);
  const ScaleProtocol scaling = scale_protocol(cfg.eval);
  const std::string scaling_key = scaling.text() + (cfg.eval.knn_gsd ? ";gsd" : "");
  auto features = [&](const char* split, const torch::Tensor& images, double scale) {
    const FeatureCacheKey key{wh, ev.split_hash + split, scale, cfg.model.img_size, scaling_key};
    return cached_features(cache_dir, split, key, [&] {
      return extract_features(embed, images, scale, cfg.model.img_size, device, 256, scaling);
    });
  };
  for (Protocol protocol : cfg.eval.protocols) {
    if (protocol == Protocol::knn) {
      for (double scale : cfg.eval.scales) {
        const auto tr = features("train", ev.train_images, scale);
        const auto va = features("val", ev.val_images, scale);
        const auto acc = knn_accuracy(tr, ev.train_labels, va, ev.val_labels, ev.num_classes, cfg.eval.knn_k,
                                      cfg.eval.knn_t);
        journal.eval(name_of(protocol), cfg.eval.dataset, scale, "top1", acc.top1);
        journal.eval(name_of(protocol), cfg.eval.dataset, scale, "top5", acc.top5);
      }
    } else if (protocol == Protocol::linprobe) {
      const auto tr = features("train", ev.train_images, 1.0);
      const auto va = features("val", ev.val_images, 1.0);
      const auto acc = linear_probe(tr, ev.train_labels, va, ev.val_labels, ev.num_classes, cfg.eval,
                                    device, static_cast<uint64_t>(cfg.seed));
      journal.eval(name_of(protocol), cfg.eval.dataset, 1.0, "top1", acc.val.top1);
      journal.eval(name_of(protocol), cfg.eval.dataset, 1.0, "top5", acc.val.top5);
    }
  }
  // Fine-tuning changes the encoder, so it runs after the frozen-encoder protocols, whatever their
  // order in the config. Its split uses eval.ft_train_ratio when set (the papers' AID 20/50%,
  // RESISC 10/20% protocols), else the split above.
  if (std::find(cfg.eval.protocols.begin(), cfg.eval.protocols.end(), Protocol::finetune) != cfg.eval.protocols.end()) {
    const EvalImages ft = cfg.eval.ft_train_ratio > 0 ? load_eval_images(cfg, kEvalSplitSeed, cfg.eval.ft_train_ratio) : ev;
    FinetuneOptions fo;
    fo.input_size = cfg.model.img_size;
    const auto res = finetune(encoder.ptr(), embed, encoder->options().dim, ft.num_classes,
                              LabelledImages{ft.train_images, ft.train_labels},
                              LabelledImages{ft.val_images, ft.val_labels}, cfg.eval, fo, device,
                              static_cast<uint64_t>(cfg.seed));
    journal.env("finetune_train_images", std::to_string(ft.train_images.size(0)));
    journal.eval(name_of(Protocol::finetune), cfg.eval.dataset, 1.0, "top1", res.val.top1);
    journal.eval(name_of(Protocol::finetune), cfg.eval.dataset, 1.0, "top5", res.val.top5);
  }
}

// This rank's device: cuda:LOCAL_RANK among the GPUs CUDA_VISIBLE_DEVICES leaves visible (the
// runner shows each rank all of its run's GPUs), cuda:0 when a launcher gives each task one GPU of
// its own (srun --gpus-per-task=1), else the CPU.
torch::Device rank_device(const DistEnv& env) {
  if (!torch::cuda::is_available()) return torch::kCPU;
  const int visible = static_cast<int>(torch::cuda::device_count());
  if (env.local_rank < visible) return {torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank)};
  if (visible == 1) return {torch::kCUDA, 0};
  throw ConfigError("environment", "LOCAL_RANK",
                    fmt::format("local rank {} but {} GPUs are visible: ranks would share a GPU", env.local_rank, visible),
                    "give each rank its own GPU (CUDA_VISIBLE_DEVICES, srun --gpus-per-task=1)");
}

// An error's message; LibTorch's without its C++ backtrace.
std::string error_text(const std::exception& e) {
  if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) return ce->what_without_backtrace();
  return e.what();
}

// The exit reason of a failed run: the error's first line, an out-of-memory error named as such
// (reports and `ablate status` show "out of memory" runs apart from crashes).
std::string first_line(const std::exception& e) {
  std::string msg = error_text(e);
  msg = msg.substr(0, msg.find('\n'));
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e)) msg = "out of memory (at run time): " + msg;
  return msg;
}

}  // namespace

int worker_main(const std::filesystem::path& run_dir) {
  install_stop_handlers();
  DistEnv env;
  try {
    env = DistEnv::from_environment();
  } catch (const std::exception& e) {  // which rank this is is unknown: no journal line
    fmt::print(stderr, "ablate worker: {}\n", e.what());
    return 1;
  }
  const std::string who = env.enabled() ? fmt::format(" (rank {} of {}, pid {})", env.rank, env.world_size, ::getpid()) : "";
  if (env.enabled()) fmt::print(stderr, "ablate worker{}: starting\n", who);
  // Only rank 0 reports through the journal: one open line, one finish line, one set of metrics.
  std::optional<JournalWriter> journal;
  if (env.rank == 0) journal.emplace(run_dir);
  int64_t steps = 0;
  try {
    const RunConfig cfg = read_run_config(run_dir);
    if (env.world_size != cfg.resources.gpus)
      throw ConfigError("", "resources.gpus",
                        fmt::format("the run asks for {} data-parallel rank(s) but was started as {}", cfg.resources.gpus,
                                    env.world_size),
                        "start it with `ablate run` (which launches resources.gpus ranks), or with that many "
                        "torchrun/srun tasks");
    // The same initial weights on every rank (rank 0's are broadcast anyway); per-rank draws during
    // training come from rank_step_seed (see trainer.h).
    torch::manual_seed(static_cast<uint64_t>(cfg.seed));
    const torch::Device device = rank_device(env);
    if (journal) {
      for (const auto& [k, v] : collect_env_info(build_source_dir())) journal->env(k, v);
      for (const auto& [k, v] : library_versions()) journal->env(k, v);
      journal->env("device", device.str());
      journal->env("threads", std::to_string(at::get_num_threads()));
      journal->env("world_size", std::to_string(env.world_size));
    }

    // An eval.random_init run has nothing to pre-train: its evaluations use the seeded weights.
    if (!cfg.eval.random_init) {
      auto method = make_method(cfg);
      ShardBatchSource data(cfg, "", device, static_cast<uint64_t>(cfg.seed), env.rank, env.world_size);
      if (journal) {
        journal->env("pretrain_split_hash", data.split_hash());
        journal->env("pretrain_images", std::to_string(data.num_images()));
        for (const auto& [k, v] : data.provenance().env("pretrain")) journal->env(k, v);
      }
      // Joined after the data are ready (packing them may take a while), so the rendezvous timeout
      // covers only the ranks' start-up skew.
      std::optional<DataParallel> dp;
      if (env.enabled()) dp.emplace(env, device, env.timeout);
      const TrainOutcome out =
          pretrain(cfg, *method, data, journal ? &*journal : nullptr, run_dir, device, 0, dp ? &*dp : nullptr);
      dp.reset();
      steps = out.steps;
      if (out.status == "stopped") {  // preempted: no finish line, the requeued task resumes
        if (journal) {
          journal->env("stopped_at_step", std::to_string(out.steps));
          journal->flush();
        }
        return kRequeueExitCode;
      }
      if (!journal) return 0;  // rank > 0: pre-training was its part
      if (out.status == "diverged") {
        journal->finish("diverged", out.reason, out.diverged_step);
        return 0;
      }
    }
    if (journal) journal->finish("done", "", steps);
    return 0;
  } catch (const std::exception& e) {
    if (journal) journal->finish("failed", first_line(e), steps);
    fmt::print(stderr, "ablate worker{}: {}\n", who, error_text(e));
    return 1;
  }
}

namespace {

// The encoder of an external checkpoint row (harness/experiment.h ExternalWeights): the file read
// with the row's options, into the declared architecture when the experiment file gives `model`
// (a file that does not fit fails listing the keys), else the one its shapes imply; cfg.model.img_size
// becomes the file's input size, at which features are extracted. The file must still be the one
// planned: its sha256 is the evaluation's identity.
VisionTransformer load_external_weights(const EvalJob& task, RunConfig& cfg, JournalWriter& journal) {
  const nlohmann::json& o = task.weights_options;
  PretrainedOptions po;
  po.heads = o.value("heads", 0);
  po.norm_eps = o.value("norm_eps", 1e-6);
  if (o.value("model_declared", false)) {
    VitOptions declared = VitOptions::from(cfg.model);
    if (po.heads > 0) declared.heads = po.heads;
    declared.norm_eps = po.norm_eps;
    po.architecture = declared;
  }
  PretrainedEncoder pe = load_pretrained_encoder(task.weights.path, po);
  if (pe.sha256 != task.weights.key)
    throw DataError(fmt::format("{}: the file changed since it was planned (sha256 {}, planned {})", task.weights.path,
                                pe.sha256, task.weights.key));
  const VitOptions& arch = pe.vit->options();
  cfg.model.img_size = static_cast<int>(arch.img_size);
  cfg.model.patch_size = static_cast<int>(arch.patch);
  journal.env("weights_file", task.weights.path);
  journal.env("weights_sha256", pe.sha256);
  journal.env("weights_layout", o.value("layout", ""));
  journal.env("weights_architecture", fmt::format("dim {}, depth {}, heads {}, branches {}, patch {}, img {}, mlp {}, qkv_bias {}, "
                                                  "norm_eps {}", arch.dim, arch.depth, arch.heads, arch.branches, arch.patch,
                                                  arch.img_size, arch.mlp_hidden, arch.qkv_bias, arch.norm_eps));
  journal.env("weights_ignored_entries", std::to_string(pe.ignored.size()));
  return pe.vit;
}

}  // namespace

int eval_worker_main(const std::filesystem::path& eval_dir) {
  install_stop_handlers();
  JournalWriter journal(eval_dir);
  try {
    const nlohmann::json job = read_json_file(eval_dir / "eval.json", "the evaluation's job");
    const EvalJob task = eval_job_from_json(job);
    const RunConfig& cfg = task.config;
    const torch::Device device = torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
    for (const auto& [k, v] : collect_env_info(build_source_dir())) journal.env(k, v);
    for (const auto& [k, v] : library_versions()) journal.env(k, v);
    journal.env("device", device.str());
    journal.env("weights", task.weights.label());

    RunConfig eval_cfg = task.config;  // an external file sets its own input size
    VisionTransformer encoder{nullptr};
    if (task.weights.kind == "file") {
      encoder = load_external_weights(task, eval_cfg, journal);
      encoder->to(device);
    } else {
      torch::manual_seed(static_cast<uint64_t>(cfg.seed));  // the run's initialisation, as pre-training had it
      auto method = make_method(cfg);
      method->to(device);
      if (!cfg.eval.random_init) {
        const auto ckpt = std::filesystem::path(task.weights.path) / "ckpt" / "last.pt";
        journal.env("weights_step", std::to_string(load_checkpoint_weights(ckpt, *method)));
      }
      encoder = method->encoder();  // shares the module
    }
    evaluate(eval_cfg, encoder, eval_dir, journal, device);
    journal.finish("done", "", 0);
    return 0;
  } catch (const std::exception& e) {
    journal.finish("failed", first_line(e), 0);
    fmt::print(stderr, "ablate worker --eval: {}\n", error_text(e));
    return 1;
  }
}

}  // namespace ablate
