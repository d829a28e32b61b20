// Atomic, complete training checkpoints (see checkpoint.h).
#include "methods/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <ATen/Context.h>
#include <fmt/format.h>

#include "harness/check.h"
#include "methods/infobatch.h"
#include "methods/pch/torch_pch.h"

namespace ablate {
namespace {

torch::Tensor i64(int64_t v) { return torch::tensor({v}, torch::kInt64); }

int64_t read_scalar(torch::serialize::InputArchive& ar, const char* key) {
  torch::Tensor t;
  ar.read(key, t);
  return t.cpu().item<int64_t>();
}

void fsync_path(const std::filesystem::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

std::vector<torch::Device> rng_devices() {
  std::vector<torch::Device> d{torch::kCPU};
  if (torch::cuda::is_available()) d.emplace_back(torch::kCUDA, 0);
  return d;
}

}  // namespace

void save_checkpoint(const std::filesystem::path& file, const TrainProgress& progress,
                     torch::nn::Module& model, const FusedAdamW& optimizer, const InfoBatch* infobatch) {
  torch::serialize::OutputArchive ar;
  ar.write("magic", i64(kCheckpointMagic));
  ar.write("version", i64(kCheckpointVersion));
  ar.write("step", i64(progress.step));
  ar.write("epoch", i64(progress.epoch));
  ar.write("position", i64(progress.position));
  ar.write("grad_norm_history",
           torch::tensor(progress.grad_norm_history.empty() ? std::vector<double>{}
                                                            : progress.grad_norm_history,
                         torch::kFloat64));
  torch::serialize::OutputArchive model_ar;
  model.save(model_ar);
  ar.write("model", model_ar);
  const auto opt = optimizer.state();
  ar.write("optim/count", i64(static_cast<int64_t>(opt.size())));
  for (size_t i = 0; i < opt.size(); ++i) ar.write(fmt::format("optim/{}", i), opt[i]);
  for (const auto& dev : rng_devices())
    ar.write(fmt::format("rng/{}", dev.str()), at::globalContext().defaultGenerator(dev).get_state());
  if (infobatch)
    for (const auto& [key, t] : infobatch->state()) ar.write("infobatch/" + key, t);

  std::filesystem::create_directories(file.parent_path());
  const auto tmp = file.string() + ".tmp";
  ar.save_to(tmp);
  fsync_path(tmp);
  std::filesystem::rename(tmp, file);
  fsync_path(file.parent_path());
}

namespace {

// Opens `file` onto the device of `model`'s parameters and checks its magic and version; DataError
// naming the file otherwise.
torch::serialize::InputArchive open_checkpoint(const std::filesystem::path& file, torch::nn::Module& model) {
  torch::serialize::InputArchive ar;
  try {
    // Map every tensor onto the model's device: Module::load would otherwise re-seat parameters on
    // the CPU.
    const auto params = model.parameters();
    ar.load_from(file.string(), params.empty() ? torch::Device(torch::kCPU) : params.front().device());
  } catch (const c10::Error& e) {
    throw DataError(fmt::format("{}: unreadable checkpoint: {}", file.string(), e.what_without_backtrace()));
  }
  if (read_scalar(ar, "magic") != kCheckpointMagic)
    throw DataError(fmt::format("{}: not an ablate checkpoint (bad magic)", file.string()));
  // Version 2 only added the optional InfoBatch tensors, so version 1 files read unchanged.
  if (const auto v = read_scalar(ar, "version"); v < 1 || v > kCheckpointVersion)
    throw DataError(fmt::format("{}: checkpoint version {} (this build reads 1 to {})", file.string(), v,
                                kCheckpointVersion));
  return ar;
}

}  // namespace

int64_t load_checkpoint_weights(const std::filesystem::path& file, torch::nn::Module& model) {
  if (!std::filesystem::exists(file)) throw DataError(fmt::format("{}: no checkpoint to evaluate", file.string()));
  torch::serialize::InputArchive ar = open_checkpoint(file, model);
  torch::serialize::InputArchive model_ar;
  ar.read("model", model_ar);
  model.load(model_ar);
  return read_scalar(ar, "step");
}

bool load_checkpoint(const std::filesystem::path& file, TrainProgress& progress,
                     torch::nn::Module& model, FusedAdamW& optimizer, InfoBatch* infobatch) {
  if (!std::filesystem::exists(file)) return false;
  torch::serialize::InputArchive ar = open_checkpoint(file, model);
  auto read_i64 = [&](const char* key) { return read_scalar(ar, key); };
  progress.step = read_i64("step");
  progress.epoch = read_i64("epoch");
  progress.position = read_i64("position");
  torch::Tensor hist;
  ar.read("grad_norm_history", hist);
  hist = hist.cpu().contiguous();
  progress.grad_norm_history.assign(hist.data_ptr<double>(), hist.data_ptr<double>() + hist.numel());

  torch::serialize::InputArchive model_ar;
  ar.read("model", model_ar);
  model.load(model_ar);
  const auto n = read_i64("optim/count");
  std::vector<torch::Tensor> opt(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ar.read(fmt::format("optim/{}", i), opt[static_cast<size_t>(i)]);
  optimizer.load_state(opt);
  for (const auto& dev : rng_devices()) {
    torch::Tensor state;
    ar.read(fmt::format("rng/{}", dev.str()), state);
    // defaultGenerator hands out a const reference to the process generator; set_state mutates it.
    auto gen = at::globalContext().defaultGenerator(dev);
    gen.set_state(state.cpu());
  }
  if (infobatch) {
    std::vector<std::pair<std::string, torch::Tensor>> named;
    for (const auto& key : InfoBatch::state_keys()) {
      torch::Tensor t;
      if (!ar.try_read("infobatch/" + key, t))
        throw DataError(fmt::format("{}: no InfoBatch state (written by a run without method.infobatch)",
                                    file.string()));
      named.emplace_back(key, t);
    }
    try {
      infobatch->load_state(named);
    } catch (const DataError& e) {
      throw DataError(fmt::format("{}: {}", file.string(), e.what()));
    }
  }
  return true;
}

}  // namespace ablate
