// Matrix expansion checked cell by cell against hand-enumerated expectations (product, zip,
// include, exclude, when, seeds, derived, scales, overrides, duplicates), and error locations for
// malformed files written to a temporary directory.
#include "harness/experiment.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "harness/config_io.h"
#include "tests/support/catch.h"
#include "tests/support/errors.h"

using namespace ablate;
namespace fs = std::filesystem;

namespace {

// A valid file; tests append a matrix / derived / scales section.
const std::string kHead =
    "name: psts_order\n"
    "description: \"PSTS stage order\"\n"
    "paper: \"Wang et al. 2024 (SelectiveMAE), Table 6\"\n"
    "base:\n"
    "  model: {size: vit_micro, img_size: 32, patch_size: 8, decoder: cross, dec_depth: 1, dec_dim: 32, dec_heads: 4}\n"
    "  method: {name: selectivemae, recon_ratio: 0.25, psts: true}\n"
    "  train: {epochs: 10, batch: 64, blr: 1.5e-4}\n";

const std::string kProduct =
    "matrix:\n"
    "  product: {method.psts_order: [[near, far, random], [far, near, random]], method.mask_ratio: [0.75, 0.85]}\n";

Experiment parse(const std::string& text, const std::string& scale = "", const std::vector<std::string>& overrides = {}) {
  return parse_experiment(text, "exp.yaml", scale, overrides);
}

ConfigError parse_error(const std::string& text) {
  return error_of([&] { parse(text); });
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Equal up to floating-point rounding (Approx is unusable with the shared Catch2 v2 header).
bool nearly_equal(double a, double b) { return std::fabs(a - b) <= 1e-12 * std::fabs(b); }

using Order = std::vector<PstsStage>;
// An order as the axes record it: its words.
nlohmann::json words(const Order& order) {
  nlohmann::json j = nlohmann::json::array();
  for (PstsStage s : order) j.push_back(name_of(s));
  return j;
}
const Order kNFR{PstsStage::near, PstsStage::far, PstsStage::random}, kFNR{PstsStage::far, PstsStage::near, PstsStage::random};

// A scratch directory for files, removed at the end of the test.
struct TempDir {
  fs::path path = fs::temp_directory_path() / ("ablate_experiment_test_" + std::to_string(getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};

}  // namespace

TEST_CASE("product: every combination, first axis slowest", "[experiment]") {
  Experiment ex = parse(kHead + kProduct);
  CHECK(ex.name == "psts_order");
  CHECK(ex.paper == "Wang et al. 2024 (SelectiveMAE), Table 6");
  CHECK(ex.axis_keys == std::vector<std::string>{"method.psts_order", "method.mask_ratio"});
  REQUIRE(ex.runs.size() == 4);
  const std::pair<Order, double> expected[] = {{kNFR, 0.75}, {kNFR, 0.85}, {kFNR, 0.75}, {kFNR, 0.85}};
  for (size_t i = 0; i < 4; ++i) {
    INFO(i);
    CHECK(ex.runs[i].config.method.psts_order == expected[i].first);
    CHECK(ex.runs[i].config.method.mask_ratio == expected[i].second);
    CHECK(ex.runs[i].config.model.size == "vit_micro");  // from base
    CHECK(ex.runs[i].axes.at("method.mask_ratio") == expected[i].second);
    CHECK(ex.runs[i].axes.at("method.psts_order") == words(expected[i].first));
    CHECK(ex.runs[i].id == config_hash(ex.runs[i].config));
    CHECK(ex.runs[i].seed == 0);
  }
  CHECK(ex.notes.empty());
}

TEST_CASE("exclude: predicates and mappings drop cells", "[experiment]") {
  Experiment ex = parse(kHead + kProduct + "  exclude: [\"method.mask_ratio == 0.85 and method.psts_order[0] == 'far'\"]\n");
  REQUIRE(ex.runs.size() == 3);
  CHECK(ex.runs[2].config.method.psts_order == kFNR);
  CHECK(ex.runs[2].config.method.mask_ratio == 0.75);

  ex = parse(kHead + kProduct + "  exclude: [{method.mask_ratio: 0.85}, {method: {psts_order: [far, near, random], mask_ratio: 0.75}}]\n");
  REQUIRE(ex.runs.size() == 1);
  CHECK(ex.runs[0].config.method.psts_order == kNFR);
  CHECK(ex.runs[0].config.method.mask_ratio == 0.75);
}

TEST_CASE("zip: axes of a group move together", "[experiment]") {
  Experiment ex = parse(kHead +
                        "matrix:\n"
                        "  product: {method.mask_ratio: [0.75, 0.85]}\n"
                        "  zip: [{model.size: [vit_micro, vit_tiny], train.batch: [256, 128]}]\n");
  CHECK(ex.axis_keys == std::vector<std::string>{"method.mask_ratio", "model.size", "train.batch"});
  REQUIRE(ex.runs.size() == 4);
  const std::tuple<double, std::string, int> expected[] = {
      {0.75, "vit_micro", 256}, {0.75, "vit_tiny", 128}, {0.85, "vit_micro", 256}, {0.85, "vit_tiny", 128}};
  for (size_t i = 0; i < 4; ++i) {
    INFO(i);
    CHECK(ex.runs[i].config.method.mask_ratio == std::get<0>(expected[i]));
    CHECK(ex.runs[i].config.model.size == std::get<1>(expected[i]));
    CHECK(ex.runs[i].config.train.batch == std::get<2>(expected[i]));
  }
  ConfigError e = parse_error(kHead + "matrix:\n  zip: [{model.size: [vit_micro, vit_tiny], train.batch: [256, 128, 64]}]\n");
  CHECK(e.key == "train.batch");
  CHECK(e.where == "exp.yaml:9:58");  // the list of train.batch
  CHECK(contains(e.problem, "equal lengths"));
}

TEST_CASE("include adds cells; their keys become axes", "[experiment]") {
  Experiment ex = parse(kHead + kProduct +
                        "  include: [{method.name: mae, model.decoder: mae, method.psts: false, method.recon_ratio: 0}]\n");
  REQUIRE(ex.runs.size() == 5);
  CHECK(ex.axis_keys.size() == 6);
  CHECK(ex.axis_keys[2] == "method.name");
  const PlannedRun& extra = ex.runs[4];
  CHECK(extra.config.method.name == MethodKind::mae);
  CHECK(extra.config.model.decoder == DecoderKind::mae);
  CHECK(extra.config.method.mask_ratio == 0.75);  // not set by the include: base / default
  CHECK(extra.axes.at("method.name") == "mae");
  CHECK(ex.runs[0].axes.at("method.name") == "selectivemae");  // product cells report their value too
  // include cells survive an exclude that matches everything generated
  ex = parse(kHead + kProduct + "  exclude: [\"true\"]\n  include: [{method.mask_ratio: 0.8}]\n");
  REQUIRE(ex.runs.size() == 1);
  CHECK(ex.runs[0].config.method.mask_ratio == 0.8);
}

TEST_CASE("when: conditional settings in order", "[experiment]") {
  const std::string head =
      "name: decoders\n"
      "description: d\n"
      "base: {model: {size: vit_micro, img_size: 32, patch_size: 8}, method: {recon_ratio: 0.25}}\n"
      "matrix:\n"
      "  product:\n"
      "    method.name: [mae, crossmae, selectivemae]\n";
  Experiment ex = parse(head +
                        "  when:\n"
                        "    - {if: \"method.name in ['crossmae', 'selectivemae']\", set: {model.decoder: cross}}\n"
                        "    - {if: \"model.decoder == 'cross'\", set: {model.dec_self_attn: true}}\n");
  REQUIRE(ex.runs.size() == 3);
  CHECK(ex.runs[0].config.model.decoder == DecoderKind::mae);
  CHECK_FALSE(ex.runs[0].config.model.dec_self_attn);
  CHECK(ex.runs[1].config.model.decoder == DecoderKind::cross);
  CHECK(ex.runs[1].config.model.dec_self_attn);  // the second rule sees the first one's setting
  CHECK(ex.runs[2].config.model.decoder == DecoderKind::cross);
  // Without the rule, crossmae is invalid; the error points at the axis value that made it so.
  ConfigError e = parse_error(head);
  CHECK(e.where == "exp.yaml:6:24");
  CHECK(e.key == "method.name");
  CHECK(contains(e.problem, "in the cell method.name=\"crossmae\""));
}

TEST_CASE("seeds and repeats multiply the cells", "[experiment]") {
  Experiment ex = parse(kHead + kProduct + "  seeds: [0, 1, 2]\n");
  REQUIRE(ex.runs.size() == 12);
  for (size_t i = 0; i < 12; ++i) {
    CHECK(ex.runs[i].seed == int(i % 3));
    CHECK(ex.runs[i].config.seed == int(i % 3));
    CHECK(ex.runs[i].config.method.mask_ratio == (i / 3 % 2 == 0 ? 0.75 : 0.85));
  }
  CHECK(ex.runs[0].id != ex.runs[1].id);  // the seed is part of the run id
  CHECK_FALSE(ex.runs[0].axes.contains("seed"));
  ex = parse(kHead + kProduct + "  repeats: 2\n");
  REQUIRE(ex.runs.size() == 8);
  CHECK(ex.runs[7].seed == 1);
  CHECK(parse_error(kHead + kProduct + "  repeats: 0\n").key == "matrix.repeats");
  CHECK(parse_error(kHead + kProduct + "  seeds: [0]\n  repeats: 2\n").key == "matrix.repeats");
  CHECK(parse_error(kHead + kProduct + "  seeds: [0, -4]\n").where == "exp.yaml:10:14");
}

TEST_CASE("derived keys are computed per run", "[experiment]") {
  Experiment ex = parse(kHead +
                        "matrix:\n"
                        "  zip: [{train.batch: [256, 128]}]\n"
                        "derived:\n"
                        "  train.lr: \"{train.blr} * {train.batch} / 256\"\n"
                        "  data.max_images: int({train.batch} * 2.5)\n"
                        "  data.shards: \"'cache/{data.dataset}-{train.batch}'\"\n"
                        "  train.warmup_epochs: train.lr * 0\n");  // sees the earlier derived key
  REQUIRE(ex.runs.size() == 2);
  CHECK(nearly_equal(ex.runs[0].config.train.lr, 1.5e-4));
  CHECK(nearly_equal(ex.runs[1].config.train.lr, 0.75e-4));
  CHECK(ex.runs[0].config.data.max_images == 640);
  CHECK(ex.runs[1].config.data.max_images == 320);
  CHECK(ex.runs[1].config.data.shards == "cache/eurosat-128");
  CHECK(ex.runs[1].config.train.warmup_epochs == 0);

  ConfigError e = parse_error(kHead + "derived:\n  train.epochs: \"{train.blr} * 2\"\n");
  CHECK(e.key == "train.epochs");
  CHECK(e.where == "exp.yaml:9:17");
  CHECK(contains(e.hint, "int()"));
  e = parse_error(kHead + "derived:\n  train.lr: \"{train.blr} * {train.bach}\"\n");
  CHECK(e.where == "exp.yaml:9:28");  // the quote is at col 13, the '{' of the typo 15 further
  CHECK(contains(e.problem, "unknown identifier 'train.bach'"));
  CHECK(parse_error(kHead + "derived:\n  train.rate: \"1\"\n").key == "train.rate");
}

TEST_CASE("scales: profiles under the matrix", "[experiment]") {
  const std::string scales =
      "scales:\n"
      "  smoke: {train.epochs: 2, data.max_images: 512, method.mask_ratio: 0.5}\n"
      "  paper: {train: {epochs: 800}}\n"
      "default_scale: smoke\n";
  Experiment ex = parse(kHead + kProduct + scales);
  CHECK(ex.scale == "smoke");
  REQUIRE(ex.runs.size() == 4);
  CHECK(ex.runs[0].config.train.epochs == 2);
  CHECK(ex.runs[0].config.data.max_images == 512);
  CHECK(ex.runs[1].config.method.mask_ratio == 0.85);  // the axis wins over the profile
  REQUIRE(ex.notes.size() == 1);
  CHECK(contains(ex.notes[0], "method.mask_ratio"));

  ex = parse(kHead + kProduct + scales, "paper");
  CHECK(ex.scale == "paper");
  CHECK(ex.runs[0].config.train.epochs == 800);
  CHECK(ex.runs[0].config.data.max_images == 0);
  CHECK(ex.runs[0].id != parse(kHead + kProduct + scales).runs[0].id);

  ConfigError e = error_of([&] { parse(kHead + kProduct + scales, "papr"); });
  CHECK(e.key == "scales");
  CHECK(contains(e.hint, "did you mean 'paper'"));
  CHECK(parse(kHead + kProduct).scale.empty());
  CHECK(parse_error(kHead + kProduct + "scales: {smoke: {train.epochs: 1}}\ndefault_scale: tiny\n").key == "default_scale");
}

TEST_CASE("overrides have the last word", "[experiment]") {
  const std::string text = kHead + kProduct + "derived: {train.lr: \"{train.blr} * 2\"}\nscales: {smoke: {train.epochs: 2}}\n";
  Experiment ex = parse(text, "smoke", {"train.epochs=3", "train.lr=0.5"});
  REQUIRE(ex.runs.size() == 4);
  CHECK(ex.runs[0].config.train.epochs == 3);  // beats the scale profile
  CHECK(ex.runs[0].config.train.lr == 0.5);    // beats the derived value

  // Overriding an axis makes cells identical: they collapse, each with a note.
  ex = parse(text, "", {"method.mask_ratio=0.8"});
  REQUIRE(ex.runs.size() == 2);
  CHECK(ex.runs[0].config.method.mask_ratio == 0.8);
  CHECK(ex.runs[0].axes.at("method.mask_ratio") == 0.8);  // axes report the value the run uses
  CHECK(ex.notes.size() == 2);
  ConfigError e = error_of([&] { parse(text, "", {"train.epochs=many"}); });
  CHECK(e.where == "<command line>");
  CHECK(e.key == "train.epochs");
}

TEST_CASE("duplicate cells collapse with a note", "[experiment]") {
  Experiment ex = parse(kHead + "matrix:\n  product: {method.mask_ratio: [0.75, 0.8, 0.75]}\n");
  REQUIRE(ex.runs.size() == 2);
  REQUIRE(ex.notes.size() == 1);
  CHECK(contains(ex.notes[0], ex.runs[0].id));
}

TEST_CASE("an experiment without a matrix is its base config", "[experiment]") {
  Experiment ex = parse(kHead);
  REQUIRE(ex.runs.size() == 1);
  CHECK(ex.axis_keys.empty());
  CHECK(ex.runs[0].axes == nlohmann::json::object());
  CHECK(ex.runs[0].config.train.epochs == 10);
}

TEST_CASE("tables and claims pass through as JSON", "[experiment]") {
  Experiment ex = parse(kHead + "tables:\n  - {rows: method.psts_order, cols: [knn], digits: 2}\nclaims: [{text: 'PSTS helps', delta: 0.5}]\n");
  CHECK(ex.tables == nlohmann::json::parse(R"([{"rows":"method.psts_order","cols":["knn"],"digits":2}])"));
  CHECK(ex.claims[0].at("delta") == 0.5);
  CHECK(parse(kHead).tables.is_null());
}

TEST_CASE("report sections keep where each value was written", "[experiment]") {
  // kHead is 7 lines; the tables section starts on line 8.
  Experiment ex = parse(kHead + "tables:\n  - name: t\n    rows: [method.psts_order]\n"
                                "claims:\n  - {id: c, a: {method.psts: true}}\n");
  CHECK(ex.where("tables[0].rows[0]") == "exp.yaml:10:12");
  CHECK(ex.where("tables[0].rows") == "exp.yaml:10:5");
  CHECK(ex.where("tables[0].caption") == "exp.yaml:9:5");  // absent: its mapping
  CHECK(ex.where("claims[0].a.method.psts") == "exp.yaml:12:17");
  CHECK(ex.where("claims[0].a.method.name") == "exp.yaml:12:13");  // absent under a: at a
  CHECK(ex.where("compare.alpha") == "exp.yaml");                 // no compare section
}

TEST_CASE("errors in files carry file:line:col", "[experiment]") {
  TempDir dir;
  auto error_in = [&](const std::string& text) {
    std::string path = dir.write("bad.yaml", text);
    return error_of([&] { load_experiment(path, "", {}); });
  };
  const std::string file = (dir.path / "bad.yaml").string();

  // YAML syntax: a flow sequence never closed; yaml-cpp reports where it gave up.
  ConfigError e = error_in("name: x\ndescription: y\nbase:\n  model: [a, b\n");
  CHECK(contains(e.where, file + ":"));
  CHECK(contains(e.problem, "YAML error"));
  // A ']' closing a '{': yaml-cpp stops at the bracket (col 27).
  e = error_in("name: x\ndescription: y\nbase: {model: {size: vit_b]}}\n");
  CHECK(e.where == file + ":3:27");
  // Tab indentation is not YAML.
  e = error_in("name: x\ndescription: y\nbase:\n\tmodel: {}\n");
  CHECK(contains(e.where, file + ":"));

  e = error_in(kHead + "    mask_ratoi: 0.8\n");  // a line indented under a flow mapping
  CHECK(contains(e.where, file + ":"));

  e = error_in("name: x\ndescription: y\nbase:\n  model:\n    size: vit_micro\n    imgsize: 32\n");
  CHECK(e.where == file + ":6:5");
  CHECK(e.key == "model.imgsize");
  CHECK(contains(e.hint, "did you mean 'model.img_size'"));

  e = error_in(kHead + "matrix:\n  product:\n    method.mask_ratio:\n      - 0.75\n      - high\n");
  CHECK(e.where == file + ":12:9");
  CHECK(e.key == "method.mask_ratio");

  e = error_in(kHead + "matrx: {}\n");
  CHECK(e.where == file + ":8:1");
  CHECK(contains(e.hint, "did you mean 'matrix'"));

  e = error_in("description: y\n");
  CHECK(e.key == "name");
  e = error_in("name: PSTS-order\ndescription: y\n");
  CHECK(e.where == file + ":1:7");

  e = error_in(kHead + kProduct + "  exclude: [\"method.mask_ratio == == 0.85\"]\n");
  // the quote is at col 13 of line 10; '==' (second) at offset 21 of the expression
  CHECK(e.where == file + ":10:35");
  CHECK(e.key == "matrix.exclude");

  e = error_in(kHead + kProduct + "  when: [{if: \"method.nme == 'x'\", set: {seed: 1}}]\n");
  CHECK(e.where == file + ":10:16");
  CHECK(contains(e.problem, "method.nme"));

  e = error_in(kHead + kProduct + "  exclude: [\"true\"]\n");
  CHECK(e.key == "matrix.exclude");
  CHECK(e.where == file + ":10:12");
  CHECK(contains(e.problem, "every cell"));

  e = error_in(kHead + kProduct + "  exclude: [\"method.mask_ratio\"]\n");
  CHECK(contains(e.problem, "true or false"));

  e = error_in(kHead + kProduct + "  product2: {}\n");
  CHECK(e.key == "matrix.product2");

  e = error_in(kHead + "matrix:\n  product: {method.mask_ratio: []}\n");
  CHECK(contains(e.problem, "non-empty list"));

  e = error_in(kHead + "matrix:\n  product: {seed: [1, 2]}\n  seeds: [0]\n");
  CHECK(e.key == "seed");

  e = error_in("- just\n- a list\n");
  CHECK(contains(e.problem, "must be a mapping"));
  e = error_in("");
  CHECK(e.where == file + ":1:1");
  e = error_in("name: x\ndescription: caf\xe9\n");  // Latin-1, not UTF-8
  CHECK(e.where == file + ":2:17");
  CHECK(contains(e.problem, "UTF-8"));

  e = error_of([&] { load_experiment((dir.path / "missing.yaml").string(), "", {}); });
  CHECK(contains(e.problem, "cannot open"));
}

TEST_CASE("the experiment files in experiments/ load at every scale", "[experiment]") {
  const fs::path dir = fs::path(ABLATE_TEST_SOURCE_DIR) / "experiments";
  if (!fs::exists(dir)) ABLATE_SKIP("no experiments/ directory");
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    std::vector<std::string> scales = {""};  // "" = the default scale
    for (const auto& profile : YAML::LoadFile(entry.path().string())["scales"]) scales.push_back(profile.first.Scalar());
    for (const std::string& scale : scales) {
      INFO(entry.path().string() << " at scale '" << scale << "'");
      Experiment ex = load_experiment(entry.path().string(), scale, {});
      CHECK_FALSE(ex.runs.empty());
    }
  }
  if (files == 0) ABLATE_SKIP("no experiment files yet");
}

TEST_CASE("resources.gpus: 0 is derived from the memory estimate before the run id", "[experiment]") {
  const std::string text = kHead + "  resources: {gpus: 0}\n";
  Experiment ex = parse(text);
  CHECK(ex.runs[0].config.resources.gpus == 1);  // vit_micro fits one GPU
  Experiment one = parse(kHead + "  resources: {gpus: 1}\n");
  CHECK(ex.runs[0].id == one.runs[0].id);  // the same run as asking for 1 explicitly

  Experiment big = parse(text, "", {"model.size=vit_2b4", "model.img_size=224", "model.patch_size=16",
                                    "model.dec_dim=512", "model.dec_heads=16", "train.batch=1024"});
  CHECK(big.runs[0].config.resources.gpus > 1);

  const ConfigError e = parse_error(kHead + "  resources: {gpus: 0, gpu_mem_gb: 0.5}\n");
  CHECK(e.key == "resources.gpus");
  CHECK(e.where == "exp.yaml:8:21");  // at the value
}
