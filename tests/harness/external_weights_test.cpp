// External checkpoint rows (`weights:` in an experiment file, harness/experiment.h ExternalWeights):
// the file's sha256 (checked against the FIPS 180-2 test vector of "abc") is the weights key of
// its evaluation tasks, so the same bytes under another path plan the same evaluations while other
// bytes, other read options or a declared model plan new ones; rows and runs get their `weights`
// axis; malformed entries are ConfigErrors at the entry.
#include <filesystem>
#include <fstream>

#include "harness/check.h"
#include "harness/eval_task.h"
#include "harness/experiment.h"
#include "tests/support/catch.h"
#include "tests/support/temp_dir.h"

using namespace ablate;
using ablate::test::TempDir;

namespace {

// FIPS 180-2, appendix B.1: SHA-256("abc").
const char* kAbcSha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

void write(const std::filesystem::path& file, const std::string& bytes) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << bytes;
}

// An experiment in `dir` with one evaluation (KNN on EuroSAT) and `weights` as its weights section.
Experiment load(const TempDir& dir, const std::string& weights) {
  const std::string text = R"(
name: vs_release
description: "our run beside a released checkpoint"
base:
  eval: {max_train: 100, max_val: 50}
evals:
  - {protocol: knn, dataset: eurosat}
)" + (weights.empty() ? std::string() : "weights:\n" + weights);
  return parse_experiment(text, (dir / "exp.yaml").string(), "", {});
}

EvalTask only_task(const ExternalWeights& w) {
  const std::vector<EvalTask> tasks = eval_tasks_of(w);
  REQUIRE(tasks.size() == 1);
  return tasks.front();
}

}  // namespace

TEST_CASE("an external checkpoint row is evaluated under its file's sha256", "[external_weights]") {
  TempDir dir("external-weights");
  write(dir / "ckpt" / "release.pth", "abc");
  const Experiment ex = load(dir, "  - {name: release, file: ckpt/release.pth, layout: selectivemae}\n");
  REQUIRE(ex.weights.size() == 1);
  const ExternalWeights& w = ex.weights.front();
  CHECK(w.sha256 == kAbcSha256);
  CHECK(w.path == (dir / "ckpt" / "release.pth").string());  // relative to the experiment file
  CHECK(w.layout == "selectivemae");
  CHECK_FALSE(w.model_declared);
  CHECK(w.axes == nlohmann::json{{"weights", "release"}});
  REQUIRE(ex.runs.size() == 1);
  CHECK(ex.runs.front().axes.at("weights") == "ours");

  const EvalTask t = only_task(w);
  CHECK(t.weights.label() == std::string("file:") + kAbcSha256);
  CHECK(t.weights.path == w.path);
  CHECK(t.protocol == Protocol::knn);
  CHECK(t.dataset == "eurosat");
  CHECK(t.settings.at("weights_heads") == 0);
  CHECK(t.settings.at("weights_norm_eps") == 1e-6);
  CHECK(t.settings.at("max_train") == 100);
  // The run's evaluation of the same protocol is another record.
  CHECK(eval_tasks_of(ex.runs.front()).front().id != t.id);
}

TEST_CASE("the same bytes elsewhere are the same evaluation; other bytes or read options are new", "[external_weights]") {
  TempDir dir("external-weights-id");
  write(dir / "a.pth", "abc");
  write(dir / "copy" / "b.pth", "abc");
  write(dir / "c.pth", "abd");
  const std::string id = only_task(load(dir, "  - {name: r, file: a.pth}\n").weights.front()).id;
  CHECK(only_task(load(dir, "  - {name: other_name, file: copy/b.pth}\n").weights.front()).id == id);
  CHECK(only_task(load(dir, "  - {name: r, file: c.pth}\n").weights.front()).id != id);
  CHECK(only_task(load(dir, "  - {name: r, file: a.pth, norm_eps: 1.0e-5}\n").weights.front()).id != id);
  CHECK(only_task(load(dir, "  - {name: r, file: a.pth, heads: 4}\n").weights.front()).id != id);
  const Experiment declared = load(dir, "  - {name: r, file: a.pth, model: {size: vit_b, img_size: 224, patch_size: 16}}\n");
  const ExternalWeights& w = declared.weights.front();
  CHECK(w.model_declared);
  CHECK(w.config.model.size == "vit_b");
  CHECK(w.config.model.img_size == 224);
  const EvalTask t = only_task(w);
  CHECK(t.id != id);
  CHECK(t.settings.at("weights_model") ==
        nlohmann::json{{"size", "vit_b"}, {"img_size", 224}, {"patch_size", 16}, {"qkv_bias", true}});
  // A file row does not change the runs' ids.
  CHECK(declared.runs.front().id == load(dir, "").runs.front().id);
}

TEST_CASE("experiments without weights rows keep their axes", "[external_weights]") {
  TempDir dir("external-weights-none");
  const Experiment ex = load(dir, "");
  CHECK(ex.weights.empty());
  CHECK_FALSE(ex.runs.front().axes.contains("weights"));
}

TEST_CASE("malformed weights entries are errors at the entry", "[external_weights]") {
  TempDir dir("external-weights-errors");
  write(dir / "a.pth", "abc");
  auto error_of = [&](const std::string& weights) -> ConfigError {
    try {
      load(dir, weights);
    } catch (const ConfigError& e) {
      return e;
    }
    FAIL("no ConfigError for " << weights);
    return ConfigError("", "", "");
  };
  const ConfigError missing = error_of("  - {name: r, file: nowhere.pth}\n");
  CHECK(missing.key == "weights[0].file");
  CHECK(missing.where.find("exp.yaml:9:") != std::string::npos);
  CHECK(missing.problem.find("nowhere.pth") != std::string::npos);
  CHECK(error_of("  - {name: r, file: a.pth, layout: beit}\n").key == "weights[0].layout");
  CHECK(error_of("  - {name: ours, file: a.pth}\n").key == "weights[0].name");
  CHECK(error_of("  - {name: r, file: a.pth}\n  - {name: r, file: a.pth}\n").key == "weights[1].name");
  CHECK(error_of("  - {file: a.pth}\n").key == "weights[0].name");
  CHECK(error_of("  - {name: r, file: a.pth, model: {depth: 3}}\n").key == "model.depth");
  CHECK(error_of("  - {name: r, file: a.pth, heads: -1}\n").key == "weights[0]");
  CHECK(error_of("  - {name: r, file: a.pth, sha: x}\n").key == "weights[0].sha");
}
